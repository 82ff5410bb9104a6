//go:build nosystemdecoders

package picture

import (
	"errors"
	"image"
)

// Built with the nosystemdecoders tag, portrait never loads the system's
// libheif or libwebp and its binary stays fully static: HEIC, AVIF and
// WebP pictures are decoded by the built-in decoders only.

// libheif and libwebp stand in for the system libraries, which this build
// cannot load.
type (
	libheif struct{ version string }
	libwebp struct{ version string }
)

type heifPicture struct {
	planes *planar
	img    image.Image
	free   func()
}

var errNoSystemDecoders = errors.New("this build of portrait cannot load system decoders (built with the nosystemdecoders tag)")

func openLibheif(string) (*libheif, error) { return nil, errNoSystemDecoders }

func openLibwebp(string) (*libwebp, error) { return nil, errNoSystemDecoders }

func (*libheif) decode([]byte, *heifInfo) (*heifPicture, error) { return nil, errNoSystemDecoders }

func (*libwebp) decodeShrink([]byte, image.Rectangle, int, bool) (*rgbImage, error) {
	return nil, errNoSystemDecoders
}
