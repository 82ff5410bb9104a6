// Package sessions keeps an engine's open sessions: at most one per
// instance, none once the engine is closed, and all of them closed with
// it. Every engine that links accounts (whatsapp, max, maxbot) keeps its
// sessions in a Registry, gives sessions opened without a sink Discard, and
// spaces its retries with Backoff.
package sessions

import (
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
)

var (
	// ErrClosed is returned by Registry.Open after Registry.CloseAll.
	ErrClosed = errors.New("the engine is closed")
	// ErrAlreadyOpen is returned by Registry.Open for an instance that has
	// an open session.
	ErrAlreadyOpen = errors.New("it is already open (close its session first)")
)

// Session is what a Registry holds: an engine's session, compared by
// identity (a pointer).
type Session interface {
	comparable
	Close() error
}

// Registry holds an engine's open sessions by instance. The zero value is
// ready to use.
type Registry[S Session] struct {
	// Closed is what Open returns after CloseAll: the engine's own error,
	// or ErrClosed when nil.
	Closed error

	mu     sync.Mutex
	closed bool
	open   map[portrait.InstanceID]S
}

// Open registers the session that start returns as instance id's. start
// runs under the registry's lock, so that two Opens of one instance never
// both start a session: it must not call the registry. Open fails with
// Closed after CloseAll and with ErrAlreadyOpen while id has a session;
// start is not called then.
func (r *Registry[S]) Open(id portrait.InstanceID, start func() S) (S, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var zero S
	if r.closed {
		if r.Closed != nil {
			return zero, r.Closed
		}
		return zero, ErrClosed
	}
	if _, ok := r.open[id]; ok {
		return zero, ErrAlreadyOpen
	}
	s := start()
	if r.open == nil {
		r.open = map[portrait.InstanceID]S{}
	}
	r.open[id] = s
	return s, nil
}

// Get returns instance id's open session, if it has one.
func (r *Registry[S]) Get(id portrait.InstanceID) (S, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.open[id]
	return s, ok
}

// Forget drops s, a session that has closed, from the registry; a later
// session of the same instance is kept.
func (r *Registry[S]) Forget(id portrait.InstanceID, s S) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.open[id]; ok && cur == s {
		delete(r.open, id)
	}
}

// CloseAll makes Open fail from now on and closes every open session,
// outside the registry's lock (a session's Close may call Forget).
func (r *Registry[S]) CloseAll() {
	r.mu.Lock()
	r.closed = true
	open := make([]S, 0, len(r.open))
	for _, s := range r.open {
		open = append(open, s)
	}
	r.mu.Unlock()
	for _, s := range open {
		_ = s.Close()
	}
}

// Discard is the sink of sessions opened without one: it drops every
// event.
type Discard struct{}

// StateChanged drops the event.
func (Discard) StateChanged(portrait.InstanceID, portrait.State) {}

// PictureChanged drops the event.
func (Discard) PictureChanged(portrait.InstanceID, portrait.PictureChange) {}

// Backoff returns the wait before attempt n+1 after n failed ones: lo
// doubling up to hi, with ±25 % jitter so that many instances do not retry
// in step, and never outside [lo, hi].
func Backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = time.Duration(float64(d) * (0.75 + rand.Float64()/2))
	return min(max(d, lo), hi)
}
