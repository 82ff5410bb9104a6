package picture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
)

// pngHeader is a PNG signature and IHDR chunk declaring w×h RGBA, and
// nothing else.
func pngHeader(w, h uint32) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	chunk := append([]byte{0, 0, 0, 13}, "IHDR"...)
	chunk = append(chunk, ihdr...)
	crc := make([]byte, 4)
	binary.BigEndian.PutUint32(crc, crc32.ChecksumIEEE(chunk[4:]))
	return append(append([]byte("\x89PNG\r\n\x1a\n"), chunk...), crc...)
}

func TestSniff(t *testing.T) {
	pngFile := pngBytes(t, quadrants(4, 4))
	cases := []struct {
		name string
		b    []byte
		want Format
		err  error
	}{
		{"empty", nil, "", ErrEmpty},
		{"empty-slice", []byte{}, "", ErrEmpty},
		{"jpeg", encodeJPEGTest(t, quadrants(8, 8), 80), JPEG, nil},
		{"jpeg-magic-only", []byte{0xFF, 0xD8, 0xFF}, JPEG, nil},
		{"jpeg-truncated", []byte{0xFF, 0xD8}, "", ErrUnsupported},
		{"png", pngFile, PNG, nil},
		{"png-named-jpg", pngFile, PNG, nil}, // there is no file name: the bytes decide
		{"png-truncated", pngFile[:7], "", ErrUnsupported},
		{"gif87a", []byte("GIF87a...."), GIF, nil},
		{"gif89a", twoFrameGIF(t, 2, 2), GIF, nil},
		{"gif-other", []byte("GIF88a...."), "", ErrUnsupported},
		{"webp", readFixture(t, "webp/quad-lossy.webp"), WebP, nil},
		{"webp-header-only", []byte("RIFF\x00\x00\x00\x00WEBP"), WebP, nil},
		{"webp-truncated", []byte("RIFF\x00\x00\x00\x00WEB"), "", ErrUnsupported},
		{"riff-wave", []byte("RIFF\x24\x00\x00\x00WAVEfmt "), "", ErrUnsupported},
		{"text", []byte("<html><body>hello</body></html>"), "", ErrUnsupported},
		{"bmp", []byte("BM\x36\x00\x00\x00\x00\x00"), "", ErrUnsupported},
		{"one-byte", []byte{0xFF}, "", ErrUnsupported},
	}
	for _, c := range cases {
		got, err := Sniff(c.b)
		if got != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%s: Sniff = %q, %v; want %q, %v", c.name, got, err, c.want, c.err)
		}
	}
}

// bands makes a w×h picture split into three equal bands (vertical when
// w >= h, horizontal otherwise) coloured red, green and blue.
func bands(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	cols := []color.RGBA{{200, 20, 20, 255}, {20, 200, 20, 255}, {20, 20, 200, 255}}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := 3 * x / w
			if h > w {
				i = 3 * y / h
			}
			m.SetRGBA(x, y, cols[i])
		}
	}
	return m
}

func TestCropKeepsCentre(t *testing.T) {
	green := color.RGBA{20, 200, 20, 255}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"wide-png", pngBytes(t, bands(900, 300))},
		{"tall-png", pngBytes(t, bands(300, 900))},
		{"wide-jpeg", encodeJPEGTest(t, bands(3000, 1000), 90)},
		{"tall-jpeg", encodeJPEGTest(t, bands(1000, 3000), 90)},
		{"wide-jpeg-huge", encodeJPEGTest(t, bands(9000, 1500), 90)},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := Process(c.data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			m := decodeOut(t, res.Full, FullSize)
			for _, p := range [][2]int{{8, 8}, {FullSize - 9, 8}, {8, FullSize - 9}, {FullSize - 9, FullSize - 9}, {FullSize / 2, FullSize / 2}} {
				if c := rgbaAt(m, p[0], p[1]); !near(c, green, 24) {
					t.Errorf("at %v colour %v, want the green centre band", p, c)
				}
			}
			pv := decodeOut(t, res.Preview, PreviewSize)
			if c := rgbaAt(pv, PreviewSize/2, PreviewSize/2); !near(c, green, 24) {
				t.Errorf("preview centre %v, want green", c)
			}
		})
	}
}

