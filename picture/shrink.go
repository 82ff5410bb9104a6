package picture

import (
	"image"
	"image/color"
)

// planar is a decoded picture kept as its luma plane and, unless it is
// grey, two chroma planes sampled every fx×fy luma pixels (the layout of
// image.YCbCr and of the scaled JPEG decoder).
type planar struct {
	y       []byte
	yStride int
	cb, cr  []byte // nil for grey
	cStride int
	rect    image.Rectangle // luma coordinates that y covers
	fx, fy  int
	cc      ycc    // how the samples map to RGB
	k       []byte // CMYK and YCCK: the black plane, laid out like y
	cmyk    byte   // cmykNone, cmykAdobe or cmykYCCK
}

// How a planar picture with a black plane maps to RGB.
const (
	cmykNone  = 0
	cmykAdobe = 1 // the planes are C, M, Y, K, all stored inverted
	cmykYCCK  = 2 // Y′CbCr of the inverted C, M, Y; K stored inverted
)

// rgb4 converts one sample of a picture with a black plane the way
// image/jpeg does (to image.CMYK), then as color.CMYKToRGB.
func (p *planar) rgb4(s0, s1, s2, k byte) (byte, byte, byte) {
	if p.cmyk == cmykYCCK {
		r, g, b := color.YCbCrToRGB(s0, s1, s2)
		return color.CMYKToRGB(r, g, b, 255-k)
	}
	return color.CMYKToRGB(255-s0, 255-s1, 255-s2, 255-k)
}

// planarOf returns the planes of img when it is an *image.YCbCr or an
// *image.Gray, and nil otherwise.
func planarOf(img image.Image) *planar {
	switch m := img.(type) {
	case *image.YCbCr:
		p := &planar{y: m.Y, yStride: m.YStride, cb: m.Cb, cr: m.Cr, cStride: m.CStride, rect: m.Rect}
		switch m.SubsampleRatio {
		case image.YCbCrSubsampleRatio444:
			p.fx, p.fy = 1, 1
		case image.YCbCrSubsampleRatio422:
			p.fx, p.fy = 2, 1
		case image.YCbCrSubsampleRatio420:
			p.fx, p.fy = 2, 2
		case image.YCbCrSubsampleRatio440:
			p.fx, p.fy = 1, 2
		case image.YCbCrSubsampleRatio411:
			p.fx, p.fy = 4, 1
		case image.YCbCrSubsampleRatio410:
			p.fx, p.fy = 4, 2
		default:
			return nil
		}
		return p
	case *image.Gray:
		return &planar{y: m.Pix, yStride: m.Stride, rect: m.Rect, fx: 1, fy: 1}
	}
	return nil
}

// rgbImage is an opaque picture, 3 bytes (R, G, B) a pixel.
type rgbImage struct {
	pix  []byte
	w, h int
}

// axisMap says, for each output index along one axis of a box shrink,
// which plane samples it averages and with what weights. Output o uses
// samples first[o] .. first[o]+len(w[off[o]:off[o+1]])-1.
type axisMap struct {
	first []int
	off   []int
	w     []uint32
}

// newAxisMap maps the box [x0, x0+m*k) (in luma coordinates), shrunk by
// k, onto a plane sampled every f luma pixels whose index for luma
// coordinate x is x/f - base/f.
func newAxisMap(x0, m, k, f, base int) axisMap {
	a := axisMap{first: make([]int, m), off: make([]int, m+1)}
	for o := 0; o < m; o++ {
		a.off[o] = len(a.w)
		prev := 0
		for t := 0; t < k; t++ {
			c := (x0+o*k+t)/f - base/f
			if t == 0 || c != prev {
				if t == 0 {
					a.first[o] = c
				}
				a.w = append(a.w, 0)
				prev = c
			}
			a.w[len(a.w)-1]++
		}
	}
	a.off[m] = len(a.w)
	return a
}

// span returns the lowest and one past the highest plane index used.
func (a *axisMap) span() (int, int) {
	m := len(a.first)
	return a.first[0], a.first[m-1] + a.off[m] - a.off[m-1]
}

// boxPlane sums one plane over the boxes of an output row.
type boxPlane struct {
	pix    []byte
	stride int
	xs, ys axisMap
	lo, hi int      // plane columns used
	acc    []uint32 // column sums for the current output row
}

