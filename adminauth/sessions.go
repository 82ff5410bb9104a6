package adminauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"
	"time"
)

// Sessions are the console's sign-ins: a session id is 32 bytes from
// crypto/rand, kept only as its SHA-256, and ends when its person signs
// out, when it has not been used for the idle timeout, or when the
// absolute timeout after sign-in has passed. They live in this process's
// memory (a restart signs everybody out), or in a SessionStore that the
// nodes of a cluster share.
type Sessions struct {
	idle, max time.Duration
	store     SessionStore // nil: in memory

	mu   sync.Mutex
	live map[[sha256.Size]byte]*session
}

// SessionStore keeps console sessions where several processes see them
// (the cluster's database), by the SHA-256 of their ids. Its clock decides
// the timeouts.
type SessionStore interface {
	// StartSession keeps a new session, begun now.
	StartSession(ctx context.Context, key [sha256.Size]byte) error
	// UseSession reports whether the session is live (used within idle,
	// begun within max) and, if so, records this use. An ended session
	// is forgotten.
	UseSession(ctx context.Context, key [sha256.Size]byte, idle, max time.Duration) (bool, error)
	// EndSession forgets a session; an unknown one is not an error.
	EndSession(ctx context.Context, key [sha256.Size]byte) error
	// EndSessions forgets every session.
	EndSessions(ctx context.Context) error
}

// storeTimeout bounds one call of a SessionStore.
const storeTimeout = 5 * time.Second

// NewSharedSessions returns sessions kept in store, with the given idle
// and absolute timeouts (≤ 0: the defaults).
func NewSharedSessions(store SessionStore, idle, max time.Duration) *Sessions {
	s := NewSessions(idle, max)
	s.store = store
	return s
}

type session struct {
	created, seen time.Time
}

// MaxSessions bounds the sessions kept; past it the one used longest ago
// ends.
const MaxSessions = 10_000

// NewSessions returns an empty set of sessions with the given idle and
// absolute timeouts (≤ 0: DefaultSessionIdle, DefaultSessionMax).
func NewSessions(idle, max time.Duration) *Sessions {
	if idle <= 0 {
		idle = DefaultSessionIdle
	}
	if max <= 0 {
		max = DefaultSessionMax
	}
	return &Sessions{idle: idle, max: max, live: map[[sha256.Size]byte]*session{}}
}

// MaxAge is the absolute timeout: no session lives longer.
func (s *Sessions) MaxAge() time.Duration { return s.max }

// Idle is the idle timeout.
func (s *Sessions) Idle() time.Duration { return s.idle }

func sessionKey(id string) [sha256.Size]byte { return sha256.Sum256([]byte(id)) }

// Start begins a session at now and returns its id.
func (s *Sessions) Start(now time.Time) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("adminauth: making a session id: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	if s.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		if err := s.store.StartSession(ctx, sessionKey(id)); err != nil {
			return "", fmt.Errorf("adminauth: keeping the session: %w", err)
		}
		return id, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.live) >= MaxSessions {
		s.sweep(now)
	}
	for len(s.live) >= MaxSessions {
		var oldest [sha256.Size]byte
		var at time.Time
		for k, v := range s.live {
			if at.IsZero() || v.seen.Before(at) {
				oldest, at = k, v.seen
			}
		}
		delete(s.live, oldest)
	}
	s.live[sessionKey(id)] = &session{created: now, seen: now}
	return id, nil
}

// expired reports whether v has ended by now.
func (s *Sessions) expired(v *session, now time.Time) bool {
	return now.Sub(v.seen) >= s.idle || now.Sub(v.created) >= s.max
}

// sweep forgets the sessions that have ended; the caller holds s.mu.
func (s *Sessions) sweep(now time.Time) {
	for k, v := range s.live {
		if s.expired(v, now) {
			delete(s.live, k)
		}
	}
}

// Valid reports whether id is a live session at now, and if so counts
// this as a use of it (the idle timeout starts again).
func (s *Sessions) Valid(id string, now time.Time) bool {
	if id == "" {
		return false
	}
	k := sessionKey(id)
	if s.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		ok, err := s.store.UseSession(ctx, k, s.idle, s.max)
		return err == nil && ok
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.live[k]
	if !ok {
		return false
	}
	if s.expired(v, now) {
		delete(s.live, k)
		return false
	}
	if now.After(v.seen) {
		v.seen = now
	}
	return true
}

// End ends the session id; an unknown id is ignored.
func (s *Sessions) End(id string) {
	if s.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		_ = s.store.EndSession(ctx, sessionKey(id))
		return
	}
	s.mu.Lock()
	delete(s.live, sessionKey(id))
	s.mu.Unlock()
}

// tokenRotated ends the sessions signed in with an admin token that has
// been replaced: those kept in memory here; shared sessions were ended by
// the command that rotated the token.
func (s *Sessions) tokenRotated() {
	if s.store == nil {
		s.Clear()
	}
}

// Clear ends every session.
func (s *Sessions) Clear() {
	if s.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		_ = s.store.EndSessions(ctx)
		return
	}
	s.mu.Lock()
	clear(s.live)
	s.mu.Unlock()
}

// Len is the number of sessions kept in memory (ended ones not yet swept
// included); 0 when they are kept in a SessionStore.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}
