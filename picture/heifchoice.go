package picture

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// HEIC and AVIF pictures are decoded either by the built-in WebAssembly
// builds of libheif and libavif (sandboxed, always there, but three to
// six times slower than native code and hungry for memory) or by the
// system's own libheif (libheif.so.1, which decodes HEVC with libde265
// and AV1 with dav1d or libaom), loaded at run time without cgo. The
// system library is what libvips uses too; it is kept up to date by the
// system's package manager.
//
// HEIFDecoder says which one a process uses; UseHEIFDecoder chooses.

// Choices for UseHEIFDecoder.
const (
	// HEIFAuto uses the system's libheif when it loads and the built-in
	// decoders otherwise. It is the default.
	HEIFAuto = "auto"
	// HEIFSystem requires the system's libheif.
	HEIFSystem = "system"
	// HEIFBuiltin always uses the built-in WebAssembly decoders.
	HEIFBuiltin = "builtin"
)

// libheifName is the shared library loaded for HEIFSystem and HEIFAuto:
// the runtime package's name (libheif1 on Debian), not the development
// symlink.
var libheifName = "libheif.so.1"

// sysHEIF is the system decoder in use, or nil for the built-in ones.
var sysHEIF atomic.Pointer[libheif]

var (
	loadOnce sync.Once
	loaded   *libheif
	loadErr  error
)

// UseHEIFDecoder chooses the decoder of HEIC and AVIF pictures for the
// whole process (HEIFAuto, HEIFSystem or HEIFBuiltin; "" is HEIFAuto) and
// returns a description of the one in use, e.g. "system libheif 1.15.1"
// or "built-in (WebAssembly)". It fails only for HEIFSystem when the
// library does not load, or for an unknown choice.
func UseHEIFDecoder(choice string) (string, error) {
	switch choice {
	case HEIFBuiltin:
		sysHEIF.Store(nil)
		return HEIFDecoder(), nil
	case "", HEIFAuto, HEIFSystem:
	default:
		return "", fmt.Errorf("unknown HEIF decoder %q (want %s, %s or %s)", choice, HEIFAuto, HEIFSystem, HEIFBuiltin)
	}
	loadOnce.Do(func() { loaded, loadErr = openLibheif(libheifName) })
	if loadErr != nil {
		sysHEIF.Store(nil)
		if choice == HEIFSystem {
			return "", fmt.Errorf("HEIF decoder %q: %w", choice, loadErr)
		}
		return HEIFDecoder() + " (" + loadErr.Error() + ")", nil
	}
	sysHEIF.Store(loaded)
	return HEIFDecoder(), nil
}

// HEIFDecoder describes the decoder of HEIC and AVIF pictures in use.
func HEIFDecoder() string {
	if l := sysHEIF.Load(); l != nil {
		return "system libheif " + l.version
	}
	return "built-in (WebAssembly)"
}

// sysBytesPerPixel estimates what the system's libheif holds per pixel
// while it decodes and until the picture is shrunk, measured with
// bench/libvips (peak resident memory of 12 MP pictures).
const sysBytesPerPixel = 12

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
