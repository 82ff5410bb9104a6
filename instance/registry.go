package instance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portrait-dev/portrait"
)

// Errors of authentication, mapped by the HTTP layer to GREEN-API's 403/401.
var (
	// ErrUnknownInstance: no instance has that id (403 Forbidden).
	ErrUnknownInstance = errors.New("unknown instance")
	// ErrBadToken: the instance exists but the token is wrong (401 Unauthorized).
	ErrBadToken = errors.New("wrong apiTokenInstance")
)

// Live is an instance the server is serving: its identity, its current
// credentials and settings, and its open engine session.
type Live struct {
	ID     portrait.InstanceID
	Type   portrait.InstanceType
	Engine string
	// Session is the open engine session; nil when the engine failed to open
	// it (OpenErr says why).
	Session portrait.Session
	OpenErr error

	hash     atomic.Pointer[[]byte]
	settings atomic.Pointer[portrait.Settings]
}

// Settings returns the instance's current settings.
func (l *Live) Settings() portrait.Settings { return *l.settings.Load() }

// Registry keeps every instance of the store open on its engine and answers
// authentication from memory. Changes made through the Registry apply at
// once; changes made by another process sharing the store (the CLI) apply
// within the Watch interval.
type Registry struct {
	store   portrait.Store
	engines map[string]portrait.Engine
	sink    *gate
	log     *slog.Logger

	reconcileMu sync.Mutex // serialises reconcile
	mu          sync.RWMutex
	live        map[portrait.InstanceID]*Live
	gen         int64
	closed      bool
}

// NewRegistry returns a Registry over store. engines maps engine names to
// engines; sink receives every session's events.
func NewRegistry(store portrait.Store, engines map[string]portrait.Engine, sink portrait.EventSink, log *slog.Logger) *Registry {
	return &Registry{store: store, engines: engines, sink: newGate(sink), log: log, live: map[portrait.InstanceID]*Live{}}
}

// Start loads every instance and opens its session.
func (r *Registry) Start(ctx context.Context) error {
	return r.reconcile(ctx)
}

// Watch polls the store's generation every interval and applies changes
// made by other processes, until ctx ends.
func (r *Registry) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			gen, err := r.store.Generation(ctx)
			if err != nil {
				if ctx.Err() == nil {
					r.log.Warn("instance watch: reading store generation", "err", err)
				}
				continue
			}
			r.mu.RLock()
			same := gen == r.gen
			r.mu.RUnlock()
			if !same {
				if err := r.reconcile(ctx); err != nil && ctx.Err() == nil {
					r.log.Warn("instance watch: reloading instances", "err", err)
				}
			}
		}
	}
}

// reconcile makes the live set match the store.
func (r *Registry) reconcile(ctx context.Context) error {
	r.reconcileMu.Lock()
	defer r.reconcileMu.Unlock()
	gen, err := r.store.Generation(ctx)
	if err != nil {
		return fmt.Errorf("instance: reading generation: %w", err)
	}
	insts, err := r.store.Instances(ctx)
	if err != nil {
		return fmt.Errorf("instance: listing instances: %w", err)
	}
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return errors.New("instance: registry closed")
	}
	current := make(map[portrait.InstanceID]*Live, len(r.live))
	for id, l := range r.live {
		current[id] = l
	}
	r.mu.RUnlock()

	next := make(map[portrait.InstanceID]*Live, len(insts))
	for _, inst := range insts {
		if l, ok := current[inst.ID]; ok {
			hash := inst.TokenHash
			l.hash.Store(&hash)
			s := inst.Settings
			l.settings.Store(&s)
			next[inst.ID] = l
			delete(current, inst.ID)
			continue
		}
		next[inst.ID] = r.open(ctx, inst)
	}
	r.mu.Lock()
	r.live = next
	r.gen = gen
	r.mu.Unlock()
	for id := range next {
		r.sink.publish(id)
	}
	for id, gone := range current {
		r.closeLive(gone)
		r.sink.forget(id)
	}
	return nil
}

func (r *Registry) open(ctx context.Context, inst portrait.Instance) *Live {
	l := &Live{ID: inst.ID, Type: inst.Type, Engine: inst.Engine}
	hash := inst.TokenHash
	l.hash.Store(&hash)
	s := inst.Settings
	l.settings.Store(&s)
	eng, ok := r.engines[inst.Engine]
	if !ok {
		l.OpenErr = fmt.Errorf("engine %q is not available in this server", inst.Engine)
		r.log.Error("instance not opened", "idInstance", int64(inst.ID), "err", l.OpenErr)
		return l
	}
	sess, err := eng.Open(ctx, inst, r.sink)
	if err != nil {
		l.OpenErr = fmt.Errorf("opening instance on engine %s: %w", inst.Engine, err)
		r.log.Error("instance not opened", "idInstance", int64(inst.ID), "err", err)
		return l
	}
	l.Session = sess
	return l
}

func (r *Registry) closeLive(l *Live) {
	if l.Session == nil {
		return
	}
	if err := l.Session.Close(); err != nil {
		r.log.Warn("closing instance session", "idInstance", int64(l.ID), "err", err)
	}
}

