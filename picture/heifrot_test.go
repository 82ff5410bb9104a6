package picture

import (
	"encoding/binary"
	"image/color"
	"testing"
)

// withIrot returns a HEIF file with an irot property (angle quarter turns
// anticlockwise) added to its primary item: the box is appended to ipco,
// associated in ipma, the sizes of the enclosing boxes grown, and the
// item locations (iloc) behind the meta box moved by as much.
func withIrot(t *testing.T, b []byte, angle byte) []byte {
	t.Helper()
	type at struct{ start, size int } // box start and size in b
	var meta at
	for i := 0; i+8 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[i:]))
		if string(b[i+4:i+8]) == "meta" {
			meta = at{i, n}
			break
		}
		if n < 8 {
			t.Fatal("bad top-level box")
		}
		i += n
	}
	if meta.size == 0 {
		t.Fatal("no meta box")
	}
	children := func(box at, skip int) map[string]at {
		m := map[string]at{}
		for i := box.start + 8 + skip; i < box.start+box.size; {
			n := int(binary.BigEndian.Uint32(b[i:]))
			m[string(b[i+4:i+8])] = at{i, n}
			i += n
		}
		return m
	}
	mc := children(meta, 4)
	iprp, iloc, pitm := mc["iprp"], mc["iloc"], mc["pitm"]
	pc := children(iprp, 0)
	ipco, ipma := pc["ipco"], pc["ipma"]
	primary, _ := primaryItem(b[pitm.start+8 : pitm.start+pitm.size])
	nprops := len(mustBoxes(t, b[ipco.start+8:ipco.start+ipco.size]))

	// The association: find the primary item's entry in ipma.
	p := ipma.start + 8
	version, flags := b[p], b[p+3]
	count := int(binary.BigEndian.Uint32(b[p+4:]))
	q := p + 8
	assocAt, countAt := -1, -1
	wide := flags&1 != 0
	for e := 0; e < count; e++ {
		var id uint32
		if version < 1 {
			id, q = uint32(binary.BigEndian.Uint16(b[q:])), q+2
		} else {
			id, q = binary.BigEndian.Uint32(b[q:]), q+4
		}
		n := int(b[q])
		countAt = q
		q++
		size := 1
		if wide {
			size = 2
		}
		if id == primary {
			assocAt = q + n*size
			break
		}
		q += n * size
	}
	if assocAt < 0 {
		t.Fatal("primary item has no associations")
	}
	assoc := []byte{byte(nprops + 1)}
	if wide {
		assoc = []byte{0, byte(nprops + 1)}
	}
	irot := []byte{0, 0, 0, 9, 'i', 'r', 'o', 't', angle}
	delta := len(irot) + len(assoc)

	out := append([]byte{}, b...)
	// Item locations after the meta box move by delta.
	patchIloc(t, out[iloc.start:iloc.start+iloc.size], meta.start+meta.size, delta)
	grow := func(box at, by int) {
		binary.BigEndian.PutUint32(out[box.start:], uint32(box.size+by))
	}
	grow(meta, delta)
	grow(iprp, delta)
	grow(ipma, len(assoc))
	grow(ipco, len(irot))
	out[countAt]++
	// Insert from the back so that earlier offsets stay valid.
	insert := func(pos int, data []byte) {
		out = append(out[:pos], append(append([]byte{}, data...), out[pos:]...)...)
	}
	if assocAt > ipco.start {
		insert(assocAt, assoc)
		insert(ipco.start+ipco.size, irot)
	} else {
		insert(ipco.start+ipco.size, irot)
		insert(assocAt, assoc)
	}
	return out
}

func mustBoxes(t *testing.T, b []byte) []box {
	t.Helper()
	bs, err := boxes(b)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// patchIloc adds delta to every file offset in an iloc box that points at
// or past from.
func patchIloc(t *testing.T, box []byte, from, delta int) {
	t.Helper()
	d := box[8:]
	version := d[0]
	offSize, lenSize := int(d[4]>>4), int(d[4]&15)
	baseSize, idxSize := int(d[5]>>4), int(d[5]&15)
	if version == 0 {
		idxSize = 0
	}
	q := 6
	var items int
	if version < 2 {
		items, q = int(binary.BigEndian.Uint16(d[q:])), q+2
	} else {
		items, q = int(binary.BigEndian.Uint32(d[q:])), q+4
	}
	read := func(n int) (int, int) { // value, position
		pos := q
		v := 0
		for i := 0; i < n; i++ {
			v = v<<8 | int(d[q+i])
		}
		q += n
		return v, pos
	}
	write := func(pos, n, v int) {
		for i := n - 1; i >= 0; i-- {
			d[pos+i] = byte(v)
			v >>= 8
		}
	}
	for it := 0; it < items; it++ {
		if version < 2 {
			q += 2
		} else {
			q += 4
		}
		method := 0
		if version >= 1 {
			m, _ := read(2)
			method = m & 15
		}
		q += 2 // data reference index
		base, basePos := read(baseSize)
		extents, _ := read(2)
		if method != 0 {
			t.Fatalf("iloc construction method %d", method)
		}
		if baseSize > 0 && base >= from {
			write(basePos, baseSize, base+delta)
		}
		for e := 0; e < extents; e++ {
			q += idxSize
			off, offPos := read(offSize)
			read(lenSize)
			if base+off >= from && !(baseSize > 0 && base >= from) {
				write(offPos, offSize, off+delta)
			}
		}
	}
}

// TestHEIFRotated: a HEIC (or AVIF) whose primary item carries irot is
// shown turned: libheif turns HEIC pictures itself, portrait turns AVIF
// ones; either way the result is the same and the reported size swapped.
func TestHEIFRotated(t *testing.T) {
	eachDecoders(t, func(t *testing.T, _ bool) { testHEIFRotated(t) })
}

func testHEIFRotated(t *testing.T) {
	want := [4]color.RGBA{qGreen, qYellow, qRed, qBlue} // a quarter turn anticlockwise
	for _, name := range []string{"heic/quad.heic", "avif/quad.avif"} {
		t.Run(name, func(t *testing.T) {
			data := withIrot(t, readFixture(t, name), 1)
			info, err := parseHEIF(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(info.transforms) != 1 || info.transforms[0] != (heifTransform{'r', 1}) {
				t.Fatalf("transforms %v", info.transforms)
			}
			res, err := Process(data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Width != 120 || res.Height != 160 {
				t.Errorf("size %dx%d, want 120x160", res.Width, res.Height)
			}
			for i, got := range quadMeans(t, res.Full) {
				if !near(got, want[i], 6) {
					t.Errorf("quadrant %d is %v, want %v", i, got, want[i])
				}
			}
		})
	}
}
