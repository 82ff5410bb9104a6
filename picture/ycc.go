package picture

import (
	"image/color"
	"math"
)

// ycc says how the Y′CbCr samples of a decoded picture map to RGB. The
// zero value is JPEG's (JFIF): BT.601 coefficients over the full 0–255
// range, which is what image.YCbCr means. Video codecs (VP8 in lossy WebP,
// HEVC in HEIC, AV1 in AVIF) usually store "limited range" samples
// instead: luma 16–235 and chroma 16–240, and HD-era streams use BT.709's
// coefficients. Treating those as JFIF makes a picture too bright and
// flat, so every plane carries its own ycc.
type ycc struct {
	// conv is nil for JFIF, which uses color.YCbCrToRGB.
	conv *yccConv
}

// yccConv is the fixed-point form of one Y′CbCr → RGB matrix, in units
// of 2^-16: R = cy·(Y−yoff) + crR·(Cr−128), and so on.
type yccConv struct {
	yoff                   int32
	cy, crR, cbG, crG, cbB int32
}

// newYCCConv builds the conversion for luma weights kr, kb (BT.601:
// 0.299, 0.114; BT.709: 0.2126, 0.0722), for full or limited range.
func newYCCConv(kr, kb float64, full bool) *yccConv {
	kg := 1 - kr - kb
	ys, cs, yoff := 1.0, 1.0, int32(0)
	if !full {
		ys, cs, yoff = 255.0/219, 255.0/224, 16
	}
	fix := func(v float64) int32 { return int32(math.Round(v * 65536)) }
	return &yccConv{
		yoff: yoff,
		cy:   fix(ys),
		crR:  fix(cs * 2 * (1 - kr)),
		cbG:  fix(cs * 2 * kb * (1 - kb) / kg),
		crG:  fix(cs * 2 * kr * (1 - kr) / kg),
		cbB:  fix(cs * 2 * (1 - kb)),
	}
}

// The conversions that decoders need.
var (
	ycc601Limited = ycc{newYCCConv(0.299, 0.114, false)}
	ycc709Limited = ycc{newYCCConv(0.2126, 0.0722, false)}
	ycc709Full    = ycc{newYCCConv(0.2126, 0.0722, true)}
)

// rgb converts one sample.
func (c ycc) rgb(y, cb, cr byte) (byte, byte, byte) {
	if c.conv == nil {
		return color.YCbCrToRGB(y, cb, cr)
	}
	return c.conv.rgb(int32(y), int32(cb), int32(cr))
}

func (k *yccConv) rgb(y, cb, cr int32) (byte, byte, byte) {
	l := k.cy*(y-k.yoff) + 1<<15
	cb -= 128
	cr -= 128
	r := (l + k.crR*cr) >> 16
	g := (l - k.cbG*cb - k.crG*cr) >> 16
	b := (l + k.cbB*cb) >> 16
	return clamp8(int(r)), clamp8(int(g)), clamp8(int(b))
}
