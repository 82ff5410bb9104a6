package picture

import (
	"encoding/binary"
	"errors"
	"image"
)

// This file is a small decoder for baseline (sequential, Huffman, 8-bit)
// JPEGs with one or three interleaved components, which is what cameras
// and phones write. It differs from image/jpeg in two ways that matter
// for making avatars out of large photos:
//
//   - it scales by 1/2, 1/4 or 1/8 in the DCT domain: each 8×8 block
//     becomes 4×4, 2×2 or 1×1 pixels that are the exact averages of the
//     full-size pixels (up to rounding), so the inverse transform is
//     cheap or (at 1/8) skipped;
//   - it keeps only the blocks that cover the centred square, so memory
//     is bounded by the scaled square, not the whole picture.
//
// Progressive JPEGs (jpegprog.go) are decoded the same way once all their
// scans are in, and so are CMYK and YCCK ones (with an Adobe segment, the
// black sampled like the first component). Anything else (arithmetic
// coding, 12-bit, RGB,
// non-interleaved baseline scans, unusual sampling) and any error makes it give up
// with an error; the caller then falls back to image/jpeg, which gives
// the final verdict on the file.

var errFallback = errors.New("jpeg: not handled by the scaled decoder")

// zigzag maps the zig-zag position of a coefficient to its natural
// (row-major) position.
var zigzag = [64]uint8{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}

// Box-averaged inverse DCT matrices: idctN[i][u] is the mean, over the
// i-th of N equal parts of a block row, of C(u)/2·cos((2x+1)uπ/16), in
// units of 2^-15 (rows past N are zero). A block's N×N output is M·F·Mᵀ.
var (
	idct2 = [8][8]int32{
		{11585, 10498, 0, -3686, 0, 2463, 0, -2088},
		{11585, -10498, 0, 3686, 0, -2463, 0, 2088},
	}
	idct4 = [8][8]int32{
		{11585, 14846, 10703, 5213, 0, -3483, -4433, -2953},
		{11585, 6149, -10703, -12586, 0, 8410, 4433, -1223},
		{11585, -6149, -10703, 12586, 0, -8410, 4433, 1223},
		{11585, -14846, 10703, -5213, 0, 3483, -4433, 2953},
	}
	idct8 = [8][8]int32{
		{11585, 16069, 15137, 13623, 11585, 9102, 6270, 3196},
		{11585, 13623, 6270, -3196, -11585, -16069, -15137, -9102},
		{11585, 9102, -6270, -16069, -11585, 3196, 15137, 13623},
		{11585, 3196, -15137, -9102, 11585, 13623, -6270, -16069},
		{11585, -3196, -15137, 9102, 11585, -13623, -6270, 16069},
		{11585, -9102, -6270, 16069, -11585, -3196, 15137, -13623},
		{11585, -13623, 6270, 3196, -11585, 16069, -15137, 9102},
		{11585, -16069, 15137, -13623, 11585, -9102, 6270, -3196},
	}
)

const lutBits = 9

// huffTable is a Huffman decoding table.
type huffTable struct {
	defined bool
	// lut maps the next lutBits bits to length<<8|symbol for codes of at
	// most lutBits bits; 0 means a longer code.
	lut [1 << lutBits]uint16
	// fastAC maps the next lutBits bits to value<<16|run<<8|length when
	// an AC code and its extra bits both fit in them; 0 otherwise.
	fastAC  [1 << lutBits]int32
	mincode [17]int32 // first code of each length
	maxcode [17]int32 // last code of each length, -1 if none
	valoff  [17]int32 // symbol index = code + valoff
	vals    [256]byte
}

// build fills t from the 16 counts and the symbols of a DHT segment.
func (t *huffTable) build(counts []byte, vals []byte, ac bool) error {
	*t = huffTable{defined: true}
	copy(t.vals[:], vals)
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		cnt := int32(counts[l-1])
		t.mincode[l] = code
		t.valoff[l] = k - code
		t.maxcode[l] = -1
		if cnt > 0 {
			if code+cnt > 1<<l {
				return errFallback // over-subscribed
			}
			if l <= lutBits {
				for c := code; c < code+cnt; c++ {
					e := uint16(l)<<8 | uint16(t.vals[k+c-code])
					shift := uint(lutBits - l)
					for i := c << shift; i < (c+1)<<shift; i++ {
						t.lut[i] = e
					}
				}
			}
			t.maxcode[l] = code + cnt - 1
		}
		code += cnt
		k += cnt
		code <<= 1
	}
	if ac {
		for i := range t.lut {
			e := t.lut[i]
			l := int(e >> 8)
			rs := byte(e)
			r, s := int(rs>>4), int(rs&15)
			if l == 0 || s == 0 || l+s > lutBits {
				continue
			}
			raw := int32(i>>(lutBits-l-s)) & (1<<s - 1)
			v := raw
			if v < 1<<(s-1) {
				v -= 1<<s - 1
			}
			t.fastAC[i] = v<<16 | int32(r)<<8 | int32(l+s)
		}
	}
	return nil
}

