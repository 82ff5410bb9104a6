//go:build !nosystemdecoders

package picture

import (
	"errors"
	"fmt"
	"image"
	"runtime"
	"unsafe"
)

// libheif is the part of libheif's C API that portrait calls. Every
// function takes and returns opaque pointers or integers; the structure
// heif_error (two ints and a pointer, returned in two registers) is read
// from its first register: code in the low 32 bits.
type libheif struct {
	version string

	contextAlloc        func() unsafe.Pointer
	contextFree         func(ctx unsafe.Pointer)
	readFromMemory      func(ctx unsafe.Pointer, data unsafe.Pointer, size uintptr, opts unsafe.Pointer) uintptr
	primaryHandle       func(ctx unsafe.Pointer, handle *unsafe.Pointer) uintptr
	handleRelease       func(handle unsafe.Pointer)
	handleHasAlpha      func(handle unsafe.Pointer) int32
	decodingOptsAlloc   func() unsafe.Pointer
	decodingOptsFree    func(opts unsafe.Pointer)
	decodeImage         func(handle unsafe.Pointer, img *unsafe.Pointer, colorspace, chroma int32, opts unsafe.Pointer) uintptr
	imageRelease        func(img unsafe.Pointer)
	imageColorspace     func(img unsafe.Pointer) int32
	imageHasChannel     func(img unsafe.Pointer, channel int32) int32
	imageChroma         func(img unsafe.Pointer) int32
	imageWidth          func(img unsafe.Pointer, channel int32) int32
	imageHeight         func(img unsafe.Pointer, channel int32) int32
	imageBitsPerPixel   func(img unsafe.Pointer, channel int32) int32
	imagePlaneReadonly  func(img unsafe.Pointer, channel int32, stride *int32) unsafe.Pointer
	handlePremultiplied func(handle unsafe.Pointer) int32 // nil before libheif 1.12
}

// openLibheif loads the library and its functions. It needs libheif 1.7
// or later (decoding options of version 2).
func openLibheif(name string) (*libheif, error) {
	h, err := openLib(name)
	if err != nil {
		return nil, err
	}
	l := &libheif{}
	var versionNumber func() uint32
	if err := bind(name, h, libFunc{&versionNumber, "heif_get_version_number"}); err != nil {
		return nil, err
	}
	v := versionNumber()
	major, minor, patch := v>>24, v>>16&0xff, v>>8&0xff
	if major < 1 || major == 1 && minor < 7 {
		return nil, fmt.Errorf("%s is version %d.%d.%d; portrait needs 1.7 or later", name, major, minor, patch)
	}
	l.version = fmt.Sprintf("%d.%d.%d", major, minor, patch)
	err = bind(name, h,
		libFunc{&l.contextAlloc, "heif_context_alloc"},
		libFunc{&l.contextFree, "heif_context_free"},
		libFunc{&l.readFromMemory, "heif_context_read_from_memory_without_copy"},
		libFunc{&l.primaryHandle, "heif_context_get_primary_image_handle"},
		libFunc{&l.handleRelease, "heif_image_handle_release"},
		libFunc{&l.handleHasAlpha, "heif_image_handle_has_alpha_channel"},
		libFunc{&l.decodingOptsAlloc, "heif_decoding_options_alloc"},
		libFunc{&l.decodingOptsFree, "heif_decoding_options_free"},
		libFunc{&l.decodeImage, "heif_decode_image"},
		libFunc{&l.imageRelease, "heif_image_release"},
		libFunc{&l.imageColorspace, "heif_image_get_colorspace"},
		libFunc{&l.imageHasChannel, "heif_image_has_channel"},
		libFunc{&l.imageChroma, "heif_image_get_chroma_format"},
		libFunc{&l.imageWidth, "heif_image_get_width"},
		libFunc{&l.imageHeight, "heif_image_get_height"},
		libFunc{&l.imageBitsPerPixel, "heif_image_get_bits_per_pixel"},
		libFunc{&l.imagePlaneReadonly, "heif_image_get_plane_readonly"},
	)
	if err != nil {
		return nil, err
	}
	// libheif 1.12 and later say whether alpha is premultiplied.
	_ = bind(name, h, libFunc{&l.handlePremultiplied, "heif_image_handle_is_premultiplied_alpha"})
	return l, nil
}

var errLibheif = errors.New("libheif")

// heifErr turns a heif_error's first register into an error, or nil.
func heifErr(what string, r uintptr) error {
	code, sub := uint32(r), uint32(uint64(r)>>32)
	if code == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s: error %d.%d", errLibheif, what, code, sub)
}

// heifPicture is a picture decoded by the system's libheif. Its pixels
// live in C memory until free is called.
type heifPicture struct {
	planes *planar     // Y′CbCr or grey as the codec made it, or
	img    image.Image // RGBA (non-premultiplied unless libheif says so)
	free   func()
}

