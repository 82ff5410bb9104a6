// Package picture turns an uploaded picture into the pair of JPEGs that
// WhatsApp expects for an avatar: a FullSize×FullSize picture and a
// PreviewSize×PreviewSize preview.
//
// Everything here is a pure function of its input: no I/O, no state kept
// between calls, and the same input always gives the same output bytes.
//
// Process runs a short, ordered list of named steps; limits are checked
// before any expensive work is done:
//
//  1. sniff: judge the format from the magic bytes (JPEG, PNG, GIF, WebP).
//  2. limits: read the header only and refuse pictures with too many pixels.
//  3. orientation: read the EXIF Orientation tag (JPEG APP1, WebP EXIF chunk).
//  4. decode: decode the picture. Baseline JPEGs use a built-in decoder that
//     scales by 1/2, 1/4 or 1/8 in the DCT domain and skips blocks outside
//     the centred square; everything else uses the standard decoders
//     (for a GIF, its first frame).
//  5. scale: centre-crop to a square, box-shrink by an integer factor
//     straight from the decoded planes (flattening alpha onto white), then
//     resample to FullSize with a Catmull-Rom kernel.
//  6. orient: apply the EXIF orientation to the small picture.
//  7. preview: resample the oriented picture to PreviewSize (Catmull-Rom).
//  8. encode: encode both as baseline JPEGs with image/jpeg, which writes
//     no metadata (EXIF, ICC, XMP and comments are all dropped).
package picture

import (
	"errors"
	"fmt"
	"image"
)

// Format is the container format judged from the bytes.
type Format string

// The formats that Process accepts.
const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	WebP Format = "webp"
	GIF  Format = "gif"
)

// FullSize is the side, in pixels, of the square picture Process makes.
const FullSize = 640

// PreviewSize is the side, in pixels, of the square preview Process makes.
const PreviewSize = 96

// DefaultMaxPixels is the pixel limit used when Limits.MaxPixels is zero.
const DefaultMaxPixels = 60_000_000

// Quality is the JPEG quality of both outputs.
const Quality = 85

// Limits bound the work done on one picture.
type Limits struct {
	// MaxPixels is the largest width*height, read from the header before
	// decoding, that Process accepts; 0 (or less) means DefaultMaxPixels.
	MaxPixels int64
}

// Result is a normalised picture.
type Result struct {
	Full    []byte // FullSize×FullSize baseline JPEG, no metadata
	Preview []byte // PreviewSize×PreviewSize JPEG, no metadata
	Source  Format // format of the input
	// Width and Height are the source dimensions as displayed, that is
	// after the EXIF orientation (swapped for orientations 5 to 8).
	Width, Height int
}

// Errors returned by Sniff and Process. Every error Process returns
// matches exactly one of them with errors.Is.
var (
	// ErrEmpty means the input has zero bytes.
	ErrEmpty = errors.New("file is empty")
	// ErrUnsupported means the input is not one of the four formats, or is
	// one of them but cannot be decoded.
	ErrUnsupported = errors.New("unsupported media type")
	// ErrTooLarge means the header declares more pixels than the limit.
	ErrTooLarge = errors.New("picture has too many pixels")
)

// job carries one picture through the steps of Process.
type job struct {
	data   []byte
	max    int64
	format Format
	width  int // stored (not yet oriented) dimensions from the header
	height int
	orient int

	// Decoded picture: exactly one of planes and img is set. canvas is
	// the area, in the coordinates of the decoded picture, that stands for
	// the whole source picture (GIF frames may be smaller than their
	// screen, and scaled JPEG decoding shrinks it).
	planes *planar
	img    image.Image
	canvas image.Rectangle

	full    *image.RGBA
	preview *image.RGBA
	res     Result
}

// step is one named stage of the pipeline.
type step struct {
	name string
	run  func(*job) error
}

// steps is the pipeline, in order. It is never modified.
var steps = [...]step{
	{"sniff", stepSniff},
	{"limits", stepLimits},
	{"orientation", stepOrientation},
	{"decode", stepDecode},
	{"scale", stepScale},
	{"orient", stepOrient},
	{"preview", stepPreview},
	{"encode", stepEncode},
}

