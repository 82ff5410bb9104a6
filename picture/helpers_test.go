package picture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
)

// Colours of the four quadrants of the test picture, as displayed.
var (
	qRed    = color.RGBA{220, 30, 30, 255}  // top left
	qGreen  = color.RGBA{30, 200, 30, 255}  // top right
	qBlue   = color.RGBA{30, 30, 220, 255}  // bottom left
	qYellow = color.RGBA{230, 220, 30, 255} // bottom right
)

var quadNames = []struct {
	c    color.RGBA
	name string
}{{qRed, "red"}, {qGreen, "green"}, {qBlue, "blue"}, {qYellow, "yellow"}}

// quadrants makes a w×h picture with a distinct colour in each quadrant.
func quadrants(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var c color.RGBA
			switch {
			case x < w/2 && y < h/2:
				c = qRed
			case y < h/2:
				c = qGreen
			case x < w/2:
				c = qBlue
			default:
				c = qYellow
			}
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

// storedAs returns the pixels a camera stores for the displayed picture d
// when it tags them with EXIF orientation o. It follows the wording of
// the EXIF specification: where the stored row 0 and column 0 are shown.
func storedAs(d *image.RGBA, o int) *image.RGBA {
	dw, dh := d.Rect.Dx(), d.Rect.Dy()
	type side int
	const (
		top side = iota
		bottom
		left
		right
	)
	sides := map[int][2]side{
		1: {top, left}, 2: {top, right}, 3: {bottom, right}, 4: {bottom, left},
		5: {left, top}, 6: {right, top}, 7: {right, bottom}, 8: {left, bottom},
	}[o]
	row0, col0 := sides[0], sides[1]
	sw, sh := dw, dh
	if row0 == left || row0 == right {
		sw, sh = dh, dw
	}
	s := image.NewRGBA(image.Rect(0, 0, sw, sh))
	for sy := 0; sy < sh; sy++ {
		for sx := 0; sx < sw; sx++ {
			var dx, dy int
			switch row0 {
			case top:
				dy = sy
			case bottom:
				dy = dh - 1 - sy
			case left:
				dx = sy
			case right:
				dx = dw - 1 - sy
			}
			switch col0 {
			case left:
				dx = sx
			case right:
				dx = dw - 1 - sx
			case top:
				dy = sx
			case bottom:
				dy = dh - 1 - sx
			}
			s.SetRGBA(sx, sy, d.RGBAAt(dx, dy))
		}
	}
	return s
}

// nearestQuad names the quadrant colour closest to c.
func nearestQuad(c color.RGBA) string {
	best, bestD := "", 1<<30
	for _, q := range quadNames {
		d := sq(int(c.R)-int(q.c.R)) + sq(int(c.G)-int(q.c.G)) + sq(int(c.B)-int(q.c.B))
		if d < bestD {
			best, bestD = q.name, d
		}
	}
	return best
}

func sq(x int) int { return x * x }

// decodeOut decodes an output JPEG and checks its size.
func decodeOut(t *testing.T, b []byte, size int) image.Image {
	t.Helper()
	m, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("output does not decode: %v", err)
	}
	if got := m.Bounds(); got != image.Rect(0, 0, size, size) {
		t.Fatalf("output is %v, want %dx%d", got, size, size)
	}
	return m
}

// rgbaAt returns the 8-bit colour of m at (x, y).
func rgbaAt(m image.Image, x, y int) color.RGBA {
	return color.RGBAModel.Convert(m.At(x, y)).(color.RGBA)
}

