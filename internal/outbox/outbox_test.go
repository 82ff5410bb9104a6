package outbox

import (
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
)

type recorder struct {
	mu      sync.Mutex
	states  []portrait.State
	block   chan struct{}
	entered sync.Once
	in      chan struct{} // closed when the sink is first called
}

func (r *recorder) StateChanged(_ portrait.InstanceID, st portrait.State) {
	if r.block != nil {
		r.entered.Do(func() { close(r.in) })
		<-r.block
	}
	r.mu.Lock()
	r.states = append(r.states, st)
	r.mu.Unlock()
}
func (r *recorder) PictureChanged(portrait.InstanceID, portrait.PictureChange) {}

// TestOrderAndNoBlocking: events arrive in order; Push returns while the
// sink is stuck; Close drops what was not delivered and waits for the sink.
func TestOrderAndNoBlocking(t *testing.T) {
	r := &recorder{}
	o := New(r)
	for _, st := range []portrait.State{portrait.StateStarting, portrait.StateAuthorized, portrait.StateNotAuthorized} {
		o.Push(func(s portrait.EventSink) { s.StateChanged(1, st) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		n := len(r.states)
		r.mu.Unlock()
		if n == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	o.Close()
	if len(r.states) != 3 || r.states[0] != portrait.StateStarting || r.states[2] != portrait.StateNotAuthorized {
		t.Fatalf("delivered %v", r.states)
	}

	stuck := &recorder{block: make(chan struct{}), in: make(chan struct{})}
	o = New(stuck)
	pushed := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			o.Push(func(s portrait.EventSink) { s.StateChanged(1, portrait.StateAuthorized) })
		}
		close(pushed)
	}()
	select {
	case <-pushed:
	case <-time.After(5 * time.Second):
		t.Fatal("Push blocked behind a stuck sink")
	}
	<-stuck.in
	closed := make(chan struct{})
	go func() { o.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while the sink was still being called")
	case <-time.After(50 * time.Millisecond):
	}
	close(stuck.block)
	<-closed
	if n := len(stuck.states); n != 1 {
		t.Errorf("%d events delivered after Close, want only the one in progress", n)
	}
	o.Push(func(portrait.EventSink) { t.Error("delivered after Close") })
}
