package picture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
)

// Sniff judges the format of b from its magic bytes only. It returns
// ErrEmpty for no bytes and ErrUnsupported for anything that is not a
// JPEG, PNG, GIF, WebP, AVIF or HEIC header.
func Sniff(b []byte) (Format, error) {
	switch {
	case len(b) == 0:
		return "", ErrEmpty
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return JPEG, nil
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return PNG, nil
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return GIF, nil
	case len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return WebP, nil
	}
	if f := sniffHEIF(b); f != "" {
		return f, nil
	}
	return "", ErrUnsupported
}

// header reads only the header of the job's picture: its stored
// dimensions, and what the decode step and the estimate need.
func (j *job) header() (w, h int, err error) {
	r := bytes.NewReader(j.data)
	switch j.format {
	case JPEG:
		var f jpegFrame
		if pos, err := f.parse(j.data); err == nil {
			j.jpeg, j.jpegAt = &f, pos
			return f.width, f.height, nil
		}
		cfg, err := jpeg.DecodeConfig(r)
		return cfg.Width, cfg.Height, err
	case PNG:
		cfg, err := png.DecodeConfig(r)
		if err != nil {
			return 0, 0, err
		}
		if info, err := parsePNGInfo(j.data); err == nil && !info.interlaced &&
			info.width == cfg.Width && info.height == cfg.Height {
			j.png = info
		}
		return cfg.Width, cfg.Height, nil
	case GIF:
		cfg, err := gif.DecodeConfig(r)
		return cfg.Width, cfg.Height, err
	case WebP:
		info, err := parseWebP(j.data)
		if err != nil {
			return 0, 0, err
		}
		j.webp = info
		if !info.animated {
			j.wsys = sysWebP.Load()
		}
		return info.width, info.height, nil
	case AVIF, HEIC:
		info, err := parseHEIF(j.data)
		if err != nil {
			return 0, 0, err
		}
		if info.format != j.format {
			return 0, 0, fmt.Errorf("primary item is %s, not %s", info.format, j.format)
		}
		j.heif = info
		j.sys = sysHEIF.Load()
		w, h := info.width, info.height
		if j.heifTurns() && info.quarterTurns()%2 == 1 {
			w, h = h, w
		}
		return w, h, nil
	}
	return 0, 0, errors.New("unknown format")
}

// heifTurns reports whether the decoder of the job's HEIF picture applies
// its transformations (irot, imir) itself: libheif does, the built-in
// libavif does not, so a built-in AVIF is turned by portrait.
func (j *job) heifTurns() bool {
	return j.format == HEIC || j.sys != nil
}

// decodeImage decodes the job's picture with a general-purpose decoder:
// the standard ones, golang.org/x/image/webp, or the WebAssembly builds of
// libavif and libheif. For a GIF or an animated WebP it is the first
// frame. It also says how Y′CbCr samples of the result map to RGB.
func (j *job) decodeImage() (image.Image, ycc, error) {
	r := bytes.NewReader(j.data)
	switch j.format {
	case JPEG:
		img, err := jpeg.Decode(r)
		return img, ycc{}, err
	case PNG:
		img, err := png.Decode(r)
		return img, ycc{}, err
	case GIF:
		img, err := gif.Decode(r)
		return img, ycc{}, err
	case WebP:
		return decodeWebP(j.data, j.webp)
	case AVIF, HEIC:
		return decodeHEIF(j.data, j.heif)
	}
	return nil, ycc{}, errors.New("unknown format")
}

// encodeJPEG encodes m as a baseline JPEG without metadata.
func encodeJPEG(m *image.RGBA) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(m.Rect.Dx() * m.Rect.Dy() / 4)
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: Quality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Estimate returns the format of data and the memory, in bytes, that
// Process would admit it with against a Budget: read from the header
// only, the size of the decoded form (width × height × bytes per pixel of
// what the decoder makes, plus its working memory) and of the scaling
// buffers. Its errors are Process's for the same header.
func Estimate(data []byte, lim Limits) (Format, int64, error) {
	j := newJob(context.Background(), data, lim)
	for _, s := range []func(*job) error{stepSniff, stepLimits} {
		if err := s(j); err != nil {
			return j.format, 0, err
		}
	}
	return j.format, j.need, nil
}

