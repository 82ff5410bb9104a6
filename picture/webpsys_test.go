//go:build !nosystemdecoders

package picture

import (
	"testing"
	"unsafe"
)

// TestWebPConfigLayout: webpConfig must be laid out as libwebp's struct
// WebPDecoderConfig on 64-bit systems, or libwebp reads the wrong fields.
func TestWebPConfigLayout(t *testing.T) {
	var c webpConfig
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"size", unsafe.Sizeof(c), 240},
		{"output", unsafe.Offsetof(c.colorspace), 40},
		{"output.u.RGBA.rgba", unsafe.Offsetof(c.rgba), 56},
		{"output.u.RGBA.stride", unsafe.Offsetof(c.stride), 64},
		{"output.private_memory", unsafe.Offsetof(c.privateMemory), 152},
		{"options", unsafe.Offsetof(c.bypassFiltering), 160},
		{"options.use_scaling", unsafe.Offsetof(c.useScaling), 188},
		{"options.alpha_dithering_strength", unsafe.Offsetof(c.alphaDit), 212},
	} {
		if f.got != f.want {
			t.Errorf("%s at %d, want %d", f.name, f.got, f.want)
		}
	}
}
