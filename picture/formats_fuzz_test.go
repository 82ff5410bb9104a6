package picture

import (
	"image"
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
		if p := info.bytesPerPixel(); p <= 0 {
			t.Fatalf("%v bytes per pixel", p)
		}
		info.ycc()
	})
}
