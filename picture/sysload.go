//go:build !nosystemdecoders

package picture

import (
	"fmt"

	"github.com/ebitengine/purego"
)

// libFunc binds one C function of a shared library to a Go function
// variable (a pointer to it, as purego.RegisterLibFunc takes).
type libFunc struct {
	fn   any
	name string
}

// openLib loads the shared library name, its symbols resolved at once and
// kept to itself.
func openLib(name string) (uintptr, error) {
	h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return 0, fmt.Errorf("load %s: %w", name, err)
	}
	return h, nil
}

// bind binds fns from the library name opened as h; a missing symbol is
// an error (purego panics on it).
func bind(name string, h uintptr, fns ...libFunc) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %v", name, r)
		}
	}()
	for _, f := range fns {
		purego.RegisterLibFunc(f.fn, h, f.name)
	}
	return nil
}
