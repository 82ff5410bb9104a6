package picture

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gen2brain/avif"
	"github.com/gen2brain/heic"
)

// HEIC, AVIF and WebP pictures are decoded either by built-in decoders
// (HEIC and AVIF: libheif and libavif compiled to WebAssembly, sandboxed
// but three to six times slower than native code and hungry for memory;
// WebP: golang.org/x/image, about twice libwebp's time) or by the
// system's own libraries, loaded at run time without cgo: libheif
// (libheif.so.1, which decodes HEVC with libde265 and AV1 with dav1d or
// libaom) and libwebp (libwebp.so.7, which decodes straight into the
// cropped, reduced picture). They are what libvips uses too, and are kept
// up to date by the system's package manager.
//
// Decoders says which ones a process uses; UseDecoders chooses.

// Choices for UseDecoders.
const (
	// DecodersAuto uses each system library that loads and the built-in
	// decoders otherwise. It is the default.
	DecodersAuto = "auto"
	// DecodersSystem requires the system libraries.
	DecodersSystem = "system"
	// DecodersBuiltin always uses the built-in decoders.
	DecodersBuiltin = "builtin"
)

// The shared libraries loaded for DecodersSystem and DecodersAuto: the
// runtime packages' names (libheif1 and libwebp7 on Debian), not the
// development symlinks.
const (
	libheifName = "libheif.so.1"
	libwebpName = "libwebp.so.7"
)

// The system decoders in use; nil for the built-in ones.
var (
	sysHEIF atomic.Pointer[libheif]
	sysWebP atomic.Pointer[libwebp]
)

// systemLibs is what loading the system libraries gave, once a process.
type systemLibs struct {
	heif             *libheif
	webp             *libwebp
	heifErr, webpErr error
}

var loadSystem = sync.OnceValue(func() (l systemLibs) {
	l.heif, l.heifErr = openLibheif(libheifName)
	l.webp, l.webpErr = openLibwebp(libwebpName)
	return l
})

// UseDecoders chooses the decoders of HEIC, AVIF and WebP pictures for the
// whole process (DecodersAuto, DecodersSystem or DecodersBuiltin; "" is
// DecodersAuto) and returns a description of those in use, e.g. "HEIC and
// AVIF: system libheif 1.15.1; WebP: system libwebp 1.2.4". It fails only
// for DecodersSystem when a library does not load, or for an unknown
// choice.
func UseDecoders(choice string) (string, error) {
	switch choice {
	case DecodersBuiltin:
		sysHEIF.Store(nil)
		sysWebP.Store(nil)
		return Decoders(), nil
	case "", DecodersAuto, DecodersSystem:
	default:
		return "", fmt.Errorf("unknown decoders %q (want %s, %s or %s)", choice, DecodersAuto, DecodersSystem, DecodersBuiltin)
	}
	libs := loadSystem()
	if choice == DecodersSystem {
		if err := errors.Join(libs.heifErr, libs.webpErr); err != nil {
			return "", fmt.Errorf("system decoders: %w", err)
		}
	}
	sysHEIF.Store(libs.heif)
	sysWebP.Store(libs.webp)
	desc := Decoders()
	for _, err := range []error{libs.heifErr, libs.webpErr} {
		if err != nil {
			desc += " (" + err.Error() + ")"
		}
	}
	return desc, nil
}

// Decoders describes the decoders of HEIC, AVIF and WebP pictures in use.
func Decoders() string {
	heif, webp := builtinHEIF(), "built-in (Go)"
	if l := sysHEIF.Load(); l != nil {
		heif = "system libheif " + l.version
	}
	if l := sysWebP.Load(); l != nil {
		webp = "system libwebp " + l.version
	}
	return "HEIC and AVIF: " + heif + "; WebP: " + webp
}

// builtinHEIF describes the built-in HEIC and AVIF decoders. gen2brain's
// packages run their WebAssembly builds unless the binary was built
// without the nodynamic tag and finds a libheif.so or libavif.so (the
// development symlinks): then they run that library instead.
func builtinHEIF() string {
	var native []string
	if heic.Dynamic() == nil {
		native = append(native, "libheif.so")
	}
	if avif.Dynamic() == nil {
		native = append(native, "libavif.so")
	}
	if len(native) == 0 {
		return "built-in (WebAssembly)"
	}
	return "built-in (gen2brain's, running the system's " + strings.Join(native, " and ") + "; build with -tags nodynamic for WebAssembly)"
}

// sysBytesPerPixel estimates what the system's libheif holds per pixel of
// h while it decodes and until the picture is shrunk: the codec's
// pictures and libheif's copy of the planes, in proportion to the samples
// per pixel (measured with bench/libvips, peak resident memory of 12 MP
// 4:4:4 pictures: HEIC 107–122 MiB, 9–10 bytes a pixel; AVIF, whose
// decoder keeps more, 130–198 MiB, up to 16), twice that for samples of
// more than 8 bits, and the RGBA pixels libheif converts those and
// transparent pictures to.
func sysBytesPerPixel(h *heifInfo) float64 {
	samples := 3.0 // 4:4:4 or unknown
	switch h.chroma {
	case heifChromaMonochrome:
		samples = 1
	case heifChroma420:
		samples = 1.5
	case heifChroma422:
		samples = 2
	}
	per := 3.5 * samples
	if h.format == AVIF {
		per = 5.5 * samples
	}
	if h.depth > 8 {
		per *= 2
	}
	if h.depth > 8 || h.alpha || h.chroma < 0 {
		per += 4
	}
	return per
}

// Values of libheif's enums that portrait uses.
const (
	heifColorspaceYCbCr      = 0
	heifColorspaceRGB        = 1
	heifColorspaceMonochrome = 2
	heifChromaMonochrome     = 0
	heifChroma420            = 1
	heifChroma422            = 2
	heifChroma444            = 3
	heifChromaRGBA           = 11 // heif_chroma_interleaved_RGBA
	heifChannelY             = 0
	heifChannelCb            = 1
	heifChannelCr            = 2
	heifChannelRGBA          = 10 // heif_channel_interleaved
	// heifOptsConvertHDR is the offset of convert_hdr_to_8bit in
	// struct heif_decoding_options (version 2 on): two uint8 fields, four
	// pointers, then it.
	heifOptsConvertHDR = 8 + 4*8
)
