package picture

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"testing"
)

// refPlane is one plane of the image/jpeg decoding of a file.
type refPlane struct {
	pix    []byte
	stride int
	w, h   int // samples that belong to the picture
}

// refPlanes decodes data with image/jpeg and returns its planes.
func refPlanes(t *testing.T, data []byte) (planes []refPlane, fx, fy int) {
	t.Helper()
	m, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("image/jpeg: %v", err)
	}
	p := planarOf(m)
	if p == nil {
		t.Fatalf("image/jpeg gave %T", m)
	}
	w, h := m.Bounds().Dx(), m.Bounds().Dy()
	planes = append(planes, refPlane{p.y, p.yStride, w, h})
	if p.cb != nil {
		cw, ch := (w+p.fx-1)/p.fx, (h+p.fy-1)/p.fy
		planes = append(planes, refPlane{p.cb, p.cStride, cw, ch}, refPlane{p.cr, p.cStride, cw, ch})
	}
	return planes, p.fx, p.fy
}

// compareScaled decodes data with the scaled decoder at n/8 and compares
// every complete output sample with the mean of the d×d samples it
// stands for in the image/jpeg decoding. It returns the largest and the
// mean absolute difference.
func compareScaled(t *testing.T, data []byte, n int) (maxDiff, meanDiff float64) {
	t.Helper()
	var f jpegFrame
	pos, err := f.parse(data)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	p, canvas, err := f.decodeAny(data, pos, n)
	if err != nil {
		t.Fatalf("decode at %d/8: %v", n, err)
	}
	if want := image.Rect(0, 0, (f.width*n+7)/8, (f.height*n+7)/8); canvas != want {
		t.Fatalf("canvas %v, want %v", canvas, want)
	}
	if sq := centreSquare(canvas); !sq.In(p.rect) {
		t.Fatalf("decoded area %v does not cover the centre square %v", p.rect, sq)
	}
	ref, fx, fy := refPlanes(t, data)
	if p.fx != fx || p.fy != fy || (p.cb == nil) != (len(ref) == 1) {
		t.Fatalf("layout %dx%d (chroma %v), image/jpeg %dx%d", p.fx, p.fy, p.cb != nil, fx, fy)
	}
	d := 8 / n
	type plane struct {
		pix    []byte
		stride int
		x0, y0 int // plane coordinates of pix[0]
	}
	got := []plane{{p.y, p.yStride, p.rect.Min.X, p.rect.Min.Y}}
	if p.cb != nil {
		got = append(got, plane{p.cb, p.cStride, p.rect.Min.X / fx, p.rect.Min.Y / fy},
			plane{p.cr, p.cStride, p.rect.Min.X / fx, p.rect.Min.Y / fy})
	}
	var sum float64
	count := 0
	for i, g := range got {
		r := ref[i]
		rows := len(g.pix) / g.stride
		for y := 0; y < rows; y++ {
			for x := 0; x < g.stride; x++ {
				sx, sy := (g.x0+x)*d, (g.y0+y)*d
				if sx+d > r.w || sy+d > r.h {
					continue
				}
				mean := 0.0
				for j := 0; j < d; j++ {
					for k := 0; k < d; k++ {
						mean += float64(r.pix[(sy+j)*r.stride+sx+k])
					}
				}
				mean /= float64(d * d)
				diff := math.Abs(float64(g.pix[y*g.stride+x]) - mean)
				maxDiff = max(maxDiff, diff)
				sum += diff
				count++
			}
		}
	}
	if count == 0 {
		t.Fatal("nothing compared")
	}
	return maxDiff, sum / float64(count)
}

func TestScaledDecoderMatchesStdlib(t *testing.T) {
	inputs := map[string][]byte{
		"stdlib-420-203x157": encodeJPEGTest(t, photo(203, 157), 90),
		"stdlib-420-17x33":   encodeJPEGTest(t, photo(17, 33), 75),
		"stdlib-420-8x8":     encodeJPEGTest(t, photo(8, 8), 95),
		"stdlib-gray":        encodeJPEGTest(t, lumaOf(photo(150, 101)), 90),
		"stdlib-q100":        encodeJPEGTest(t, photo(64, 64), 100),
	}
	for _, name := range []string{"sample-444", "sample-422", "sample-440", "sample-411", "sample-410",
		"restart-rows", "restart-mcus", "optimized", "gray", "progressive",
		"progressive-444", "progressive-422", "progressive-gray"} {
		inputs[name] = readFixture(t, "jpeg/"+name+".jpg")
	}
	inputs["quad-progressive"] = readFixture(t, "quad-progressive.jpg")
	for name, data := range inputs {
		for _, n := range []int{8, 4, 2, 1} {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				maxD, meanD := compareScaled(t, data, n)
				t.Logf("max %.2f mean %.3f", maxD, meanD)
				// At full size only the inverse DCTs' rounding differs;
				// scaled, the mean of clamped pixels may differ from the
				// clamped mean where the picture touches 0 or 255.
				maxWant, meanWant := 1.0, 0.05
				if n < 8 {
					maxWant, meanWant = 2, 0.4
				}
				if maxD > maxWant || meanD > meanWant {
					t.Errorf("differs from image/jpeg: max %.2f (limit %.0f), mean %.3f (limit %.2f)", maxD, maxWant, meanD, meanWant)
				}
			})
		}
	}
}

