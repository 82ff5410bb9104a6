package sandbox

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/memkv"
)

// memKV is the engines' in-memory KV.
type memKV = memkv.KV

func newMemKV() *memKV { return memkv.New() }

// recSink records events and lets tests wait for them.
type recSink struct {
	ch chan any // portrait.State or portrait.PictureChange
}

func newRecSink() *recSink { return &recSink{ch: make(chan any, 256)} }

func (r *recSink) StateChanged(_ portrait.InstanceID, st portrait.State) { r.ch <- st }
func (r *recSink) PictureChanged(_ portrait.InstanceID, c portrait.PictureChange) {
	r.ch <- c
}

func (r *recSink) next(t *testing.T) any {
	t.Helper()
	select {
	case ev := <-r.ch:
		return ev
	case <-time.After(3 * time.Second):
		t.Fatal("no event within 3s")
		return nil
	}
}

func (r *recSink) expectStates(t *testing.T, want ...portrait.State) {
	t.Helper()
	for _, w := range want {
		ev := r.next(t)
		if got, ok := ev.(portrait.State); !ok || got != w {
			t.Fatalf("event = %#v, want state %q", ev, w)
		}
	}
}

func (r *recSink) expectPicture(t *testing.T) portrait.PictureChange {
	t.Helper()
	ev := r.next(t)
	c, ok := ev.(portrait.PictureChange)
	if !ok {
		t.Fatalf("event = %#v, want a PictureChange", ev)
	}
	return c
}

func (r *recSink) expectNone(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev := <-r.ch:
		t.Fatalf("unexpected event %#v", ev)
	case <-time.After(d):
	}
}

// fakeClock is a settable clock for Options.Clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const (
	waID  portrait.InstanceID = 1101000001
	maxID portrait.InstanceID = 3101000001
)

func instanceOf(t portrait.InstanceType) portrait.Instance {
	id := waID
	if t == portrait.TypeMAX {
		id = maxID
	}
	return portrait.Instance{ID: id, Type: t, Engine: Name}
}

// open opens a session of a new instance of type typ on e.
func open(t *testing.T, e *Engine, typ portrait.InstanceType, sink portrait.EventSink) portrait.Session {
	t.Helper()
	s, err := e.Open(context.Background(), instanceOf(typ), sink)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func chat(t *testing.T, typ portrait.InstanceType, s string) portrait.ChatID {
	t.Helper()
	c, err := portrait.ParseChatID(typ, s)
	if err != nil {
		t.Fatalf("ParseChatID(%s, %q): %v", typ, s, err)
	}
	return c
}

func mustPicture(t *testing.T, seed string) []byte {
	t.Helper()
	b, err := GeneratePicture(seed, FormatJPEG)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }
