package picture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"sync"

	"github.com/gen2brain/avif"
	"github.com/gen2brain/heic"
)

// AVIF and HEIC are both HEIF files (ISO/IEC 23008-12): ISO base media
// boxes whose "meta" box names a primary item (an AV1 or HEVC picture, or
// a grid of them) and its properties: size (ispe), bits per channel
// (pixi), colour (colr) and the transformations to apply for display
// (irot, imir). portrait reads that box itself, to check the size against
// the limits and the budget before anything is decoded and to know the
// orientation; the pixels are decoded by libavif and libheif compiled to
// WebAssembly (github.com/gen2brain/avif and /heic, run by wazero).
//
// libheif applies irot and imir itself; libavif does not, so for AVIF
// portrait applies them as the matching EXIF orientation. EXIF blocks in
// HEIF files are ignored, as libheif and libvips do: the transformations
// are authoritative.
//
// Known limits of these decoders: a HEIC picture's transparency (an
// auxiliary alpha item) is not decoded, so such pictures come out as if
// opaque; and when a libheif.so or libavif.so is installed, gen2brain's
// packages load it at run time instead of running the WebAssembly build,
// unless the binary is built with the nodynamic tag.

// heifInfo is what portrait reads from a HEIF file's meta box.
type heifInfo struct {
	format        Format // AVIF or HEIC, from the primary item's type
	width, height int    // ispe of the primary item (before transformations)
	depth         int    // bits per channel (pixi), 8 when absent
	alpha         bool   // an auxiliary alpha item refers to the primary one
	// transforms are the primary item's irot ('r', quarter turns
	// anticlockwise in n) and imir ('m', axis in n) in the order of its
	// property associations.
	transforms []heifTransform
	// chroma is how the codec samples colour, from the hvcC or av1C
	// property: heifChromaMonochrome, heifChroma420, heifChroma422 or
	// heifChroma444; -1 when unknown.
	chroma    int
	nclx      bool // colr nclx present
	matrix    int  // nclx matrix_coefficients
	fullRange bool // nclx full_range_flag
}

type heifTransform struct {
	kind byte // 'r' or 'm'
	n    int
}

var errHEIF = errors.New("heif: malformed file")

// sniffHEIF judges an ISO base media file by its ftyp box: AVIF for the
// brands avif and avis, HEIC for heic, heix, heim, heis, hevc and hevx;
// "" otherwise.
func sniffHEIF(b []byte) Format {
	if len(b) < 16 || string(b[4:8]) != "ftyp" {
		return ""
	}
	n := int(binary.BigEndian.Uint32(b))
	if n < 16 || n > len(b) {
		n = min(len(b), 4096)
	}
	n -= n % 4
	var found Format
	for i := 8; i+4 <= n; i += 4 {
		if i == 12 {
			continue // minor version
		}
		switch string(b[i : i+4]) {
		case "avif", "avis":
			return AVIF
		case "heic", "heix", "heim", "heis", "hevc", "hevx":
			found = HEIC
		}
	}
	return found
}

// box is one ISO base media box: its type and payload.
type box struct {
	typ  string
	data []byte
}

// nextBox reads the box at the start of b: its type, payload and whole
// size. ok is false when its size runs past b.
func nextBox(b []byte) (typ string, payload []byte, n int, ok bool) {
	if len(b) < 8 {
		return "", nil, 0, false
	}
	size := uint64(binary.BigEndian.Uint32(b))
	hdr := uint64(8)
	switch size {
	case 0: // to the end
		size = uint64(len(b))
	case 1:
		if len(b) < 16 {
			return "", nil, 0, false
		}
		size, hdr = binary.BigEndian.Uint64(b[8:]), 16
	}
	if size < hdr || size > uint64(len(b)) {
		return "", nil, 0, false
	}
	return string(b[4:8]), b[hdr:size], int(size), true
}

// boxes splits b into boxes. A box whose size runs past b is an error.
func boxes(b []byte) ([]box, error) {
	var out []box
	for len(b) > 0 {
		typ, payload, n, ok := nextBox(b)
		if !ok {
			return nil, fmt.Errorf("%w: box overruns its container", errHEIF)
		}
		out = append(out, box{typ, payload})
		b = b[n:]
	}
	return out, nil
}