// near reports whether c is within tol of want in each channel.
func near(c color.RGBA, want color.RGBA, tol int) bool {
	return abs(int(c.R)-int(want.R)) <= tol && abs(int(c.G)-int(want.G)) <= tol && abs(int(c.B)-int(want.B)) <= tol
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// checkQuadrants asserts that a FullSize output shows the quadrant
// picture upright.
func checkQuadrants(t *testing.T, out []byte) {
	t.Helper()
	m := decodeOut(t, out, FullSize)
	q, r := FullSize/4, 3*FullSize/4
	for _, p := range []struct {
		x, y int
		want string
	}{{q, q, "red"}, {r, q, "green"}, {q, r, "blue"}, {r, r, "yellow"}} {
		c := rgbaAt(m, p.x, p.y)
		if got := nearestQuad(c); got != p.want {
			t.Errorf("at (%d,%d) colour %v is %s, want %s", p.x, p.y, c, got, p.want)
		}
	}
}

// ifdEntry is one entry of a TIFF IFD being built.
type ifdEntry struct {
	tag, typ uint16
	count    uint32
	value    []byte // raw value bytes, in the blob's byte order
}

// tiffBuilder builds TIFF (EXIF) blobs for tests.
type tiffBuilder struct {
	bo binary.ByteOrder
}

func (tb tiffBuilder) short(v uint16) []byte {
	b := make([]byte, 2)
	tb.bo.PutUint16(b, v)
	return b
}

func (tb tiffBuilder) long(v uint32) []byte {
	b := make([]byte, 4)
	tb.bo.PutUint32(b, v)
	return b
}

// ifd lays out an IFD at offset off; values longer than 4 bytes follow
// it. It returns the bytes and the offset just past them.
func (tb tiffBuilder) ifd(off uint32, entries []ifdEntry, next uint32) []byte {
	var head, data []byte
	head = append(head, tb.short(uint16(len(entries)))...)
	dataOff := off + 2 + 12*uint32(len(entries)) + 4
	for _, e := range entries {
		head = append(head, tb.short(e.tag)...)
		head = append(head, tb.short(e.typ)...)
		head = append(head, tb.long(e.count)...)
		if len(e.value) <= 4 {
			v := make([]byte, 4)
			copy(v, e.value)
			head = append(head, v...)
		} else {
			head = append(head, tb.long(dataOff+uint32(len(data)))...)
			data = append(data, e.value...)
			if len(data)%2 == 1 {
				data = append(data, 0)
			}
		}
	}
	head = append(head, tb.long(next)...)
	return append(head, data...)
}

// header is the 8-byte TIFF header pointing at IFD0 at offset 8.
func (tb tiffBuilder) header() []byte {
	if tb.bo == binary.LittleEndian {
		return []byte{'I', 'I', 42, 0, 8, 0, 0, 0}
	}
	return []byte{'M', 'M', 0, 42, 0, 0, 0, 8}
}

// exifBlob builds a realistic EXIF TIFF structure with Make, Orientation
// o and a GPS IFD.
func exifBlob(bo binary.ByteOrder, o uint16) []byte {
	tb := tiffBuilder{bo}
	rational := func(n, d uint32) []byte { return append(tb.long(n), tb.long(d)...) }
	lat := append(append(rational(48, 1), rational(51, 1)...), rational(2400, 100)...)
	gpsEntries := []ifdEntry{
		{tag: 0x0001, typ: 2, count: 2, value: []byte("N\x00")},
		{tag: 0x0002, typ: 5, count: 3, value: lat},
		{tag: 0x0003, typ: 2, count: 2, value: []byte("E\x00")},
		{tag: 0x0004, typ: 5, count: 3, value: lat},
	}
	make0 := []byte("PortraitCam\x00")
	// IFD0 is at 8; its size is known once the entries are fixed.
	ifd0 := func(gpsOff uint32) []byte {
		return tb.ifd(8, []ifdEntry{
			{tag: 0x010F, typ: 2, count: uint32(len(make0)), value: make0},
			{tag: 0x0112, typ: 3, count: 1, value: tb.short(o)},
			{tag: 0x8825, typ: 4, count: 1, value: tb.long(gpsOff)},
		}, 0)
	}
	gpsOff := uint32(8 + len(ifd0(0)))
	out := append(tb.header(), ifd0(gpsOff)...)
	return append(out, tb.ifd(gpsOff, gpsEntries, 0)...)
}

// segment makes a JPEG marker segment.
func segment(marker byte, payload []byte) []byte {
	s := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(s[2:], uint16(len(payload)+2))
	return append(s, payload...)
}

// insertAfterSOI inserts segments right after a JPEG's SOI marker.
func insertAfterSOI(jpg []byte, segs ...[]byte) []byte {
	out := append([]byte{}, jpg[:2]...)
	for _, s := range segs {
		out = append(out, s...)
	}
	return append(out, jpg[2:]...)
}

// encodeJPEGTest encodes m as a baseline JPEG.
func encodeJPEGTest(t testing.TB, m image.Image, q int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// riffChunk makes one RIFF chunk, padded to an even size.
func riffChunk(id string, data []byte) []byte {
	c := append([]byte(id), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(c[4:], uint32(len(data)))
	c = append(c, data...)
	if len(data)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

// riffFile wraps chunks in a RIFF WEBP container.
func riffFile(chunks ...[]byte) []byte {
	var body []byte
	for _, c := range chunks {
		body = append(body, c...)
	}
	out := append([]byte("RIFF"), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(out[4:], uint32(4+len(body)))
	out = append(out, "WEBP"...)
	return append(out, body...)
}

// webpChunks splits a WebP file into its chunks (id → data).
func webpChunks(t testing.TB, b []byte) []struct {
	id   string
	data []byte
} {
	t.Helper()
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		t.Fatalf("not a WebP file")
	}
	var out []struct {
		id   string
		data []byte
	}
	for i := 12; i+8 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[i+4:]))
		if i+8+n > len(b) {
			t.Fatalf("chunk %q overruns the file", b[i:i+4])
		}
		out = append(out, struct {
			id   string
			data []byte
		}{string(b[i : i+4]), b[i+8 : i+8+n]})
		i += 8 + n + n%2
	}
	return out
}

// extendedWebP wraps the image chunk (VP8 or VP8L, with its ALPH chunk if
// any) of a simple WebP file in the extended format, adding EXIF and XMP
// chunks when given.
func extendedWebP(t testing.TB, simple []byte, w, h int, exif, xmp []byte) []byte {
	t.Helper()
	var flags byte
	var image [][]byte
	for _, c := range webpChunks(t, simple) {
		switch c.id {
		case "VP8 ", "VP8L", "ALPH":
			image = append(image, riffChunk(c.id, c.data))
			if c.id == "ALPH" {
				flags |= 0x10
			}
		case "VP8X":
			flags |= c.data[0] & 0x10
		}
	}
	if exif != nil {
		flags |= 0x08
	}
	if xmp != nil {
		flags |= 0x04
	}
	vp8x := []byte{flags, 0, 0, 0,
		byte(w - 1), byte((w - 1) >> 8), byte((w - 1) >> 16),
		byte(h - 1), byte((h - 1) >> 8), byte((h - 1) >> 16)}
	chunks := [][]byte{riffChunk("VP8X", vp8x)}
	chunks = append(chunks, image...)
	if exif != nil {
		chunks = append(chunks, riffChunk("EXIF", exif))
	}
	if xmp != nil {
		chunks = append(chunks, riffChunk("XMP ", xmp))
	}
	return riffFile(chunks...)
}

// readFixture reads a committed file under testdata.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("fixture %s: %v (regenerate with: go test -run TestFixtures -fixtures ./picture)", name, err)
	}
	return b
}

