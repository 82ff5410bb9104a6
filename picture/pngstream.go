package picture

import (
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"io"
)

// This file decodes non-interlaced PNGs row by row straight into the box
// shrink, so that the full-resolution picture never exists in memory: a
// 7700×7700 16-bit RGBA PNG needs two rows (123 KB) and the shrink's
// accumulators instead of image/png's 474 MB. The colours it makes are
// exactly those of image/png followed by shrinkImage (alpha flattened
// onto white the same way, at the same precision).
//
// It is strict: anything it does not expect (an interlaced picture, a
// chunk out of order, a bad checksum, too little or too much pixel data)
// makes it give up, and the caller leaves the verdict to image/png.

var errPNGFallback = errors.New("png: not handled by the streaming decoder")

// pngInfo is what the streaming decoder needs from the chunks before
// the pixel data.
type pngInfo struct {
	width, height int
	depth, ctype  byte
	interlaced    bool
	rowBytes      int // bytes of one row of samples, without the filter byte
	bpp           int // bytes per complete pixel for filtering (at least 1)
	trns          []byte
	plte          []byte
	idat          int // offset of the first IDAT chunk
}

// parsePNGInfo reads the chunks of a PNG up to its first IDAT.
func parsePNGInfo(b []byte) (*pngInfo, error) {
	if len(b) < 8+25 || string(b[:8]) != "\x89PNG\r\n\x1a\n" || string(b[12:16]) != "IHDR" || binary.BigEndian.Uint32(b[8:]) != 13 {
		return nil, errPNGFallback
	}
	h := b[16:29]
	p := &pngInfo{
		width:      int(binary.BigEndian.Uint32(h[0:])),
		height:     int(binary.BigEndian.Uint32(h[4:])),
		depth:      h[8],
		ctype:      h[9],
		interlaced: h[12] != 0,
	}
	if h[10] != 0 || h[11] != 0 || h[12] > 1 || p.width <= 0 || p.height <= 0 || p.width > 1<<24 || p.height > 1<<24 {
		return nil, errPNGFallback
	}
	var channels int
	switch p.ctype {
	case 0:
		channels = 1
		if p.depth != 1 && p.depth != 2 && p.depth != 4 && p.depth != 8 && p.depth != 16 {
			return nil, errPNGFallback
		}
	case 3:
		channels = 1
		if p.depth != 1 && p.depth != 2 && p.depth != 4 && p.depth != 8 {
			return nil, errPNGFallback
		}
	case 2, 4, 6:
		channels = 3 // truecolour
		switch p.ctype {
		case 4: // grey and alpha
			channels = 2
		case 6: // truecolour and alpha
			channels = 4
		}
		if p.depth != 8 && p.depth != 16 {
			return nil, errPNGFallback
		}
	default:
		return nil, errPNGFallback
	}
	bits := channels * int(p.depth)
	p.rowBytes = (bits*p.width + 7) / 8
	p.bpp = max((bits+7)/8, 1)
	// Walk the chunks to the first IDAT, checking each checksum.
	for i := 8; ; {
		id, data, next, err := pngChunk(b, i)
		if err != nil {
			return nil, err
		}
		switch id {
		case "IHDR":
			if i != 8 {
				return nil, errPNGFallback
			}
		case "PLTE":
			if p.plte != nil || p.trns != nil || len(data)%3 != 0 || len(data) == 0 || len(data) > 768 {
				return nil, errPNGFallback
			}
			p.plte = data
		case "tRNS":
			if p.trns != nil {
				return nil, errPNGFallback
			}
			switch {
			case p.ctype == 0 && len(data) == 2, p.ctype == 2 && len(data) == 6:
			case p.ctype == 3 && p.plte != nil && len(data) <= len(p.plte)/3:
			default:
				return nil, errPNGFallback
			}
			p.trns = data
		case "IDAT":
			if p.ctype == 3 && (p.plte == nil || len(p.plte)/3 > 1<<p.depth) {
				return nil, errPNGFallback
			}
			p.idat = i
			return p, nil
		case "IEND":
			return nil, errPNGFallback
		default:
			if id[0]&0x20 == 0 { // an unknown critical chunk
				return nil, errPNGFallback
			}
		}
		i = next
	}
}