// find returns the payload of the first box of type typ.
func find(bs []box, typ string) []byte {
	for _, b := range bs {
		if b.typ == typ {
			return b.data
		}
	}
	return nil
}

// parseHEIF reads the meta box of a HEIF file.
func parseHEIF(b []byte) (*heifInfo, error) {
	// Top-level boxes, up to meta: what follows (mdat) may be cut short.
	var meta []byte
	for rest := b; len(rest) >= 8; {
		typ, payload, n, ok := nextBox(rest)
		if !ok {
			break
		}
		if typ == "meta" {
			meta = payload
			break
		}
		rest = rest[n:]
	}
	if len(meta) < 4 {
		return nil, fmt.Errorf("%w: no meta box", errHEIF)
	}
	children, err := boxes(meta[4:]) // FullBox: version and flags
	if err != nil {
		return nil, err
	}
	primary, err := primaryItem(find(children, "pitm"))
	if err != nil {
		return nil, err
	}
	types, auxOf, err := itemTypes(find(children, "iinf"), find(children, "iref"))
	if err != nil {
		return nil, err
	}
	info := &heifInfo{depth: 8, chroma: -1}
	switch types[primary] {
	case "av01":
		info.format = AVIF
	case "hvc1":
		info.format = HEIC
	case "grid":
		// A grid of tiles: judge by the tiles' coding.
		for id, t := range types {
			if id != primary && (t == "av01" || t == "hvc1") {
				info.format = map[string]Format{"av01": AVIF, "hvc1": HEIC}[t]
			}
		}
	}
	if info.format == "" {
		return nil, fmt.Errorf("%w: primary item of type %q", errHEIF, types[primary])
	}
	info.alpha = len(auxOf[primary]) > 0
	iprp, err := boxes(find(children, "iprp"))
	if err != nil {
		return nil, err
	}
	props, err := boxes(find(iprp, "ipco"))
	if err != nil {
		return nil, err
	}
	assoc, err := associations(find(iprp, "ipma"), primary)
	if err != nil {
		return nil, err
	}
	for _, a := range assoc {
		if a < 1 || a > len(props) {
			return nil, fmt.Errorf("%w: property %d of %d", errHEIF, a, len(props))
		}
		p := props[a-1]
		switch p.typ {
		case "ispe":
			if len(p.data) < 12 {
				return nil, errHEIF
			}
			info.width = int(binary.BigEndian.Uint32(p.data[4:]))
			info.height = int(binary.BigEndian.Uint32(p.data[8:]))
		case "pixi":
			if len(p.data) >= 6 && p.data[4] > 0 {
				info.depth = int(p.data[5])
			}
		case "irot":
			if len(p.data) < 1 {
				return nil, errHEIF
			}
			info.transforms = append(info.transforms, heifTransform{'r', int(p.data[0] & 3)})
		case "imir":
			if len(p.data) < 1 {
				return nil, errHEIF
			}
			info.transforms = append(info.transforms, heifTransform{'m', int(p.data[0] & 1)})
		case "hvcC", "av1C":
			info.chroma = codecChroma(p)
		case "colr":
			if len(p.data) >= 11 && string(p.data[:4]) == "nclx" {
				info.nclx = true
				info.matrix = int(binary.BigEndian.Uint16(p.data[8:]))
				info.fullRange = p.data[10]&0x80 != 0
			}
		}
	}
	if info.chroma < 0 {
		// A grid's tiles carry the codec configuration; they share one.
		for _, p := range props {
			if info.chroma = codecChroma(p); info.chroma >= 0 {
				break
			}
		}
	}
	if info.width <= 0 || info.height <= 0 {
		return nil, fmt.Errorf("%w: primary item without a size", errHEIF)
	}
	return info, nil
}