// slow decodes a code longer than lutBits from the top of acc. It
// returns the symbol and the code length, or length 0 for an invalid code.
func (t *huffTable) slow(acc uint64) (byte, uint) {
	for l := lutBits + 1; l <= 16; l++ {
		v := int32(acc >> (64 - l))
		if v >= t.mincode[l] && v <= t.maxcode[l] {
			return t.vals[(v+t.valoff[l])&255], uint(l)
		}
	}
	return 0, 0
}

// bitReader reads the entropy-coded data of a scan, removing the 0xFF00
// byte stuffing. Past a marker or the end of data it reads zero bytes and
// counts them, so that reading beyond the real data can be detected.
type bitReader struct {
	data   []byte
	pos    int
	acc    uint64 // the next n bits, most significant first; any bits below are the true next bits or zero
	n      uint
	marker bool // pos is at a marker (0xFF, non-zero)
	fake   uint // zero bytes fed after a marker or the end of data
}

// fill makes at least 57 bits available.
func (br *bitReader) fill() {
	for br.n <= 56 {
		if !br.marker && br.pos+8 <= len(br.data) {
			w := binary.BigEndian.Uint64(br.data[br.pos:])
			if x := ^w; (x-0x0101010101010101)&^x&0x8080808080808080 == 0 {
				// No 0xFF among the next 8 bytes: take as many whole bytes
				// as fit at once.
				br.acc |= w >> br.n
				c := (64 - br.n) >> 3
				br.pos += int(c)
				br.n += c << 3
				return
			}
		}
		var b byte
		switch {
		case br.marker || br.pos >= len(br.data):
			br.fake++
		case br.data[br.pos] != 0xFF:
			b = br.data[br.pos]
			br.pos++
		case br.pos+1 < len(br.data) && br.data[br.pos+1] == 0:
			b = 0xFF
			br.pos += 2
		default:
			br.marker = true
			br.fake++
		}
		br.acc |= uint64(b) << (56 - br.n)
		br.n += 8
	}
}

// overrun reports whether bits past the real data have been used.
func (br *bitReader) overrun() bool {
	return br.n < br.fake*8
}

// restart drops the remaining bits and reads the RSTn marker that ends a
// restart interval, skipping any padding or fill bytes before it.
func (br *bitReader) restart(want byte) bool {
	if br.overrun() {
		return false
	}
	br.acc, br.n, br.fake, br.marker = 0, 0, 0, false
	for {
		if br.pos+1 >= len(br.data) {
			return false
		}
		if br.data[br.pos] == 0xFF && br.data[br.pos+1] != 0 && br.data[br.pos+1] != 0xFF {
			break
		}
		br.pos++
	}
	if br.data[br.pos+1] != 0xD0+want {
		return false
	}
	br.pos += 2
	return true
}

// jpegComp is one component of the frame.
type jpegComp struct {
	id     byte
	h, v   int // sampling factors (blocks per MCU)
	tq     int
	dc, ac *huffTable
	q      *[64]int32 // quantisation table in zig-zag order
	pred   int32      // DC predictor
	pix    []byte     // output plane
	stride int
}

// decodeDC decodes the DC difference of a block and returns the
// dequantised DC coefficient.
func (br *bitReader) decodeDC(c *jpegComp, acc uint64, n uint) (int32, uint64, uint, bool) {
	e := c.dc.lut[acc>>(64-lutBits)]
	var s uint
	if l := uint(e >> 8); l != 0 {
		s = uint(e & 0xff)
		acc <<= l
		n -= l
	} else {
		sym, l := c.dc.slow(acc)
		if l == 0 {
			return 0, acc, n, false
		}
		s = uint(sym)
		acc <<= l
		n -= l
	}
	if s > 15 {
		return 0, acc, n, false
	}
	if s > 0 {
		v := int32(acc >> (64 - s))
		if v < 1<<(s-1) {
			v -= 1<<s - 1
		}
		acc <<= s
		n -= s
		c.pred += v
	}
	return c.pred * c.q[0], acc, n, true
}

