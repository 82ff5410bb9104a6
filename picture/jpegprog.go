package picture

import (
	"encoding/binary"
	"errors"
	"image"
	"math/bits"
)

// Progressive JPEGs send their coefficients in several scans (the DC of
// every block first, then bands of AC coefficients, then refinements of
// their lower bits), so no block is complete before the last scan. The
// scaled decoder keeps every block's 64 coefficients as int16 until the
// end (2 bytes per coefficient, against image/jpeg's 4 plus the full-size
// picture), then runs the same box-averaged inverse DCT as for baseline
// JPEGs on the blocks that cover the centred square only.

// maxBandPerComponent bounds the sum, over the scans of a component, of
// the coefficients each scan codes (se-ss+1). An encoder sends each
// coefficient once and then at most 13 refinement bits, 14×64 = 896 in
// all; libjpeg's default script adds up to 191. Refinement scans cost
// work per coefficient even where they cost no bits, so without a bound a
// small file of repeated scans could keep a CPU busy for minutes.
const maxBandPerComponent = 1024

// errJPEGScans is a progressive JPEG with more scans than any encoder
// writes. It is refused outright: image/jpeg would spend the same time.
var errJPEGScans = errors.New("jpeg: too many progressive scans")

// progComp is the coefficient store of one component. Only the blocks
// that cover the centred square keep their coefficients; of the others
// only which coefficients are non-zero is kept (refinement scans code
// their bits differently for zero and non-zero coefficients).
type progComp struct {
	bw, bh   int      // blocks per row and rows of blocks, padded to whole MCUs
	cw, ch   int      // blocks that the component itself covers
	ix0, iy0 int      // first kept block
	iw, ih   int      // kept blocks per row, rows of kept blocks
	coef     []int16  // 64 per kept block, in zig-zag order
	nonzero  []uint64 // per block outside the kept ones: bit k for coefficient k
	band     int      // coefficients coded so far by its scans (se-ss+1 each)
}

// kept returns the coefficients of block (bx, by), or nil when it is not
// kept.
func (p *progComp) kept(bx, by int) *[64]int16 {
	x, y := bx-p.ix0, by-p.iy0
	if uint(x) >= uint(p.iw) || uint(y) >= uint(p.ih) {
		return nil
	}
	i := 64 * (y*p.iw + x)
	return (*[64]int16)(p.coef[i : i+64])
}

// decodeProgressive decodes a progressive JPEG whose header parse stopped
// at the first SOS marker (pos), making n pixels of each 8.
func (f *jpegFrame) decodeProgressive(data []byte, pos int, n int) (*planar, image.Rectangle, error) {
	hmax, vmax := f.comps[0].h, f.comps[0].v
	mcusX := (f.width + 8*hmax - 1) / (8 * hmax)
	mcusY := (f.height + 8*vmax - 1) / (8 * vmax)
	_, _, _, mx0, my0, mx1, my1 := f.keptMCUs(n)
	pc := make([]progComp, len(f.comps))
	for i := range f.comps {
		c := &f.comps[i]
		p := &pc[i]
		p.bw, p.bh = mcusX*c.h, mcusY*c.v
		p.cw = ((f.width*c.h+hmax-1)/hmax + 7) / 8
		p.ch = ((f.height*c.v+vmax-1)/vmax + 7) / 8
		p.ix0, p.iy0 = mx0*c.h, my0*c.v
		p.iw, p.ih = (mx1-mx0)*c.h, (my1-my0)*c.v
		p.coef = make([]int16, 64*p.iw*p.ih)
		p.nonzero = make([]uint64, p.bw*p.bh)
	}
	for {
		m, seg, next, ok := jpegSegment(data, pos)
		if !ok {
			return nil, image.Rectangle{}, errFallback
		}
		var err error
		switch {
		case m == 0xD9: // EOI
			return f.progressiveOutput(pc, n)
		case m == 0xDA:
			next, err = f.progressiveScan(data, seg, next, pc)
		case m == 0xC4, m == 0xDB, m == 0xDD:
			err = f.parseTable(m, seg)
		case m >= 0xE0 && m <= 0xEF, m == 0xFE:
		default:
			return nil, image.Rectangle{}, errFallback
		}
		if err != nil {
			return nil, image.Rectangle{}, err
		}
		pos = next
	}
}