func newBoxPlane(pix []byte, stride int, xs, ys axisMap) *boxPlane {
	lo, hi := xs.span()
	return &boxPlane{pix: pix, stride: stride, xs: xs, ys: ys, lo: lo, hi: hi, acc: make([]uint32, hi-lo)}
}

// row writes the weighted sums of output row oy to dst.
func (b *boxPlane) row(oy int, dst []uint32) {
	acc := b.acc
	clear(acc)
	r0 := b.ys.first[oy]
	for j, wy := range b.ys.w[b.ys.off[oy]:b.ys.off[oy+1]] {
		start := (r0+j)*b.stride + b.lo
		src := b.pix[start : start+len(acc)]
		if wy == 1 {
			for i, v := range src {
				acc[i] += uint32(v)
			}
		} else {
			for i, v := range src {
				acc[i] += wy * uint32(v)
			}
		}
	}
	xs := &b.xs
	for o := range dst {
		ws := xs.w[xs.off[o]:xs.off[o+1]]
		a := acc[xs.first[o]-b.lo:]
		a = a[:len(ws)]
		var s uint32
		for j, w := range ws {
			s += w * a[j]
		}
		dst[o] = s
	}
}

// shrinkPlanar averages each k×k block of box (in p's luma coordinates)
// into one pixel.
func shrinkPlanar(p *planar, box image.Rectangle, k int) *rgbImage {
	m := box.Dx() / k
	out := &rgbImage{pix: make([]byte, 3*m*m), w: m, h: m}
	if k == 1 {
		convertPlanar(p, box, out)
		return out
	}
	kk := uint32(k * k)
	half := kk / 2
	ly := newBoxPlane(p.y, p.yStride,
		newAxisMap(box.Min.X-p.rect.Min.X, m, k, 1, 0),
		newAxisMap(box.Min.Y-p.rect.Min.Y, m, k, 1, 0))
	sy := make([]uint32, m)
	var cb, cr, bk *boxPlane
	var scb, scr, sk []uint32
	if p.k != nil {
		bk = newBoxPlane(p.k, p.yStride, ly.xs, ly.ys)
		sk = make([]uint32, m)
	}
	if p.cb != nil {
		xs := newAxisMap(box.Min.X, m, k, p.fx, p.rect.Min.X)
		ys := newAxisMap(box.Min.Y, m, k, p.fy, p.rect.Min.Y)
		cb = newBoxPlane(p.cb, p.cStride, xs, ys)
		cr = newBoxPlane(p.cr, p.cStride, xs, ys)
		scb, scr = make([]uint32, m), make([]uint32, m)
	}
	for oy := 0; oy < m; oy++ {
		ly.row(oy, sy)
		dst := out.pix[3*m*oy : 3*m*(oy+1)]
		if cb == nil {
			for ox, s := range sy {
				v := byte((s + half) / kk)
				dst[3*ox], dst[3*ox+1], dst[3*ox+2] = v, v, v
			}
			continue
		}
		cb.row(oy, scb)
		cr.row(oy, scr)
		if bk != nil {
			bk.row(oy, sk)
			for ox, s := range sy {
				r, g, b := p.rgb4(byte((s+half)/kk), byte((scb[ox]+half)/kk), byte((scr[ox]+half)/kk), byte((sk[ox]+half)/kk))
				dst[3*ox], dst[3*ox+1], dst[3*ox+2] = r, g, b
			}
			continue
		}
		for ox, s := range sy {
			r, g, b := p.cc.rgb(byte((s+half)/kk), byte((scb[ox]+half)/kk), byte((scr[ox]+half)/kk))
			dst[3*ox], dst[3*ox+1], dst[3*ox+2] = r, g, b
		}
	}
	return out
}

// convertPlanar converts box of p to RGB without shrinking.
func convertPlanar(p *planar, box image.Rectangle, out *rgbImage) {
	m := box.Dx()
	for oy := 0; oy < m; oy++ {
		y := box.Min.Y + oy
		ys := p.y[(y-p.rect.Min.Y)*p.yStride+box.Min.X-p.rect.Min.X:]
		ys = ys[:m]
		dst := out.pix[3*m*oy : 3*m*(oy+1)]
		if p.cb == nil {
			for ox, v := range ys {
				dst[3*ox], dst[3*ox+1], dst[3*ox+2] = v, v, v
			}
			continue
		}
		crow := (y/p.fy - p.rect.Min.Y/p.fy) * p.cStride
		cx0 := p.rect.Min.X / p.fx
		if p.k != nil {
			ks := p.k[(y-p.rect.Min.Y)*p.yStride+box.Min.X-p.rect.Min.X:]
			for ox, v := range ys {
				ci := crow + (box.Min.X+ox)/p.fx - cx0
				dst[3*ox], dst[3*ox+1], dst[3*ox+2] = p.rgb4(v, p.cb[ci], p.cr[ci], ks[ox])
			}
			continue
		}
		for ox, v := range ys {
			ci := crow + (box.Min.X+ox)/p.fx - cx0
			dst[3*ox], dst[3*ox+1], dst[3*ox+2] = p.cc.rgb(v, p.cb[ci], p.cr[ci])
		}
	}
}

