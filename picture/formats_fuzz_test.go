package picture

import (
	"bytes"
	"image"
	"image/png"
	"testing"
)

// FuzzWebPContainer drives the WebP container reader (chunks, VP8X,
// animation frames) and the decode of what it finds. It must not panic;
// a frame it accepts lies inside the canvas. The seed corpus is under
// testdata/fuzz/FuzzWebPContainer.
//
//	go test ./picture -run '^$' -fuzz '^FuzzWebPContainer$' -fuzztime 60s
func FuzzWebPContainer(f *testing.F) {
	for _, name := range []string{"webp/animated.webp", "webp/alpha-lossy.webp", "webp/stored-6.webp"} {
		f.Add(readFixture(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := parseWebP(data)
		if err != nil {
			return
		}
		if info.width <= 0 || info.height <= 0 {
			t.Fatalf("accepted a %dx%d canvas", info.width, info.height)
		}
		if info.animated {
			if info.frame == nil {
				t.Fatal("an animation without its first frame")
			}
			if info.frameAt.X < 0 || info.frameAt.Y < 0 || info.frameAt.X >= info.width || info.frameAt.Y >= info.height {
				t.Fatalf("frame at %v on a %dx%d canvas", info.frameAt, info.width, info.height)
			}
		}
		if int64(info.width)*int64(info.height) > 1<<20 {
			return // keep decoding cheap
		}
		img, _, err := decodeWebP(data, info)
		if err != nil {
			return
		}
		if !img.Bounds().In(image.Rect(0, 0, info.width, info.height)) {
			t.Fatalf("decoded %v outside the %dx%d canvas", img.Bounds(), info.width, info.height)
		}
	})
}

// FuzzHEIF drives the HEIF box reader behind AVIF and HEIC: sniffing,
// the meta box (primary item, item types, properties and their
// associations) and what is derived from it. It must not panic. The
// WebAssembly decoders themselves are exercised by FuzzProcess. The seed
// corpus is under testdata/fuzz/FuzzHEIF.
//
//	go test ./picture -run '^$' -fuzz '^FuzzHEIF$' -fuzztime 60s
func FuzzHEIF(f *testing.F) {
	for _, name := range []string{"avif/quad.avif", "avif/quad-irot1.avif", "avif/alpha.avif", "heic/quad.heic"} {
		f.Add(readFixture(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sniffHEIF(data)
		info, err := parseHEIF(data)
		if err != nil {
			return
		}
		if info.format != AVIF && info.format != HEIC {
			t.Fatalf("format %q", info.format)
		}
		if info.width <= 0 || info.height <= 0 {
			t.Fatalf("accepted a %dx%d picture", info.width, info.height)
		}
		if o := info.orientation(); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
		if p := info.bytesPerPixel(false); p <= 0 {
			t.Fatalf("%v bytes per pixel", p)
		}
		if info.chroma < -1 || info.chroma > heifChroma444 {
			t.Fatalf("chroma %d", info.chroma)
		}
		info.ycc()
	})
}

// FuzzSystemDecoders runs whole small HEIC, AVIF and WebP pictures
// through the system's libheif and libwebp (skipped without them):
// portrait's own checks come first, and whatever passes them must decode
// or fail, never crash the process.
func FuzzSystemDecoders(f *testing.F) {
	for _, name := range []string{"avif/quad.avif", "avif/quad-10bit.avif", "avif/alpha.avif", "heic/quad.heic", "heic/alpha.heic",
		"webp/quad-lossy.webp", "webp/alpha-lossy.webp", "webp/alpha-lossless.webp"} {
		f.Add(readFixture(f, name))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		useDecoders(t, DecodersSystem)
		res, err := Process(data, Limits{MaxPixels: 1 << 20})
		if err == nil && (len(res.Full) == 0 || len(res.Preview) == 0) {
			t.Fatal("no output without an error")
		}
	})
}

// pngFuzzSeeds are small PNGs of several layouts for FuzzPNGStream.
func pngFuzzSeeds(t testing.TB) map[string][]byte {
	plte := []byte{255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9}
	return map[string][]byte{
		"rgb8-filters":   rawPNG{w: 9, h: 7, depth: 8, ctype: 2, rows: samples(9, 7, 8, 2, nil), filters: []byte{0, 1, 2, 3, 4}}.bytes(t),
		"rgba16":         rawPNG{w: 5, h: 4, depth: 16, ctype: 6, rows: samples(5, 4, 16, 6, nil), filters: []byte{4}}.bytes(t),
		"gray2-trns":     rawPNG{w: 11, h: 3, depth: 2, ctype: 0, trns: []byte{0, 1}, rows: samples(11, 3, 2, 0, nil)}.bytes(t),
		"palette4-trns":  rawPNG{w: 6, h: 6, depth: 4, ctype: 3, plte: plte, trns: []byte{0, 128}, rows: samples(6, 6, 4, 3, nil), filters: []byte{3}}.bytes(t),
		"graya8-comment": rawPNG{w: 3, h: 3, depth: 8, ctype: 4, rows: samples(3, 3, 8, 4, nil), extra: pngChunkBytes("tEXt", []byte("a\x00b"))}.bytes(t),
	}
}

// FuzzPNGStream checks the streaming PNG decoder against image/png: what
// it accepts, image/png must accept too, with the same pixels after the
// shrink. The seed corpus is under testdata/fuzz/FuzzPNGStream.
//
//	go test ./picture -run '^$' -fuzz '^FuzzPNGStream$' -fuzztime 60s
func FuzzPNGStream(f *testing.F) {
	for _, b := range pngFuzzSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := parsePNGInfo(data)
		if err != nil || int64(info.width)*int64(info.height) > 1<<20 {
			return
		}
		box, k := shrinkPlan(image.Rect(0, 0, info.width, info.height))
		got, err := decodePNGShrink(data, info, box, k)
		if err != nil {
			return
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("streamed a PNG that image/png refuses: %v", err)
		}
		if img.Bounds() != image.Rect(0, 0, info.width, info.height) {
			t.Fatalf("image/png says %v, the header %dx%d", img.Bounds(), info.width, info.height)
		}
		if want := shrinkImage(img, box, k, ycc{}); !bytes.Equal(got.pix, want.pix) {
			t.Fatal("streamed pixels differ from image/png's")
		}
	})
}