// jpegSegment reads the marker at pos (after any fill bytes) and, unless
// it is EOI, its segment; next is the offset after it.
func jpegSegment(data []byte, pos int) (m byte, seg []byte, next int, ok bool) {
	for pos+1 < len(data) && data[pos] == 0xFF && data[pos+1] == 0xFF {
		pos++
	}
	if pos+2 > len(data) || data[pos] != 0xFF {
		return 0, nil, 0, false
	}
	m = data[pos+1]
	if m == 0xD9 {
		return m, nil, pos + 2, true
	}
	if pos+4 > len(data) {
		return 0, nil, 0, false
	}
	l := int(binary.BigEndian.Uint16(data[pos+2:]))
	if l < 2 || pos+2+l > len(data) {
		return 0, nil, 0, false
	}
	return m, data[pos+4 : pos+2+l], pos + 2 + l, true
}

// progressiveScan decodes one scan whose header is seg and whose
// entropy-coded data starts at pos; it returns the offset of the marker
// that ends it.
func (f *jpegFrame) progressiveScan(data, seg []byte, pos int, pc []progComp) (int, error) {
	if len(seg) < 1 {
		return 0, errFallback
	}
	ns := int(seg[0])
	if ns < 1 || ns > len(f.comps) || len(seg) != 4+2*ns {
		return 0, errFallback
	}
	ss, se := int(seg[1+2*ns]), int(seg[2+2*ns])
	ah, al := uint(seg[3+2*ns]>>4), uint(seg[3+2*ns]&15)
	if ss > se || se > 63 || (ss == 0) != (se == 0) || (ss > 0 && ns != 1) || ah > 13 || al > 13 {
		return 0, errFallback
	}
	scan := make([]int, ns)
	for i := 0; i < ns; i++ {
		id, tables := seg[1+2*i], seg[2+2*i]
		ci := -1
		for j := range f.comps {
			if f.comps[j].id == id {
				ci = j
			}
		}
		for j := 0; j < i; j++ {
			if scan[j] == ci {
				ci = -1
			}
		}
		if ci < 0 {
			return 0, errFallback
		}
		scan[i] = ci
		if pc[ci].band += se - ss + 1; pc[ci].band > maxBandPerComponent {
			return 0, errJPEGScans
		}
		c := &f.comps[ci]
		td, ta := int(tables>>4), int(tables&15)
		switch {
		case ss == 0 && ah == 0:
			if td > 3 || !f.dcTables[td].defined {
				return 0, errFallback
			}
			c.dc = &f.dcTables[td]
		case ss > 0:
			if ta > 3 || !f.acTables[ta].defined {
				return 0, errFallback
			}
			c.ac = &f.acTables[ta]
		}
		c.pred = 0
	}

	s := progScan{br: bitReader{data: data, pos: pos}, ss: ss, se: se, ah: ah, al: al}
	// visit decodes block (bx, by) of component ci. A block that is not
	// kept has no coefficients, only its bit mask of the non-zero ones
	// (which every block has): the values of its coefficients do not
	// matter, only how many bits the scan spends on them. DC scans need
	// only the predictor of such a block.
	var scratch [64]int16
	visit := func(ci, bx, by int) bool {
		p := &pc[ci]
		b := p.kept(bx, by)
		switch {
		case ss == 0 && ah == 0:
			if b == nil {
				b = &scratch
			}
			return s.dcFirst(&f.comps[ci], b)
		case ss == 0:
			if b == nil {
				b = &scratch
			}
			return s.dcRefine(b)
		case ah == 0:
			return s.acFirst(&f.comps[ci], b, &p.nonzero[by*p.bw+bx])
		}
		return s.acRefine(&f.comps[ci], b, &p.nonzero[by*p.bw+bx])
	}
	mcu, rst := 0, byte(0)
	next := func() bool {
		if f.restart > 0 && mcu > 0 && mcu%f.restart == 0 {
			if !s.br.restart(rst) {
				return false
			}
			rst = (rst + 1) & 7
			s.eobrun = 0
			for _, ci := range scan {
				f.comps[ci].pred = 0
			}
		}
		mcu++
		// Well past the real data: stop early.
		return s.br.fake <= 8
	}
	if ns == 1 {
		// Not interleaved: the component's own blocks, row by row.
		ci := scan[0]
		for by := 0; by < pc[ci].ch; by++ {
			for bx := 0; bx < pc[ci].cw; bx++ {
				if !next() || !visit(ci, bx, by) {
					return 0, errFallback
				}
			}
		}
	} else {
		hmax, vmax := f.comps[0].h, f.comps[0].v
		mcusX := (f.width + 8*hmax - 1) / (8 * hmax)
		mcusY := (f.height + 8*vmax - 1) / (8 * vmax)
		for my := 0; my < mcusY; my++ {
			for mx := 0; mx < mcusX; mx++ {
				if !next() {
					return 0, errFallback
				}
				for _, ci := range scan {
					c := &f.comps[ci]
					for y := 0; y < c.v; y++ {
						for x := 0; x < c.h; x++ {
							if !visit(ci, mx*c.h+x, my*c.v+y) {
								return 0, errFallback
							}
						}
					}
				}
			}
		}
	}
	if s.br.overrun() {
		return 0, errFallback
	}
	// The scan ends at the next marker other than a restart.
	p := s.br.pos
	for ; p+1 < len(data); p++ {
		if data[p] == 0xFF && data[p+1] != 0 && data[p+1] != 0xFF && (data[p+1] < 0xD0 || data[p+1] > 0xD7) {
			return p, nil
		}
	}
	return 0, errFallback
}