// shrinkImage averages each k×k block of box into one pixel, flattening
// any transparency onto white first. Pixels of box outside img's bounds
// count as transparent. cc is how the samples of an *image.NYCbCrA map
// to RGB.
func shrinkImage(img image.Image, box image.Rectangle, k int, cc ycc) *rgbImage {
	s := newBoxShrink(box.Dx(), k)
	row := make([]byte, 3*s.m*k)
	fill := newRowFiller(img)
	fill.cc = cc
	for y := box.Min.Y; y < box.Min.Y+s.m*k; y++ {
		fill.row(row, box.Min.X, y)
		s.add(row)
	}
	return s.out
}

// boxShrink averages each k×k block of RGB rows, given to it one at a
// time from the top, into one pixel of an m×m picture.
type boxShrink struct {
	out  *rgbImage
	m, k int
	rows int      // rows added so far
	acc  []uint32 // the sums of the current k rows, per channel
}

// newBoxShrink makes the shrink of a square of side pixels by k; the
// pixels past the last whole multiple of k are left out.
func newBoxShrink(side, k int) *boxShrink {
	m := side / k
	return &boxShrink{
		out: &rgbImage{pix: make([]byte, 3*m*m), w: m, h: m},
		m:   m, k: k,
		acc: make([]uint32, 3*m*k),
	}
}

// add adds the next row, m×k pixels of RGB; every kth row completes a
// row of the output.
func (s *boxShrink) add(row []byte) {
	acc := s.acc
	for i, v := range row[:len(acc)] {
		acc[i] += uint32(v)
	}
	s.rows++
	if s.rows%s.k != 0 {
		return
	}
	k, m := s.k, s.m
	kk := uint32(k * k)
	half := kk / 2
	oy := s.rows/k - 1
	dst := s.out.pix[3*m*oy : 3*m*(oy+1)]
	for ox := 0; ox < m; ox++ {
		var r, g, b uint32
		a := acc[3*ox*k : 3*(ox+1)*k]
		for t := 0; t+2 < len(a); t += 3 {
			r += a[t]
			g += a[t+1]
			b += a[t+2]
		}
		dst[3*ox] = byte((r + half) / kk)
		dst[3*ox+1] = byte((g + half) / kk)
		dst[3*ox+2] = byte((b + half) / kk)
	}
	clear(acc)
}

// rowFiller converts rows of a picture to opaque RGB on white.
type rowFiller struct {
	img     image.Image
	bounds  image.Rectangle
	palette *[256][3]byte // flattened palette of an *image.Paletted
	cc      ycc           // colour conversion of an *image.NYCbCrA
}

func newRowFiller(img image.Image) *rowFiller {
	f := &rowFiller{img: img, bounds: img.Bounds()}
	if p, ok := img.(*image.Paletted); ok {
		var pal [256][3]byte // entries past the palette are black
		for i, c := range p.Palette {
			if i >= len(pal) {
				break
			}
			if c == nil {
				continue
			}
			r, g, b, a := c.RGBA()
			pal[i] = [3]byte{flatten16(r, a), flatten16(g, a), flatten16(b, a)}
		}
		f.palette = &pal
	}
	return f
}

// flatten16 puts a premultiplied 16-bit channel on white and returns
// 8 bits.
func flatten16(c, a uint32) byte {
	v := c + 0xffff - a
	if v > 0xffff {
		v = 0xffff
	}
	return byte(v >> 8)
}

// flattenN puts a non-premultiplied 8-bit channel on white.
func flattenN(c, a byte) byte {
	return byte((uint32(c)*uint32(a) + 255*(255-uint32(a)) + 127) / 255)
}

