package picture

import (
	"image"
	"math"
)

// The resampler is a separable Catmull-Rom (cubic, B=0, C=½) filter in
// fixed point, stretched by the scale factor when shrinking. Weights are
// computed with each floating-point product explicitly rounded, so they
// (and so the output bytes) do not depend on whether the platform fuses
// multiply-adds.

const weightBits = 14

// catmullRom is the kernel.
func catmullRom(x float64) float64 {
	x = math.Abs(x)
	switch {
	case x < 1:
		p := float64(1.5 * x)
		p = float64((p - 2.5) * x)
		p = float64(p * x)
		return p + 1
	case x < 2:
		p := float64(-0.5 * x)
		p = float64((p + 2.5) * x)
		p = float64((p - 4) * x)
		return p + 2
	}
	return 0
}

// taps are the weights of a resampling along one axis: output o is the
// sum over j of w[off[o]+j] times source sample first[o]+j.
type taps struct {
	first []int
	off   []int
	w     []int32
}

func newTaps(src, dst int) taps {
	t := taps{first: make([]int, dst), off: make([]int, dst+1)}
	scale := float64(src) / float64(dst)
	fs := max(scale, 1)
	support := 2 * fs
	var fw []float64
	for o := 0; o < dst; o++ {
		centre := (float64(o) + 0.5) * scale
		lo := int(math.Floor(centre - support))
		hi := int(math.Ceil(centre + support))
		first := min(max(lo, 0), src-1)
		last := min(max(hi, 0), src-1)
		fw = fw[:0]
		for i := first; i <= last; i++ {
			fw = append(fw, 0)
		}
		sum := 0.0
		for i := lo; i <= hi; i++ {
			w := catmullRom((float64(i) + 0.5 - centre) / fs)
			if w == 0 {
				continue
			}
			ci := min(max(i, 0), src-1) // repeat the edge pixels
			fw[ci-first] += w
			sum += w
		}
		iw := make([]int32, len(fw))
		total, big := int32(0), 0
		for j, w := range fw {
			iw[j] = int32(math.Round(w / sum * (1 << weightBits)))
			total += iw[j]
			if w > fw[big] {
				big = j
			}
		}
		// Make the weights add up to exactly 1.
		iw[big] += 1<<weightBits - total
		// Drop zero weights at the ends.
		for len(iw) > 1 && iw[0] == 0 {
			iw = iw[1:]
			first++
		}
		for len(iw) > 1 && iw[len(iw)-1] == 0 {
			iw = iw[:len(iw)-1]
		}
		t.first[o] = first
		t.off[o] = len(t.w)
		t.w = append(t.w, iw...)
	}
	t.off[dst] = len(t.w)
	return t
}

// resample scales an opaque RGB picture to size×size.
func resample(src *rgbImage, size int) *image.RGBA {
	return resamplePix(src.pix, src.w, src.h, 3*src.w, 3, size)
}

// resampleRGBA scales the colour of an opaque RGBA picture (alpha is
// ignored) to size×size.
func resampleRGBA(src *image.RGBA, size int) *image.RGBA {
	pix := src.Pix[src.PixOffset(src.Rect.Min.X, src.Rect.Min.Y):]
	return resamplePix(pix, src.Rect.Dx(), src.Rect.Dy(), src.Stride, 4, size)
}

// resamplePix scales a w×h picture whose pixels are bpp bytes apart,
// starting with R, G, B, to an opaque size×size RGBA picture.
//
// The horizontal pass is computed one source row at a time into a ring
// of as many rows as the vertical filter spans, just before the vertical
// pass needs it, so the intermediate picture never exists whole.
func resamplePix(pix []byte, w, h, stride, bpp, size int) *image.RGBA {
	xt, yt := newTaps(w, size), newTaps(h, size)
	span := 1
	for o := 0; o < size; o++ {
		span = max(span, yt.off[o+1]-yt.off[o])
	}
	// Horizontal pass: rows of size pixels, in units of 2^-6.
	ring := make([]int32, 3*size*span)
	held := make([]int, span) // source row in each slot, -1 for none
	for i := range held {
		held[i] = -1
	}
	horizontal := func(y int) []int32 {
		slot := y % span
		dst := ring[3*size*slot : 3*size*(slot+1)]
		if held[slot] == y {
			return dst
		}
		held[slot] = y
		row := pix[y*stride : y*stride+bpp*(w-1)+3]
		for o := 0; o < size; o++ {
			ws := xt.w[xt.off[o]:xt.off[o+1]]
			p := bpp * xt.first[o]
			var r, g, b int32
			for _, wt := range ws {
				px := row[p : p+3 : p+3]
				r += wt * int32(px[0])
				g += wt * int32(px[1])
				b += wt * int32(px[2])
				p += bpp
			}
			dst[3*o] = (r + 1<<7) >> 8
			dst[3*o+1] = (g + 1<<7) >> 8
			dst[3*o+2] = (b + 1<<7) >> 8
		}
		return dst
	}
	// Vertical pass.
	out := image.NewRGBA(image.Rect(0, 0, size, size))
	acc := make([]int32, 3*size)
	for o := 0; o < size; o++ {
		clear(acc)
		first := yt.first[o]
		for j, wt := range yt.w[yt.off[o]:yt.off[o+1]] {
			src := horizontal(first + j)
			src = src[:len(acc)]
			for i, v := range src {
				acc[i] += wt * v
			}
		}
		dst := out.Pix[o*out.Stride : o*out.Stride+4*size]
		for i := 0; i < size; i++ {
			for c := 0; c < 3; c++ {
				v := (acc[3*i+c] + 1<<19) >> 20
				dst[4*i+c] = clamp8(int(v))
			}
			dst[4*i+3] = 255
		}
	}
	return out
}
