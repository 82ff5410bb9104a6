package picture

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// orientedJPEG makes a JPEG of the w×h quadrant picture stored as a
// camera would for orientation o, with an APP1 EXIF segment saying so.
func orientedJPEG(t testing.TB, w, h, o int, bo binary.ByteOrder) []byte {
	jpg := encodeJPEGTest(t, storedAs(quadrants(w, h), o), 92)
	return insertAfterSOI(jpg, segment(0xE1, append([]byte("Exif\x00\x00"), exifBlob(bo, uint16(o))...)))
}

// orientedWebP wraps the committed stored pixels for orientation o in an
// extended WebP with an EXIF chunk.
func orientedWebP(t testing.TB, o int) []byte {
	simple := readFixture(t, fmt.Sprintf("webp/stored-%d.webp", o))
	w, h := 64, 48
	if o >= 5 {
		w, h = h, w
	}
	return extendedWebP(t, simple, w, h, exifBlob(binary.LittleEndian, uint16(o)), nil)
}

func TestStoredAs(t *testing.T) {
	// The helper itself: orientation 6 means the stored picture must be
	// turned 90° clockwise to display, so the displayed top-left (red)
	// is stored at the bottom left.
	s := storedAs(quadrants(4, 2), 6)
	if s.Rect.Dx() != 2 || s.Rect.Dy() != 4 {
		t.Fatalf("stored size %v", s.Rect)
	}
	if got := nearestQuad(s.RGBAAt(0, 3)); got != "red" {
		t.Errorf("stored bottom-left is %s, want red", got)
	}
	if got := nearestQuad(s.RGBAAt(0, 0)); got != "green" {
		t.Errorf("stored top-left is %s, want green", got)
	}
}

func TestOrientationJPEG(t *testing.T) {
	for o := 1; o <= 8; o++ {
		// The large size goes through the scaled JPEG decoder at 1/2.
		for _, size := range [][2]int{{320, 240}, {1920, 1440}} {
			for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
				if size[0] > 320 && bo == binary.BigEndian {
					continue
				}
				t.Run(fmt.Sprintf("%d/%dx%d/%v", o, size[0], size[1], bo), func(t *testing.T) {
					res, err := Process(orientedJPEG(t, size[0], size[1], o, bo), Limits{})
					if err != nil {
						t.Fatal(err)
					}
					if res.Width != size[0] || res.Height != size[1] {
						t.Errorf("displayed size %dx%d, want %dx%d", res.Width, res.Height, size[0], size[1])
					}
					if res.Source != JPEG {
						t.Errorf("source %q", res.Source)
					}
					checkQuadrants(t, res.Full)
					decodeOut(t, res.Preview, PreviewSize)
				})
			}
		}
	}
}

func TestOrientationWebP(t *testing.T) {
	for o := 1; o <= 8; o++ {
		t.Run(fmt.Sprint(o), func(t *testing.T) {
			res, err := Process(orientedWebP(t, o), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Width != 64 || res.Height != 48 || res.Source != WebP {
				t.Errorf("got %s %dx%d, want webp 64x48", res.Source, res.Width, res.Height)
			}
			checkQuadrants(t, res.Full)
		})
	}
}

func TestOrientationPreview(t *testing.T) {
	// The preview is made after orienting, so it is upright too.
	res, err := Process(orientedJPEG(t, 320, 240, 6, binary.BigEndian), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m := decodeOut(t, res.Preview, PreviewSize)
	q, r := PreviewSize/4, 3*PreviewSize/4
	for _, p := range []struct {
		x, y int
		want string
	}{{q, q, "red"}, {r, q, "green"}, {q, r, "blue"}, {r, r, "yellow"}} {
		if got := nearestQuad(rgbaAt(m, p.x, p.y)); got != p.want {
			t.Errorf("preview at (%d,%d) is %s, want %s", p.x, p.y, got, p.want)
		}
	}
}

func TestOrientUnit(t *testing.T) {
	// orient on a tiny non-square picture, against storedAs: turning the
	// stored pixels must give back the displayed picture exactly.
	d := quadrants(6, 4)
	for o := 1; o <= 8; o++ {
		got := orient(storedAs(d, o), o)
		if got.Rect != d.Rect {
			t.Fatalf("orientation %d: size %v, want %v", o, got.Rect, d.Rect)
		}
		for i := range d.Pix {
			if got.Pix[i] != d.Pix[i] {
				t.Fatalf("orientation %d: pixels differ at byte %d", o, i)
			}
		}
	}
}
