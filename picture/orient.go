package picture

import "image"

// orient returns m turned and flipped so that a picture stored with EXIF
// orientation o is shown upright. Orientation 1 (or an unknown value)
// returns m itself.
func orient(m *image.RGBA, o int) *image.RGBA {
	if o < 2 || o > 8 {
		return m
	}
	sw, sh := m.Rect.Dx(), m.Rect.Dy()
	dw, dh := sw, sh
	if o >= 5 {
		dw, dh = sh, sw
	}
	d := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < dh; y++ {
		row := d.Pix[y*d.Stride : y*d.Stride+4*dw]
		for x := 0; x < dw; x++ {
			// (sx, sy) is the stored pixel displayed at (x, y).
			var sx, sy int
			switch o {
			case orientFlipH:
				sx, sy = sw-1-x, y
			case orientRotate180:
				sx, sy = sw-1-x, sh-1-y
			case orientFlipV:
				sx, sy = x, sh-1-y
			case orientTranspose:
				sx, sy = y, x
			case orientRotate90:
				sx, sy = y, sh-1-x
			case orientTransverse:
				sx, sy = sw-1-y, sh-1-x
			case orientRotate270:
				sx, sy = sw-1-y, x
			}
			s := m.PixOffset(sx+m.Rect.Min.X, sy+m.Rect.Min.Y)
			copy(row[4*x:4*x+4], m.Pix[s:s+4])
		}
	}
	return d
}