// progScan is the state of one progressive scan.
type progScan struct {
	br     bitReader
	ss, se int
	ah, al uint
	eobrun int
}

// huff decodes one Huffman symbol.
func (s *progScan) huff(t *huffTable) (byte, bool) {
	br := &s.br
	if br.n < 16 {
		br.fill()
	}
	if e := t.lut[br.acc>>(64-lutBits)]; e>>8 != 0 {
		l := uint(e >> 8)
		br.acc <<= l
		br.n -= l
		return byte(e), true
	}
	sym, l := t.slow(br.acc)
	if l == 0 {
		return 0, false
	}
	br.acc <<= l
	br.n -= l
	return sym, true
}

// bits reads n (at most 16) raw bits.
func (s *progScan) bits(n uint) int32 {
	br := &s.br
	if n == 0 {
		return 0
	}
	if br.n < n {
		br.fill()
	}
	v := int32(br.acc >> (64 - n))
	br.acc <<= n
	br.n -= n
	return v
}

// extend turns n raw bits into the signed value they code.
func extend(v int32, n uint) int32 {
	if n > 0 && v < 1<<(n-1) {
		v -= 1<<n - 1
	}
	return v
}

func (s *progScan) dcFirst(c *jpegComp, b *[64]int16) bool {
	t, ok := s.huff(c.dc)
	if !ok || t > 15 {
		return false
	}
	c.pred += extend(s.bits(uint(t)), uint(t))
	b[0] = int16(c.pred << s.al)
	return true
}

func (s *progScan) dcRefine(b *[64]int16) bool {
	if s.bits(1) != 0 {
		b[0] |= 1 << s.al
	}
	return true
}

// acFirst decodes the first bits of a band of AC coefficients into b (nil
// for a block that is not kept) and marks the non-zero ones in *nz.
func (s *progScan) acFirst(c *jpegComp, b *[64]int16, nz *uint64) bool {
	if s.eobrun > 0 {
		s.eobrun--
		return true
	}
	for k := s.ss; k <= s.se; {
		rs, ok := s.huff(c.ac)
		if !ok {
			return false
		}
		r, n := int(rs>>4), uint(rs&15)
		if n == 0 {
			if r < 15 {
				// End of band for this block and eobrun more.
				s.eobrun = 1<<r - 1 + int(s.bits(uint(r)))
				return true
			}
			k += 16
			continue
		}
		k += r
		if k > 63 {
			return false
		}
		v := extend(s.bits(n), n)
		if b != nil {
			b[k] = int16(v << s.al)
		}
		if v != 0 {
			*nz |= 1 << k
		}
		k++
	}
	return true
}

