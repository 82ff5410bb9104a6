package picture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"

	"golang.org/x/image/webp"
)

// WebP files come in three layouts: simple lossy (a VP8 chunk), simple
// lossless (VP8L), and extended (VP8X first, then optional ICCP, ANIM +
// ANMF frames, ALPH + VP8 or VP8L, EXIF, XMP). golang.org/x/image/webp
// decodes the first two and the still extended one but refuses
// animations; for an animation portrait takes its first frame out of its
// ANMF chunk and decodes that as a still picture, placed on the canvas at
// the frame's offset (the rest of the canvas is transparent, as libwebp's
// animation decoder starts).
//
// VP8 (lossy) pictures are Y′CbCr with BT.601 coefficients over the
// limited range (luma 16–235), which x/image/webp hands back as
// image.YCbCr, whose colour model is full-range JFIF; the planes are
// therefore converted with ycc601Limited, not image.YCbCr's At.

// webpInfo is what the container says about a WebP picture.
type webpInfo struct {
	width, height int  // canvas size
	animated      bool // VP8X animation flag
	lossless      bool // first image is VP8L
	alpha         bool // has alpha (ALPH chunk or VP8X alpha flag, or VP8L)
	// frame is the first frame of an animation rebuilt as a still WebP
	// file, and frameAt its offset on the canvas.
	frame   []byte
	frameAt image.Point
}

var errWebP = errors.New("webp: malformed container")

// webpChunk is one chunk of a RIFF file.
type webpChunk struct {
	id   string
	data []byte
}

// splitChunks splits b (from offset 12 of a RIFF WEBP file, or the payload
// of an ANMF chunk) into chunks. A truncated last chunk is an error.
func splitChunks(b []byte) ([]webpChunk, error) {
	var out []webpChunk
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, errWebP
		}
		n := uint64(binary.LittleEndian.Uint32(b[4:]))
		if n > uint64(len(b)-8) {
			return nil, errWebP
		}
		out = append(out, webpChunk{string(b[:4]), b[8 : 8+n]})
		n += n & 1
		if n > uint64(len(b)-8) {
			n = uint64(len(b) - 8) // a missing pad byte at the very end
		}
		b = b[8+n:]
	}
	return out, nil
}

// riffBody returns the chunks area of a RIFF WEBP file, bounded by the
// RIFF size when that is shorter than the data.
func riffBody(b []byte) ([]byte, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return nil, errWebP
	}
	end := uint64(binary.LittleEndian.Uint32(b[4:])) + 8
	if end > uint64(len(b)) {
		end = uint64(len(b))
	}
	if end < 12 {
		return nil, errWebP
	}
	return b[12:end], nil
}

func le24(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 }

// parseWebP reads the container of a WebP file. For an animation it also
// extracts the first frame.
func parseWebP(b []byte) (*webpInfo, error) {
	body, err := riffBody(b)
	if err != nil {
		return nil, err
	}
	chunks, err := splitChunks(body)
	if err != nil || len(chunks) == 0 {
		return nil, errWebP
	}
	info := &webpInfo{}
	first := chunks[0]
	switch first.id {
	case "VP8 ", "VP8L":
		info.lossless = first.id == "VP8L"
		info.alpha = info.lossless
		cfg, err := webp.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		if cfg.Width <= 0 || cfg.Height <= 0 {
			return nil, fmt.Errorf("%w: %dx%d picture", errWebP, cfg.Width, cfg.Height)
		}
		info.width, info.height = cfg.Width, cfg.Height
		return info, nil
	case "VP8X":
	default:
		return nil, errWebP
	}
	if len(first.data) < 10 {
		return nil, errWebP
	}
	flags := first.data[0]
	info.animated = flags&0x02 != 0
	info.alpha = flags&0x10 != 0
	info.width, info.height = 1+le24(first.data[4:]), 1+le24(first.data[7:])
	for _, c := range chunks[1:] {
		switch c.id {
		case "VP8L":
			info.lossless, info.alpha = true, true
		case "ALPH":
			info.alpha = true
		case "ANMF":
			if !info.animated {
				return nil, fmt.Errorf("%w: ANMF without the animation flag", errWebP)
			}
			if info.frame == nil {
				if err := info.firstFrame(c.data); err != nil {
					return nil, err
				}
			}
		}
	}
	if info.animated && info.frame == nil {
		return nil, fmt.Errorf("%w: animation without frames", errWebP)
	}
	return info, nil
}

