package sandbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"sync"
)

// GeneratedSize is the width and height of generated pictures.
const GeneratedSize = 400

// Generated picture formats.
const (
	FormatJPEG = "jpeg"
	FormatPNG  = "png"
)

// generated caches generated pictures, "format/seed" → bytes, up to
// maxGenerated of them: the demo world and world files reuse a few seeds.
var generated struct {
	sync.Mutex
	m map[string][]byte
}

const maxGenerated = 64

// GeneratePicture returns a deterministic avatar-like picture for seed: a
// diagonal gradient in two colours picked from the seed, with a soft
// head-and-shoulders silhouette and a vignette, GeneratedSize pixels square,
// encoded as format (FormatJPEG or FormatPNG). Different seeds give
// different pictures; the same seed always gives the same bytes. Results
// may be cached and shared: callers must not modify them.
func GeneratePicture(seed, format string) ([]byte, error) {
	if format != FormatJPEG && format != FormatPNG {
		return nil, fmt.Errorf("generate picture %q: unknown format %q (want %q or %q)", seed, format, FormatJPEG, FormatPNG)
	}
	key := format + "/" + seed
	generated.Lock()
	b, ok := generated.m[key]
	generated.Unlock()
	if ok {
		return b, nil
	}
	img := renderAvatar(seed)
	var buf bytes.Buffer
	var err error
	if format == FormatPNG {
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85})
	}
	if err != nil {
		return nil, fmt.Errorf("generate picture %q: encode %s: %w", seed, format, err)
	}
	b = buf.Bytes()
	generated.Lock()
	defer generated.Unlock()
	if prev, ok := generated.m[key]; ok {
		return prev, nil
	}
	if generated.m == nil {
		generated.m = map[string][]byte{}
	}
	if len(generated.m) < maxGenerated {
		generated.m[key] = b
	}
	return b, nil
}

// renderAvatar draws the picture for seed.
func renderAvatar(seed string) *image.RGBA {
	h := sha256.Sum256([]byte("portrait-sandbox-avatar\x00" + seed))
	u := func(i int) float64 { return float64(binary.BigEndian.Uint16(h[i:])) / 65535 }

	hue1 := u(0) * 360
	hue2 := math.Mod(hue1+40+u(2)*140, 360)
	bgA := hsv(hue1, 0.45+0.35*u(4), 0.55+0.35*u(6))
	bgB := hsv(hue2, 0.50+0.40*u(8), 0.25+0.35*u(10))
	fg := hsv(math.Mod(hue1+180+u(12)*60, 360), 0.15+0.25*u(14), 0.85+0.15*u(16))
	angle := u(18) * 2 * math.Pi
	dx, dy := math.Cos(angle), math.Sin(angle)
	headX := 0.5 + (u(20)-0.5)*0.12
	headY := 0.40 + (u(22)-0.5)*0.08
	headR := 0.15 + 0.04*u(24)
	bodyW := 0.30 + 0.08*u(26)
	bodyH := 0.26 + 0.06*u(28)

	const n = GeneratedSize
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	for py := 0; py < n; py++ {
		y := (float64(py) + 0.5) / n
		for px := 0; px < n; px++ {
			x := (float64(px) + 0.5) / n
			// Background: diagonal gradient between the two colours.
			t := clamp01(0.5 + ((x-0.5)*dx+(y-0.5)*dy)*0.9)
			c := mix(bgA, bgB, t)
			// Silhouette: a head (circle) over shoulders (half ellipse),
			// with anti-aliased edges.
			hx, hy := x-headX, y-headY
			head := math.Sqrt(hx*hx+hy*hy) - headR
			bx, by := hx/bodyW, (y-1.05)/(bodyH*1.6)
			body := (math.Sqrt(bx*bx+by*by) - 1) * bodyW
			cover := clamp01(0.5 - min(head, body)*n)
			// Shade the silhouette slightly from top to bottom.
			shaded := mix(fg, bgB, 0.15+0.25*y)
			c = mix(c, shaded, cover)
			// Vignette.
			vx, vy := x-0.5, y-0.5
			v := 1 - 0.7*(vx*vx+vy*vy) // 0.35 × (distance / half diagonal)²
			i := img.PixOffset(px, py)
			p := img.Pix[i : i+4 : i+4]
			p[0] = uint8(clamp01(c[0]*v)*255 + 0.5)
			p[1] = uint8(clamp01(c[1]*v)*255 + 0.5)
			p[2] = uint8(clamp01(c[2]*v)*255 + 0.5)
			p[3] = 0xff
		}
	}
	return img
}

// hsv converts a colour with hue in degrees and saturation and value in
// [0, 1] to linear-ish RGB components in [0, 1].
func hsv(h, s, v float64) [3]float64 {
	c := v * s
	hp := h / 60
	x := c * (1 - math.Abs(math.Mod(hp, 2)-1))
	var r, g, b float64
	switch {
	case hp < 1:
		r, g = c, x
	case hp < 2:
		r, g = x, c
	case hp < 3:
		g, b = c, x
	case hp < 4:
		g, b = x, c
	case hp < 5:
		r, b = x, c
	default:
		r, b = c, x
	}
	m := v - c
	return [3]float64{r + m, g + m, b + m}
}

func mix(a, b [3]float64, t float64) [3]float64 {
	return [3]float64{a[0] + (b[0]-a[0])*t, a[1] + (b[1]-a[1])*t, a[2] + (b[2]-a[2])*t}
}

func clamp01(f float64) float64 { return max(0, min(1, f)) }