// decodeBlock decodes one block into blk (natural order, dequantised; blk
// must be zero on entry) and returns a mask of the rows that hold
// non-zero coefficients.
func (br *bitReader) decodeBlock(c *jpegComp, blk *[64]int32) (uint8, bool) {
	acc, n := br.acc, br.n
	if n < 32 {
		br.fill()
		acc, n = br.acc, br.n
	}
	dc, acc, n, ok := br.decodeDC(c, acc, n)
	if !ok {
		return 0, false
	}
	blk[0] = dc
	rows := uint8(1)
	ac, q := c.ac, c.q
	for k := 1; k < 64; {
		if n < 32 {
			br.acc, br.n = acc, n
			br.fill()
			acc, n = br.acc, br.n
		}
		if f := ac.fastAC[acc>>(64-lutBits)]; f != 0 {
			k += int(f>>8) & 0xff
			if k > 63 {
				return 0, false
			}
			l := uint(f & 0xff)
			acc <<= l
			n -= l
			z := zigzag[k&63]
			blk[z&63] = (f >> 16) * q[k&63]
			rows |= 1 << (z >> 3)
			k++
			continue
		}
		e := ac.lut[acc>>(64-lutBits)]
		var rs byte
		if l := uint(e >> 8); l != 0 {
			rs = byte(e)
			acc <<= l
			n -= l
		} else {
			sym, l := ac.slow(acc)
			if l == 0 {
				return 0, false
			}
			rs = sym
			acc <<= l
			n -= l
		}
		r, s := int(rs>>4), uint(rs&15)
		if s == 0 {
			if r != 15 {
				break // end of block
			}
			k += 16
			continue
		}
		k += r
		if k > 63 {
			return 0, false
		}
		v := int32(acc >> (64 - s))
		if v < 1<<(s-1) {
			v -= 1<<s - 1
		}
		acc <<= s
		n -= s
		z := zigzag[k&63]
		blk[z&63] = v * q[k&63]
		rows |= 1 << (z >> 3)
		k++
	}
	br.acc, br.n = acc, n
	return rows, true
}

// skipBlock decodes one block but keeps only its dequantised DC.
func (br *bitReader) skipBlock(c *jpegComp) (int32, bool) {
	acc, n := br.acc, br.n
	if n < 32 {
		br.fill()
		acc, n = br.acc, br.n
	}
	dc, acc, n, ok := br.decodeDC(c, acc, n)
	if !ok {
		return 0, false
	}
	ac := c.ac
	for k := 1; k < 64; {
		if n < 32 {
			br.acc, br.n = acc, n
			br.fill()
			acc, n = br.acc, br.n
		}
		if f := ac.fastAC[acc>>(64-lutBits)]; f != 0 {
			k += int(f>>8)&0xff + 1
			l := uint(f & 0xff)
			acc <<= l
			n -= l
			continue
		}
		e := ac.lut[acc>>(64-lutBits)]
		var rs byte
		if l := uint(e >> 8); l != 0 {
			rs = byte(e)
			acc <<= l
			n -= l
		} else {
			sym, l := ac.slow(acc)
			if l == 0 {
				return 0, false
			}
			rs = sym
			acc <<= l
			n -= l
		}
		r, s := int(rs>>4), uint(rs&15)
		if s == 0 {
			if r != 15 {
				break
			}
			k += 16
			continue
		}
		k += r + 1
		acc <<= s
		n -= s
	}
	br.acc, br.n = acc, n
	return dc, true
}

// clamp8 converts a level-shifted sample to a byte.
func clamp8(v int) byte {
	if uint(v) > 255 {
		if v < 0 {
			return 0
		}
		return 255
	}
	return byte(v)
}