// lumaOf returns the luma of a YCbCr picture as a grey picture.
func lumaOf(m *image.YCbCr) *image.Gray {
	g := image.NewGray(m.Rect)
	for y := 0; y < m.Rect.Dy(); y++ {
		copy(g.Pix[y*g.Stride:], m.Y[y*m.YStride:y*m.YStride+m.Rect.Dx()])
	}
	return g
}

func TestScaledDecoderScale(t *testing.T) {
	for _, c := range []struct{ side, n int }{
		{100, 8}, {639, 8}, {640, 8}, {1279, 8}, {1280, 4}, {2559, 4}, {2560, 2}, {5119, 2}, {5120, 1}, {60000, 1},
	} {
		if got := scaleFor(c.side, FullSize); got != c.n {
			t.Errorf("scaleFor(%d) = %d, want %d", c.side, got, c.n)
		}
	}
}

func TestScaledDecoderRejects(t *testing.T) {
	good := readFixture(t, "jpeg/restart-mcus.jpg")
	if _, _, err := decodeJPEGScaled(good, 16); err != nil {
		t.Fatalf("fixture not handled: %v", err)
	}
	wrongRST := bytes.Clone(good)
	i := bytes.Index(wrongRST, []byte{0xFF, 0xD1})
	if i < 0 {
		t.Fatal("no RST1 marker in the fixture")
	}
	wrongRST[i+1] = 0xD5
	cases := map[string][]byte{
		"truncated":             good[:len(good)*2/3],
		"wrong-rst":             wrongRST,
		"progressive-truncated": readFixture(t, "jpeg/progressive.jpg")[:3000],
		"arithmetic":            readFixture(t, "jpeg/arithmetic.jpg"),
		"rgb":                   readFixture(t, "jpeg/rgb.jpg"),
		"no-sos":                good[:bytes.Index(good, []byte{0xFF, 0xDA})],
	}
	for name, data := range cases {
		if _, _, err := decodeJPEGScaled(data, 16); err == nil {
			t.Errorf("%s: decoded, want it left to image/jpeg", name)
		}
		// Whatever the scaled decoder says, Process gives a clean answer.
		if _, err := Process(data, Limits{}); err != nil {
			matchesExactly(t, err, ErrUnsupported)
		}
	}
}

func TestScaledDecoderCropsToCentre(t *testing.T) {
	// A wide picture: only the MCU columns around the centre square are
	// kept, so memory follows the square, not the picture.
	data := encodeJPEGTest(t, bands(4000, 640), 80)
	p, canvas, err := decodeJPEGScaled(data, FullSize)
	if err != nil {
		t.Fatal(err)
	}
	if canvas.Dx() != 4000 || canvas.Dy() != 640 {
		t.Fatalf("canvas %v", canvas)
	}
	if p.rect.Dx() > 640+16 || p.rect.Min.X > 1680 || p.rect.Max.X < 2320 {
		t.Errorf("kept %v, want about x 1680..2320", p.rect)
	}
}

func TestScaledDecoderRestartFillBytes(t *testing.T) {
	// Fill bytes (0xFF) may stand before any marker, RSTn included.
	good := readFixture(t, "jpeg/restart-mcus.jpg")
	i := bytes.Index(good, []byte{0xFF, 0xD1})
	if i < 0 {
		t.Fatal("no RST1 marker in the fixture")
	}
	filled := append(append(bytes.Clone(good[:i]), 0xFF, 0xFF), good[i:]...)
	a, _, err := decodeJPEGScaled(good, 16)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := decodeJPEGScaled(filled, 16)
	if err != nil {
		t.Fatalf("with fill bytes: %v", err)
	}
	if !bytes.Equal(a.y, b.y) || !bytes.Equal(a.cb, b.cb) || !bytes.Equal(a.cr, b.cr) {
		t.Error("fill bytes changed the picture")
	}
}

