package picture

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The committed fixtures under testdata are made by TestFixtures from
// pictures generated here, with tools from Debian packages:
//
//	apt-get install -y libjpeg-turbo-progs webp imagemagick
//	go test -run TestFixtures -fixtures ./picture
//
// Nothing else needs the tools.
var fixturesFlag = flag.Bool("fixtures", false, "regenerate the fixtures under testdata (needs cjpeg, cwebp, convert-im6.q16)")

// alphaBands is a 96×96 picture with three vertical bands: fully
// transparent black, half-transparent red and opaque blue.
func alphaBands() *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, 96, 96))
	for y := 0; y < 96; y++ {
		for x := 0; x < 96; x++ {
			switch {
			case x < 32:
				m.SetNRGBA(x, y, color.NRGBA{0, 0, 0, 0})
			case x < 64:
				m.SetNRGBA(x, y, color.NRGBA{255, 0, 0, 128})
			default:
				m.SetNRGBA(x, y, color.NRGBA{30, 30, 220, 255})
			}
		}
	}
	return m
}

// Expected colours of the alphaBands picture flattened onto white.
var alphaBandsWant = []struct {
	x    int // output column at the middle of the band
	want color.RGBA
}{
	{FullSize / 6, color.RGBA{255, 255, 255, 255}},
	{FullSize / 2, color.RGBA{255, 127, 127, 255}},
	{5 * FullSize / 6, color.RGBA{30, 30, 220, 255}},
}

// photoRGBA is photo converted to RGBA.
func photoRGBA(w, h int) *image.RGBA {
	src := photo(w, h)
	m := image.NewRGBA(src.Rect)
	draw.Draw(m, m.Rect, src, image.Point{}, draw.Src)
	return m
}

// ppm encodes an opaque picture as a binary PPM, which cjpeg reads.
func ppm(m image.Image) []byte {
	b := m.Bounds()
	out := []byte(fmt.Sprintf("P6\n%d %d\n255\n", b.Dx(), b.Dy()))
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(m.At(x, y)).(color.RGBA)
			out = append(out, c.R, c.G, c.B)
		}
	}
	return out
}