// idctN writes the n×n box-averaged inverse DCT of blk (n = 2, 4 or 8),
// level-shifted and clamped, to dst, and clears blk. rows has a bit set
// for each row of blk that may hold a non-zero coefficient.
func idctN(blk *[64]int32, rows uint8, n int, dst []byte, stride int) {
	if rows == 1 && blk[1]|blk[2]|blk[3]|blk[4]|blk[5]|blk[6]|blk[7] == 0 {
		// DC only: a flat block.
		v := clamp8((int(blk[0])+4)>>3 + 128)
		for i := 0; i < n; i++ {
			row := dst[i*stride : i*stride+n]
			for j := range row {
				row[j] = v
			}
		}
		blk[0] = 0
		return
	}
	switch n {
	case 2:
		idctHalf(blk, rows, 2, &idct2, dst, stride)
		return
	case 4:
		idctHalf(blk, rows, 4, &idct4, dst, stride)
		return
	}
	m := &idct8
	var out [64]int // out[8i+j], units of 2^-23
	for u := 0; u < 8; u++ {
		if rows&(1<<u) == 0 {
			continue
		}
		f := (*[8]int32)(blk[u*8 : u*8+8])
		// Transform row u along v, keeping 8 fractional bits.
		var t [8]int
		for j := 0; j < n; j++ {
			mj := &m[j]
			s := int(f[0])*int(mj[0]) + int(f[1])*int(mj[1]) + int(f[2])*int(mj[2]) + int(f[3])*int(mj[3]) +
				int(f[4])*int(mj[4]) + int(f[5])*int(mj[5]) + int(f[6])*int(mj[6]) + int(f[7])*int(mj[7])
			t[j] = (s + 1<<6) >> 7
		}
		*f = [8]int32{}
		// Spread it down the columns.
		for i := 0; i < n; i++ {
			mi := int(m[i][u])
			o := (*[8]int)(out[i*8 : i*8+8])
			for j := 0; j < n; j++ {
				o[j] += mi * t[j]
			}
		}
	}
	for i := 0; i < n; i++ {
		row := dst[i*stride : i*stride+n]
		o := out[i*8 : i*8+8]
		for j := range row {
			row[j] = clamp8((o[j]+1<<22)>>23 + 128)
		}
	}
}

// idctHalf is idctN for n = 2 or 4, using the symmetry of their matrices:
// output n-1-j is output j with the odd frequencies negated, so each
// pair comes from one sum over the even and one over the odd
// coefficients. Frequencies whose column of m is zero (2, 4 and 6 for
// n = 2; 4 for n = 4) contribute nothing and their rows are skipped. The
// sums are the same integers as idctN's, so the output is identical.
func idctHalf(blk *[64]int32, rows uint8, n int, m *[8][8]int32, dst []byte, stride int) {
	var out [4][4]int // out[i][j], units of 2^-23
	half := n / 2
	for u := 0; u < 8; u++ {
		if rows&(1<<u) == 0 {
			continue
		}
		f := (*[8]int32)(blk[u*8 : u*8+8])
		if m[0][u] == 0 {
			*f = [8]int32{}
			continue
		}
		var t [4]int
		for j := 0; j < half; j++ {
			mj := &m[j]
			e := int(f[0])*int(mj[0]) + int(f[2])*int(mj[2]) + int(f[4])*int(mj[4]) + int(f[6])*int(mj[6])
			o := int(f[1])*int(mj[1]) + int(f[3])*int(mj[3]) + int(f[5])*int(mj[5]) + int(f[7])*int(mj[7])
			t[j] = (e + o + 1<<6) >> 7
			t[n-1-j] = (e - o + 1<<6) >> 7
		}
		*f = [8]int32{}
		for i := 0; i < n; i++ {
			mi := int(m[i][u])
			o := &out[i]
			for j := 0; j < n; j++ {
				o[j] += mi * t[j]
			}
		}
	}
	for i := 0; i < n; i++ {
		row := dst[i*stride : i*stride+n]
		o := &out[i]
		for j := range row {
			row[j] = clamp8((o[j]+1<<22)>>23 + 128)
		}
	}
}

// jpegFrame is what the scaled decoder gathers from the segments before
// the scan.
type jpegFrame struct {
	width, height int
	comps         []jpegComp
	scan          []int // frame component index of each scan component, in scan order
	qt            [4][64]int32
	qtDefined     [4]bool
	dcTables      [4]huffTable
	acTables      [4]huffTable
	restart       int
	jfif          bool
	adobe         bool
	adobeXform    byte
	progressive   bool // SOF2; parse stops at the first SOS marker
}

// decodeJPEGScaled decodes a baseline JPEG at the largest of the scales
// 1/8, 1/4, 1/2 and 1 at which the centred square keeps at least minSide
// pixels a side. It returns the planes covering that square and the whole
// picture's rectangle at that scale.
func decodeJPEGScaled(data []byte, minSide int) (*planar, image.Rectangle, error) {
	var f jpegFrame
	scanStart, err := f.parse(data)
	if err != nil {
		return nil, image.Rectangle{}, err
	}
	return f.decodeAny(data, scanStart, scaleFor(min(f.width, f.height), minSide))
}