// estimate works out, from the job's header, the memory in bytes that the
// picture holds while it is decoded and scaled: the decoder's output and
// working memory, and the shrink, resample and encode buffers.
func (j *job) estimate() int64 {
	var decode int64
	px := float64(j.width) * float64(j.height)
	side := min(j.width, j.height)
	var perPixel float64 // bytes per source pixel
	switch j.format {
	case JPEG:
		if f := j.jpeg; f != nil {
			// Scaled planes covering the centred square (plus an MCU of
			// slack on each side), luma and chroma.
			n := scaleFor(side, FullSize)
			s := float64((side*n+7)/8 + 2*8*f.comps[0].h)
			chroma := 0.0
			if len(f.comps) >= 3 {
				c, y := f.comps[1], f.comps[0]
				chroma = 2 * float64(c.h*c.v) / float64(y.h*y.v)
			}
			if len(f.comps) == 4 {
				chroma++ // black
			}
			decode = int64(s * s * (1 + chroma))
			if f.progressive {
				// The coefficients of the kept blocks, 2 bytes each, and a
				// 64-bit mask for every other block.
				_, _, _, mx0, my0, mx1, my1 := f.keptMCUs(n)
				hmax, vmax := f.comps[0].h, f.comps[0].v
				mcus := int64((f.width+8*hmax-1)/(8*hmax)) * int64((f.height+8*vmax-1)/(8*vmax))
				kept := int64(mx1-mx0) * int64(my1-my0)
				for _, c := range f.comps {
					decode += int64(c.h*c.v) * (kept*128 + mcus*8)
				}
			}
			side = (side*n + 7) / 8
		} else {
			perPixel = jpegFullBytesPerPixel(j.data)
		}
	case PNG:
		if j.png != nil {
			decode = pngEstimate(j.png, side) + int64(len(j.data))
		} else {
			perPixel = pngBytesPerPixel(j.data)
		}
	case GIF:
		perPixel = 1
	case WebP:
		switch w := j.webp; {
		case j.wsys != nil && w.lossless:
			// libwebp's lossless decoder holds the whole ARGB picture.
			perPixel = 4
		case j.wsys != nil:
			// libwebp keeps a few macroblock rows of Y′CbCr and the
			// scaler's rows (about 128 bytes a column), never more than
			// the whole picture, and the reduced picture.
			box, k := shrinkPlan(image.Rect(0, 0, j.width, j.height))
			m := int64(box.Dx() / k)
			decode = min(int64(j.width)*128, int64(px*1.5)) + 4*m*m + int64(len(j.data))
		case w.lossless:
			// NRGBA plus the lossless decoder's transform buffers.
			perPixel = 12
		case w.alpha:
			// Y′CbCr 4:2:0 and alpha, and the alpha plane's own decode.
			perPixel = 1.5 + 1 + 4
		default:
			perPixel = 1.5
		}
	case AVIF, HEIC:
		perPixel = j.heif.bytesPerPixel(j.sys != nil)
	}
	if decode == 0 {
		decode = int64(px*perPixel) + int64(len(j.data))
	}
	// Scaling: the box-shrunk picture (m×m RGB), the resampler's ring of
	// intermediate rows (int32 per channel; a shrink by less than 2 spans
	// at most 9 rows), the FullSize RGBA picture, the oriented copy and
	// preview, and the two encoded outputs.
	m := int64(min(side, 2*FullSize-1)) // the most the shrink can leave
	scale := 3*m*m + 12*FullSize*10 + 3*4*FullSize*FullSize + 64<<10
	return decode + scale
}

// jpegFullBytesPerPixel is what image/jpeg holds per pixel for a JPEG
// that the scaled decoder does not take: its component planes, for a
// progressive JPEG also their coefficients (an int32 each), and for CMYK
// or RGB pictures the converted 4-byte pixels.
func jpegFullBytesPerPixel(b []byte) float64 {
	progressive, comps := jpegSOF(b)
	if len(comps) == 0 {
		return 4
	}
	hmax, vmax := 1, 1
	for _, c := range comps {
		hmax, vmax = max(hmax, c[0]), max(vmax, c[1])
	}
	planes := 0.0
	for _, c := range comps {
		planes += float64(c[0]*c[1]) / float64(hmax*vmax)
	}
	per := planes
	if progressive {
		per += 4 * planes
	}
	if len(comps) == 4 || (len(comps) == 3 && hmax == 1 && vmax == 1) {
		per += 4
	}
	return per
}

// jpegSOF finds the frame header of a JPEG and returns whether it is
// progressive and each component's sampling factors. It returns no
// components when there is no readable frame header before the scan.
func jpegSOF(b []byte) (progressive bool, comps [][2]int) {
	walkJPEGHeader(b, func(m byte, seg []byte) bool {
		if m < 0xC0 || m > 0xCF || m == 0xC4 || m == 0xC8 || m == 0xCC {
			return true // not a frame header
		}
		if len(seg) < 6 {
			return false
		}
		nc := int(seg[5])
		if len(seg) < 6+3*nc {
			return false
		}
		for c := 0; c < nc; c++ {
			f := seg[7+3*c]
			comps = append(comps, [2]int{max(int(f>>4), 1), max(int(f&15), 1)})
		}
		progressive = m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE
		return false
	})
	return progressive, comps
}

// pngBytesPerPixel is the size of the pixel image/png decodes a PNG
// into, from its IHDR (colour type and bit depth), half as much again
// for an interlaced one (a pass is decoded beside the picture).
func pngBytesPerPixel(b []byte) float64 {
	if len(b) < 29 {
		return 8
	}
	depth, ctype, interlace := b[24], b[25], b[28]
	var per float64
	switch ctype {
	case 0: // grey
		per = 1
	case 3: // paletted
		per = 1
		depth = 8
	default: // RGB, grey+alpha and RGBA become 4 or 8 bytes
		per = 4
	}
	if depth == 16 {
		per *= 2
	}
	if interlace != 0 {
		per *= 1.5
	}
	return per
}