// acRefine decodes one more bit of a band of AC coefficients: a
// correction bit for each coefficient that is already non-zero, and the
// coefficients that become non-zero now (±1 at this bit). b is nil for a
// block that is not kept; *nz marks the non-zero coefficients and lets
// the runs of zeros and the corrections be found a word at a time.
func (s *progScan) acRefine(c *jpegComp, b *[64]int16, nz *uint64) bool {
	p1 := int16(1) << s.al
	m1 := int16(-1) << s.al
	k := s.ss
	end := uint64(1)<<uint(s.se)<<1 - 1 // bits 0..se (all for se = 63)
	if s.eobrun == 0 {
		for k <= s.se {
			rs, ok := s.huff(c.ac)
			if !ok {
				return false
			}
			r, n := int(rs>>4), rs&15
			var z int16
			switch {
			case n == 1:
				z = m1
				if s.bits(1) != 0 {
					z = p1
				}
			case n != 0:
				return false
			case r != 15:
				s.eobrun = 1<<r + int(s.bits(uint(r)))
				goto eob
			}
			// The (r+1)th zero coefficient from k on is where z goes;
			// the non-zero ones before it are refined on the way.
			from := ^uint64(0) << uint(k) & end
			zeros := ^*nz & from
			for ; r > 0 && zeros != 0; r-- {
				zeros &= zeros - 1
			}
			if zeros == 0 {
				// Fewer zeros than the run: it refines the rest of the band.
				s.correct(b, *nz&from, p1, m1)
				break
			}
			t := bits.TrailingZeros64(zeros)
			s.correct(b, *nz&from&(uint64(1)<<uint(t)-1), p1, m1)
			if z != 0 {
				if b != nil {
					b[t] = z
				}
				*nz |= 1 << uint(t)
			}
			k = t + 1
		}
		return true
	}
eob:
	if k <= s.se {
		s.correct(b, *nz&(^uint64(0)<<uint(k))&end, p1, m1)
	}
	s.eobrun--
	return true
}

// correct reads the correction bits of the non-zero coefficients in sel,
// in order, and applies them to b unless it is nil.
func (s *progScan) correct(b *[64]int16, sel uint64, p1, m1 int16) {
	for sel != 0 {
		n := min(bits.OnesCount64(sel), 16)
		v := s.bits(uint(n))
		if b == nil {
			for i := 0; i < n; i++ {
				sel &= sel - 1
			}
			continue
		}
		for i := n - 1; i >= 0; i-- {
			k := bits.TrailingZeros64(sel)
			sel &= sel - 1
			if v>>uint(i)&1 != 0 && b[k]&p1 == 0 {
				if b[k] >= 0 {
					b[k] += p1
				} else {
					b[k] += m1
				}
			}
		}
	}
}

// progressiveOutput runs the inverse DCT on the blocks that cover the
// centred square.
func (f *jpegFrame) progressiveOutput(pc []progComp, n int) (*planar, image.Rectangle, error) {
	for i := range f.comps {
		c := &f.comps[i]
		if !f.qtDefined[c.tq] {
			return nil, image.Rectangle{}, errFallback
		}
		c.q = &f.qt[c.tq]
	}
	p, canvas, mx0, my0, mx1, my1 := f.region(n)
	var blk [64]int32
	for ci := range f.comps {
		c := &f.comps[ci]
		for by := my0 * c.v; by < my1*c.v; by++ {
			for bx := mx0 * c.h; bx < mx1*c.h; bx++ {
				coef := pc[ci].kept(bx, by)
				px := (bx - mx0*c.h) * n
				py := (by - my0*c.v) * n
				if n == 1 {
					dc := int32(coef[0]) * c.q[0]
					c.pix[py*c.stride+px] = clamp8((int(dc)+4)>>3 + 128)
					continue
				}
				// Only the non-zero coefficients (and DC), by the block's mask.
				var rows uint8
				for m := pc[ci].nonzero[by*pc[ci].bw+bx] | 1; m != 0; m &= m - 1 {
					k := bits.TrailingZeros64(m)
					if v := coef[k]; v != 0 {
						z := zigzag[k]
						blk[z] = int32(v) * c.q[k]
						rows |= 1 << (z >> 3)
					}
				}
				idctN(&blk, rows|1, n, c.pix[py*c.stride+px:], c.stride)
			}
		}
	}
	return p, canvas, nil
}
