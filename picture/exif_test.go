package picture

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// loopTIFF is a TIFF whose IFD0 has no orientation and names itself as
// the next IFD.
func loopTIFF() []byte {
	tb := tiffBuilder{binary.LittleEndian}
	return append(tb.header(), tb.ifd(8, []ifdEntry{{tag: 0x010F, typ: 2, count: 4, value: []byte("abc\x00")}}, 8)...)
}

// orientationOnly is a minimal TIFF with one Orientation entry of the
// given type and count.
func orientationOnly(bo binary.ByteOrder, typ uint16, count uint32, value []byte) []byte {
	tb := tiffBuilder{bo}
	return append(tb.header(), tb.ifd(8, []ifdEntry{{tag: 0x0112, typ: typ, count: count, value: value}}, 0)...)
}

func TestExifOrientation(t *testing.T) {
	type tc struct {
		name string
		blob []byte
		want int
	}
	var cases []tc
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		tb := tiffBuilder{bo}
		for o := 1; o <= 8; o++ {
			cases = append(cases, tc{fmt.Sprintf("%v/%d", bo, o), exifBlob(bo, uint16(o)), o})
		}
		for _, o := range []uint16{0, 9, 255, 0xFFFF} {
			cases = append(cases, tc{fmt.Sprintf("%v/out-of-range-%d", bo, o), exifBlob(bo, o), 1})
		}
		cases = append(cases,
			tc{fmt.Sprintf("%v/long", bo), orientationOnly(bo, 4, 1, tb.long(6)), 6},
			tc{fmt.Sprintf("%v/long-huge", bo), orientationOnly(bo, 4, 1, tb.long(0x10006)), 1},
			tc{fmt.Sprintf("%v/ascii", bo), orientationOnly(bo, 2, 2, []byte("6\x00")), 1},
			tc{fmt.Sprintf("%v/short-count-0", bo), orientationOnly(bo, 3, 0, tb.short(6)), 1},
			tc{fmt.Sprintf("%v/short-count-9", bo), orientationOnly(bo, 3, 9, tb.short(6)), 1},
		)
		// Every truncation of a valid blob gives 1 once the entry is cut.
		full := exifBlob(bo, 7)
		for n := 0; n < len(full); n++ {
			want := 1
			// IFD0 starts at 8 with a 2-byte count; the Orientation entry
			// is the second entry, bytes 22..34.
			if n >= 8+2+12*2 {
				want = 7
			}
			cases = append(cases, tc{fmt.Sprintf("%v/truncated-%d", bo, n), full[:n], want})
		}
	}
	be := tiffBuilder{binary.BigEndian}
	cases = append(cases,
		tc{"empty", nil, 1},
		tc{"garbage", []byte("this is not TIFF at all, no sir"), 1},
		tc{"bad-order", append([]byte("IM"), exifBlob(binary.LittleEndian, 6)[2:]...), 1},
		tc{"bad-magic", append([]byte{'M', 'M', 0, 43}, exifBlob(binary.BigEndian, 6)[4:]...), 1},
		tc{"ifd-past-end", append([]byte{'M', 'M', 0, 42, 0xFF, 0xFF, 0xFF, 0xF0}, exifBlob(binary.BigEndian, 6)[8:]...), 1},
		tc{"ifd-in-header", append([]byte{'M', 'M', 0, 42, 0, 0, 0, 2}, exifBlob(binary.BigEndian, 6)[8:]...), 1},
		tc{"loop", loopTIFF(), 1},
		tc{"huge-count", append(be.header(), append(be.short(0xFFFF), exifBlob(binary.BigEndian, 6)[10:]...)...), 6},
		tc{"zero-count", append(be.header(), append(be.short(0), exifBlob(binary.BigEndian, 6)[10:]...)...), 1},
	)
	for _, c := range cases {
		if got := exifOrientation(c.blob); got != c.want {
			t.Errorf("%s: orientation %d, want %d", c.name, got, c.want)
		}
	}
}