func pngBytes(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// twoFrameGIF makes a w×h GIF whose first frame is red and second green.
func twoFrameGIF(t testing.TB, w, h int) []byte {
	t.Helper()
	pal := color.Palette{color.RGBA{200, 20, 20, 255}, color.RGBA{20, 200, 20, 255}}
	f1 := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	f2 := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	for i := range f2.Pix {
		f2.Pix[i] = 1
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &gif.GIF{Image: []*image.Paletted{f1, f2}, Delay: []int{10, 10}}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// runTool runs a command that makes fixtures, failing t with its output
// when it fails.
func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func TestFixtures(t *testing.T) {
	if !*fixturesFlag {
		t.Skip("run with -fixtures to regenerate the fixtures")
	}
	tmp := t.TempDir()
	write := func(dir, name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	td := "testdata"
	for _, d := range []string{"jpeg", "webp"} {
		if err := os.MkdirAll(filepath.Join(td, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// JPEG variants of a photo with odd dimensions, for the scaled decoder.
	photoPPM := write(tmp, "photo.ppm", ppm(photoRGBA(203, 157)))
	for name, args := range map[string][]string{
		"jpeg/sample-444.jpg":   {"-sample", "1x1"},
		"jpeg/sample-422.jpg":   {"-sample", "2x1"},
		"jpeg/sample-440.jpg":   {"-sample", "1x2"},
		"jpeg/sample-411.jpg":   {"-sample", "4x1"},
		"jpeg/sample-410.jpg":   {"-sample", "4x2"},
		"jpeg/restart-rows.jpg": {"-restart", "1"},
		"jpeg/restart-mcus.jpg": {"-restart", "3B"},
		"jpeg/optimized.jpg":    {"-optimize"},
		"jpeg/gray.jpg":         {"-grayscale", "-restart", "2B"},
		"jpeg/rgb.jpg":          {"-rgb"},
		"jpeg/arithmetic.jpg":   {"-arithmetic"},
		"jpeg/progressive.jpg":  {"-progressive"},
	} {
		args = append([]string{"-quality", "90"}, args...)
		args = append(args, "-outfile", filepath.Join(td, name), photoPPM)
		runTool(t, "cjpeg", args...)
	}

	// Quadrant pictures: progressive JPEG, CMYK JPEG, lossy WebP.
	quad := quadrants(160, 120)
	quadPPM := write(tmp, "quad.ppm", ppm(quad))
	quadPNG := write(tmp, "quad.png", pngBytes(t, quad))
	runTool(t, "cjpeg", "-quality", "90", "-progressive", "-outfile", filepath.Join(td, "quad-progressive.jpg"), quadPPM)
	runTool(t, "convert-im6.q16", quadPNG, "-strip", "-colorspace", "CMYK", "-quality", "95", filepath.Join(td, "quad-cmyk.jpg"))
	runTool(t, "cwebp", "-quiet", "-q", "90", quadPNG, "-o", filepath.Join(td, "webp/quad-lossy.webp"))

	// Transparent bands as WebP, lossless and lossy.
	alphaPNG := write(tmp, "alpha.png", pngBytes(t, alphaBands()))
	runTool(t, "cwebp", "-quiet", "-lossless", alphaPNG, "-o", filepath.Join(td, "webp/alpha-lossless.webp"))
	runTool(t, "cwebp", "-quiet", "-q", "90", "-alpha_q", "100", alphaPNG, "-o", filepath.Join(td, "webp/alpha-lossy.webp"))

	// The stored pixels of a 64×48 quadrant picture for each orientation.
	for o := 1; o <= 8; o++ {
		p := write(tmp, fmt.Sprintf("stored-%d.png", o), pngBytes(t, storedAs(quadrants(64, 48), o)))
		runTool(t, "cwebp", "-quiet", "-lossless", p, "-o", filepath.Join(td, fmt.Sprintf("webp/stored-%d.webp", o)))
	}

	writeFuzzSeeds(t, tmp)
}

// corpusEntry formats one input in the "go test fuzz v1" format.
func corpusEntry(b []byte) []byte {
	return []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b))
}

// writeFuzzSeeds writes the seed corpora of FuzzProcess and
// FuzzOrientation.
func writeFuzzSeeds(t *testing.T, tmp string) {
	seeds := map[string][]byte{}
	small := quadrants(24, 16)
	jpg := encodeJPEGTest(t, small, 80)
	seeds["jpeg-baseline"] = jpg
	seeds["jpeg-exif-6"] = insertAfterSOI(jpg, segment(0xE1, append([]byte("Exif\x00\x00"), exifBlob(binary.BigEndian, 6)...)))
	gray := image.NewGray(image.Rect(0, 0, 16, 16))
	for i := range gray.Pix {
		gray.Pix[i] = byte(i)
	}
	seeds["jpeg-gray"] = encodeJPEGTest(t, gray, 80)
	smallPPM := filepath.Join(tmp, "small.ppm")
	if err := os.WriteFile(smallPPM, ppm(small), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"jpeg-progressive": {"-progressive"},
		"jpeg-restart":     {"-restart", "1B", "-sample", "2x1"},
	} {
		out := filepath.Join(tmp, name+".jpg")
		runTool(t, "cjpeg", append(args, "-outfile", out, smallPPM)...)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		seeds[name] = b
	}
	nrgba := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for i := range nrgba.Pix {
		nrgba.Pix[i] = byte(i * 7)
	}
	seeds["png-alpha"] = pngBytes(t, nrgba)
	pal := image.NewPaletted(image.Rect(0, 0, 16, 16), palette.Plan9[:16])
	for i := range pal.Pix {
		pal.Pix[i] = byte(i % 16)
	}
	seeds["png-paletted"] = pngBytes(t, pal)
	deep := image.NewRGBA64(image.Rect(0, 0, 8, 8))
	for i := range deep.Pix {
		deep.Pix[i] = byte(i * 13)
	}
	seeds["png-16bit"] = pngBytes(t, deep)
	seeds["gif-2frames"] = twoFrameGIF(t, 16, 16)
	p := filepath.Join(tmp, "small.png")
	if err := os.WriteFile(p, pngBytes(t, nrgba), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"webp-lossy":    {"-q", "50"},
		"webp-lossless": {"-lossless"},
	} {
		out := filepath.Join(tmp, name+".webp")
		runTool(t, "cwebp", append(args, "-quiet", p, "-o", out)...)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		seeds[name] = b
	}
	seeds["webp-exif"] = extendedWebP(t, seeds["webp-lossless"], 16, 16, exifBlob(binary.LittleEndian, 8), []byte("<x:xmpmeta/>"))

	// Broken inputs.
	seeds["broken-jpeg-truncated"] = jpg[:len(jpg)/2]
	bad := append([]byte{}, jpg...)
	for i := len(bad) / 2; i < len(bad)/2+20; i++ {
		bad[i] ^= 0x5A
	}
	seeds["broken-jpeg-garbled"] = bad
	badPNG := append([]byte{}, seeds["png-alpha"]...)
	badPNG[30] ^= 0xFF // inside IHDR: wrong CRC
	seeds["broken-png-crc"] = badPNG
	seeds["broken-png-huge"] = pngHeader(100000, 100000)
	seeds["broken-gif-truncated"] = seeds["gif-2frames"][:30]
	badWebP := append([]byte{}, seeds["webp-lossy"]...)
	binary.LittleEndian.PutUint32(badWebP[16:], 0x7FFFFFF0)
	seeds["broken-webp-size"] = badWebP
	seeds["magic-jpeg"] = []byte{0xFF, 0xD8, 0xFF}
	seeds["magic-png"] = []byte("\x89PNG\r\n\x1a\n")
	seeds["magic-gif"] = []byte("GIF89a")
	seeds["magic-webp"] = []byte("RIFF\x00\x00\x00\x00WEBP")
	seeds["text"] = []byte("hello, this is not a picture\n")

	dir := filepath.Join("testdata", "fuzz", "FuzzProcess")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), corpusEntry(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	le, be := exifBlob(binary.LittleEndian, 6), exifBlob(binary.BigEndian, 3)
	oseeds := map[string][]byte{
		"tiff-le-6":        le,
		"tiff-be-3":        be,
		"tiff-truncated":   le[:20],
		"tiff-loop":        loopTIFF(),
		"jpeg-app1":        insertAfterSOI(jpg, segment(0xE1, append([]byte("Exif\x00\x00"), be...)))[:200],
		"webp-exif-prefix": extendedWebP(t, seeds["webp-lossless"], 16, 16, append([]byte("Exif\x00\x00"), le...), nil),
	}
	dir = filepath.Join("testdata", "fuzz", "FuzzOrientation")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range oseeds {
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), corpusEntry(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
