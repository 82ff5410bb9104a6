package main

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math"

	"github.com/davidbyttow/govips/v2/vips"
)

// input is one picture to normalise, with the original pixels it was
// made from.
type input struct {
	name string
	data []byte
	src  *image.RGBA
}

// allFormats lists the formats of the comparison, in order.
func allFormats() []string {
	return []string{"jpeg-12MP", "jpeg-48MP", "jpeg-progressive-12MP", "png-12MP", "webp-12MP", "heic-12MP", "avif-12MP"}
}

// photo makes a deterministic w×h opaque picture that looks enough like
// a photograph for a codec: smooth gradients, mid-frequency texture and
// fine noise, in luma and chroma.
func photo(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := uint32(12345)
	noise := func(amp int) float64 {
		rng ^= rng << 13
		rng ^= rng >> 17
		rng ^= rng << 5
		return float64(int(rng%uint32(2*amp+1)) - amp)
	}
	fw, fh := float64(w), float64(h)
	for y := 0; y < h; y++ {
		fy := float64(y) / fh
		row := m.Pix[y*m.Stride : y*m.Stride+4*w]
		for x := 0; x < w; x++ {
			fx := float64(x) / fw
			l := 110 + 70*fy - 40*fx +
				30*math.Sin(6.3*fx+2*fy)*math.Cos(4.1*fy) +
				12*math.Sin(float64(x)/9+math.Sin(float64(y)/13)) +
				noise(9)
			cb := 40*math.Sin(3*fx+fy) + noise(3)
			cr := 35*math.Cos(2*fy-fx) + noise(3)
			row[4*x] = clamp(l + 1.402*cr)
			row[4*x+1] = clamp(l - 0.344136*cb - 0.714136*cr)
			row[4*x+2] = clamp(l + 1.772*cb)
			row[4*x+3] = 255
		}
	}
	return m
}

func clamp(v float64) uint8 {
	switch {
	case v < 0:
		return 0
	case v > 255:
		return 255
	}
	return uint8(v + 0.5)
}

// makeInput encodes the picture for one format.
func makeInput(name string) (*input, error) {
	w, h := 4000, 3000
	if name == "jpeg-48MP" {
		w, h = 8000, 6000
	}
	src := photo(w, h)
	in := &input{name: name, src: src}
	var buf bytes.Buffer
	switch name {
	case "jpeg-12MP", "jpeg-48MP":
		if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: 90}); err != nil {
			return nil, err
		}
		in.data = buf.Bytes()
		return in, nil
	case "png-12MP":
		if err := png.Encode(&buf, src); err != nil {
			return nil, err
		}
		in.data = buf.Bytes()
		return in, nil
	}
	// The rest through libvips' savers, from a lossless copy.
	e := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := e.Encode(&buf, src); err != nil {
		return nil, err
	}
	ref, err := vips.NewImageFromBuffer(buf.Bytes())
	if err != nil {
		return nil, err
	}
	defer ref.Close()
	switch name {
	case "jpeg-progressive-12MP":
		p := vips.NewJpegExportParams()
		p.Quality, p.Interlace, p.StripMetadata = 90, true, true
		in.data, _, err = ref.ExportJpeg(p)
	case "webp-12MP":
		p := vips.NewWebpExportParams()
		p.Quality, p.StripMetadata = 90, true
		in.data, _, err = ref.ExportWebp(p)
	case "heic-12MP":
		p := vips.NewHeifExportParams()
		p.Quality = 90
		in.data, _, err = ref.ExportHeif(p)
	case "avif-12MP":
		p := vips.NewAvifExportParams()
		p.Quality, p.Effort, p.StripMetadata = 90, 0, true
		in.data, _, err = ref.ExportAvif(p)
	default:
		return nil, fmt.Errorf("unknown format %q", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return in, nil
}

// reference is the exact area-average of the centred square of src down
// to size×size, in RGB.
func reference(src *image.RGBA, size int) *image.RGBA {
	b := src.Bounds()
	side := min(b.Dx(), b.Dy())
	x0, y0 := b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2
	ws := areaWeights(side, size)
	// Columns first, per source row, into float rows; then rows.
	tmp := make([][]float64, side)
	for y := 0; y < side; y++ {
		row := src.Pix[src.PixOffset(x0, y0+y):]
		out := make([]float64, 3*size)
		for o, cw := range ws {
			for _, c := range cw {
				p := row[4*c.i:]
				out[3*o] += c.w * float64(p[0])
				out[3*o+1] += c.w * float64(p[1])
				out[3*o+2] += c.w * float64(p[2])
			}
		}
		tmp[y] = out
	}
	ref := image.NewRGBA(image.Rect(0, 0, size, size))
	for o, rw := range ws {
		acc := make([]float64, 3*size)
		for _, r := range rw {
			for i, v := range tmp[r.i] {
				acc[i] += r.w * v
			}
		}
		for x := 0; x < size; x++ {
			p := ref.Pix[ref.PixOffset(x, o):]
			p[0], p[1], p[2], p[3] = clamp(acc[3*x]), clamp(acc[3*x+1]), clamp(acc[3*x+2]), 255
		}
	}
	return ref
}

type weight struct {
	i int
	w float64
}

// areaWeights says, for each of size output samples, which of n input
// samples it covers and by how much (the weights of each add up to 1).
func areaWeights(n, size int) [][]weight {
	scale := float64(n) / float64(size)
	out := make([][]weight, size)
	for o := range out {
		lo, hi := float64(o)*scale, float64(o+1)*scale
		for i := int(lo); i < n && float64(i) < hi; i++ {
			cover := math.Min(hi, float64(i+1)) - math.Max(lo, float64(i))
			if cover > 0 {
				out[o] = append(out[o], weight{i, cover / scale})
			}
		}
	}
	return out
}

// psnr compares the RGB channels of two pictures of the same size.
func psnr(a, b image.Image) float64 {
	var se float64
	n := 0
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			ar, ag, ab, _ := a.At(x, y).RGBA()
			br, bg, bb, _ := b.At(x, y).RGBA()
			for _, d := range []float64{float64(ar>>8) - float64(br>>8), float64(ag>>8) - float64(bg>>8), float64(ab>>8) - float64(bb>>8)} {
				se += d * d
				n++
			}
		}
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}