// decodeAny decodes a baseline or progressive JPEG whose header parse
// stopped at pos.
func (f *jpegFrame) decodeAny(data []byte, pos int, n int) (*planar, image.Rectangle, error) {
	if f.progressive {
		return f.decodeProgressive(data, pos, n)
	}
	return f.decode(data, pos, n)
}

// scaleFor returns how many pixels (8, 4, 2 or 1) each 8 pixels of a
// picture whose shorter side is side become, keeping at least minSide.
func scaleFor(side, minSide int) int {
	for _, d := range [...]int{8, 4, 2} {
		if side >= minSide*d {
			return 8 / d
		}
	}
	return 8
}

// parse reads the segments up to the first scan and returns the offset
// of its entropy-coded data.
func (f *jpegFrame) parse(data []byte) (int, error) {
	i := 2
	for {
		if i+2 > len(data) || data[i] != 0xFF {
			return 0, errFallback
		}
		m := data[i+1]
		if m == 0xFF {
			i++
			continue
		}
		if m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7) {
			i += 2
			continue
		}
		if i+4 > len(data) {
			return 0, errFallback
		}
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		if n < 2 || i+2+n > len(data) {
			return 0, errFallback
		}
		seg := data[i+4 : i+2+n]
		next := i + 2 + n
		var err error
		switch {
		case m == 0xC0 || m == 0xC1:
			err = f.parseSOF(seg)
		case m == 0xC2:
			f.progressive = true
			err = f.parseSOF(seg)
		case m == 0xC4, m == 0xDB, m == 0xDD:
			err = f.parseTable(m, seg)
		case m == 0xE0:
			f.jfif = len(seg) >= 5 && string(seg[:5]) == "JFIF\x00"
		case m == 0xEE:
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				f.adobe, f.adobeXform = true, seg[11]
			}
		case m == 0xDA:
			if f.progressive {
				// The progressive decoder reads every scan header itself.
				if _, ok := f.cmykMode(); f.comps == nil || f.isRGB() || !ok {
					return 0, errFallback
				}
				return i, nil
			}
			return next, f.parseSOS(seg)
		case m >= 0xE1 && m <= 0xEF, m == 0xFE:
			// other application segments and comments
		default:
			return 0, errFallback // other SOFs, DNL, EOI, unknown
		}
		if err != nil {
			return 0, err
		}
		i = next
	}
}

func (f *jpegFrame) parseSOF(seg []byte) error {
	if f.comps != nil || len(seg) < 6 || seg[0] != 8 {
		return errFallback
	}
	f.height = int(binary.BigEndian.Uint16(seg[1:]))
	f.width = int(binary.BigEndian.Uint16(seg[3:]))
	nc := int(seg[5])
	if (nc != 1 && nc != 3 && nc != 4) || len(seg) != 6+3*nc || f.width == 0 || f.height == 0 {
		return errFallback
	}
	f.comps = make([]jpegComp, nc)
	for i := range f.comps {
		c := &f.comps[i]
		c.id = seg[6+3*i]
		c.h, c.v = int(seg[7+3*i]>>4), int(seg[7+3*i]&15)
		c.tq = int(seg[8+3*i])
		if c.tq > 3 || c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.h == 3 || c.v == 3 {
			return errFallback
		}
		for j := 0; j < i; j++ {
			if f.comps[j].id == c.id {
				return errFallback
			}
		}
	}
	if nc == 1 {
		f.comps[0].h, f.comps[0].v = 1, 1
		return nil
	}
	y, cb, cr := f.comps[0], f.comps[1], f.comps[2]
	blocks := y.h*y.v + 2*cb.h*cb.v
	if nc == 4 {
		// CMYK or YCCK: the fourth component (black) is sampled like the
		// first.
		if k := f.comps[3]; k.h != y.h || k.v != y.v {
			return errFallback
		}
		blocks += y.h * y.v
	}
	if cb.h != cr.h || cb.v != cr.v || y.h%cb.h != 0 || y.v%cb.v != 0 || y.v == 4 || blocks > 10 {
		return errFallback
	}
	return nil
}