// firstFrame rebuilds the ANMF payload d as a still WebP file.
func (info *webpInfo) firstFrame(d []byte) error {
	if len(d) < 16 {
		return errWebP
	}
	x, y := 2*le24(d[0:]), 2*le24(d[3:])
	w, h := 1+le24(d[6:]), 1+le24(d[9:])
	if x+w > info.width || y+h > info.height {
		return fmt.Errorf("%w: frame %dx%d at %d,%d outside the %dx%d canvas", errWebP, w, h, x, y, info.width, info.height)
	}
	sub, err := splitChunks(d[16:])
	if err != nil {
		return err
	}
	var alph, img *webpChunk
	for i := range sub {
		switch sub[i].id {
		case "ALPH":
			if alph == nil && img == nil {
				alph = &sub[i]
			}
		case "VP8 ", "VP8L":
			if img == nil {
				img = &sub[i]
			}
		}
	}
	if img == nil {
		return fmt.Errorf("%w: frame without a bitstream", errWebP)
	}
	var chunks [][]byte
	if alph != nil && img.id == "VP8 " {
		vp8x := make([]byte, 10)
		vp8x[0] = 0x10
		put24(vp8x[4:], w-1)
		put24(vp8x[7:], h-1)
		chunks = append(chunks, chunk("VP8X", vp8x), chunk("ALPH", alph.data))
	}
	info.lossless = img.id == "VP8L"
	info.alpha = alph != nil || info.lossless
	chunks = append(chunks, chunk(img.id, img.data))
	size := 4
	for _, c := range chunks {
		size += len(c)
	}
	out := make([]byte, 0, 8+size)
	out = append(out, "RIFF"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(size))
	out = append(out, "WEBP"...)
	for _, c := range chunks {
		out = append(out, c...)
	}
	info.frame, info.frameAt = out, image.Pt(x, y)
	return nil
}

func put24(b []byte, v int) { b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16) }

// chunk makes one RIFF chunk, padded to an even size.
func chunk(id string, data []byte) []byte {
	c := make([]byte, 0, 9+len(data))
	c = append(c, id...)
	c = binary.LittleEndian.AppendUint32(c, uint32(len(data)))
	c = append(c, data...)
	if len(data)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

// decodeWebP decodes a still WebP, or the first frame of an animated one
// placed at its offset on the canvas. It returns the picture and how its
// Y′CbCr samples (if any) map to RGB.
func decodeWebP(data []byte, info *webpInfo) (image.Image, ycc, error) {
	src := data
	if info.animated {
		src = info.frame
	}
	img, err := webp.Decode(bytes.NewReader(src))
	if err != nil {
		return nil, ycc{}, err
	}
	if info.animated {
		b := img.Bounds()
		if info.frameAt.X+b.Dx() > info.width || info.frameAt.Y+b.Dy() > info.height {
			return nil, ycc{}, fmt.Errorf("%w: frame larger than declared", errWebP)
		}
		// Frame offsets are even, so shifting the rectangle keeps the
		// chroma planes (sampled every 2 pixels) aligned.
		img = shiftImage(img, info.frameAt)
	}
	return img, ycc601Limited, nil
}

// shiftImage moves the bounds of the picture types that x/image/webp
// returns by d (even), without copying pixels.
func shiftImage(img image.Image, d image.Point) image.Image {
	switch m := img.(type) {
	case *image.YCbCr:
		c := *m
		c.Rect = m.Rect.Add(d)
		return &c
	case *image.NYCbCrA:
		c := *m
		c.Rect = m.Rect.Add(d)
		return &c
	case *image.NRGBA:
		c := *m
		c.Rect = m.Rect.Add(d)
		return &c
	}
	return img
}