// Authenticate returns the live instance id with token, ErrUnknownInstance
// or ErrBadToken. The token is compared in constant time.
func (r *Registry) Authenticate(id portrait.InstanceID, token string) (*Live, error) {
	r.mu.RLock()
	l, ok := r.live[id]
	r.mu.RUnlock()
	if !ok {
		return nil, ErrUnknownInstance
	}
	if !TokenMatches(*l.hash.Load(), token) {
		return nil, ErrBadToken
	}
	return l, nil
}

// Get returns a live instance by id.
func (r *Registry) Get(id portrait.InstanceID) (*Live, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	l, ok := r.live[id]
	return l, ok
}

// List returns every live instance ordered by id.
func (r *Registry) List() []*Live {
	r.mu.RLock()
	out := make([]*Live, 0, len(r.live))
	for _, l := range r.live {
		out = append(out, l)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Create makes a new instance of type t on engine and opens it. It returns
// the instance and its token, which is shown once and stored only hashed.
func (r *Registry) Create(ctx context.Context, t portrait.InstanceType, engine string) (portrait.Instance, string, error) {
	if _, ok := r.engines[engine]; !ok {
		return portrait.Instance{}, "", fmt.Errorf("unknown engine %q", engine)
	}
	inst, token, err := Create(ctx, r.store, t, engine)
	if err != nil {
		return inst, "", err
	}
	if err := r.reconcile(ctx); err != nil {
		return inst, "", err
	}
	// An instance its engine cannot open (a MAX instance on the whatsapp
	// engine, say) is not kept.
	if l, ok := r.Get(inst.ID); ok && l.OpenErr != nil {
		openErr := l.OpenErr
		if err := r.Delete(ctx, inst.ID); err != nil {
			r.log.Warn("removing an instance its engine refused", "idInstance", int64(inst.ID), "err", err)
		}
		return portrait.Instance{}, "", openErr
	}
	return inst, token, nil
}

// Delete removes an instance and closes its session. A linked account is
// logged out first (best effort), so that the phone no longer lists the
// device.
func (r *Registry) Delete(ctx context.Context, id portrait.InstanceID) error {
	if l, ok := r.Get(id); ok && l.Session != nil && l.Session.State() == portrait.StateAuthorized {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := l.Session.Logout(lctx); err != nil {
			r.log.Warn("logging out an instance being deleted", "idInstance", int64(id), "err", err)
		}
		cancel()
	}
	if err := r.store.DeleteInstance(ctx, id); err != nil {
		return fmt.Errorf("instance: delete %d: %w", id, err)
	}
	return r.reconcile(ctx)
}

// RotateToken gives an instance a new token and returns it.
func (r *Registry) RotateToken(ctx context.Context, id portrait.InstanceID) (string, error) {
	token, err := RotateToken(ctx, r.store, id)
	if err != nil {
		return "", err
	}
	return token, r.reconcile(ctx)
}

// SetSettings stores an instance's settings and applies them.
func (r *Registry) SetSettings(ctx context.Context, id portrait.InstanceID, s portrait.Settings) error {
	if err := r.store.SetSettings(ctx, id, s); err != nil {
		return fmt.Errorf("instance: save settings of %d: %w", id, err)
	}
	if l, ok := r.Get(id); ok {
		l.settings.Store(&s)
	}
	return nil
}

// Close closes every session.
func (r *Registry) Close() {
	r.reconcileMu.Lock()
	defer r.reconcileMu.Unlock()
	r.mu.Lock()
	live := r.live
	r.live = map[portrait.InstanceID]*Live{}
	r.closed = true
	r.mu.Unlock()
	for _, l := range live {
		r.closeLive(l)
	}
}

// Create stores a new instance of type t on engine directly in store (the
// CLI uses it; a running server picks the instance up through Watch). It
// returns the instance and its token.
func Create(ctx context.Context, store portrait.Store, t portrait.InstanceType, engine string) (portrait.Instance, string, error) {
	if !t.Valid() {
		return portrait.Instance{}, "", fmt.Errorf("instance: unknown type %q", t)
	}
	token := NewToken()
	lastErr := errors.New("no free id after 5 draws")
	for attempt := 0; attempt < 5; attempt++ {
		inst := portrait.Instance{
			ID:        NewID(t),
			Type:      t,
			Engine:    engine,
			TokenHash: HashToken(token),
			Settings:  portrait.DefaultSettings(),
			CreatedAt: time.Now().UTC(),
		}
		if _, err := store.Instance(ctx, inst.ID); err == nil {
			continue // id taken: draw another
		}
		if err := store.CreateInstance(ctx, inst); err != nil {
			lastErr = err
			continue
		}
		return inst, token, nil
	}
	return portrait.Instance{}, "", fmt.Errorf("instance: create: %w", lastErr)
}

// RotateToken replaces an instance's token in store and returns the new one.
func RotateToken(ctx context.Context, store portrait.Store, id portrait.InstanceID) (string, error) {
	token := NewToken()
	if err := store.SetTokenHash(ctx, id, HashToken(token)); err != nil {
		return "", fmt.Errorf("instance: rotate token of %d: %w", id, err)
	}
	return token, nil
}
