package instance_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/instance"
	"github.com/portrait-dev/portrait/sandbox"
	"github.com/portrait-dev/portrait/sqlite"
)

type nopSink struct{}

func (nopSink) StateChanged(portrait.InstanceID, portrait.State)           {}
func (nopSink) PictureChanged(portrait.InstanceID, portrait.PictureChange) {}

func open(t *testing.T) (*sqlite.DB, *instance.Registry) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sb := sandbox.New(db, nil, sandbox.Options{})
	reg := instance.NewRegistry(db, map[string]portrait.Engine{sb.Name(): sb}, nopSink{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := reg.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return db, reg
}

func TestCredentials(t *testing.T) {
	tokenRE := regexp.MustCompile(`^[0-9a-f]{50}$`)
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		tok := instance.NewToken()
		if !tokenRE.MatchString(tok) || seen[tok] {
			t.Fatalf("token %q is not 50 lowercase hex characters, or repeats", tok)
		}
		seen[tok] = true
		if !instance.TokenMatches(instance.HashToken(tok), tok) || instance.TokenMatches(instance.HashToken(tok), tok[:49]) {
			t.Fatal("TokenMatches is wrong")
		}
	}
	for typ, prefix := range map[portrait.InstanceType]string{portrait.TypeWhatsApp: "1101", portrait.TypeMAX: "3100"} {
		id := instance.NewID(typ)
		if s := strconv.FormatInt(int64(id), 10); len(s) != 10 || !strings.HasPrefix(s, prefix) {
			t.Errorf("NewID(%s) = %d", typ, id)
		}
	}
	if _, err := instance.ParseType("telegram"); err == nil {
		t.Error("ParseType accepted telegram")
	}
	if typ, err := instance.ParseType("max"); err != nil || typ != portrait.TypeMAX {
		t.Errorf("ParseType(max) = %v, %v", typ, err)
	}
}

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	db, reg := open(t)
	inst, token, err := reg.Create(ctx, portrait.TypeWhatsApp, "sandbox")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := db.Instance(ctx, inst.ID)
	if err != nil || string(stored.TokenHash) == token || !instance.TokenMatches(stored.TokenHash, token) {
		t.Fatalf("stored %+v, %v: the token must be stored hashed", stored, err)
	}
	if l, err := reg.Authenticate(inst.ID, token); err != nil || l.Session == nil || l.Type != portrait.TypeWhatsApp {
		t.Fatalf("Authenticate: %+v, %v", l, err)
	}
	if _, err := reg.Authenticate(inst.ID, instance.NewToken()); !errors.Is(err, instance.ErrBadToken) {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := reg.Authenticate(inst.ID+1, token); !errors.Is(err, instance.ErrUnknownInstance) {
		t.Errorf("unknown instance: %v", err)
	}
	if _, _, err := reg.Create(ctx, portrait.TypeWhatsApp, "carrier-pigeon"); err == nil {
		t.Error("unknown engine accepted")
	}
	newToken, err := reg.RotateToken(ctx, inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Authenticate(inst.ID, token); !errors.Is(err, instance.ErrBadToken) {
		t.Errorf("old token after rotation: %v", err)
	}
	if _, err := reg.Authenticate(inst.ID, newToken); err != nil {
		t.Errorf("new token: %v", err)
	}
	st := portrait.DefaultSettings()
	st.WebhookURL = "https://example.com"
	if err := reg.SetSettings(ctx, inst.ID, st); err != nil {
		t.Fatal(err)
	}
	if l, _ := reg.Get(inst.ID); l.Settings().WebhookURL != "https://example.com" {
		t.Errorf("settings not applied: %+v", l.Settings())
	}
	if err := reg.Delete(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Authenticate(inst.ID, newToken); !errors.Is(err, instance.ErrUnknownInstance) {
		t.Errorf("deleted instance: %v", err)
	}
}

// TestWatch: changes made by another process (the CLI) on the same store
// reach a running registry.
func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, reg := open(t)
	go reg.Watch(ctx, 20*time.Millisecond)
	other, err := sqlite.Open(ctx, db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	inst, token, err := instance.Create(ctx, other, portrait.TypeMAX, "sandbox")
	if err != nil {
		t.Fatal(err)
	}
	wait := func(cond func() bool, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("the registry never saw %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait(func() bool { _, err := reg.Authenticate(inst.ID, token); return err == nil }, "the new instance")
	newToken, err := instance.RotateToken(ctx, other, inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	wait(func() bool { _, err := reg.Authenticate(inst.ID, newToken); return err == nil }, "the new token")
	if err := other.DeleteInstance(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	wait(func() bool { _, ok := reg.Get(inst.ID); return !ok }, "the deletion")
}

// eagerEngine reports its first state from inside Open, before the
// Registry has published the instance, as a real engine may.
type eagerEngine struct{ sandbox *sandbox.Engine }

func (e eagerEngine) Name() string { return "eager" }
func (e eagerEngine) Open(ctx context.Context, inst portrait.Instance, sink portrait.EventSink) (portrait.Session, error) {
	sink.StateChanged(inst.ID, portrait.StateStarting)
	return e.sandbox.Open(ctx, inst, nopSink{})
}

// lookingSink records events and whether the Registry knew the instance
// when each arrived (the hub looks instances up to build notifications).
type lookingSink struct {
	reg   **instance.Registry
	mu    sync.Mutex
	known []bool
}

func (s *lookingSink) StateChanged(id portrait.InstanceID, _ portrait.State) {
	_, ok := (*s.reg).Get(id)
	s.mu.Lock()
	s.known = append(s.known, ok)
	s.mu.Unlock()
}
func (s *lookingSink) PictureChanged(portrait.InstanceID, portrait.PictureChange) {}

// TestEventsBeforePublication: an event an engine reports while Open runs
// reaches the sink once the instance can be looked up, not before and not
// never.
func TestEventsBeforePublication(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var reg *instance.Registry
	sink := &lookingSink{reg: &reg}
	eng := eagerEngine{sandbox.New(db, nil, sandbox.Options{})}
	reg = instance.NewRegistry(db, map[string]portrait.Engine{"eager": eng}, sink, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := reg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if _, _, err := reg.Create(ctx, portrait.TypeWhatsApp, "eager"); err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.known) != 1 || !sink.known[0] {
		t.Fatalf("events seen (true = instance known then): %v; want [true]", sink.known)
	}
}