// decode decodes data's primary picture with its transformations applied
// (libheif turns and mirrors it). An opaque 8-bit picture comes back as
// the codec made it (Y′CbCr 4:2:0, 4:2:2 or 4:4:4, or grey), with no
// conversion and no copy, converted by info.ycc() (its nclx colour
// property, or libheif's own default without one); anything else
// (transparency, more bits) as RGBA, converted by libheif.
func (l *libheif) decode(data []byte, info *heifInfo) (pic *heifPicture, err error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: no data", errLibheif)
	}
	ctx := l.contextAlloc()
	if ctx == nil {
		return nil, fmt.Errorf("%w: out of memory", errLibheif)
	}
	var handle, img unsafe.Pointer
	release := func() {
		if img != nil {
			l.imageRelease(img)
			img = nil
		}
		if handle != nil {
			l.handleRelease(handle)
		}
		l.contextFree(ctx)
		// libheif reads data in place until the context is freed.
		runtime.KeepAlive(data)
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	if err := heifErr("read", l.readFromMemory(ctx, unsafe.Pointer(unsafe.SliceData(data)), uintptr(len(data)), nil)); err != nil {
		return nil, err
	}
	if err := heifErr("primary image", l.primaryHandle(ctx, &handle)); err != nil {
		return nil, err
	}
	if info.depth == 8 && info.chroma >= 0 && l.handleHasAlpha(handle) == 0 {
		// Asked for the layout the codec makes, libheif converts nothing.
		colorspace := int32(heifColorspaceYCbCr)
		if info.chroma == heifChromaMonochrome {
			colorspace = heifColorspaceMonochrome
		}
		if err := l.decodeAs(handle, &img, colorspace, int32(info.chroma)); err != nil {
			return nil, err
		}
		if p := l.planes(img, info); p != nil {
			return &heifPicture{planes: p, free: release}, nil
		}
		l.imageRelease(img) // not a layout portrait reads: RGBA then
		img = nil
	}
	if err := l.decodeAs(handle, &img, heifColorspaceRGB, heifChromaRGBA); err != nil {
		return nil, err
	}
	m, err := l.rgba(img, handle)
	if err != nil {
		return nil, err
	}
	return &heifPicture{img: m, free: release}, nil
}

// decodeAs decodes the picture of handle into *img, converted to
// colorspace and chroma, high bit depths
// reduced to 8 bits.
func (l *libheif) decodeAs(handle unsafe.Pointer, img *unsafe.Pointer, colorspace, chroma int32) error {
	opts := l.decodingOptsAlloc()
	if opts == nil {
		return fmt.Errorf("%w: out of memory", errLibheif)
	}
	*(*uint8)(unsafe.Add(opts, heifOptsConvertHDR)) = 1
	err := heifErr("decode", l.decodeImage(handle, img, colorspace, chroma, opts))
	l.decodingOptsFree(opts)
	return err
}

// plane returns the samples of one channel as a slice over C memory.
func (l *libheif) plane(img unsafe.Pointer, channel int32, bits int32) ([]byte, int, int, int, error) {
	if l.imageHasChannel(img, channel) == 0 {
		return nil, 0, 0, 0, fmt.Errorf("%w: no channel %d", errLibheif, channel)
	}
	w, h := int(l.imageWidth(img, channel)), int(l.imageHeight(img, channel))
	if got := l.imageBitsPerPixel(img, channel); got != bits {
		return nil, 0, 0, 0, fmt.Errorf("%w: channel %d has %d bits per pixel, not %d", errLibheif, channel, got, bits)
	}
	var stride int32
	p := l.imagePlaneReadonly(img, channel, &stride)
	if p == nil || w <= 0 || h <= 0 || int(stride) < w*int(bits)/8 {
		return nil, 0, 0, 0, fmt.Errorf("%w: channel %d missing", errLibheif, channel)
	}
	return unsafe.Slice((*byte)(p), int(stride)*(h-1)+w*int(bits)/8), w, h, int(stride), nil
}

// planes returns img's planes when it is 8-bit grey or Y′CbCr with chroma
// sampled every 1 or 2 pixels, and nil otherwise.
func (l *libheif) planes(img unsafe.Pointer, info *heifInfo) *planar {
	// Channels are asked for only once the layout says they exist:
	// libheif aborts the process on a query about a missing one.
	p := &planar{fx: 1, fy: 1, cc: info.ycc()}
	switch cs, chroma := l.imageColorspace(img), l.imageChroma(img); {
	case cs == heifColorspaceMonochrome && chroma == heifChromaMonochrome:
		p.fx = 0
	case cs != heifColorspaceYCbCr:
		return nil
	case chroma == heifChroma420:
		p.fx, p.fy = 2, 2
	case chroma == heifChroma422:
		p.fx = 2
	case chroma != heifChroma444:
		return nil
	}
	y, w, h, ys, err := l.plane(img, heifChannelY, 8)
	if err != nil {
		return nil
	}
	p.y, p.yStride, p.rect = y, ys, image.Rect(0, 0, w, h)
	if p.fx == 0 { // grey
		p.fx = 1
		return p
	}
	cb, cw, ch, cs, err := l.plane(img, heifChannelCb, 8)
	if err != nil {
		return nil
	}
	cr, cw2, ch2, cs2, err := l.plane(img, heifChannelCr, 8)
	if err != nil || cw != (w+p.fx-1)/p.fx || ch != (h+p.fy-1)/p.fy || cw2 != cw || ch2 != ch || cs2 != cs {
		return nil
	}
	p.cb, p.cr, p.cStride = cb, cr, cs
	return p
}

func (l *libheif) rgba(img, handle unsafe.Pointer) (image.Image, error) {
	pix, w, h, stride, err := l.plane(img, heifChannelRGBA, 32)
	if err != nil {
		return nil, err
	}
	r := image.Rect(0, 0, w, h)
	if l.handlePremultiplied != nil && l.handlePremultiplied(handle) != 0 {
		return &image.RGBA{Pix: pix, Stride: stride, Rect: r}, nil
	}
	return &image.NRGBA{Pix: pix, Stride: stride, Rect: r}, nil
}
