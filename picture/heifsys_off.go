//go:build nolibheif

package picture

import (
	"errors"
	"image"
)

// Built with the nolibheif tag, portrait never loads the system's libheif
// and its binary stays fully static: HEIC and AVIF pictures are decoded
// by the built-in decoders only.

// libheif stands in for the system library, which this build cannot load.
type libheif struct{ version string }

type heifPicture struct {
	planes *planar
	img    image.Image
	free   func()
}

func openLibheif(string) (*libheif, error) {
	return nil, errors.New("this build of portrait cannot load libheif (built with the nolibheif tag)")
}

func (*libheif) decode([]byte, *heifInfo) (*heifPicture, error) {
	return nil, errors.New("no libheif in this build")
}