func TestSizes(t *testing.T) {
	for _, s := range [][2]int{{1, 1}, {2, 3}, {100, 100}, {639, 641}, {640, 640}, {1279, 1280}, {2000, 7}, {5000, 20}} {
		res, err := Process(pngBytes(t, quadrants(s[0], s[1])), Limits{})
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		decodeOut(t, res.Full, FullSize)
		decodeOut(t, res.Preview, PreviewSize)
		if res.Width != s[0] || res.Height != s[1] {
			t.Errorf("%v: size %dx%d", s, res.Width, res.Height)
		}
	}
	// An upscaled 100×100 quadrant picture is still upright and sharp
	// enough to tell the quadrants apart.
	res, err := Process(encodeJPEGTest(t, quadrants(100, 100), 95), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkQuadrants(t, res.Full)
}

func TestAlphaPNG(t *testing.T) {
	check := func(t *testing.T, data []byte, tol int) {
		t.Helper()
		res, err := Process(data, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		m := decodeOut(t, res.Full, FullSize)
		for _, b := range alphaBandsWant {
			for _, y := range []int{40, FullSize / 2, FullSize - 40} {
				if c := rgbaAt(m, b.x, y); !near(c, b.want, tol) {
					t.Errorf("at (%d,%d) colour %v, want %v", b.x, y, c, b.want)
				}
			}
		}
	}
	t.Run("nrgba", func(t *testing.T) { check(t, pngBytes(t, alphaBands()), 6) })
	t.Run("nrgba64", func(t *testing.T) {
		src := alphaBands()
		m := image.NewNRGBA64(src.Rect)
		for y := 0; y < 96; y++ {
			for x := 0; x < 96; x++ {
				c := src.NRGBAAt(x, y)
				m.SetNRGBA64(x, y, color.NRGBA64{uint16(c.R) * 257, uint16(c.G) * 257, uint16(c.B) * 257, uint16(c.A) * 257})
			}
		}
		check(t, pngBytes(t, m), 6)
	})
	t.Run("paletted", func(t *testing.T) {
		src := alphaBands()
		pal := color.Palette{color.NRGBA{0, 0, 0, 0}, color.NRGBA{255, 0, 0, 128}, color.NRGBA{30, 30, 220, 255}}
		m := image.NewPaletted(src.Rect, pal)
		for y := 0; y < 96; y++ {
			for x := 0; x < 96; x++ {
				m.SetColorIndex(x, y, uint8(x/32))
			}
		}
		check(t, pngBytes(t, m), 6)
	})
	t.Run("webp-lossless", func(t *testing.T) { check(t, readFixture(t, "webp/alpha-lossless.webp"), 6) })
	t.Run("webp-lossy", func(t *testing.T) { check(t, readFixture(t, "webp/alpha-lossy.webp"), 16) }) // lossy colour
}

func TestFlattenPremultiplied(t *testing.T) {
	// The same half-transparent red, premultiplied and not, comes out the
	// same on white.
	box := image.Rect(0, 0, 4, 4)
	pre := image.NewRGBA(box)
	non := image.NewNRGBA(box)
	for y := 0; y < 4; y++ {
		for x := 0; x < 4; x++ {
			pre.SetRGBA(x, y, color.RGBA{128, 0, 0, 128})
			non.SetNRGBA(x, y, color.NRGBA{255, 0, 0, 128})
		}
	}
	want := []byte{255, 127, 127}
	for name, img := range map[string]image.Image{"rgba": pre, "nrgba": non} {
		for _, k := range []int{1, 2, 4} {
			out := shrinkImage(img, box, k, ycc{})
			for i, v := range out.pix {
				if abs(int(v)-int(want[i%3])) > 1 {
					t.Fatalf("%s k=%d: pixel bytes %v, want %v", name, k, out.pix[:3], want)
				}
			}
		}
	}
	// A fully transparent black pixel is white, an opaque one is itself.
	out := shrinkImage(&image.NRGBA{Pix: []byte{0, 0, 0, 0, 10, 20, 30, 255}, Stride: 8, Rect: image.Rect(0, 0, 2, 1)}, image.Rect(0, 0, 1, 1), 1, ycc{})
	if !bytes.Equal(out.pix, []byte{255, 255, 255}) {
		t.Errorf("transparent black gives %v", out.pix)
	}
	out = shrinkImage(&image.NRGBA{Pix: []byte{0, 0, 0, 0, 10, 20, 30, 255}, Stride: 8, Rect: image.Rect(0, 0, 2, 1)}, image.Rect(1, 0, 2, 1), 1, ycc{})
	if !bytes.Equal(out.pix, []byte{10, 20, 30}) {
		t.Errorf("opaque pixel gives %v", out.pix)
	}
}

func TestBoxShrinkAverages(t *testing.T) {
	// A 4:2:0 picture whose 3×3 blocks each hold one value: the box
	// shrink gives exactly those values back, for YCbCr and for the
	// generic path.
	src := image.NewYCbCr(image.Rect(0, 0, 12, 12), image.YCbCrSubsampleRatio444)
	for y := 0; y < 12; y++ {
		for x := 0; x < 12; x++ {
			src.Y[y*src.YStride+x] = byte(16 + 20*(x/3) + 50*(y/3))
			src.Cb[y*src.CStride+x] = 128
			src.Cr[y*src.CStride+x] = 128
		}
	}
	a := shrinkPlanar(planarOf(src), src.Rect, 3)
	b := shrinkImage(src, src.Rect, 3, ycc{})
	if a.w != 4 || b.w != 4 {
		t.Fatalf("sizes %d, %d", a.w, b.w)
	}
	for i := 0; i < 16; i++ {
		x, y := i%4, i/4
		want := int(16 + 20*x + 50*y)
		if abs(int(a.pix[3*i])-want) > 1 || abs(int(b.pix[3*i])-want) > 1 {
			t.Errorf("block (%d,%d): planar %d, generic %d, want %d", x, y, a.pix[3*i], b.pix[3*i], want)
		}
	}
	// Subsampled chroma is weighted by the luma pixels it covers: with
	// 4:2:0 and odd k, chroma samples straddle block edges.
	sub := image.NewYCbCr(image.Rect(0, 0, 9, 9), image.YCbCrSubsampleRatio420)
	for i := range sub.Y {
		sub.Y[i] = 128
	}
	for i := range sub.Cb {
		sub.Cb[i] = byte(100 + 10*(i%sub.CStride))
		sub.Cr[i] = 128
	}
	p := shrinkPlanar(planarOf(sub), sub.Rect, 3)
	g := shrinkImage(sub, sub.Rect, 3, ycc{})
	for i := range p.pix {
		if abs(int(p.pix[i])-int(g.pix[i])) > 2 {
			t.Fatalf("4:2:0 planar and generic differ at %d: %v vs %v", i, p.pix, g.pix)
		}
	}
}

func TestFormats(t *testing.T) {
	quad := quadrants(160, 120)
	pal := image.NewPaletted(quad.Rect, palette.Plan9)
	for y := 0; y < 120; y++ {
		for x := 0; x < 160; x++ {
			pal.Set(x, y, quad.At(x, y))
		}
	}
	deep := image.NewRGBA64(quad.Rect)
	for y := 0; y < 120; y++ {
		for x := 0; x < 160; x++ {
			deep.Set(x, y, quad.At(x, y))
		}
	}
	for _, c := range []struct {
		name   string
		data   []byte
		source Format
	}{
		{"jpeg-baseline", encodeJPEGTest(t, quad, 90), JPEG},
		{"jpeg-progressive", readFixture(t, "quad-progressive.jpg"), JPEG},
		{"jpeg-cmyk", readFixture(t, "quad-cmyk.jpg"), JPEG},
		{"png-rgba", pngBytes(t, quad), PNG},
		{"png-paletted", pngBytes(t, pal), PNG},
		{"png-16bit", pngBytes(t, deep), PNG},
		{"webp-lossy", readFixture(t, "webp/quad-lossy.webp"), WebP},
		{"webp-lossless", readFixture(t, "webp/stored-1.webp"), WebP},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := Process(c.data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Source != c.source {
				t.Errorf("source %q, want %q", res.Source, c.source)
			}
			checkQuadrants(t, res.Full)
			decodeOut(t, res.Preview, PreviewSize)
			checkClean(t, res.Full)
			checkClean(t, res.Preview)
		})
	}
}

func TestUnusualJPEGsUseStandardDecoder(t *testing.T) {
	for _, name := range []string{"jpeg/rgb.jpg", "jpeg/arithmetic.jpg"} {
		if _, _, err := decodeJPEGScaled(readFixture(t, name), FullSize); err == nil {
			t.Errorf("%s: the scaled decoder should leave it to image/jpeg", name)
		}
	}
	for _, name := range []string{"quad-progressive.jpg", "jpeg/progressive.jpg", "quad-cmyk.jpg", "jpeg/cmyk-gradient.jpg"} {
		if _, _, err := decodeJPEGScaled(readFixture(t, name), FullSize); err != nil {
			t.Errorf("%s: the scaled decoder should take it: %v", name, err)
		}
	}
}

func TestGrayJPEG(t *testing.T) {
	g := image.NewGray(image.Rect(0, 0, 300, 200))
	for y := 0; y < 200; y++ {
		for x := 0; x < 300; x++ {
			g.Pix[y*g.Stride+x] = 60
			if x >= 150 {
				g.Pix[y*g.Stride+x] = 190
			}
		}
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"jpeg", encodeJPEGTest(t, g, 90)},
		{"png", pngBytes(t, g)},
	} {
		res, err := Process(c.data, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		m := decodeOut(t, res.Full, FullSize)
		for _, p := range []struct{ x, v int }{{100, 60}, {540, 190}} {
			cl := rgbaAt(m, p.x, 320)
			if !near(cl, color.RGBA{uint8(p.v), uint8(p.v), uint8(p.v), 255}, 4) {
				t.Errorf("%s: at x=%d colour %v, want grey %d", c.name, p.x, cl, p.v)
			}
		}
	}
}

func TestGIFFirstFrame(t *testing.T) {
	red := color.RGBA{200, 20, 20, 255}
	res, err := Process(twoFrameGIF(t, 50, 40), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != GIF || res.Width != 50 || res.Height != 40 {
		t.Errorf("got %s %dx%d", res.Source, res.Width, res.Height)
	}
	m := decodeOut(t, res.Full, FullSize)
	for _, p := range [][2]int{{10, 10}, {320, 320}, {630, 630}} {
		if c := rgbaAt(m, p[0], p[1]); !near(c, red, 12) {
			t.Errorf("at %v colour %v, want the first frame's red", p, c)
		}
	}

	// A first frame covering only the left half of the screen, with a
	// transparent index: the rest of the screen is white.
	pal := color.Palette{color.RGBA{20, 20, 200, 255}, color.RGBA{}}
	f := image.NewPaletted(image.Rect(0, 0, 20, 40), pal)
	for y := 0; y < 40; y++ {
		for x := 10; x < 20; x++ {
			f.SetColorIndex(x, y, 1)
		}
	}
	var b bytes.Buffer
	err = gif.EncodeAll(&b, &gif.GIF{Image: []*image.Paletted{f}, Delay: []int{0},
		Config: image.Config{ColorModel: pal, Width: 40, Height: 40}})
	if err != nil {
		t.Fatal(err)
	}
	res, err = Process(b.Bytes(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m = decodeOut(t, res.Full, FullSize)
	for _, p := range []struct {
		x    int
		want color.RGBA
	}{{80, color.RGBA{20, 20, 200, 255}}, {240, color.RGBA{255, 255, 255, 255}}, {560, color.RGBA{255, 255, 255, 255}}} {
		if c := rgbaAt(m, p.x, 320); !near(c, p.want, 12) {
			t.Errorf("at x=%d colour %v, want %v", p.x, c, p.want)
		}
	}
}

func TestMetadataStripped(t *testing.T) {
	icc := segment(0xE2, append([]byte("ICC_PROFILE\x00\x01\x01"), bytes.Repeat([]byte{7}, 300)...))
	xmp := segment(0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><secret/></x:xmpmeta>"))
	exif := segment(0xE1, append([]byte("Exif\x00\x00"), exifBlob(binary.BigEndian, 1)...))
	com := segment(0xFE, []byte("shot at home"))
	iptc := segment(0xED, []byte("Photoshop 3.0\x00garbage"))
	jpg := insertAfterSOI(encodeJPEGTest(t, quadrants(200, 200), 90), exif, icc, xmp, iptc, com)
	in, err := jpegMarkers(jpg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(in, []byte{0xE1, 0xE2, 0xE1, 0xED, 0xFE}) {
		t.Fatalf("test input lacks its metadata: % X", in)
	}
	webpFile := extendedWebP(t, readFixture(t, "webp/stored-1.webp"), 64, 48,
		exifBlob(binary.LittleEndian, 1), []byte("<x:xmpmeta><secret/></x:xmpmeta>"))
	for name, data := range map[string][]byte{"jpeg": jpg, "webp": webpFile} {
		res, err := Process(data, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkClean(t, res.Full)
		checkClean(t, res.Preview)
		for _, out := range [][]byte{res.Full, res.Preview} {
			for _, s := range []string{"Exif", "ICC_PROFILE", "xmpmeta", "PortraitCam", "shot at home", "Photoshop"} {
				if bytes.Contains(out, []byte(s)) {
					t.Errorf("%s: output contains %q", name, s)
				}
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	inputs := map[string][]byte{
		"jpeg":  orientedJPEG(t, 1500, 1300, 6, binary.LittleEndian),
		"png":   pngBytes(t, alphaBands()),
		"webp":  readFixture(t, "webp/quad-lossy.webp"),
		"gif":   twoFrameGIF(t, 30, 30),
		"photo": encodeJPEGTest(t, photo(700, 900), 90),
	}
	for name, data := range inputs {
		a, err := Process(data, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Process(bytes.Clone(data), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Full, b.Full) || !bytes.Equal(a.Preview, b.Preview) {
			t.Errorf("%s: two runs give different bytes", name)
		}
	}
}

func TestLimits(t *testing.T) {
	huge := pngHeader(100000, 100000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := Process(huge, Limits{})
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	matchesExactly(t, err, ErrTooLarge)
	if want := "picture has too many pixels: 100000x100000 is over the limit of 60000000 pixels"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if elapsed > 100*time.Millisecond {
		t.Errorf("took %v", elapsed)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("allocated %d bytes refusing a header", n)
	}

	// MaxPixels is respected, at the boundary.
	small := pngBytes(t, quadrants(100, 100))
	if _, err := Process(small, Limits{MaxPixels: 10000}); err != nil {
		t.Errorf("100x100 with a limit of 10000: %v", err)
	}
	_, err = Process(small, Limits{MaxPixels: 9999})
	matchesExactly(t, err, ErrTooLarge)
	if err != nil && !strings.Contains(err.Error(), "100x100 is over the limit of 9999 pixels") {
		t.Errorf("message %q", err)
	}

	// Headers of the other formats.
	sof := []byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 2, 0, 0, 1, 0, 1, 0, 0, 0xFF, 0xC0, 0, 17, 8, 0xFF, 0xFF, 0xFF, 0xFF, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1}
	gifHdr := append([]byte("GIF89a"), 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0)
	vp8x := riffFile(riffChunk("VP8X", []byte{0, 0, 0, 0, 0x3F, 0x9C, 0, 0x3F, 0x9C, 0}))
	for name, data := range map[string][]byte{"jpeg": sof, "gif": gifHdr, "webp": vp8x} {
		_, err := Process(data, Limits{})
		matchesExactly(t, err, ErrTooLarge)
		if err != nil && !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestErrors(t *testing.T) {
	jpg := encodeJPEGTest(t, quadrants(64, 64), 90)
	pngFile := pngBytes(t, quadrants(64, 64))
	gifFile := twoFrameGIF(t, 64, 64)
	webpFile := readFixture(t, "webp/quad-lossy.webp")
	cases := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrEmpty, "file is empty"},
		{"text", []byte("hello"), ErrUnsupported, "unsupported media type"},
		{"jpeg-truncated", jpg[:len(jpg)/2], ErrUnsupported, "unsupported media type: corrupt jpeg"},
		{"jpeg-header-only", jpg[:200], ErrUnsupported, "unsupported media type: corrupt jpeg"},
		{"jpeg-magic-only", []byte{0xFF, 0xD8, 0xFF}, ErrUnsupported, "unsupported media type: corrupt jpeg"},
		{"jpeg-arithmetic", readFixture(t, "jpeg/arithmetic.jpg"), ErrUnsupported, "unsupported media type"},
		{"png-truncated", pngFile[:len(pngFile)-30], ErrUnsupported, "unsupported media type: corrupt png"},
		{"png-header-only", pngHeader(10, 10), ErrUnsupported, "unsupported media type: corrupt png"},
		{"png-zero-width", pngHeader(0, 10), ErrUnsupported, "unsupported media type: corrupt png"},
		{"gif-truncated", gifFile[:40], ErrUnsupported, "unsupported media type: corrupt gif"},
		{"webp-truncated", webpFile[:len(webpFile)/2], ErrUnsupported, "unsupported media type: corrupt webp"},
		{"webp-no-image", riffFile(riffChunk("EXIF", exifBlob(binary.LittleEndian, 6))), ErrUnsupported, "unsupported media type: corrupt webp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Process(c.data, Limits{})
			matchesExactly(t, err, c.want)
			if err != nil && !strings.HasPrefix(err.Error(), c.msg) {
				t.Errorf("message %q, want prefix %q", err, c.msg)
			}
			if res.Full != nil || res.Preview != nil {
				t.Error("result set with an error")
			}
		})
	}
}

func TestOutputIsBaselineJPEG(t *testing.T) {
	res, err := Process(encodeJPEGTest(t, photo(900, 700), 90), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		b    []byte
		size int
	}{{res.Full, FullSize}, {res.Preview, PreviewSize}} {
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(c.b))
		if err != nil || cfg.Width != c.size || cfg.Height != c.size {
			t.Errorf("config %+v, %v; want %d square", cfg, err, c.size)
		}
		checkClean(t, c.b)
	}
	// The output looks like the input: compare it with a plain
	// reference scaling of the centre square.
	src := photoRGBA(900, 700)
	m := decodeOut(t, res.Full, FullSize)
	var diff float64
	for y := 0; y < FullSize; y += 8 {
		for x := 0; x < FullSize; x += 8 {
			sx, sy := 100+(2*x+1)*700/(2*FullSize), (2*y+1)*700/(2*FullSize)
			a, b := rgbaAt(m, x, y), src.RGBAAt(sx, sy)
			diff += math.Abs(float64(a.G) - float64(b.G))
		}
	}
	if mean := diff / float64((FullSize/8)*(FullSize/8)); mean > 12 {
		t.Errorf("mean difference from the source %.1f", mean)
	}
}
