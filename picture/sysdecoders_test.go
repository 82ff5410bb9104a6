package picture

import (
	"fmt"
	"image"
	"os"
	"strings"
	"testing"

	"github.com/gen2brain/avif"
	"github.com/gen2brain/heic"
)

// eachDecoders runs f with the built-in decoders, then with the
// system's libraries. Without the library the second run is skipped, unless
// PORTRAIT_REQUIRE_TOOLS is set (scripts/test sets it after installing
// the library): then that is a failure.
func eachDecoders(t *testing.T, f func(t *testing.T, system bool)) {
	t.Helper()
	for _, choice := range []string{DecodersBuiltin, DecodersSystem} {
		t.Run(choice, func(t *testing.T) {
			if testing.Short() && choice == DecodersBuiltin {
				t.Skip("the WebAssembly decoders take a second or two to compile")
			}
			useDecoders(t, choice)
			f(t, choice == DecodersSystem)
		})
	}
}

// useDecoders switches the process's decoders for the test and back to
// the built-in ones after it.
func useDecoders(t *testing.T, choice string) {
	t.Helper()
	t.Cleanup(func() { sysHEIF.Store(nil); sysWebP.Store(nil) })
	desc, err := UseDecoders(choice)
	if err != nil {
		if os.Getenv("PORTRAIT_REQUIRE_TOOLS") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if (choice == DecodersSystem) != strings.Contains(desc, "AVIF: system libheif 1.") || (choice == DecodersSystem) != strings.Contains(desc, "WebP: system libwebp 1.") {
		t.Fatalf("decoder %q in use for %q", desc, choice)
	}
}

func TestUseDecodersChoices(t *testing.T) {
	t.Cleanup(func() { sysHEIF.Store(nil); sysWebP.Store(nil) })
	if _, err := UseDecoders("fast"); err == nil || !strings.Contains(err.Error(), "auto, system or builtin") {
		t.Errorf("unknown choice: %v", err)
	}
	// Built without the nodynamic tag, gen2brain's packages run a
	// libheif.so they find (the description says so).
	want := "HEIC and AVIF: built-in (WebAssembly); WebP: built-in (Go)"
	if heic.Dynamic() == nil || avif.Dynamic() == nil {
		want = "HEIC and AVIF: " + builtinHEIF() + "; WebP: built-in (Go)"
		if !strings.Contains(want, "gen2brain's, running the system's lib") {
			t.Errorf("builtin with gen2brain's native libraries: %q", want)
		}
	}
	if d, err := UseDecoders(DecodersBuiltin); err != nil || d != want || Decoders() != d {
		t.Errorf("builtin: %q, %v", d, err)
	}
	// Libraries that are not there do not load.
	if l, err := openLibheif("libportrait-none.so.1"); l != nil || err == nil {
		t.Errorf("missing libheif loaded: %v", err)
	}
	if l, err := openLibwebp("libportrait-none.so.7"); l != nil || err == nil {
		t.Errorf("missing libwebp loaded: %v", err)
	}
}

// TestSystemHEIFLayout: an opaque 8-bit picture with a colour property
// comes back from libheif as the codec's own planes (no conversion, no
// copy); a transparent one as RGBA.
func TestSystemHEIFLayout(t *testing.T) {
	useDecoders(t, DecodersSystem)
	for _, c := range []struct {
		name   string
		planes bool
	}{
		{"avif/quad.avif", true},
		{"heic/quad.heic", true},
		{"avif/quad-10bit.avif", false},
		{"avif/alpha.avif", false},
		{"heic/alpha.heic", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := readFixture(t, c.name)
			info, err := parseHEIF(data)
			if err != nil {
				t.Fatal(err)
			}
			pic, err := sysHEIF.Load().decode(data, info)
			if err != nil {
				t.Fatal(err)
			}
			defer pic.free()
			if got := pic.planes != nil; got != c.planes {
				t.Errorf("planes %v (nclx %v, depth %d), want %v", got, info.nclx, info.depth, c.planes)
			}
			if pic.planes != nil {
				if r := pic.planes.rect; r.Dx() != 160 || r.Dy() != 120 || pic.planes.cb == nil {
					t.Errorf("planes %v, chroma %v", r, pic.planes.cb != nil)
				}
			} else if _, ok := pic.img.(*image.NRGBA); !ok {
				t.Errorf("picture is %T", pic.img)
			}
		})
	}
}

// TestSystemWebP: every still WebP fixture (lossy, lossless, with and
// without transparency) comes out of libwebp's cropping, scaling decode
// as it does out of the built-in decoder.
func TestSystemWebP(t *testing.T) {
	names := []string{"webp/photo-lossy.webp", "webp/quad-lossy.webp", "webp/alpha-lossy.webp", "webp/alpha-lossless.webp"}
	for i := 1; i <= 8; i++ {
		names = append(names, fmt.Sprintf("webp/stored-%d.webp", i))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data := readFixture(t, name)
			useDecoders(t, DecodersBuiltin)
			want, err := Process(data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			useDecoders(t, DecodersSystem)
			got, err := Process(data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Width != want.Width || got.Height != want.Height {
				t.Errorf("size %dx%d, want %dx%d", got.Width, got.Height, want.Width, want.Height)
			}
			// libwebp interpolates chroma ("fancy upsampling") where the
			// built-in decoder repeats it, which shows at sharp colour
			// edges (quad-lossy has four); photos agree far closer.
			if p := psnr(t, decodeOut(t, got.Full, FullSize), decodeOut(t, want.Full, FullSize)); p < 30 {
				t.Errorf("PSNR against the built-in decoder's output: %.1f dB, want ≥ 30", p)
			}
		})
	}
}