// pngChunk reads the chunk at offset i and checks its CRC.
func pngChunk(b []byte, i int) (id string, data []byte, next int, err error) {
	if i+12 > len(b) {
		return "", nil, 0, errPNGFallback
	}
	n := uint64(binary.BigEndian.Uint32(b[i:]))
	if n > uint64(len(b)-i-12) {
		return "", nil, 0, errPNGFallback
	}
	end := i + 8 + int(n)
	if crc32.ChecksumIEEE(b[i+4:end]) != binary.BigEndian.Uint32(b[end:]) {
		return "", nil, 0, errPNGFallback
	}
	return string(b[i+4 : i+8]), b[i+8 : end], end + 4, nil
}

// idatReader presents consecutive IDAT chunks as one stream.
type idatReader struct {
	b    []byte
	pos  int    // offset of the next chunk
	cur  []byte // rest of the current chunk's data
	done bool   // the chunk at pos is not an IDAT
}

func (r *idatReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.done {
			return 0, io.EOF
		}
		id, data, next, err := pngChunk(r.b, r.pos)
		if err != nil {
			return 0, err
		}
		if id != "IDAT" {
			r.done = true
			return 0, io.EOF
		}
		r.cur, r.pos = data, next
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// pngEstimate is the memory that decodePNGShrink holds for a box of
// side w (in source pixels).
func pngEstimate(p *pngInfo, w int) int64 {
	return int64(2*(p.rowBytes+1)) + 15*int64(w) + 64<<10
}

// decodePNGShrink decodes a non-interlaced PNG and averages each k×k
// block of box (inside the picture) into one pixel.
func decodePNGShrink(b []byte, p *pngInfo, box image.Rectangle, k int) (*rgbImage, error) {
	if p.interlaced || !box.In(image.Rect(0, 0, p.width, p.height)) {
		return nil, errPNGFallback
	}
	r := &idatReader{b: b, pos: p.idat}
	zr, err := zlib.NewReader(r)
	if err != nil {
		return nil, errPNGFallback
	}
	conv := newPNGConverter(p)
	s := newBoxShrink(box.Dx(), k)
	w := s.m * k
	rgb := make([]byte, 3*w)
	cr := make([]byte, 1+p.rowBytes)
	pr := make([]byte, 1+p.rowBytes)
	for y := 0; y < p.height; y++ {
		if _, err := io.ReadFull(zr, cr); err != nil {
			return nil, errPNGFallback
		}
		if !unfilter(cr[0], cr[1:], pr[1:], p.bpp) {
			return nil, errPNGFallback
		}
		if y >= box.Min.Y && y < box.Min.Y+w {
			conv.row(rgb, cr[1:], box.Min.X)
			s.add(rgb)
		}
		cr, pr = pr, cr
	}
	// No pixel data may follow, and the zlib checksum must hold.
	if n, err := io.ReadFull(zr, cr[:1]); n != 0 || (err != io.EOF && err != io.ErrUnexpectedEOF) {
		return nil, errPNGFallback
	}
	if err := zr.Close(); err != nil {
		return nil, errPNGFallback
	}
	// The chunks after the pixel data, to IEND: any IDATs the stream did
	// not need, then ancillary chunks.
	other := false
	for i := r.pos; ; {
		id, _, next, err := pngChunk(b, i)
		if err != nil {
			return nil, err
		}
		switch id {
		case "IEND":
			return s.out, nil
		case "IDAT":
			if other {
				return nil, errPNGFallback
			}
		case "IHDR", "PLTE":
			return nil, errPNGFallback
		default:
			other = true
		}
		i = next
	}
}

// unfilter reverses the filter of one row in place, given the previous
// (unfiltered) row. It reports false for an unknown filter type.
func unfilter(ft byte, cur, prev []byte, bpp int) bool {
	switch ft {
	case 0:
	case 1: // Sub
		for i := bpp; i < len(cur); i++ {
			cur[i] += cur[i-bpp]
		}
	case 2: // Up
		for i, p := range prev {
			cur[i] += p
		}
	case 3: // Average
		for i := 0; i < bpp && i < len(cur); i++ {
			cur[i] += prev[i] / 2
		}
		for i := bpp; i < len(cur); i++ {
			cur[i] += byte((int(cur[i-bpp]) + int(prev[i])) / 2)
		}
	case 4: // Paeth
		for i := 0; i < bpp && i < len(cur); i++ {
			cur[i] += prev[i]
		}
		for i := bpp; i < len(cur); i++ {
			a, b, c := int(cur[i-bpp]), int(prev[i]), int(prev[i-bpp])
			pa, pb, pc := b-c, a-c, a+b-2*c
			if pa < 0 {
				pa = -pa
			}
			if pb < 0 {
				pb = -pb
			}
			if pc < 0 {
				pc = -pc
			}
			switch {
			case pa <= pb && pa <= pc:
				cur[i] += byte(a)
			case pb <= pc:
				cur[i] += byte(b)
			default:
				cur[i] += byte(c)
			}
		}
	default:
		return false
	}
	return true
}

// pngConverter turns rows of samples into RGB flattened onto white, as
// image/png's picture types go through shrinkImage's rowFiller.
type pngConverter struct {
	p   *pngInfo
	pal [256][3]byte // palette, flattened
	// Transparent sample values: for grey and truecolour of up to 8 bits
	// the 8-bit values image/png compares with, for 16 bits the 16-bit.
	trns   bool
	t8     [3]byte
	t16    [3]uint16
	scaleG byte // grey of fewer than 8 bits: sample × scaleG
}

func newPNGConverter(p *pngInfo) *pngConverter {
	c := &pngConverter{p: p, trns: p.trns != nil}
	switch p.depth {
	case 1:
		c.scaleG = 0xff
	case 2:
		c.scaleG = 0x55
	case 4:
		c.scaleG = 0x11
	default:
		c.scaleG = 1
	}
	if c.trns && p.ctype != 3 {
		for i := 0; i < len(p.trns)/2; i++ {
			c.t16[i] = binary.BigEndian.Uint16(p.trns[2*i:])
			// image/png keeps the low byte, scaled with 8-bit wrap-around.
			c.t8[i] = p.trns[2*i+1]
			if p.ctype == 0 {
				c.t8[i] *= c.scaleG
			}
		}
	}
	if p.ctype == 3 {
		// image/png: palette entries past PLTE are opaque black; tRNS
		// makes the first entries non-premultiplied with its alphas.
		var pal color.Palette
		for i := 0; i < 256; i++ {
			var e color.Color = color.RGBA{0, 0, 0, 0xff}
			if 3*i+2 < len(p.plte) {
				e = color.RGBA{p.plte[3*i], p.plte[3*i+1], p.plte[3*i+2], 0xff}
			}
			if i < len(p.trns) {
				rgba := e.(color.RGBA)
				e = color.NRGBA{rgba.R, rgba.G, rgba.B, p.trns[i]}
			}
			pal = append(pal, e)
		}
		for i, e := range pal {
			r, g, b, a := e.RGBA()
			c.pal[i] = [3]byte{flatten16(r, a), flatten16(g, a), flatten16(b, a)}
		}
	}
	return c
}

// row fills dst (3 bytes a pixel) from the samples of one row, starting
// at column x0.
func (c *pngConverter) row(dst, s []byte, x0 int) {
	n := len(dst) / 3
	p := c.p
	switch {
	case p.ctype == 0 && p.depth < 8, p.ctype == 3 && p.depth < 8:
		d := int(p.depth)
		mask := byte(1<<d - 1)
		for i := 0; i < n; i++ {
			bit := (x0 + i) * d
			v := (s[bit/8] >> (8 - d - bit%8)) & mask
			o := dst[3*i : 3*i+3 : 3*i+3]
			if p.ctype == 3 {
				e := &c.pal[v]
				o[0], o[1], o[2] = e[0], e[1], e[2]
				continue
			}
			g := v * c.scaleG
			if c.trns && g == c.t8[0] {
				g = 255
			}
			o[0], o[1], o[2] = g, g, g
		}
	case p.ctype == 3:
		for i, v := range s[x0 : x0+n] {
			e := &c.pal[v]
			dst[3*i], dst[3*i+1], dst[3*i+2] = e[0], e[1], e[2]
		}
	case p.ctype == 0 && p.depth == 8:
		for i, g := range s[x0 : x0+n] {
			if c.trns && g == c.t8[0] {
				g = 255
			}
			dst[3*i], dst[3*i+1], dst[3*i+2] = g, g, g
		}
	case p.ctype == 0:
		for i := 0; i < n; i++ {
			v := binary.BigEndian.Uint16(s[2*(x0+i):])
			g := byte(v >> 8)
			if c.trns && v == c.t16[0] {
				g = 255
			}
			dst[3*i], dst[3*i+1], dst[3*i+2] = g, g, g
		}
	case p.ctype == 2 && p.depth == 8:
		src := s[3*x0 : 3*(x0+n)]
		copy(dst, src)
		if c.trns {
			for i := 0; i < n; i++ {
				o := dst[3*i : 3*i+3 : 3*i+3]
				if o[0] == c.t8[0] && o[1] == c.t8[1] && o[2] == c.t8[2] {
					o[0], o[1], o[2] = 255, 255, 255
				}
			}
		}
	case p.ctype == 2:
		for i := 0; i < n; i++ {
			q := s[6*(x0+i) : 6*(x0+i)+6 : 6*(x0+i)+6]
			r, g, b := binary.BigEndian.Uint16(q), binary.BigEndian.Uint16(q[2:]), binary.BigEndian.Uint16(q[4:])
			o := dst[3*i : 3*i+3 : 3*i+3]
			if c.trns && r == c.t16[0] && g == c.t16[1] && b == c.t16[2] {
				o[0], o[1], o[2] = 255, 255, 255
				continue
			}
			o[0], o[1], o[2] = byte(r>>8), byte(g>>8), byte(b>>8)
		}
	case p.ctype == 4 && p.depth == 8:
		for i := 0; i < n; i++ {
			g, a := s[2*(x0+i)], s[2*(x0+i)+1]
			v := flatAlpha8(g, a)
			dst[3*i], dst[3*i+1], dst[3*i+2] = v, v, v
		}
	case p.ctype == 4:
		for i := 0; i < n; i++ {
			q := s[4*(x0+i):]
			g, a := uint32(binary.BigEndian.Uint16(q)), uint32(binary.BigEndian.Uint16(q[2:]))
			v := flatten16(g*a/0xffff, a)
			dst[3*i], dst[3*i+1], dst[3*i+2] = v, v, v
		}
	case p.ctype == 6 && p.depth == 8:
		for i := 0; i < n; i++ {
			q := s[4*(x0+i) : 4*(x0+i)+4 : 4*(x0+i)+4]
			a := q[3]
			dst[3*i], dst[3*i+1], dst[3*i+2] = flatAlpha8(q[0], a), flatAlpha8(q[1], a), flatAlpha8(q[2], a)
		}
	default: // 16-bit RGBA
		for i := 0; i < n; i++ {
			q := s[8*(x0+i):]
			a := uint32(binary.BigEndian.Uint16(q[6:]))
			for ch := 0; ch < 3; ch++ {
				v := uint32(binary.BigEndian.Uint16(q[2*ch:]))
				dst[3*i+ch] = flatten16(v*a/0xffff, a)
			}
		}
	}
}

// flatAlpha8 is rowFiller's flattening of a non-premultiplied 8-bit
// sample.
func flatAlpha8(c, a byte) byte {
	switch a {
	case 255:
		return c
	case 0:
		return 255
	}
	return flattenN(c, a)
}

// String describes the PNG for errors and tests.
func (p *pngInfo) String() string {
	return fmt.Sprintf("%dx%d type %d depth %d interlaced %v", p.width, p.height, p.ctype, p.depth, p.interlaced)
}
