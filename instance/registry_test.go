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
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/instance"
	"github.com/portrait-dev/portrait/sandbox"
	"github.com/portrait-dev/portrait/sqlite"
)

func open(t *testing.T) (*sqlite.DB, *instance.Registry) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sb := sandbox.New(db, nil, sandbox.Options{})
	reg := instance.New(db, map[string]portrait.Engine{sb.Name(): sb}, instance.Options{DefaultEngine: sb.Name(), Logger: quiet()})
	if err := reg.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return db, reg
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// cliOn is another process's registry on db's file, as the CLI opens it:
// lazy, with a sandbox engine of its own.
func cliOn(t *testing.T, db *sqlite.DB) *instance.Registry {
	t.Helper()
	other, err := sqlite.Open(context.Background(), db.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	sb := sandbox.New(other, nil, sandbox.Options{})
	cli := instance.New(other, map[string]portrait.Engine{sb.Name(): sb}, instance.Options{Lazy: true, Logger: quiet()})
	if err := cli.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cli.Close)
	return cli
}

// waitFor waits up to 5 s for cond, failing the test with what it waited
// for.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("the registry never saw %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
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
	h, token, err := reg.Create(ctx, portrait.TypeWhatsApp, "")
	if err != nil {
		t.Fatal(err)
	}
	if h.Engine() != sandbox.Name {
		t.Errorf("default engine: %q", h.Engine())
	}
	stored, err := db.Instance(ctx, h.ID())
	if err != nil || string(stored.TokenHash) == token || !instance.TokenMatches(stored.TokenHash, token) {
		t.Fatalf("stored %+v, %v: the token must be stored hashed", stored, err)
	}
	if l, err := reg.Authenticate(ctx, h.ID(), token); err != nil || l.Err() != nil || l.Type() != portrait.TypeWhatsApp || l.State() != portrait.StateAuthorized {
		t.Fatalf("Authenticate: %v", err)
	}
	if _, err := reg.Authenticate(ctx, h.ID(), instance.NewToken()); !errors.Is(err, portrait.ErrBadToken) {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := reg.Authenticate(ctx, h.ID()+1, token); !errors.Is(err, portrait.ErrUnknownInstance) {
		t.Errorf("unknown instance: %v", err)
	}
	if _, _, err := reg.Create(ctx, portrait.TypeWhatsApp, "carrier-pigeon"); err == nil {
		t.Error("unknown engine accepted")
	}
	newToken, err := reg.RotateToken(ctx, h.ID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Authenticate(ctx, h.ID(), token); !errors.Is(err, portrait.ErrBadToken) {
		t.Errorf("old token after rotation: %v", err)
	}
	if _, err := reg.Authenticate(ctx, h.ID(), newToken); err != nil {
		t.Errorf("new token: %v", err)
	}
	st := portrait.DefaultSettings()
	st.WebhookURL = "https://example.com"
	if err := reg.SetSettings(ctx, h.ID(), st); err != nil {
		t.Fatal(err)
	}
	if l, _ := reg.Get(ctx, h.ID()); l.Settings().WebhookURL != "https://example.com" {
		t.Errorf("settings not applied: %+v", l.Settings())
	}
	if err := reg.Delete(ctx, h.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Authenticate(ctx, h.ID(), newToken); !errors.Is(err, portrait.ErrUnknownInstance) {
		t.Errorf("deleted instance: %v", err)
	}
	if err := reg.Delete(ctx, h.ID()); !errors.Is(err, portrait.ErrUnknownInstance) {
		t.Errorf("deleting twice: %v", err)
	}
}

// TestCreateStorageFailure: an instance the store could not take is the
// server's failure (ErrStorage); a request naming an unknown engine is not.
func TestCreateStorageFailure(t *testing.T) {
	db, reg := open(t)
	if _, _, err := reg.Create(t.Context(), portrait.TypeWhatsApp, "carrier-pigeon"); err == nil || errors.Is(err, portrait.ErrStorage) {
		t.Errorf("unknown engine: %v; want a refusal that is not a storage failure", err)
	}
	db.Close()
	if _, _, err := reg.Create(t.Context(), portrait.TypeWhatsApp, ""); !errors.Is(err, portrait.ErrStorage) {
		t.Errorf("Create on a closed store = %v; want ErrStorage", err)
	}
}

// TestWatch: changes made by another process (the CLI, with a lazy
// registry of its own) on the same store reach a running registry.
func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, reg := open(t)
	go reg.Watch(ctx, 20*time.Millisecond)
	cli := cliOn(t, db)
	h, token, err := cli.Create(ctx, portrait.TypeMAX, sandbox.Name)
	if err != nil {
		t.Fatal(err)
	}
	wait := func(cond func() bool, what string) { t.Helper(); waitFor(t, cond, what) }
	wait(func() bool { _, err := reg.Authenticate(ctx, h.ID(), token); return err == nil }, "the new instance")
	newToken, err := cli.RotateToken(ctx, h.ID())
	if err != nil {
		t.Fatal(err)
	}
	wait(func() bool { _, err := reg.Authenticate(ctx, h.ID(), newToken); return err == nil }, "the new token")
	if err := cli.Delete(ctx, h.ID()); err != nil {
		t.Fatal(err)
	}
	wait(func() bool { _, err := reg.Get(ctx, h.ID()); return err != nil }, "the deletion")
}

// recordingEngine wraps the sandbox: it can report a first state from
// inside Open, before the Registry has its session (as a real engine may),
// and it records logouts and closes.
type recordingEngine struct {
	sandbox *sandbox.Engine
	types   []portrait.InstanceType
	eager   bool

	mu      sync.Mutex
	logouts int
	closes  int
}

func (e *recordingEngine) Name() string { return "rec" }
func (e *recordingEngine) Types() []portrait.InstanceType {
	if e.types != nil {
		return e.types
	}
	return e.sandbox.Types()
}
func (e *recordingEngine) Open(ctx context.Context, inst portrait.Instance, sink portrait.EventSink) (portrait.Session, error) {
	if e.eager {
		sink.StateChanged(inst.ID, portrait.StateStarting)
	}
	s, err := e.sandbox.Open(ctx, inst, sink)
	if err != nil {
		return nil, err
	}
	return &recordingSession{Session: s, e: e}, nil
}

type recordingSession struct {
	portrait.Session
	e *recordingEngine
}

func (s *recordingSession) Logout(ctx context.Context) error {
	s.e.mu.Lock()
	s.e.logouts++
	s.e.mu.Unlock()
	return s.Session.Logout(ctx)
}

func (s *recordingSession) Close() error {
	s.e.mu.Lock()
	s.e.closes++
	s.e.mu.Unlock()
	return s.Session.Close()
}

// events records, for every state event, the state the instance's handle
// reports when the event arrives.
type events struct {
	mu     sync.Mutex
	states []portrait.State
}

func (e *events) StateChanged(h portrait.Handle, _ portrait.State) {
	e.mu.Lock()
	e.states = append(e.states, h.State())
	e.mu.Unlock()
}
func (e *events) PictureChanged(portrait.Handle, portrait.PictureChange) {}

func newRecording(t *testing.T, eng *recordingEngine, opts instance.Options, ev portrait.Events) (*sqlite.DB, *instance.Registry) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	eng.sandbox = sandbox.New(db, nil, sandbox.Options{})
	opts.Logger = quiet()
	reg := instance.New(db, map[string]portrait.Engine{"rec": eng}, opts)
	if err := reg.Start(ctx, ev); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return db, reg
}