func TestJPEGOrientation(t *testing.T) {
	jpg := encodeJPEGTest(t, quadrants(16, 16), 80)
	exif := func(o uint16) []byte {
		return segment(0xE1, append([]byte("Exif\x00\x00"), exifBlob(binary.LittleEndian, o)...))
	}
	xmp := segment(0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>"))
	jfif := segment(0xE0, []byte("JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00"))
	cases := []struct {
		name string
		b    []byte
		want int
	}{
		{"none", jpg, 1},
		{"exif-6", insertAfterSOI(jpg, exif(6)), 6},
		{"after-jfif-and-xmp", insertAfterSOI(jpg, jfif, xmp, exif(8)), 8},
		{"first-exif-wins", insertAfterSOI(jpg, exif(3), exif(5)), 3},
		{"fill-bytes", insertAfterSOI(jpg, []byte{0xFF, 0xFF}, exif(2)), 2},
		{"not-exif-app1", insertAfterSOI(jpg, segment(0xE1, append([]byte("Exig\x00\x00"), exifBlob(binary.LittleEndian, 6)...))), 1},
		{"short-segment-length", insertAfterSOI(jpg, []byte{0xFF, 0xE1, 0x00, 0x01}, exif(6)), 1},
		{"segment-past-end", append([]byte{0xFF, 0xD8}, exif(6)[:30]...), 1},
		{"after-sos", append(jpg[:len(jpg)-2], append(exif(6), 0xFF, 0xD9)...), 1},
		{"garbage-between", insertAfterSOI(jpg, []byte{0x00}, exif(6)), 1},
	}
	for _, c := range cases {
		if got := jpegOrientation(c.b); got != c.want {
			t.Errorf("%s: orientation %d, want %d", c.name, got, c.want)
		}
	}
}

func TestWebPOrientation(t *testing.T) {
	simple := readFixture(t, "webp/stored-1.webp")
	le := exifBlob(binary.LittleEndian, 6)
	withPrefix := append([]byte("Exif\x00\x00"), exifBlob(binary.BigEndian, 5)...)
	cut := extendedWebP(t, simple, 64, 48, le, nil)
	cases := []struct {
		name string
		b    []byte
		want int
	}{
		{"simple", simple, 1},
		{"exif", extendedWebP(t, simple, 64, 48, le, nil), 6},
		{"exif-and-xmp", extendedWebP(t, simple, 64, 48, exifBlob(binary.BigEndian, 4), []byte("<x/>")), 4},
		{"exif-prefix", extendedWebP(t, simple, 64, 48, withPrefix, nil), 5},
		{"odd-chunk-first", riffFile(riffChunk("ABCD", []byte{1, 2, 3}), riffChunk("EXIF", le)), 6},
		{"truncated", cut[:len(cut)-10], 1},
		{"riff-size-cuts-exif", func() []byte {
			b := append([]byte{}, cut...)
			binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-20))
			return b
		}(), 1},
		{"huge-chunk", riffFile(append([]byte("VP8X\xff\xff\xff\xff"), make([]byte, 10)...), riffChunk("EXIF", le)), 1},
		{"short", []byte("RIFF"), 1},
	}
	for _, c := range cases {
		if got := webpOrientation(c.b); got != c.want {
			t.Errorf("%s: orientation %d, want %d", c.name, got, c.want)
		}
	}
}

// FuzzOrientation checks that the EXIF readers never panic and always
// give a valid orientation.
func FuzzOrientation(f *testing.F) {
	f.Add(exifBlob(binary.LittleEndian, 6))
	f.Add(exifBlob(binary.BigEndian, 8))
	f.Add(loopTIFF())
	f.Fuzz(func(t *testing.T, b []byte) {
		for name, fn := range map[string]func([]byte) int{
			"exif": exifOrientation, "jpeg": jpegOrientation, "webp": webpOrientation,
		} {
			if o := fn(b); o < 1 || o > 8 {
				t.Fatalf("%s orientation %d", name, o)
			}
		}
	})
}