// row fills dst with len(dst)/3 pixels of row y starting at column x0.
func (f *rowFiller) row(dst []byte, x0, y int) {
	n := len(dst) / 3
	// White outside the picture.
	lo, hi := 0, 0
	if y >= f.bounds.Min.Y && y < f.bounds.Max.Y {
		lo = min(max(f.bounds.Min.X-x0, 0), n)
		hi = max(min(f.bounds.Max.X-x0, n), lo)
	}
	for i := range dst[:3*lo] {
		dst[i] = 255
	}
	for i := range dst[3*hi:] {
		dst[3*hi+i] = 255
	}
	if lo < hi {
		f.inside(dst[3*lo:3*hi], x0+lo, y)
	}
}

// inside fills dst from pixels that are all inside the picture.
func (f *rowFiller) inside(dst []byte, x0, y int) {
	n := len(dst) / 3
	switch m := f.img.(type) {
	case *image.RGBA:
		s := m.Pix[m.PixOffset(x0, y):]
		s = s[:4*n]
		for i := 0; i < n; i++ {
			p, d := s[4*i:4*i+4:4*i+4], dst[3*i:3*i+3:3*i+3]
			if p[3] == 255 {
				d[0], d[1], d[2] = p[0], p[1], p[2]
				continue
			}
			// Premultiplied: colour + (1-alpha)·white.
			a := uint32(255 - p[3])
			d[0] = byte(min(uint32(p[0])+a, 255))
			d[1] = byte(min(uint32(p[1])+a, 255))
			d[2] = byte(min(uint32(p[2])+a, 255))
		}
	case *image.NRGBA:
		s := m.Pix[m.PixOffset(x0, y):]
		s = s[:4*n]
		for i := 0; i < n; i++ {
			p, d := s[4*i:4*i+4:4*i+4], dst[3*i:3*i+3:3*i+3]
			switch a := p[3]; a {
			case 255:
				d[0], d[1], d[2] = p[0], p[1], p[2]
			case 0:
				d[0], d[1], d[2] = 255, 255, 255
			default:
				d[0], d[1], d[2] = flattenN(p[0], a), flattenN(p[1], a), flattenN(p[2], a)
			}
		}
	case *image.Paletted:
		s := m.Pix[m.PixOffset(x0, y):]
		s = s[:n]
		for i, v := range s {
			c := &f.palette[v]
			dst[3*i], dst[3*i+1], dst[3*i+2] = c[0], c[1], c[2]
		}
	case *image.Gray:
		s := m.Pix[m.PixOffset(x0, y):]
		s = s[:n]
		for i, v := range s {
			dst[3*i], dst[3*i+1], dst[3*i+2] = v, v, v
		}
	case *image.CMYK:
		s := m.Pix[m.PixOffset(x0, y):]
		s = s[:4*n]
		for i := 0; i < n; i++ {
			dst[3*i], dst[3*i+1], dst[3*i+2] = color.CMYKToRGB(s[4*i], s[4*i+1], s[4*i+2], s[4*i+3])
		}
	case *image.YCbCr:
		for i := 0; i < n; i++ {
			x := x0 + i
			yi, ci := m.YOffset(x, y), m.COffset(x, y)
			dst[3*i], dst[3*i+1], dst[3*i+2] = f.cc.rgb(m.Y[yi], m.Cb[ci], m.Cr[ci])
		}
	case *image.NYCbCrA:
		for i := 0; i < n; i++ {
			x := x0 + i
			yi, ci, ai := m.YOffset(x, y), m.COffset(x, y), m.AOffset(x, y)
			r, g, b := f.cc.rgb(m.Y[yi], m.Cb[ci], m.Cr[ci])
			a := m.A[ai]
			dst[3*i], dst[3*i+1], dst[3*i+2] = flattenN(r, a), flattenN(g, a), flattenN(b, a)
		}
	case image.RGBA64Image:
		for i := 0; i < n; i++ {
			c := m.RGBA64At(x0+i, y)
			a := uint32(c.A)
			dst[3*i] = flatten16(uint32(c.R), a)
			dst[3*i+1] = flatten16(uint32(c.G), a)
			dst[3*i+2] = flatten16(uint32(c.B), a)
		}
	default:
		for i := 0; i < n; i++ {
			r, g, b, a := m.At(x0+i, y).RGBA()
			dst[3*i], dst[3*i+1], dst[3*i+2] = flatten16(r, a), flatten16(g, a), flatten16(b, a)
		}
	}
}
