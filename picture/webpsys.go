//go:build !nosystemdecoders

package picture

import (
	"fmt"
	"image"
	"runtime"
	"unsafe"
)

// libwebp is the part of libwebp's C API that portrait calls: the advanced
// decoding interface, which crops and scales while it decodes, so that
// only the reduced rows are ever written (what libvips asks of it too).
type libwebp struct {
	version string

	initConfig func(config *webpConfig, abi int32) int32
	decode     func(data unsafe.Pointer, size uintptr, config *webpConfig) int32
	freeBuffer func(buffer unsafe.Pointer)
}

// webpDecoderABI is the WEBP_DECODER_ABI_VERSION that webpConfig's layout
// follows (libwebp 0.5 to 1.x); libwebp refuses a different major version.
const webpDecoderABI = 0x0209

// webpConfig is struct WebPDecoderConfig: the bitstream's features, the
// output buffer (its RGBA view) and the decoding options.
type webpConfig struct {
	// WebPBitstreamFeatures: width, height, has_alpha, has_animation,
	// format, pad[5]; filled by libwebp, not read.
	_ [10]int32

	// WebPDecBuffer
	colorspace    int32
	outWidth      int32
	outHeight     int32
	_             int32          // is_external_memory
	rgba          unsafe.Pointer // u.RGBA.rgba (C memory)
	stride        int32          // u.RGBA.stride
	_             int32
	_             uintptr       // u.RGBA.size
	_             [80 - 24]byte // the rest of the union (YUVA view)
	_             [4]uint32
	privateMemory unsafe.Pointer

	// WebPDecoderOptions
	bypassFiltering int32
	_               int32 // no_fancy_upsampling
	useCropping     int32
	cropLeft        int32
	cropTop         int32
	cropWidth       int32
	cropHeight      int32
	useScaling      int32
	scaledWidth     int32
	scaledHeight    int32
	_               [3]int32 // use_threads, dithering_strength, flip
	alphaDit        int32    // alpha_dithering_strength
	_               [5]uint32
}

// Output modes (WEBP_CSP_MODE).
const (
	webpModeRGB  = 0
	webpModeRGBA = 1
)

// openLibwebp loads the library and its functions.
func openLibwebp(name string) (*libwebp, error) {
	h, err := openLib(name)
	if err != nil {
		return nil, err
	}
	l := &libwebp{}
	var version func() int32
	err = bind(name, h,
		libFunc{&version, "WebPGetDecoderVersion"},
		libFunc{&l.initConfig, "WebPInitDecoderConfigInternal"},
		libFunc{&l.decode, "WebPDecode"},
		libFunc{&l.freeBuffer, "WebPFreeDecBuffer"},
	)
	if err != nil {
		return nil, err
	}
	v := version()
	l.version = fmt.Sprintf("%d.%d.%d", v>>16, v>>8&0xff, v&0xff)
	var c webpConfig
	if l.initConfig(&c, webpDecoderABI) == 0 {
		return nil, fmt.Errorf("%s %s does not speak decoder ABI %#x", name, l.version, webpDecoderABI)
	}
	return l, nil
}

// decodeShrink decodes the part box of a still WebP picture, reduced by
// libwebp's area-averaging scaler to m×m (m = box side / k) while it
// decodes, and flattens any transparency onto white.
func (l *libwebp) decodeShrink(data []byte, box image.Rectangle, k int, alpha bool) (*rgbImage, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("libwebp: no data")
	}
	var c webpConfig
	if l.initConfig(&c, webpDecoderABI) == 0 {
		return nil, fmt.Errorf("libwebp: decoder ABI %#x refused", webpDecoderABI)
	}
	m := box.Dx() / k
	c.colorspace = webpModeRGB
	if alpha {
		c.colorspace = webpModeRGBA
	}
	c.useCropping = 1
	c.cropLeft, c.cropTop = int32(box.Min.X), int32(box.Min.Y)
	c.cropWidth, c.cropHeight = int32(box.Dx()), int32(box.Dy())
	if k > 1 {
		c.useScaling = 1
		c.scaledWidth, c.scaledHeight = int32(m), int32(m)
	}
	status := l.decode(unsafe.Pointer(unsafe.SliceData(data)), uintptr(len(data)), &c)
	runtime.KeepAlive(data)
	if c.rgba != nil {
		defer l.freeBuffer(unsafe.Pointer(&c.colorspace))
	}
	if status != 0 {
		return nil, fmt.Errorf("libwebp: decoding failed (status %d)", status)
	}
	bpp := 3
	if alpha {
		bpp = 4
	}
	if c.rgba == nil || int(c.outWidth) != m || int(c.outHeight) != m || int(c.stride) < bpp*m {
		return nil, fmt.Errorf("libwebp: %dx%d picture, want %dx%d", c.outWidth, c.outHeight, m, m)
	}
	src := unsafe.Slice((*byte)(c.rgba), int(c.stride)*(m-1)+bpp*m)
	out := &rgbImage{pix: make([]byte, 3*m*m), w: m, h: m}
	for y := 0; y < m; y++ {
		row := src[y*int(c.stride):][:bpp*m]
		dst := out.pix[3*m*y:][:3*m]
		if !alpha {
			copy(dst, row)
			continue
		}
		for x := 0; x < m; x++ {
			p := row[4*x : 4*x+4 : 4*x+4]
			dst[3*x], dst[3*x+1], dst[3*x+2] = flattenN(p[0], p[3]), flattenN(p[1], p[3]), flattenN(p[2], p[3])
		}
	}
	return out, nil
}