// Process normalises one picture: it checks the format and the pixel
// limit, decodes, centre-crops to a square, scales to FullSize and
// PreviewSize, applies the EXIF orientation and encodes both as JPEG.
//
// Every error wraps exactly one of ErrEmpty, ErrUnsupported and
// ErrTooLarge.
func Process(data []byte, lim Limits) (Result, error) {
	j := &job{data: data, max: lim.MaxPixels}
	if j.max <= 0 {
		j.max = DefaultMaxPixels
	}
	for _, s := range steps {
		if err := s.run(j); err != nil {
			return Result{}, err
		}
	}
	return j.res, nil
}

func stepSniff(j *job) error {
	f, err := Sniff(j.data)
	if err != nil {
		return err
	}
	j.format = f
	j.res.Source = f
	return nil
}

// corrupt wraps a decoder error as ErrUnsupported.
func corrupt(f Format, err error) error {
	return fmt.Errorf("%w: corrupt %s: %v", ErrUnsupported, f, err)
}

// checkPixels refuses w×h when it is empty or over max.
func checkPixels(f Format, w, h int, max int64) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: corrupt %s: %dx%d has no pixels", ErrUnsupported, f, w, h)
	}
	if int64(w)*int64(h) > max {
		return fmt.Errorf("%w: %dx%d is over the limit of %d pixels", ErrTooLarge, w, h, max)
	}
	return nil
}

func stepLimits(j *job) error {
	cfg, err := decodeConfig(j.format, j.data)
	if err != nil {
		return corrupt(j.format, err)
	}
	if err := checkPixels(j.format, cfg.Width, cfg.Height, j.max); err != nil {
		return err
	}
	j.width, j.height = cfg.Width, cfg.Height
	return nil
}

func stepOrientation(j *job) error {
	j.orient = orientationOf(j.format, j.data)
	j.res.Width, j.res.Height = j.width, j.height
	if j.orient >= 5 {
		j.res.Width, j.res.Height = j.height, j.width
	}
	return nil
}

func stepDecode(j *job) error {
	if j.format == JPEG {
		// The scaled decoder handles baseline JPEGs; for anything it does
		// not handle (or thinks is corrupt) the standard decoder decides.
		if p, canvas, err := decodeJPEGScaled(j.data, FullSize); err == nil {
			j.planes, j.canvas = p, canvas
			return nil
		}
	}
	img, err := decodeImage(j.format, j.data)
	if err != nil {
		return corrupt(j.format, err)
	}
	b := img.Bounds()
	if err := checkPixels(j.format, b.Dx(), b.Dy(), j.max); err != nil {
		return err
	}
	j.canvas = b
	if j.format == GIF {
		// A GIF's first frame may cover only part of its logical screen;
		// the rest is transparent.
		j.canvas = image.Rect(0, 0, j.width, j.height)
	}
	if p := planarOf(img); p != nil {
		j.planes = p
	} else {
		j.img = img
	}
	return nil
}

func stepScale(j *job) error {
	sq := centreSquare(j.canvas)
	k := sq.Dx() / FullSize
	if k < 1 {
		k = 1
	}
	m := sq.Dx() / k
	// The part of the square that is an exact multiple of k, centred.
	off := (sq.Dx() - m*k) / 2
	box := image.Rect(sq.Min.X+off, sq.Min.Y+off, sq.Min.X+off+m*k, sq.Min.Y+off+m*k)
	var mid *rgbImage
	if j.planes != nil {
		mid = shrinkPlanar(j.planes, box, k)
	} else {
		mid = shrinkImage(j.img, box, k)
	}
	j.full = resample(mid, FullSize)
	return nil
}

func stepOrient(j *job) error {
	j.full = orient(j.full, j.orient)
	return nil
}

func stepPreview(j *job) error {
	j.preview = resampleRGBA(j.full, PreviewSize)
	return nil
}

func stepEncode(j *job) error {
	full, err := encodeJPEG(j.full)
	if err != nil {
		return fmt.Errorf("%w: encode: %v", ErrUnsupported, err)
	}
	preview, err := encodeJPEG(j.preview)
	if err != nil {
		return fmt.Errorf("%w: encode: %v", ErrUnsupported, err)
	}
	j.res.Full, j.res.Preview = full, preview
	return nil
}

// centreSquare returns the largest square centred in r.
func centreSquare(r image.Rectangle) image.Rectangle {
	w, h := r.Dx(), r.Dy()
	s := min(w, h)
	x := r.Min.X + (w-s)/2
	y := r.Min.Y + (h-s)/2
	return image.Rect(x, y, x+s, y+s)
}
