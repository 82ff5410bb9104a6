// Package picture turns an uploaded picture into the pair of JPEGs that
// WhatsApp expects for an avatar: a FullSize×FullSize picture and a
// PreviewSize×PreviewSize preview.
//
// Everything here is a pure function of its input: no I/O, no state kept
// between calls (a Budget, shared by the caller, only decides when a call
// may decode), and the same input always gives the same output bytes.
//
// Process runs a short, ordered list of named steps; limits are checked
// before any expensive work is done:
//
//  1. sniff: judge the format from the magic bytes (JPEG, PNG, GIF, WebP,
//     AVIF, HEIC).
//  2. limits: read the header only, refuse pictures with too many pixels,
//     and estimate the memory that decoding will hold (Estimate).
//  3. orientation: read the EXIF Orientation tag (JPEG APP1, WebP EXIF
//     chunk) or the HEIF transformations (AVIF irot/imir; HEIC pictures
//     come out of their decoder already turned).
//  4. admit: when Limits.Budget is set, wait until the estimate fits in
//     it (or refuse a picture that could never fit).
//  5. decode: decode the picture. Baseline and progressive JPEGs use a
//     built-in decoder that scales by 1/2, 1/4 or 1/8 in the DCT domain and
//     transforms only the blocks of the centred square (a progressive
//     JPEG's coefficients are kept as int16 until its last scan);
//     non-interlaced PNGs are decoded row by row
//     straight into the shrink of step 6, never held at full size; other
//     PNGs, GIF and WebP use the standard and golang.org/x/image decoders
//     (for a GIF, its first frame; for an animated WebP, its first frame);
//     AVIF and HEIC use libavif and libheif compiled to WebAssembly, run by
//     wazero (pure Go, no cgo).
//  6. scale: centre-crop to a square, box-shrink by an integer factor
//     straight from the decoded planes (flattening alpha onto white), then
//     resample to FullSize with a Catmull-Rom kernel.
//  7. orient: apply the EXIF orientation to the small picture.
//  8. preview: resample the oriented picture to PreviewSize (Catmull-Rom).
//  9. encode: encode both as baseline JPEGs with image/jpeg, which writes
//     no metadata (EXIF, ICC, XMP and comments are all dropped).
package picture

