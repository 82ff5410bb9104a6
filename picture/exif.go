package picture

import "encoding/binary"

// EXIF orientation values, as in the TIFF/EXIF specification: the
// position of the stored picture's row 0 and column 0 as displayed.
const (
	orientNormal     = 1 // row 0 top, column 0 left
	orientFlipH      = 2 // row 0 top, column 0 right
	orientRotate180  = 3 // row 0 bottom, column 0 right
	orientFlipV      = 4 // row 0 bottom, column 0 left
	orientTranspose  = 5 // row 0 left, column 0 top
	orientRotate90   = 6 // row 0 right, column 0 top (turn 90° clockwise to display)
	orientTransverse = 7 // row 0 right, column 0 bottom
	orientRotate270  = 8 // row 0 left, column 0 bottom (turn 90° anticlockwise)
)

// orientationOf returns the EXIF orientation (1 to 8) of a picture, or 1
// when it has none or its EXIF cannot be read.
func orientationOf(f Format, data []byte) int {
	switch f {
	case JPEG:
		return jpegOrientation(data)
	case WebP:
		return webpOrientation(data)
	}
	return orientNormal
}

// jpegOrientation walks the JPEG segments before the first scan and reads
// the orientation from the first APP1 segment that holds EXIF.
func jpegOrientation(b []byte) int {
	o := orientNormal
	walkJPEGHeader(b, func(m byte, seg []byte) bool {
		if m == 0xE1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			o = exifOrientation(seg[6:])
			return false
		}
		return true
	})
	return o
}

// walkJPEGHeader calls fn with the marker and the segment of each
// segment of a JPEG before its first scan, while fn returns true. It
// stops quietly at SOS, EOI and anything malformed.
func walkJPEGHeader(b []byte, fn func(m byte, seg []byte) bool) {
	i := 2 // after SOI
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return
		}
		m := b[i+1]
		switch {
		case m == 0xFF: // fill byte
			i++
			continue
		case m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7): // no length
			i += 2
			continue
		case m == 0xDA || m == 0xD9: // SOS, EOI
			return
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return
		}
		if !fn(m, b[i+4:i+2+n]) {
			return
		}
		i += 2 + n
	}
}

// webpOrientation reads the orientation from the EXIF chunk of a WebP
// (extended format) file.
func webpOrientation(b []byte) int {
	if len(b) < 12 {
		return orientNormal
	}
	end := len(b)
	if riff := uint64(binary.LittleEndian.Uint32(b[4:])) + 8; riff < uint64(end) {
		end = int(riff)
	}
	for i := 12; i+8 <= end; {
		n := uint64(binary.LittleEndian.Uint32(b[i+4:]))
		if n > uint64(end-i-8) {
			return orientNormal
		}
		if string(b[i:i+4]) == "EXIF" {
			data := b[i+8 : i+8+int(n)]
			// Some writers keep the JPEG-style "Exif\0\0" prefix.
			if len(data) >= 6 && string(data[:6]) == "Exif\x00\x00" {
				data = data[6:]
			}
			return exifOrientation(data)
		}
		i += 8 + int(n) + int(n&1)
	}
	return orientNormal
}

// exifOrientation reads tag 0x0112 (Orientation) from IFD0 of a TIFF
// structure (byte order "II" or "MM"). It never fails: anything missing,
// truncated or out of range gives 1.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return orientNormal
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return orientNormal
	}
	if bo.Uint16(t[2:]) != 42 {
		return orientNormal
	}
	ifd := uint64(bo.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > uint64(len(t)) {
		return orientNormal
	}
	count := int(bo.Uint16(t[ifd:]))
	for e := int(ifd) + 2; count > 0 && e+12 <= len(t); e, count = e+12, count-1 {
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		typ, n := bo.Uint16(t[e+2:]), bo.Uint32(t[e+4:])
		var v uint32
		switch {
		case typ == 3 && n >= 1 && n <= 2: // SHORT, inline
			v = uint32(bo.Uint16(t[e+8:]))
		case typ == 4 && n == 1: // LONG
			v = bo.Uint32(t[e+8:])
		case (typ == 1 || typ == 7) && n >= 1 && n <= 4: // BYTE, UNDEFINED
			v = uint32(t[e+8])
		default:
			return orientNormal
		}
		if v >= 1 && v <= 8 {
			return int(v)
		}
		return orientNormal
	}
	return orientNormal
}
