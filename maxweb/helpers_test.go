package maxweb

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/memkv"
	"github.com/portrait-dev/portrait/maxweb/maxfake"
)

// memKV is the engines' in-memory KV.
type memKV = memkv.KV

func newMemKV() *memKV { return memkv.New() }

// sink records a session's events.
type sink struct {
	mu      sync.Mutex
	states  []portrait.State
	changes []portrait.PictureChange
	wake    chan struct{}
}

func newSink() *sink { return &sink{wake: make(chan struct{}, 1)} }

func (s *sink) StateChanged(_ portrait.InstanceID, st portrait.State) {
	s.mu.Lock()
	s.states = append(s.states, st)
	s.mu.Unlock()
	s.poke()
}

func (s *sink) PictureChanged(_ portrait.InstanceID, c portrait.PictureChange) {
	s.mu.Lock()
	s.changes = append(s.changes, c)
	s.mu.Unlock()
	s.poke()
}

func (s *sink) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sink) States() []portrait.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]portrait.State(nil), s.states...)
}

func (s *sink) Changes() []portrait.PictureChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]portrait.PictureChange(nil), s.changes...)
}

// syncBuffer is a log destination tests read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

const testInstance portrait.InstanceID = 1101000001

var testAccount = maxfake.Account{ID: 10000000, Phone: "79001234567", FirstName: "Anna", LastName: "Petrova"}

// rig is an engine on a fake MAX, with an open session.
type rig struct {
	t    *testing.T
	srv  *maxfake.Server
	kv   *memKV
	e    *Engine
	s    *session
	sink *sink
	logs *syncBuffer
}

// testOptions are short timings for the fake.
func testOptions(srv *maxfake.Server, logs *syncBuffer) Options {
	return Options{
		URL:             srv.URL(),
		RootCAs:         srv.CertPool(),
		PictureHosts:    []string{srv.Host()},
		RequestTimeout:  2 * time.Second,
		DownloadTimeout: 2 * time.Second,
		ReconnectMin:    10 * time.Millisecond,
		ReconnectMax:    200 * time.Millisecond,
		PingInterval:    time.Minute,
		LinkTimeout:     5 * time.Second,
		Logger:          slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func newRig(t *testing.T, account maxfake.Account, linked bool, tune ...func(*Options)) *rig {
	t.Helper()
	srv := maxfake.New(account)
	t.Cleanup(srv.Close)
	r := &rig{t: t, srv: srv, kv: newMemKV(), sink: newSink(), logs: &syncBuffer{}}
	if linked {
		a := authRecord{DeviceID: newDeviceID(), Token: srv.Token()}
		if err := r.e0().saveAuthFor(a); err != nil {
			t.Fatal(err)
		}
	}
	opts := testOptions(srv, r.logs)
	for _, f := range tune {
		f(&opts)
	}
	r.e = New(r.kv, opts)
	t.Cleanup(func() { _ = r.e.Close() })
	return r
}

// e0 is a throwaway engine to store a login before the real one opens.
func (r *rig) e0() *Engine { return New(r.kv, Options{}) }

func (e *Engine) saveAuthFor(a authRecord) error {
	return e.saveAuth(context.Background(), testInstance, a)
}

func (r *rig) open() *session {
	r.t.Helper()
	sess, err := r.e.Open(context.Background(), portrait.Instance{ID: testInstance, Type: portrait.TypeMAX, Engine: Name}, r.sink)
	if err != nil {
		r.t.Fatal(err)
	}
	r.s = sess.(*session)
	return r.s
}

// waitState waits until the session is in st.
func (r *rig) waitState(st portrait.State) {
	r.t.Helper()
	eventually(r.t, func() bool { return r.s.State() == st }, "state "+string(st)+" (now "+string(r.s.State())+")")
}

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *rig) storedAuth() (authRecord, bool) {
	a, err := r.e.loadAuth(context.Background(), testInstance)
	if err != nil {
		r.t.Fatal(err)
	}
	return a, a.Token != ""
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}
