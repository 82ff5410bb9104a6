package picture

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"math"
	"testing"
)

// psnr compares two pictures of the same size over their RGB channels.
func psnr(t *testing.T, a, b image.Image) float64 {
	t.Helper()
	if a.Bounds().Size() != b.Bounds().Size() {
		t.Fatalf("sizes %v and %v differ", a.Bounds(), b.Bounds())
	}
	var se float64
	n := 0
	ab, bb := a.Bounds(), b.Bounds()
	for y := 0; y < ab.Dy(); y++ {
		for x := 0; x < ab.Dx(); x++ {
			ca, cb := rgbaAt(a, ab.Min.X+x, ab.Min.Y+y), rgbaAt(b, bb.Min.X+x, bb.Min.Y+y)
			for _, d := range []int{int(ca.R) - int(cb.R), int(ca.G) - int(cb.G), int(ca.B) - int(cb.B)} {
				se += float64(d * d)
				n++
			}
		}
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}

// decodeRGB runs the pipeline up to the decode and converts the centre
// square of the decoded picture to RGB at full size, with the colour
// conversion the pipeline uses.
func decodeRGB(t *testing.T, data []byte) (*rgbImage, image.Rectangle) {
	t.Helper()
	j := &job{data: data, max: DefaultMaxPixels}
	for _, s := range []func(*job) error{stepSniff, stepLimits, stepDecode} {
		if err := s(j); err != nil {
			t.Fatal(err)
		}
	}
	sq := centreSquare(j.canvas)
	if j.planes != nil {
		return shrinkPlanar(j.planes, sq, 1), sq
	}
	return shrinkImage(j.img, sq, 1, j.cc), sq
}

// TestWebPColoursMatchLibwebp compares portrait's decode of a lossy WebP
// with libwebp's own (dwebp -nofancy, which upsamples chroma the same
// way). x/image/webp hands back VP8's limited-range samples as
// full-range image.YCbCr; read that way the picture comes out about 6
// levels too bright.
func TestWebPColoursMatchLibwebp(t *testing.T) {
	got, sq := decodeRGB(t, readFixture(t, "webp/photo-lossy.webp"))
	ref, err := png.Decode(bytes.NewReader(readFixture(t, "webp/photo-lossy-dwebp.png")))
	if err != nil {
		t.Fatal(err)
	}
	var sum [3]int
	maxd := 0
	for y := 0; y < got.h; y++ {
		for x := 0; x < got.w; x++ {
			c := rgbaAt(ref, sq.Min.X+x, sq.Min.Y+y)
			p := got.pix[3*(y*got.w+x):]
			for i, d := range []int{int(p[0]) - int(c.R), int(p[1]) - int(c.G), int(p[2]) - int(c.B)} {
				sum[i] += d
				maxd = max(maxd, abs(d))
			}
		}
	}
	n := float64(got.w * got.h)
	for i, s := range sum {
		if bias := float64(s) / n; math.Abs(bias) > 0.5 {
			t.Errorf("channel %d: mean difference from libwebp %.2f levels", i, bias)
		}
	}
	if maxd > 3 {
		t.Errorf("largest difference from libwebp: %d levels", maxd)
	}
}

// TestWebPMatchesItsPNG runs the pipeline on the WebP and on libwebp's
// decode of it: the outputs must be as close as two encodes of one
// picture.
func TestWebPMatchesItsPNG(t *testing.T) {
	eachDecoders(t, func(t *testing.T, _ bool) { testWebPMatchesItsPNG(t) })
}

func testWebPMatchesItsPNG(t *testing.T) {
	a, err := Process(readFixture(t, "webp/photo-lossy.webp"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Process(readFixture(t, "webp/photo-lossy-dwebp.png"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if p := psnr(t, decodeOut(t, a.Full, FullSize), decodeOut(t, b.Full, FullSize)); p < 38 {
		t.Errorf("PSNR of the WebP's output against its PNG's: %.1f dB, want ≥ 38", p)
	}
}

func TestAnimatedWebPFirstFrame(t *testing.T) {
	res, err := Process(readFixture(t, "webp/animated.webp"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != WebP || res.Width != 160 || res.Height != 120 {
		t.Errorf("source %s %dx%d, want webp 160x120", res.Source, res.Width, res.Height)
	}
	checkQuadrants(t, res.Full) // the second frame is all blue
}

// animation builds an animated WebP of a w×h canvas whose first frame is
// the still (simple format) WebP frame at (x, y), followed by a second
// frame of the same picture.
func animation(t testing.TB, w, h, x, y int, frame []byte) []byte {
	t.Helper()
	var fw, fh int
	var body [][]byte
	for _, c := range webpChunks(t, frame) {
		body = append(body, riffChunk(c.id, c.data))
	}
	cfg, err := parseWebP(frame)
	if err != nil {
		t.Fatal(err)
	}
	fw, fh = cfg.width, cfg.height
	anmf := make([]byte, 16)
	put24(anmf[0:], x/2)
	put24(anmf[3:], y/2)
	put24(anmf[6:], fw-1)
	put24(anmf[9:], fh-1)
	put24(anmf[12:], 100)
	for _, c := range body {
		anmf = append(anmf, c...)
	}
	vp8x := make([]byte, 10)
	vp8x[0] = 0x02 | 0x10
	put24(vp8x[4:], w-1)
	put24(vp8x[7:], h-1)
	anim := []byte{255, 255, 255, 255, 0, 0}
	return riffFile(riffChunk("VP8X", vp8x), riffChunk("ANIM", anim), riffChunk("ANMF", anmf), riffChunk("ANMF", anmf))
}

// TestAnimatedWebPOffsetFrame: a first frame smaller than the canvas is
// placed at its offset, on transparent (white) canvas.
func TestAnimatedWebPOffsetFrame(t *testing.T) {
	for _, name := range []string{"webp/stored-1.webp", "webp/quad-lossy.webp"} {
		t.Run(name, func(t *testing.T) {
			frame := readFixture(t, name)
			info, err := parseWebP(frame)
			if err != nil {
				t.Fatal(err)
			}
			// The frame fills the middle third of a square canvas.
			side := 3 * max(info.width, info.height)
			side += side % 2
			x, y := (side-info.width)/2&^1, (side-info.height)/2&^1
			res, err := Process(animation(t, side, side, x, y, frame), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			m := decodeOut(t, res.Full, FullSize)
			white := color.RGBA{255, 255, 255, 255}
			for _, p := range []image.Point{{10, 10}, {FullSize - 10, FullSize / 2}, {FullSize / 2, FullSize - 10}} {
				if c := rgbaAt(m, p.X, p.Y); !near(c, white, 3) {
					t.Errorf("canvas at %v is %v, want white", p, c)
				}
			}
			s := float64(FullSize) / float64(side)
			at := func(fx, fy float64) color.RGBA {
				return rgbaAt(m, int((float64(x)+fx*float64(info.width))*s), int((float64(y)+fy*float64(info.height))*s))
			}
			for _, q := range []struct {
				fx, fy float64
				want   string
			}{{0.25, 0.25, "red"}, {0.75, 0.25, "green"}, {0.25, 0.75, "blue"}, {0.75, 0.75, "yellow"}} {
				if c := at(q.fx, q.fy); nearestQuad(c) != q.want || near(c, white, 20) {
					t.Errorf("frame at (%.2f,%.2f) is %v, want %s", q.fx, q.fy, c, q.want)
				}
			}
		})
	}
}

func TestWebPContainerErrors(t *testing.T) {
	frame := readFixture(t, "webp/stored-1.webp")
	good := animation(t, 100, 100, 10, 10, frame)
	outside := animation(t, 64, 48, 2, 0, frame) // 64 wide at x=2 on a 64 canvas
	noFrames := riffFile(riffChunk("VP8X", []byte{0x02, 0, 0, 0, 9, 0, 0, 9, 0, 0}), riffChunk("ANIM", make([]byte, 6)))
	truncated := good[:len(good)-40]
	if _, err := Process(good, Limits{}); err != nil {
		t.Fatalf("good animation: %v", err)
	}
	for name, b := range map[string][]byte{"frame outside": outside, "no frames": noFrames, "truncated": truncated} {
		_, err := Process(b, Limits{})
		matchesExactly(t, err, ErrUnsupported)
		if err != nil {
			t.Logf("%s: %v", name, err)
		}
	}
}

// quadMeans returns the mean colour of the middle of each quadrant of a
// FullSize output: top left, top right, bottom left, bottom right.
func quadMeans(t *testing.T, out []byte) [4]color.RGBA {
	t.Helper()
	m := decodeOut(t, out, FullSize)
	var res [4]color.RGBA
	for i, c := range [4]image.Point{{1, 1}, {3, 1}, {1, 3}, {3, 3}} {
		var r, g, b, n int
		for y := c.Y*FullSize/4 - 40; y < c.Y*FullSize/4+40; y++ {
			for x := c.X*FullSize/4 - 40; x < c.X*FullSize/4+40; x++ {
				p := rgbaAt(m, x, y)
				r, g, b, n = r+int(p.R), g+int(p.G), b+int(p.B), n+1
			}
		}
		res[i] = color.RGBA{uint8(r / n), uint8(g / n), uint8(b / n), 255}
	}
	return res
}

func TestAVIFAndHEIC(t *testing.T) {
	eachDecoders(t, testAVIFAndHEIC)
}

func testAVIFAndHEIC(t *testing.T, system bool) {
	quads := [4]color.RGBA{qRed, qGreen, qBlue, qYellow}
	for _, c := range []struct {
		name   string
		source Format
		w, h   int
		want   [4]color.RGBA // TL, TR, BL, BR as displayed
	}{
		{"avif/quad.avif", AVIF, 160, 120, quads},
		{"avif/quad-10bit.avif", AVIF, 160, 120, quads},
		// irot 1: a quarter turn anticlockwise.
		{"avif/quad-irot1.avif", AVIF, 120, 160, [4]color.RGBA{qGreen, qYellow, qRed, qBlue}},
		// imir 0: top and bottom exchanged; imir 1: left and right.
		{"avif/quad-imir0.avif", AVIF, 160, 120, [4]color.RGBA{qBlue, qYellow, qRed, qGreen}},
		{"avif/quad-imir1.avif", AVIF, 160, 120, [4]color.RGBA{qGreen, qRed, qYellow, qBlue}},
		{"heic/quad.heic", HEIC, 160, 120, quads},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := Process(readFixture(t, c.name), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Source != c.source || res.Width != c.w || res.Height != c.h {
				t.Errorf("source %s %dx%d, want %s %dx%d", res.Source, res.Width, res.Height, c.source, c.w, c.h)
			}
			for i, got := range quadMeans(t, res.Full) {
				if !near(got, c.want[i], 6) {
					t.Errorf("quadrant %d is %v, want %v", i, got, c.want[i])
				}
			}
			checkClean(t, res.Full)
			checkClean(t, res.Preview)
		})
	}
	for _, c := range []struct {
		name  string
		bands int // how many of alphaBandsWant, from the right, to check
	}{
		{"avif/alpha.avif", 3},
		// The built-in HEIC decoder hands back the colour planes only:
		// the transparent bands show their stored colour, the opaque one
		// is right. The system's libheif gives the transparency.
		{"heic/alpha.heic", map[bool]int{false: 1, true: 3}[system]},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := Process(readFixture(t, c.name), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			m := decodeOut(t, res.Full, FullSize)
			for _, b := range alphaBandsWant[len(alphaBandsWant)-c.bands:] {
				if got := rgbaAt(m, b.x, FullSize/2); !near(got, b.want, 8) {
					t.Errorf("band at x=%d is %v, want %v", b.x, got, b.want)
				}
			}
		})
	}
}

func TestSniffHEIF(t *testing.T) {
	ftyp := func(major string, compat ...string) []byte {
		b := []byte{0, 0, 0, 0}
		b = append(b, "ftyp"+major+"\x00\x00\x00\x00"...)
		for _, c := range compat {
			b = append(b, c...)
		}
		binary.BigEndian.PutUint32(b, uint32(len(b)))
		return append(b, "\x00\x00\x00\x08free"...)
	}
	for _, c := range []struct {
		b    []byte
		want Format
	}{
		{ftyp("avif", "mif1", "miaf"), AVIF},
		{ftyp("mif1", "avif"), AVIF},
		{ftyp("heic", "mif1"), HEIC},
		{ftyp("mif1", "heic"), HEIC},
		{ftyp("heix"), HEIC},
		{ftyp("mif1", "miaf"), ""},
		{ftyp("isom", "mp41"), ""},
		{ftyp("qt  "), ""},
	} {
		if got := sniffHEIF(c.b); got != c.want {
			t.Errorf("sniffHEIF(%q) = %q, want %q", c.b, got, c.want)
		}
	}
	if f, err := Sniff(readFixture(t, "avif/quad.avif")); f != AVIF || err != nil {
		t.Errorf("Sniff(avif) = %q, %v", f, err)
	}
	if f, err := Sniff(readFixture(t, "heic/quad.heic")); f != HEIC || err != nil {
		t.Errorf("Sniff(heic) = %q, %v", f, err)
	}
}

func TestHEIFOrientationTable(t *testing.T) {
	for _, c := range []struct {
		tr   []heifTransform
		want int
	}{
		{nil, 1},
		{[]heifTransform{{'r', 1}}, 8},
		{[]heifTransform{{'r', 2}}, 3},
		{[]heifTransform{{'r', 3}}, 6},
		{[]heifTransform{{'m', 0}}, 4},
		{[]heifTransform{{'m', 1}}, 2},
		// libavif writes EXIF 5 as irot 1 + imir 0, and 7 as irot 1 + imir 1.
		{[]heifTransform{{'r', 1}, {'m', 0}}, 5},
		{[]heifTransform{{'r', 1}, {'m', 1}}, 7},
		{[]heifTransform{{'r', 2}, {'r', 2}}, 1},
	} {
		if got := (&heifInfo{transforms: c.tr}).orientation(); got != c.want {
			t.Errorf("%v: orientation %d, want %d", c.tr, got, c.want)
		}
	}
}

func TestHEIFErrors(t *testing.T) {
	good := readFixture(t, "avif/quad.avif")
	for name, b := range map[string][]byte{
		"ftyp only":  good[:32],
		"cut meta":   good[:100],
		"bad size":   append(append([]byte{}, good[:40]...), 0xFF, 0xFF, 0xFF, 0xFF),
		"zero bytes": append(append([]byte{}, good[:28]...), make([]byte, 64)...),
	} {
		_, err := Process(b, Limits{})
		matchesExactly(t, err, ErrUnsupported)
		if err != nil {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestAnimatedWebPOrientation: the EXIF chunk of an animated WebP turns
// its first frame like that of a still one, and no metadata is kept.
func TestAnimatedWebPOrientation(t *testing.T) {
	// The stored pixels are 48×64: the quadrants turned for orientation 6.
	anim := animation(t, 48, 64, 0, 0, readFixture(t, "webp/stored-6.webp"))
	body := anim[12:]
	withExif := riffFile(body, riffChunk("EXIF", exifBlob(binary.LittleEndian, 6)))
	withExif[20] |= 0x08 // VP8X: EXIF present
	res, err := Process(withExif, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Width != 64 || res.Height != 48 {
		t.Errorf("size %dx%d, want 64x48", res.Width, res.Height)
	}
	checkQuadrants(t, res.Full)
	checkClean(t, res.Full)
	checkClean(t, res.Preview)
}