// TestEventsBeforeSession: an event an engine reports while Open runs
// reaches the receiver once the instance's session is in place, not before
// and not never.
func TestEventsBeforeSession(t *testing.T) {
	ev := &events{}
	_, reg := newRecording(t, &recordingEngine{eager: true}, instance.Options{}, ev)
	if _, _, err := reg.Create(context.Background(), portrait.TypeWhatsApp, "rec"); err != nil {
		t.Fatal(err)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	// The demo world is linked: a handle whose session is in place says
	// authorized; one without would say starting.
	if len(ev.states) == 0 || ev.states[0] != portrait.StateAuthorized {
		t.Fatalf("handle states at each event: %v; want authorized first", ev.states)
	}
}

// TestEngineTypes: an instance is not created on an engine that does not
// serve its type, and nothing is stored.
func TestEngineTypes(t *testing.T) {
	db, reg := newRecording(t, &recordingEngine{types: []portrait.InstanceType{portrait.TypeWhatsApp}}, instance.Options{}, nil)
	ctx := context.Background()
	if _, _, err := reg.Create(ctx, portrait.TypeMAX, "rec"); err == nil || !strings.Contains(err.Error(), "does not serve") {
		t.Fatalf("MAX instance on a WhatsApp-only engine: %v", err)
	}
	if all, _ := db.Instances(ctx); len(all) != 0 {
		t.Fatalf("stored anyway: %+v", all)
	}
}

// TestDeleteLogsOut: deleting a linked instance logs it out first, also
// from a lazy registry (the CLI's), which opens the session for it.
func TestDeleteLogsOut(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		eng := &recordingEngine{}
		_, reg := newRecording(t, eng, instance.Options{Lazy: lazy}, nil)
		ctx := context.Background()
		h, _, err := reg.Create(ctx, portrait.TypeWhatsApp, "rec")
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Delete(ctx, h.ID()); err != nil {
			t.Fatal(err)
		}
		eng.mu.Lock()
		logouts, closes := eng.logouts, eng.closes
		eng.mu.Unlock()
		if logouts != 1 || closes != 1 {
			t.Errorf("lazy=%v: %d logouts, %d closes; want 1 and 1", lazy, logouts, closes)
		}
	}
}