// TestProgressiveRestart: restart intervals change only how the scans are
// coded (image/jpeg cannot read this file), so the planes must equal
// those of the same picture coded without them.
func TestProgressiveRestart(t *testing.T) {
	for _, n := range []int{8, 2, 1} {
		var a, b jpegFrame
		da, db := readFixture(t, "jpeg/progressive.jpg"), readFixture(t, "jpeg/progressive-restart.jpg")
		pa, err := a.parse(da)
		if err != nil {
			t.Fatal(err)
		}
		pb, err := b.parse(db)
		if err != nil || b.restart == 0 {
			t.Fatalf("%v, restart interval %d", err, b.restart)
		}
		x, _, err := a.decodeAny(da, pa, n)
		if err != nil {
			t.Fatal(err)
		}
		y, _, err := b.decodeAny(db, pb, n)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x.y, y.y) || !bytes.Equal(x.cb, y.cb) || !bytes.Equal(x.cr, y.cr) {
			t.Errorf("at %d/8 the planes differ", n)
		}
	}
}

// TestProgressiveScanBound: a progressive JPEG that repeats a refinement
// scan far more often than any encoder would is refused at once instead
// of costing a pass over every block per copy.
func TestProgressiveScanBound(t *testing.T) {
	data := readFixture(t, "jpeg/progressive.jpg")
	// The scans of the fixture; take a first-pass AC scan (Ah = 0), which
	// decodes the same however often it is repeated.
	var scans []int
	for i := 0; ; i += 2 {
		j := bytes.Index(data[i:], []byte{0xFF, 0xDA})
		if j < 0 {
			break
		}
		i += j
		scans = append(scans, i)
	}
	eoi := bytes.LastIndex(data, []byte{0xFF, 0xD9})
	var scan []byte
	for k, at := range scans {
		ns := int(data[at+4])
		ss, ahal := data[at+5+2*ns], data[at+7+2*ns]
		if ns == 1 && ss > 0 && ahal>>4 == 0 && k+1 < len(scans) {
			scan = data[at:scans[k+1]]
			break
		}
	}
	if scan == nil || eoi < 0 {
		t.Fatal("no first-pass AC scan in the fixture")
	}
	repeat := func(n int) []byte {
		b := bytes.Clone(data[:eoi])
		for i := 0; i < n; i++ {
			b = append(b, scan...)
		}
		return append(b, 0xFF, 0xD9)
	}
	if _, _, err := decodeJPEGScaled(repeat(2), 16); err != nil {
		t.Fatalf("two repeated scans: %v", err)
	}
	bad := repeat(250)
	if _, _, err := decodeJPEGScaled(bad, 16); !errors.Is(err, errJPEGScans) {
		t.Fatalf("250 repeated scans: %v, want errJPEGScans", err)
	}
	_, err := Process(bad, Limits{})
	matchesExactly(t, err, ErrUnsupported)
}

// TestCMYKScaled compares the scaled decoder's CMYK and YCCK pictures
// with image/jpeg's followed by the same box shrink, at full scale shrunk
// by 2 and decoded at half scale.
func TestCMYKScaled(t *testing.T) {
	// ImageMagick writes YCCK (Adobe transform 2); the same bytes read as
	// CMYK (transform 0) make another picture, which both decoders must
	// agree on too.
	ycck := readFixture(t, "jpeg/cmyk-gradient.jpg")
	cmyk := bytes.Clone(ycck)
	i := bytes.Index(cmyk, []byte("Adobe"))
	if i < 0 || cmyk[i+11] != 2 {
		t.Fatal("no Adobe segment saying YCCK in the fixture")
	}
	cmyk[i+11] = 0
	for name, data := range map[string][]byte{"cmyk": cmyk, "ycck": ycck} {
		t.Run(name, func(t *testing.T) {
			m, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			box, k := shrinkPlan(m.Bounds())
			if k != 2 {
				t.Fatalf("k = %d, want 2", k)
			}
			want := shrinkImage(m, box, k, ycc{})
			for _, n := range []int{8, 4} {
				var f jpegFrame
				pos, err := f.parse(data)
				if err != nil {
					t.Fatal(err)
				}
				p, _, err := f.decodeAny(data, pos, n)
				if err != nil {
					t.Fatal(err)
				}
				var got *rgbImage
				if n == 8 {
					got = shrinkPlanar(p, box, 2)
				} else {
					got = shrinkPlanar(p, image.Rect(box.Min.X/2, box.Min.Y/2, box.Max.X/2, box.Max.Y/2), 1)
				}
				var sum, maxD int
				for i := range got.pix {
					d := abs(int(got.pix[i]) - int(want.pix[i]))
					sum += d
					maxD = max(maxD, d)
				}
				mean := float64(sum) / float64(len(got.pix))
				t.Logf("n=%d: max %d, mean %.3f", n, maxD, mean)
				if maxD > 6 || mean > 0.75 {
					t.Errorf("n=%d: differs from image/jpeg by up to %d, %.3f on average", n, maxD, mean)
				}
			}
		})
	}
}