// cmykMode says how a four-component frame's samples become colours, as
// image/jpeg reads them: without an Adobe segment it is refused; Adobe
// transform 0 is CMYK stored inverted, any other YCCK.
func (f *jpegFrame) cmykMode() (byte, bool) {
	if len(f.comps) != 4 {
		return cmykNone, true
	}
	switch {
	case !f.adobe:
		return 0, false
	case f.adobeXform == 0:
		return cmykAdobe, true
	}
	return cmykYCCK, true
}

// parseTable reads a table segment, which may come before any scan: DHT
// (Huffman tables), DQT (quantisation tables) or DRI (the restart
// interval).
func (f *jpegFrame) parseTable(m byte, seg []byte) error {
	switch m {
	case 0xC4:
		return f.parseDHT(seg)
	case 0xDB:
		return f.parseDQT(seg)
	case 0xDD:
		if len(seg) != 2 {
			return errFallback
		}
		f.restart = int(binary.BigEndian.Uint16(seg))
		return nil
	}
	return errFallback
}

func (f *jpegFrame) parseDHT(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return errFallback
		}
		tc, th := seg[0]>>4, int(seg[0]&15)
		if tc > 1 || th > 3 {
			return errFallback
		}
		total := 0
		for _, c := range seg[1:17] {
			total += int(c)
		}
		if total > 256 || len(seg) < 17+total {
			return errFallback
		}
		t := &f.dcTables[th]
		if tc == 1 {
			t = &f.acTables[th]
		}
		if err := t.build(seg[1:17], seg[17:17+total], tc == 1); err != nil {
			return err
		}
		seg = seg[17+total:]
	}
	return nil
}

func (f *jpegFrame) parseDQT(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, int(seg[0]&15)
		if tq > 3 {
			return errFallback
		}
		q := &f.qt[tq]
		switch {
		case pq == 0 && len(seg) >= 65:
			for k := range q {
				q[k] = int32(seg[1+k])
			}
			seg = seg[65:]
		case pq == 1 && len(seg) >= 129:
			for k := range q {
				q[k] = int32(binary.BigEndian.Uint16(seg[1+2*k:]))
			}
			seg = seg[129:]
		default:
			return errFallback
		}
		f.qtDefined[tq] = true
	}
	return nil
}

// isRGB reports whether a three-component frame is RGB rather than
// YCbCr, judged as image/jpeg does: an Adobe segment saying so, or
// component IDs R, G, B without JFIF.
func (f *jpegFrame) isRGB() bool {
	return len(f.comps) == 3 && !f.jfif && ((f.adobe && f.adobeXform == 0) ||
		(f.comps[0].id == 'R' && f.comps[1].id == 'G' && f.comps[2].id == 'B'))
}

func (f *jpegFrame) parseSOS(seg []byte) error {
	nc := len(f.comps)
	if nc == 0 || len(seg) < 1 || int(seg[0]) != nc || len(seg) != 4+2*nc {
		return errFallback
	}
	if _, ok := f.cmykMode(); f.isRGB() || !ok {
		return errFallback
	}
	ss, se, a := seg[1+2*nc], seg[2+2*nc], seg[3+2*nc]
	if ss != 0 || se != 63 || a != 0 {
		return errFallback
	}
	f.scan = make([]int, nc)
	for i := 0; i < nc; i++ {
		id, tables := seg[1+2*i], seg[2+2*i]
		ci := -1
		for j := range f.comps {
			if f.comps[j].id == id {
				ci = j
			}
		}
		if ci < 0 {
			return errFallback
		}
		for j := 0; j < i; j++ {
			if f.scan[j] == ci {
				return errFallback
			}
		}
		f.scan[i] = ci
		c := &f.comps[ci]
		td, ta := int(tables>>4), int(tables&15)
		if td > 3 || ta > 3 || !f.dcTables[td].defined || !f.acTables[ta].defined || !f.qtDefined[c.tq] {
			return errFallback
		}
		c.dc, c.ac, c.q = &f.dcTables[td], &f.acTables[ta], &f.qt[c.tq]
	}
	return nil
}