// TestHandleReadiness: the handle's session calls apply the readiness
// check with the domain errors.
func TestHandleReadiness(t *testing.T) {
	ctx := context.Background()
	_, reg := open(t)
	h, _, err := reg.Create(ctx, portrait.TypeWhatsApp, "")
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := portrait.ParseChatID(portrait.TypeWhatsApp, "11001230001@c.us")
	if err := h.Ready(); err != nil {
		t.Fatalf("linked instance: %v", err)
	}
	if err := h.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Ready(); !errors.Is(err, portrait.ErrNotAuthorized) {
		t.Errorf("Ready after logout: %v", err)
	}
	if _, err := h.Picture(ctx, alice, ""); !errors.Is(err, portrait.ErrNotAuthorized) {
		t.Errorf("Picture after logout: %v", err)
	}
	if _, err := h.SetPicture(ctx, portrait.ChatID{}, []byte{1}, []byte{1}); !errors.Is(err, portrait.ErrNotAuthorized) {
		t.Errorf("SetPicture after logout: %v", err)
	}
	if q, err := h.QR(ctx); err != nil || q.Kind != portrait.QRCode {
		t.Errorf("QR after logout: %+v, %v", q, err)
	}
}

// TestUnavailableEngine: an instance whose engine is not in this server is
// listed but cannot be served, with ErrUnavailable from every session call.
func TestUnavailableEngine(t *testing.T) {
	ctx := context.Background()
	db, reg := open(t)
	h, _, err := reg.Create(ctx, portrait.TypeWhatsApp, "")
	if err != nil {
		t.Fatal(err)
	}
	other := instance.New(db, map[string]portrait.Engine{}, instance.Options{Logger: quiet()})
	if err := other.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	oh, err := other.Get(ctx, h.ID())
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(oh.Err(), portrait.ErrUnavailable) || !errors.Is(oh.Ready(), portrait.ErrUnavailable) || oh.State() != "" {
		t.Errorf("Err %v, Ready %v, State %q", oh.Err(), oh.Ready(), oh.State())
	}
	if _, err := oh.QR(ctx); !errors.Is(err, portrait.ErrUnavailable) {
		t.Errorf("QR: %v", err)
	}
}

