package picture

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"
)

// The fixtures for WebP colours, animated WebP, AVIF and HEIC are made by
// TestFormatFixtures with tools from Debian packages:
//
//	apt-get install -y webp libavif-bin libheif-examples libjpeg-turbo-progs
//	go test -run TestFormatFixtures -format-fixtures ./picture
var formatFixturesFlag = flag.Bool("format-fixtures", false,
	"regenerate the WebP colour, animated WebP, AVIF and HEIC fixtures (needs cwebp, dwebp, img2webp, avifenc, heif-enc)")

func TestFormatFixtures(t *testing.T) {
	if !*formatFixturesFlag {
		t.Skip("run with -format-fixtures to regenerate these fixtures")
	}
	tmp := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	td := func(name string) string {
		p := filepath.Join("testdata", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// A lossy WebP photo and libwebp's own decode of it (without "fancy"
	// chroma upsampling, which is what portrait does too).
	photoPNG := write("photo.png", pngBytes(t, photoRGBA(96, 80)))
	runTool(t, "cwebp", "-quiet", "-q", "90", photoPNG, "-o", td("webp/photo-lossy.webp"))
	runTool(t, "dwebp", "-quiet", "-nofancy", td("webp/photo-lossy.webp"), "-o", td("webp/photo-lossy-dwebp.png"))

	// Progressive JPEGs of the photo in other layouts, for the scaled
	// decoder (needs cjpeg from libjpeg-turbo-progs).
	photoPPM := write("photo.ppm", ppm(photoRGBA(203, 157)))
	for name, args := range map[string][]string{
		"jpeg/progressive-444.jpg":     {"-sample", "1x1"},
		"jpeg/progressive-422.jpg":     {"-sample", "2x1"},
		"jpeg/progressive-gray.jpg":    {"-grayscale"},
		"jpeg/progressive-restart.jpg": {"-restart", "2B"},
	} {
		args = append([]string{"-quality", "90", "-progressive"}, args...)
		runTool(t, "cjpeg", append(args, "-outfile", td(name), photoPPM)...)
	}

	// A CMYK JPEG large enough to be shrunk (needs convert-im6.q16 from
	// imagemagick).
	runTool(t, "convert-im6.q16", write("gradient.png", pngBytes(t, gradient(1300, 1290))), "-strip",
		"-colorspace", "CMYK", "-quality", "75", td("jpeg/cmyk-gradient.jpg"))

	// An animation whose first frame is the quadrants and second blue.
	quad := quadrants(160, 120)
	quadPNG := write("quad.png", pngBytes(t, quad))
	blue := quadrants(160, 120)
	for i := 0; i < len(blue.Pix); i += 4 {
		blue.Pix[i], blue.Pix[i+1], blue.Pix[i+2] = 0, 0, 255
	}
	bluePNG := write("blue.png", pngBytes(t, blue))
	runTool(t, "img2webp", "-loop", "0", "-lossy", "-q", "90", quadPNG, bluePNG, "-o", td("webp/animated.webp"))

	// AVIF: plain, 10-bit, with each transformation, with alpha.
	alphaPNG := write("alpha.png", pngBytes(t, alphaBands()))
	for name, args := range map[string][]string{
		"avif/quad.avif":       {"--min", "8", "--max", "16", "-y", "420", quadPNG},
		"avif/quad-10bit.avif": {"--min", "8", "--max", "16", "-y", "420", "-d", "10", quadPNG},
		"avif/quad-irot1.avif": {"--min", "8", "--max", "16", "-y", "420", "--irot", "1", quadPNG},
		"avif/quad-imir0.avif": {"--min", "8", "--max", "16", "-y", "420", "--imir", "0", quadPNG},
		"avif/quad-imir1.avif": {"--min", "8", "--max", "16", "-y", "420", "--imir", "1", quadPNG},
		"avif/alpha.avif":      {"--min", "8", "--max", "16", "-y", "420", alphaPNG},
	} {
		runTool(t, "avifenc", append(append([]string{"-j", "1", "-s", "8"}, args...), td(name))...)
	}
	// HEIC: plain, limited range, with alpha.
	runTool(t, "heif-enc", "-q", "90", "-o", td("heic/quad.heic"), quadPNG)
	runTool(t, "heif-enc", "-q", "90", "-o", td("heic/alpha.heic"), write("alpha2.png", pngBytes(t, doubled(alphaBands()))))

	writeFormatFuzzSeeds(t)
}

// writeFormatFuzzSeeds writes the seed corpora of FuzzWebPContainer and
// FuzzHEIF, and adds the new formats to FuzzProcess's.
func writeFormatFuzzSeeds(t *testing.T) {
	put := func(target, name string, b []byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), corpusEntry(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	anim := readFixture(t, "webp/animated.webp")
	offset := animation(t, 100, 80, 10, 6, readFixture(t, "webp/stored-2.webp"))
	withAlpha := animation(t, 100, 80, 0, 0, readFixture(t, "webp/alpha-lossy.webp"))
	for name, b := range map[string][]byte{
		"animated":           anim,
		"animated-offset":    offset,
		"animated-alpha":     withAlpha,
		"animated-truncated": anim[:len(anim)/2],
		"lossy-alpha":        readFixture(t, "webp/alpha-lossy.webp"),
		"lossless":           readFixture(t, "webp/stored-5.webp"),
		"vp8x-only":          riffFile(riffChunk("VP8X", []byte{0x02, 0, 0, 0, 9, 0, 0, 9, 0, 0})),
	} {
		put("FuzzWebPContainer", name, b)
		if name != "lossless" && name != "lossy-alpha" {
			put("FuzzProcess", "webp-"+name, b)
		}
	}
	for _, name := range []string{"quad", "quad-10bit", "quad-irot1", "quad-imir0", "alpha"} {
		b := readFixture(t, "avif/"+name+".avif")
		put("FuzzHEIF", "avif-"+name, b)
		if name == "quad" || name == "alpha" {
			put("FuzzProcess", "avif-"+name, b)
			put("FuzzHEIF", "avif-"+name+"-truncated", b[:len(b)/2])
		}
	}
	for _, name := range []string{"progressive", "progressive-restart", "progressive-gray", "progressive-422"} {
		b := readFixture(t, "jpeg/"+name+".jpg")
		dir := filepath.Join("testdata", "fuzz", "FuzzJPEGScaled")
		entry := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint16(%d)\n", b, 40)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(entry), 0o644); err != nil {
			t.Fatal(err)
		}
		put("FuzzProcess", "jpeg-photo-"+name, b)
	}
	for name, b := range pngFuzzSeeds(t) {
		put("FuzzPNGStream", name, b)
		put("FuzzProcess", "png-"+name, b)
	}
	for _, name := range []string{"quad", "alpha"} {
		b := readFixture(t, "heic/"+name+".heic")
		put("FuzzHEIF", "heic-"+name, b)
		put("FuzzProcess", "heic-"+name, b)
	}
}

// doubled returns m scaled up twice by repeating pixels. (Small HEIC
// pictures, under about 128 pixels a side, come out of libheif garbled.)
func doubled(m *image.NRGBA) *image.NRGBA {
	b := m.Bounds()
	d := image.NewNRGBA(image.Rect(0, 0, 2*b.Dx(), 2*b.Dy()))
	for y := 0; y < 2*b.Dy(); y++ {
		for x := 0; x < 2*b.Dx(); x++ {
			d.SetNRGBA(x, y, m.NRGBAAt(b.Min.X+x/2, b.Min.Y+y/2))
		}
	}
	return d
}

// gradient is a smooth w×h picture: red across, green down, blue along
// the diagonal.
func gradient(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetRGBA(x, y, color.RGBA{uint8(x*200/w + 20), uint8(y*180/h + 30), uint8((x+y)*100/(w+h) + 60), 255})
		}
	}
	return m
}
