package whatsapp

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
)

// WhatsApp refuses clients that announce a WhatsApp Web version it no
// longer supports. whatsmeow has one built in, which ages with the build; so
// a running server asks WhatsApp for the current one at start and then
// every Options.VersionCheck, keeps the built-in one when WhatsApp cannot be
// asked, and Options.Version pins one instead. The version is process-wide
// (whatsmeow keeps it in a global), like the device name.

// Where the version in use came from.
const (
	VersionBuiltIn  = "built-in"
	VersionWhatsApp = "whatsapp"
	VersionPinned   = "pinned"
)

// DefaultVersionCheck is how often a running server asks WhatsApp for its
// current web version.
const DefaultVersionCheck = 24 * time.Hour

// versionState is the version in use and where it came from.
type versionState struct {
	mu     sync.Mutex
	source string
}

// Version returns the WhatsApp Web version the engine announces and where
// it came from (VersionBuiltIn, VersionWhatsApp or VersionPinned).
func (e *Engine) Version() (version, source string) {
	e.version.mu.Lock()
	defer e.version.mu.Unlock()
	source = e.version.source
	if source == "" {
		source = VersionBuiltIn
	}
	return store.GetWAVersion().String(), source
}

// latestVersion asks WhatsApp for its current web version; the seam tests
// replace.
func latestVersion(ctx context.Context) (store.WAVersionContainer, error) {
	v, err := whatsmeow.GetLatestVersion(ctx, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		return store.WAVersionContainer{}, err
	}
	return *v, nil
}

// Run keeps the announced WhatsApp Web version current until ctx ends: a
// pinned Options.Version is set once; otherwise WhatsApp is asked now and
// every Options.VersionCheck. A server runs it; the CLI does not.
func (e *Engine) Run(ctx context.Context) {
	if e.opts.Version != "" {
		v, err := store.ParseVersion(e.opts.Version)
		if err != nil || v.IsZero() {
			e.log.Error("whatsapp: the configured WhatsApp Web version is not a version; keeping the built-in one", "version", e.opts.Version, "builtIn", store.GetWAVersion().String())
			return
		}
		store.SetWAVersion(v)
		e.version.mu.Lock()
		e.version.source = VersionPinned
		e.version.mu.Unlock()
		e.log.Info("whatsapp: announcing the configured WhatsApp Web version", "version", v.String())
		return
	}
	t := time.NewTicker(e.opts.VersionCheck)
	defer t.Stop()
	for {
		e.updateVersion(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// updateVersion asks WhatsApp once and applies what it says.
func (e *Engine) updateVersion(ctx context.Context) {
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := e.versionSource(actx)
	if err == nil && v.IsZero() {
		err = fmt.Errorf("WhatsApp gave no version")
	}
	if err != nil {
		if ctx.Err() == nil {
			cur, src := e.Version()
			e.log.Warn("whatsapp: could not ask WhatsApp for its current web version; keeping the one in use", "version", cur, "source", src, "err", err)
		}
		return
	}
	before := store.GetWAVersion()
	store.SetWAVersion(v)
	e.version.mu.Lock()
	e.version.source = VersionWhatsApp
	e.version.mu.Unlock()
	if before != v {
		e.log.Info("whatsapp: announcing WhatsApp's current web version", "version", v.String(), "was", before.String())
	}
}