// jpegMarkers lists the markers of a JPEG file in order (the entropy
// coded data after SOS is skipped).
func jpegMarkers(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xD8 {
		return nil, errors.New("no SOI")
	}
	ms := []byte{0xD8}
	i := 2
	for i+1 < len(b) {
		if b[i] != 0xFF {
			return ms, fmt.Errorf("no marker at %d", i)
		}
		m := b[i+1]
		ms = append(ms, m)
		if m == 0xD9 {
			return ms, nil
		}
		if i+4 > len(b) {
			return ms, errors.New("truncated")
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		i += 2 + n
		if m == 0xDA {
			// Skip entropy-coded data up to the next real marker.
			for i+1 < len(b) && (b[i] != 0xFF || b[i+1] == 0 || (b[i+1] >= 0xD0 && b[i+1] <= 0xD7)) {
				i++
			}
		}
	}
	return ms, errors.New("no EOI")
}

// checkClean asserts that an output JPEG has only the markers a bare
// baseline JPEG needs: no APPn, no COM.
func checkClean(t *testing.T, b []byte) {
	t.Helper()
	ms, err := jpegMarkers(b)
	if err != nil {
		t.Fatalf("walking output markers: %v (markers %x)", err, ms)
	}
	allowed := map[byte]bool{0xD8: true, 0xDB: true, 0xC0: true, 0xC4: true, 0xDA: true, 0xD9: true}
	sof := 0
	for _, m := range ms {
		if !allowed[m] {
			t.Errorf("output has marker FF%02X; markers: % X", m, ms)
		}
		if m == 0xC0 {
			sof++
		}
	}
	if sof != 1 {
		t.Errorf("output has %d baseline SOF0 markers, want 1", sof)
	}
}

// sentinels is the list of errors Process may wrap.
var sentinels = []error{ErrEmpty, ErrUnsupported, ErrTooLarge, ErrOverBudget, ErrBusy}

// matchesExactly checks that err wraps want and no other sentinel.
func matchesExactly(t *testing.T, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	for _, s := range sentinels {
		if got := errors.Is(err, s); got != (s == want) {
			t.Errorf("errors.Is(%q, %q) = %v", err, s, got)
		}
	}
}