import (
	"context"
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
	AVIF Format = "avif"
	HEIC Format = "heic"
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
	// Budget, when not nil, is the process-wide decode memory that this
	// call is admitted against (see Budget). nil means no bound beyond
	// MaxPixels.
	Budget *Budget
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
// matches exactly one of them with errors.Is (an ErrBusy also matches the
// context's error).
var (
	// ErrEmpty means the input has zero bytes.
	ErrEmpty = errors.New("file is empty")
	// ErrUnsupported means the input is not one of the four formats, or is
	// one of them but cannot be decoded.
	ErrUnsupported = errors.New("unsupported media type")
	// ErrTooLarge means the header declares more pixels than the limit.
	ErrTooLarge = errors.New("picture has too many pixels")
	// ErrOverBudget means that decoding the picture would need more
	// memory than the whole of Limits.Budget: it can never be admitted.
	ErrOverBudget = errors.New("picture needs more decode memory than the budget")
	// ErrBusy means that the context ended while the picture waited for
	// room in Limits.Budget; it also wraps the context's error.
	ErrBusy = errors.New("decode budget busy")
)

// job carries one picture through the steps of Process.
type job struct {
	ctx    context.Context
	data   []byte
	max    int64
	budget *Budget
	format Format
	width  int // stored (not yet oriented) dimensions from the header
	height int
	orient int

	need    int64  // estimated bytes held while decoding and scaling
	release func() // gives need back to the budget; nil when not admitted

	webp   *webpInfo
	heif   *heifInfo
	jpeg   *jpegFrame // parsed header when the scaled decoder takes it
	jpegAt int        // where jpeg's parse stopped: the first scan
	png    *pngInfo   // chunks before the pixels when the streaming decoder takes it
	sys    *libheif   // the system's libheif, for a HEIC or AVIF it decodes
	wsys   *libwebp   // the system's libwebp, for a still WebP it decodes

	// Decoded picture: exactly one of planes and img is set. canvas is
	// the area, in the coordinates of the decoded picture, that stands for
	// the whole source picture (GIF frames may be smaller than their
	// screen, and scaled JPEG decoding shrinks it).
	planes *planar
	img    image.Image
	cc     ycc       // how img's Y′CbCr samples, if any, map to RGB
	mid    *rgbImage // already box-shrunk (streamed PNG)
	canvas image.Rectangle
	free   func() // releases memory outside Go's heap that planes or img use

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
	{"admit", stepAdmit},
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
// Every error wraps exactly one of ErrEmpty, ErrUnsupported,
// ErrTooLarge, ErrOverBudget and ErrBusy. Process waits for room in
// lim.Budget without a deadline; use ProcessContext to bound the wait.
func Process(data []byte, lim Limits) (Result, error) {
	return ProcessContext(context.Background(), data, lim)
}

// ProcessContext is Process with a context that bounds the wait for room
// in lim.Budget: when ctx ends first, the error wraps ErrBusy and ctx's
// error. The context does not interrupt a decode once it has started.
func ProcessContext(ctx context.Context, data []byte, lim Limits) (Result, error) {
	j := newJob(ctx, data, lim)
	defer j.giveBack()
	for _, s := range steps {
		if err := s.run(j); err != nil {
			return Result{}, err
		}
	}
	return j.res, nil
}

func newJob(ctx context.Context, data []byte, lim Limits) *job {
	j := &job{ctx: ctx, data: data, max: lim.MaxPixels, budget: lim.Budget}
	if j.max <= 0 {
		j.max = DefaultMaxPixels
	}
	return j
}

// admit holds j.need bytes of the budget for the job, giving back what it
// held before.
func (j *job) admit() error {
	j.giveBack()
	if j.budget == nil {
		return nil
	}
	release, err := j.budget.acquire(j.ctx, j.need)
	if err != nil {
		return err
	}
	j.release = release
	return nil
}

// fallBack is for a scaled or streaming decoder that gave up: the
// general-purpose decoder decides, admitted with the memory that a full
// decode needs.
func (j *job) fallBack() error {
	j.jpeg, j.png, j.wsys = nil, nil, nil
	j.need = j.estimate()
	return j.admit()
}

// giveBack returns the job's bytes to the budget and frees what the
// decoded picture holds outside Go's heap.
func (j *job) giveBack() {
	j.freePixels()
	if j.release != nil {
		j.release()
		j.release = nil
	}
}

// freePixels releases memory outside Go's heap that the decoded picture
// uses, once it is no longer needed.
func (j *job) freePixels() {
	if j.free != nil {
		j.free()
		j.free = nil
	}
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
	var err error
	j.width, j.height, err = j.header()
	if err != nil {
		return corrupt(j.format, err)
	}
	if err := checkPixels(j.format, j.width, j.height, j.max); err != nil {
		return err
	}
	j.need = j.estimate()
	return nil
}

func stepOrientation(j *job) error {
	if j.format == AVIF && !j.heifTurns() {
		j.orient = j.heif.orientation()
	} else {
		j.orient = orientationOf(j.format, j.data)
	}
	j.res.Width, j.res.Height = j.width, j.height
	if j.orient >= 5 {
		j.res.Width, j.res.Height = j.height, j.width
	}
	return nil
}

func stepAdmit(j *job) error {
	return j.admit()
}

func stepDecode(j *job) error {
	if j.jpeg != nil {
		// The scaled decoder handles baseline and progressive JPEGs; for
		// anything it thinks is corrupt the standard decoder decides, with
		// the memory that a full decode needs.
		f := j.jpeg
		p, canvas, err := f.decodeAny(j.data, j.jpegAt, scaleFor(min(f.width, f.height), FullSize))
		if err == nil {
			j.planes, j.canvas = p, canvas
			return nil
		}
		if errors.Is(err, errJPEGScans) {
			return corrupt(j.format, err)
		}
		if err := j.fallBack(); err != nil {
			return err
		}
	}
	if j.png != nil {
		// Non-interlaced PNGs are decoded row by row into the shrink; if
		// the streaming decoder gives up, image/png decides, with the
		// memory that a full decode needs.
		j.canvas = image.Rect(0, 0, j.width, j.height)
		box, k := shrinkPlan(j.canvas)
		if mid, err := decodePNGShrink(j.data, j.png, box, k); err == nil {
			j.mid = mid
			return nil
		}
		if err := j.fallBack(); err != nil {
			return err
		}
	}
	if j.wsys != nil {
		// libwebp crops and scales while it decodes; if it refuses the
		// picture, golang.org/x/image decides, with the memory that its
		// full decode needs.
		j.canvas = image.Rect(0, 0, j.width, j.height)
		box, k := shrinkPlan(j.canvas)
		if mid, err := j.wsys.decodeShrink(j.data, box, k, j.webp.alpha); err == nil {
			j.mid = mid
			return nil
		}
		if err := j.fallBack(); err != nil {
			return err
		}
	}
	if j.sys != nil {
		pic, err := j.sys.decode(j.data, j.heif)
		if err != nil {
			return corrupt(j.format, err)
		}
		j.free = pic.free
		if pic.planes != nil {
			j.planes, j.canvas = pic.planes, pic.planes.rect
		} else {
			j.img, j.canvas = pic.img, pic.img.Bounds()
		}
		return checkPixels(j.format, j.canvas.Dx(), j.canvas.Dy(), j.max)
	}
	img, cc, err := j.decodeImage()
	if err != nil {
		return corrupt(j.format, err)
	}
	j.cc = cc
	b := img.Bounds()
	if err := checkPixels(j.format, b.Dx(), b.Dy(), j.max); err != nil {
		return err
	}
	j.canvas = b
	if j.format == GIF || (j.webp != nil && j.webp.animated) {
		// The first frame of a GIF or an animated WebP may cover only
		// part of its canvas; the rest is transparent.
		j.canvas = image.Rect(0, 0, j.width, j.height)
	}
	if p := planarOf(img); p != nil && b == j.canvas {
		p.cc = cc
		j.planes = p
	} else {
		j.img = img
	}
	return nil
}

// shrinkPlan returns the part of the centred square of canvas that is an
// exact multiple of k pixels a side (centred), and k: the integer factor
// that box-shrinks it to between FullSize and twice that (or 1 for
// smaller pictures).
func shrinkPlan(canvas image.Rectangle) (image.Rectangle, int) {
	sq := centreSquare(canvas)
	k := max(sq.Dx()/FullSize, 1)
	m := sq.Dx() / k
	off := (sq.Dx() - m*k) / 2
	return image.Rect(sq.Min.X+off, sq.Min.Y+off, sq.Min.X+off+m*k, sq.Min.Y+off+m*k), k
}

func stepScale(j *job) error {
	mid := j.mid
	if mid == nil {
		box, k := shrinkPlan(j.canvas)
		if j.planes != nil {
			mid = shrinkPlanar(j.planes, box, k)
		} else {
			mid = shrinkImage(j.img, box, k, j.cc)
		}
	}
	// The decoded picture is no longer needed.
	j.planes, j.img, j.mid = nil, nil, nil
	j.freePixels()
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