// TestRefresh: one instance's change made by another process (created,
// token rotated, deleted) is applied alone when the store announces it.
func TestRefresh(t *testing.T) {
	ctx := context.Background()
	db, reg := open(t)
	cli := cliOn(t, db)
	h, token, err := cli.Create(ctx, portrait.TypeWhatsApp, sandbox.Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Authenticate(ctx, h.ID(), token); !errors.Is(err, portrait.ErrUnknownInstance) {
		t.Fatalf("before Refresh: %v", err)
	}
	if err := reg.Refresh(ctx, h.ID()); err != nil {
		t.Fatal(err)
	}
	got, err := reg.Authenticate(ctx, h.ID(), token)
	if err != nil || got.State() != portrait.StateAuthorized {
		t.Fatalf("after Refresh: %v", err)
	}
	newToken, err := cli.RotateToken(ctx, h.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Refresh(ctx, h.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Authenticate(ctx, h.ID(), newToken); err != nil {
		t.Errorf("the rotated token after Refresh: %v", err)
	}
	if err := cli.Delete(ctx, h.ID()); err != nil {
		t.Fatal(err)
	}
	if err := reg.Refresh(ctx, h.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Get(ctx, h.ID()); !errors.Is(err, portrait.ErrUnknownInstance) {
		t.Errorf("after deletion and Refresh: %v", err)
	}
}

// TestStartMany: a registry with many instances opens them (a few at a
// time) and serves every one.
func TestStartMany(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sb := sandbox.New(db, nil, sandbox.Options{})
	engines := map[string]portrait.Engine{sb.Name(): sb}
	cli := instance.New(db, engines, instance.Options{Lazy: true, Logger: quiet()})
	if err := cli.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	tokens := map[portrait.InstanceID]string{}
	for i := 0; i < 40; i++ {
		h, token, err := cli.Create(ctx, portrait.TypeWhatsApp, sandbox.Name)
		if err != nil {
			t.Fatal(err)
		}
		tokens[h.ID()] = token
	}
	cli.Close()
	reg := instance.New(db, engines, instance.Options{Logger: quiet()})
	if err := reg.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	for id, token := range tokens {
		h, err := reg.Authenticate(ctx, id, token)
		if err != nil {
			t.Errorf("instance %d: %v", id, err)
			continue
		}
		if err := h.Ready(); err != nil {
			t.Errorf("instance %d not ready: %v", id, err)
		}
	}
}

// countingStore counts how often every instance is read.
type countingStore struct {
	*sqlite.DB
	lists atomic.Int32
}

func (c *countingStore) Instances(ctx context.Context) ([]portrait.Instance, error) {
	c.lists.Add(1)
	return c.DB.Instances(ctx)
}

// TestWatchReadsOnlyWhatChanged: on a store that records which instance
// each change touched (SQLite), a running registry follows another
// process's changes without re-reading every instance.
func TestWatchReadsOnlyWhatChanged(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := &countingStore{DB: db}
	sb := sandbox.New(db, nil, sandbox.Options{})
	reg := instance.New(store, map[string]portrait.Engine{sb.Name(): sb}, instance.Options{Logger: quiet()})
	if err := reg.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	go reg.Watch(ctx, 10*time.Millisecond)

	cli := cliOn(t, db)
	wait := func(cond func() bool, what string) { t.Helper(); waitFor(t, cond, what) }
	var last portrait.InstanceID
	for i := 0; i < 5; i++ {
		h, token, err := cli.Create(ctx, portrait.TypeWhatsApp, sandbox.Name)
		if err != nil {
			t.Fatal(err)
		}
		wait(func() bool { _, err := reg.Authenticate(ctx, h.ID(), token); return err == nil }, "a new instance")
		last = h.ID()
	}
	if err := cli.Delete(ctx, last); err != nil {
		t.Fatal(err)
	}
	wait(func() bool { _, err := reg.Get(ctx, last); return err != nil }, "the deletion")
	if n := store.lists.Load(); n != 1 {
		t.Errorf("every instance was read %d times; want once, at start", n)
	}
}