// codecChroma reads the colour sampling from an HEVC (hvcC:
// chroma_format_idc) or AV1 (av1C: monochrome and chroma_subsampling_x/y)
// configuration box; -1 for any other box.
func codecChroma(p box) int {
	switch {
	case p.typ == "hvcC" && len(p.data) > 16:
		return int(p.data[16] & 3) // 0 grey, 1 4:2:0, 2 4:2:2, 3 4:4:4: libheif's numbers
	case p.typ == "av1C" && len(p.data) > 2:
		b := p.data[2]
		switch mono, sx, sy := b&0x10 != 0, b&0x08 != 0, b&0x04 != 0; {
		case mono:
			return heifChromaMonochrome
		case sx && sy:
			return heifChroma420
		case sx:
			return heifChroma422
		case !sy:
			return heifChroma444
		}
	}
	return -1
}

// primaryItem reads the pitm box.
func primaryItem(b []byte) (uint32, error) {
	switch {
	case len(b) >= 6 && b[0] == 0:
		return uint32(binary.BigEndian.Uint16(b[4:])), nil
	case len(b) >= 8:
		return binary.BigEndian.Uint32(b[4:]), nil
	}
	return 0, fmt.Errorf("%w: no primary item", errHEIF)
}

// itemTypes reads the item types from iinf, and from iref the auxiliary
// items (alpha, depth) of each item.
func itemTypes(iinf, iref []byte) (map[uint32]string, map[uint32][]uint32, error) {
	if len(iinf) < 6 {
		return nil, nil, fmt.Errorf("%w: no item information", errHEIF)
	}
	off := 6
	if iinf[0] != 0 {
		off = 8
	}
	if len(iinf) < off {
		return nil, nil, errHEIF
	}
	infes, err := boxes(iinf[off:])
	if err != nil {
		return nil, nil, err
	}
	types := map[uint32]string{}
	for _, e := range infes {
		if e.typ != "infe" || len(e.data) < 4 {
			continue
		}
		switch v := e.data[0]; {
		case v == 2 && len(e.data) >= 12:
			types[uint32(binary.BigEndian.Uint16(e.data[4:]))] = string(e.data[8:12])
		case v >= 3 && len(e.data) >= 14:
			types[binary.BigEndian.Uint32(e.data[4:])] = string(e.data[10:14])
		}
	}
	aux := map[uint32][]uint32{}
	if len(iref) >= 4 {
		wide := iref[0] != 0
		refs, err := boxes(iref[4:])
		if err != nil {
			return nil, nil, err
		}
		for _, r := range refs {
			if r.typ != "auxl" {
				continue
			}
			d := r.data
			read := func() (uint32, bool) {
				if wide {
					if len(d) < 4 {
						return 0, false
					}
					v := binary.BigEndian.Uint32(d)
					d = d[4:]
					return v, true
				}
				if len(d) < 2 {
					return 0, false
				}
				v := uint32(binary.BigEndian.Uint16(d))
				d = d[2:]
				return v, true
			}
			from, ok := read()
			if !ok || len(d) < 2 {
				continue
			}
			n := int(binary.BigEndian.Uint16(d))
			d = d[2:]
			for i := 0; i < n; i++ {
				to, ok := read()
				if !ok {
					break
				}
				aux[to] = append(aux[to], from)
			}
		}
	}
	return types, aux, nil
}

// associations returns the 1-based property indices associated with
// item in an ipma box, in order.
func associations(b []byte, item uint32) ([]int, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: no property associations", errHEIF)
	}
	version, flags := b[0], b[3]
	n := binary.BigEndian.Uint32(b[4:])
	d := b[8:]
	for ; n > 0; n-- {
		var id uint32
		if version < 1 {
			if len(d) < 2 {
				return nil, errHEIF
			}
			id, d = uint32(binary.BigEndian.Uint16(d)), d[2:]
		} else {
			if len(d) < 4 {
				return nil, errHEIF
			}
			id, d = binary.BigEndian.Uint32(d), d[4:]
		}
		if len(d) < 1 {
			return nil, errHEIF
		}
		count := int(d[0])
		d = d[1:]
		size := 1
		if flags&1 != 0 {
			size = 2
		}
		if len(d) < count*size {
			return nil, errHEIF
		}
		if id == item {
			out := make([]int, count)
			for i := range out {
				if size == 2 {
					out[i] = int(binary.BigEndian.Uint16(d[2*i:]) & 0x7FFF)
				} else {
					out[i] = int(d[i] & 0x7F)
				}
			}
			return out, nil
		}
		d = d[count*size:]
	}
	return nil, fmt.Errorf("%w: primary item has no properties", errHEIF)
}

