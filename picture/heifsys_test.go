package picture

import (
	"image"
	"os"
	"strings"
	"testing"
)

// eachHEIFDecoder runs f with the built-in decoders, then with the
// system's libheif. Without the library the second run is skipped, unless
// PORTRAIT_REQUIRE_TOOLS is set (scripts/test sets it after installing
// the library): then that is a failure.
func eachHEIFDecoder(t *testing.T, f func(t *testing.T, system bool)) {
	t.Helper()
	for _, choice := range []string{HEIFBuiltin, HEIFSystem} {
		t.Run(choice, func(t *testing.T) {
			if testing.Short() && choice == HEIFBuiltin {
				t.Skip("the WebAssembly decoders take a second or two to compile")
			}
			useHEIF(t, choice)
			f(t, choice == HEIFSystem)
		})
	}
}

// useHEIF switches the process's HEIF decoder for the test and back to
// the built-in one after it.
func useHEIF(t *testing.T, choice string) {
	t.Helper()
	t.Cleanup(func() { sysHEIF.Store(nil) })
	desc, err := UseHEIFDecoder(choice)
	if err != nil {
		if os.Getenv("PORTRAIT_REQUIRE_TOOLS") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if (choice == HEIFSystem) != strings.HasPrefix(desc, "system libheif ") {
		t.Fatalf("decoder %q in use for %q", desc, choice)
	}
}

func TestUseHEIFDecoderChoices(t *testing.T) {
	t.Cleanup(func() { sysHEIF.Store(nil) })
	if _, err := UseHEIFDecoder("fast"); err == nil || !strings.Contains(err.Error(), "auto, system or builtin") {
		t.Errorf("unknown choice: %v", err)
	}
	if d, err := UseHEIFDecoder(HEIFBuiltin); err != nil || d != "built-in (WebAssembly)" || HEIFDecoder() != d {
		t.Errorf("builtin: %q, %v", d, err)
	}
	// A library that is not there: auto falls back, system refuses.
	l, e := openLibheif("libportrait-none.so.1")
	if l != nil || e == nil {
		t.Fatalf("missing library loaded: %v", e)
	}
}

// TestSystemHEIFLayout: an opaque 8-bit picture with a colour property
// comes back from libheif as the codec's own planes (no conversion, no
// copy); a transparent one as RGBA.
func TestSystemHEIFLayout(t *testing.T) {
	useHEIF(t, HEIFSystem)
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