// keptMCUs works out, at n pixels of each 8, the picture's rectangle,
// the MCU size in output pixels and the MCUs [mx0, mx1) × [my0, my1) that
// cover its centred square.
func (f *jpegFrame) keptMCUs(n int) (mw, mh int, canvas image.Rectangle, mx0, my0, mx1, my1 int) {
	ws, hs := (f.width*n+7)/8, (f.height*n+7)/8
	canvas = image.Rect(0, 0, ws, hs)
	sq := centreSquare(canvas)
	hmax, vmax := f.comps[0].h, f.comps[0].v
	mw, mh = hmax*n, vmax*n
	mcusX := (f.width + 8*hmax - 1) / (8 * hmax)
	mcusY := (f.height + 8*vmax - 1) / (8 * vmax)
	mx0, mx1 = sq.Min.X/mw, min((sq.Max.X+mw-1)/mw, mcusX)
	my0, my1 = sq.Min.Y/mh, min((sq.Max.Y+mh-1)/mh, mcusY)
	return mw, mh, canvas, mx0, my0, mx1, my1
}

// region works out, at n pixels of each 8, the picture's rectangle and
// the MCUs [mx0, mx1) × [my0, my1) that cover its centred square, and
// returns planes for them (each component's pix allocated).
func (f *jpegFrame) region(n int) (p *planar, canvas image.Rectangle, mx0, my0, mx1, my1 int) {
	mw, mh, canvas, mx0, my0, mx1, my1 := f.keptMCUs(n)
	hmax, vmax := f.comps[0].h, f.comps[0].v
	p = &planar{
		rect: image.Rect(mx0*mw, my0*mh, mx1*mw, my1*mh),
		fx:   1, fy: 1,
	}
	for i := range f.comps {
		c := &f.comps[i]
		c.stride = (mx1 - mx0) * c.h * n
		c.pix = make([]byte, c.stride*(my1-my0)*c.v*n)
		c.pred = 0
	}
	p.y, p.yStride = f.comps[0].pix, f.comps[0].stride
	if len(f.comps) >= 3 {
		p.cb, p.cr, p.cStride = f.comps[1].pix, f.comps[2].pix, f.comps[1].stride
		p.fx, p.fy = hmax/f.comps[1].h, vmax/f.comps[1].v
	}
	if len(f.comps) == 4 {
		p.k = f.comps[3].pix
		p.cmyk, _ = f.cmykMode()
	}
	return p, canvas, mx0, my0, mx1, my1
}

// decode decodes the scan starting at data[pos], making n pixels of
// each 8.
func (f *jpegFrame) decode(data []byte, pos int, n int) (*planar, image.Rectangle, error) {
	p, canvas, mx0, my0, mx1, my1 := f.region(n)
	hmax, vmax := f.comps[0].h, f.comps[0].v
	mcusX := (f.width + 8*hmax - 1) / (8 * hmax)
	mcusY := (f.height + 8*vmax - 1) / (8 * vmax)
	br := bitReader{data: data, pos: pos}
	var blk [64]int32
	mcu, rst := 0, byte(0)
	for my := 0; my < mcusY; my++ {
		keepRow := my >= my0 && my < my1
		for mx := 0; mx < mcusX; mx++ {
			if f.restart > 0 && mcu > 0 && mcu%f.restart == 0 {
				if !br.restart(rst) {
					return nil, image.Rectangle{}, errFallback
				}
				rst = (rst + 1) & 7
				for i := range f.comps {
					f.comps[i].pred = 0
				}
			}
			mcu++
			if br.fake > 8 {
				// More than a whole bit buffer of made-up zeros: bits
				// past the real data have been used; stop early.
				return nil, image.Rectangle{}, errFallback
			}
			keep := keepRow && mx >= mx0 && mx < mx1
			for _, ci := range f.scan {
				c := &f.comps[ci]
				for by := 0; by < c.v; by++ {
					for bx := 0; bx < c.h; bx++ {
						if !keep || n == 1 {
							dc, ok := br.skipBlock(c)
							if !ok {
								return nil, image.Rectangle{}, errFallback
							}
							if keep {
								px := (mx-mx0)*c.h + bx
								py := (my-my0)*c.v + by
								c.pix[py*c.stride+px] = clamp8((int(dc)+4)>>3 + 128)
							}
							continue
						}
						rows, ok := br.decodeBlock(c, &blk)
						if !ok {
							return nil, image.Rectangle{}, errFallback
						}
						px := ((mx-mx0)*c.h + bx) * n
						py := ((my-my0)*c.v + by) * n
						idctN(&blk, rows, n, c.pix[py*c.stride+px:], c.stride)
					}
				}
			}
		}
	}
	if br.overrun() {
		return nil, image.Rectangle{}, errFallback
	}
	return p, canvas, nil
}