// quarterTurns is the net number of quarter turns of the transformations.
func (h *heifInfo) quarterTurns() int {
	t := 0
	for _, x := range h.transforms {
		if x.kind == 'r' {
			t += x.n
		}
	}
	return t % 4
}

// orientation returns the EXIF orientation that displays the stored
// picture as the transformations say, applied in order.
func (h *heifInfo) orientation() int {
	o := orientNormal
	for _, x := range h.transforms {
		var step int
		switch {
		case x.kind == 'r' && x.n == 1: // 90° anticlockwise
			step = orientRotate270
		case x.kind == 'r' && x.n == 2:
			step = orientRotate180
		case x.kind == 'r' && x.n == 3:
			step = orientRotate90
		case x.kind == 'm' && x.n == 0: // top and bottom exchanged
			step = orientFlipV
		case x.kind == 'm' && x.n == 1: // left and right exchanged
			step = orientFlipH
		default:
			continue
		}
		o = composeOrientations()[o-1][step-1]
	}
	return o
}

// composeOrientations returns the table c[a-1][b-1] = the orientation
// that shows a picture as applying a and then b does. It is worked out
// once by turning a small picture with orient.
var composeOrientations = sync.OnceValue(func() (c [8][8]int) {
	probe := image.NewRGBA(image.Rect(0, 0, 3, 2))
	for i := range probe.Pix {
		probe.Pix[i] = byte(i)
	}
	for a := 1; a <= 8; a++ {
		for b := 1; b <= 8; b++ {
			want := orient(orient(probe, a), b)
			for o := 1; o <= 8; o++ {
				got := orient(probe, o)
				if got.Rect == want.Rect && bytes.Equal(got.Pix, want.Pix) {
					c[a-1][b-1] = o
				}
			}
		}
	}
	return c
})

// bytesPerPixel estimates the memory that the WebAssembly decoders hold
// per pixel. Inside the module's memory: the input, the codec's decoded
// planes and working buffers, then the RGB conversion (AVIF) or the copy
// of the planes (HEIC); that memory is a Go slice that wazero grows by
// copying as the decoder asks for more, so old copies stay on the heap
// until the collector runs. Measured peak resident memory of 12 MP
// pictures (bench/libvips): 51 to 56 bytes a pixel for HEIC and 68 to 72
// for 8-bit AVIF; 10-bit AVIF adds 16-bit samples and their copy (not
// measured).
//
// The system's libheif holds far less (see sysBytesPerPixel).
func (h *heifInfo) bytesPerPixel(system bool) float64 {
	if system {
		return sysBytesPerPixel(h)
	}
	switch {
	case h.format == HEIC:
		return 58
	case h.depth > 8:
		return 120
	}
	return 76
}

// ycc is how the Y′CbCr samples that the HEIC decoder hands back map to
// RGB: from the nclx colour property, or libheif's default (BT.601, full
// range) without one.
func (h *heifInfo) ycc() ycc {
	if !h.nclx {
		return ycc{}
	}
	switch {
	case h.matrix == 1 && h.fullRange:
		return ycc709Full
	case h.matrix == 1:
		return ycc709Limited
	case h.fullRange:
		return ycc{}
	}
	return ycc601Limited
}

// decodeHEIF decodes the primary picture of an AVIF or HEIC file with the
// WebAssembly decoders. A decoder that panics (they are third-party code
// fed untrusted data) reports an error instead.
func decodeHEIF(data []byte, info *heifInfo) (img image.Image, cc ycc, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("%s decoder failed: %v", info.format, r)
		}
	}()
	if info.format == AVIF {
		img, err = avif.Decode(bytes.NewReader(data))
		return img, ycc{}, err
	}
	img, err = heic.Decode(bytes.NewReader(data))
	return img, info.ycc(), err
}
