package whatsapp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"
)

// TestVersion: the announced WhatsApp Web version is WhatsApp's current
// one when it can be asked, the built-in one when not, and the configured
// one when pinned; Version reports which.
func TestVersion(t *testing.T) {
	builtIn := store.GetWAVersion()
	t.Cleanup(func() { store.SetWAVersion(builtIn) })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	current := store.WAVersionContainer{2, 3000, 1099999999}

	e := newEngine(nil, Options{Logger: quiet})
	if v, src := e.Version(); v != builtIn.String() || src != VersionBuiltIn {
		t.Errorf("before Run: %s (%s)", v, src)
	}
	e.versionSource = func(context.Context) (store.WAVersionContainer, error) {
		return store.WAVersionContainer{}, errors.New("no route to WhatsApp")
	}
	e.updateVersion(context.Background())
	if v, src := e.Version(); v != builtIn.String() || src != VersionBuiltIn {
		t.Errorf("WhatsApp unreachable: %s (%s), want the built-in %s", v, src, builtIn)
	}
	asked := make(chan struct{}, 10)
	e.versionSource = func(context.Context) (store.WAVersionContainer, error) {
		asked <- struct{}{}
		return current, nil
	}
	e.opts.VersionCheck = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	for i := 0; i < 2; i++ { // at start, and again after VersionCheck
		select {
		case <-asked:
		case <-time.After(5 * time.Second):
			t.Fatalf("WhatsApp was asked %d times", i)
		}
	}
	cancel()
	<-done
	if v, src := e.Version(); v != current.String() || src != VersionWhatsApp {
		t.Errorf("from WhatsApp: %s (%s), want %s", v, src, current)
	}

	pinned := newEngine(nil, Options{Logger: quiet, Version: "2.3000.1000000001"})
	pinned.versionSource = func(context.Context) (store.WAVersionContainer, error) {
		t.Error("WhatsApp asked although the version is pinned")
		return current, nil
	}
	pinned.Run(context.Background())
	if v, src := pinned.Version(); v != "2.3000.1000000001" || src != VersionPinned {
		t.Errorf("pinned: %s (%s)", v, src)
	}
}
