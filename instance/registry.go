package instance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/tick"
)

// Options configure a Registry.
type Options struct {
	// DefaultEngine is the engine Create uses when it is given none.
	DefaultEngine string
	// Lazy opens an instance's session only when a call needs it (and
	// never in Start), and closes it again after Delete: the CLI's
	// registry must not connect every linked device to change one.
	Lazy bool
	// Acting, when set, puts the registry in cluster mode: it opens no
	// session by itself, only those Own gives it, and a session call acts
	// only while Acting says this node owns the instance, under the
	// context Acting returns (which carries the lease, so that the store
	// refuses the writes of a node that lost it). cluster.Node.Acting is
	// one.
	Acting func(ctx context.Context, id portrait.InstanceID) (context.Context, bool)
	// Created, in cluster mode, is told of every instance Create made, so
	// that the node can take it at once when it falls to it.
	Created func(ctx context.Context, id portrait.InstanceID)
	// Logger receives the registry's warnings; nil means slog.Default().
	Logger *slog.Logger
}

// Registry keeps every instance of the store open on its engine and
// answers authentication from memory; it implements portrait.Instances.
// Changes made through the Registry apply at once; changes made by another
// process sharing the store (the CLI) apply within the Watch interval.
type Registry struct {
	store   portrait.Store
	engines map[string]portrait.Engine
	opts    Options
	log     *slog.Logger
	events  portrait.Events

	changeMu sync.Mutex // serialises changes of the set: reconcile, Create, Delete
	mu       sync.RWMutex
	live     map[portrait.InstanceID]*live
	gen      int64
	closed   bool
}

var _ portrait.Instances = (*Registry)(nil)

// New returns a Registry over store. engines maps engine names to engines.
func New(store portrait.Store, engines map[string]portrait.Engine, opts Options) *Registry {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Registry{store: store, engines: engines, opts: opts, log: log, live: map[portrait.InstanceID]*live{}}
}

// Start loads every instance and, unless the registry is lazy, opens its
// session. Sessions report their events to events (nil: dropped).
func (r *Registry) Start(ctx context.Context, events portrait.Events) error {
	r.changeMu.Lock()
	r.events = events
	r.changeMu.Unlock()
	return r.reconcile(ctx)
}

// Watch polls the store's generation every interval and applies changes
// made by other processes, until ctx ends: one instance at a time when the
// store records which instances changed (SQLite does), else by re-reading
// every instance.
func (r *Registry) Watch(ctx context.Context, interval time.Duration) {
	tick.Every(ctx, interval, func(ctx context.Context) {
		if err := r.poll(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("instance watch: following the store's changes", "err", err)
		}
	})
}

// changeLog is a store that records which instance each generation
// changed (the SQLite store).
type changeLog interface {
	ChangedSince(ctx context.Context, since int64) (ids []portrait.InstanceID, current int64, complete bool, err error)
}

// poll applies the changes other processes made since the generation the
// registry has seen: one instance at a time when the store records them,
// else by re-reading every instance when the generation moved.
func (r *Registry) poll(ctx context.Context) error {
	r.mu.RLock()
	since := r.gen
	r.mu.RUnlock()
	log, ok := r.store.(changeLog)
	if !ok {
		gen, err := r.store.Generation(ctx)
		if err != nil || gen == since {
			return err
		}
		return r.reconcile(ctx)
	}
	ids, current, complete, err := log.ChangedSince(ctx, since)
	if err != nil {
		return err
	}
	if !complete {
		return r.reconcile(ctx)
	}
	for _, id := range ids {
		if err := r.Refresh(ctx, id); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.gen = max(r.gen, current)
	r.mu.Unlock()
	return nil
}

// Refresh applies the stored state of one instance: created, changed or
// deleted by another process. A store that announces its changes (the
// PostgreSQL store's EventInstance) lets a server follow them this way
// instead of re-reading every instance.
func (r *Registry) Refresh(ctx context.Context, id portrait.InstanceID) error {
	r.changeMu.Lock()
	defer r.changeMu.Unlock()
	inst, err := r.store.Instance(ctx, id)
	if errors.Is(err, portrait.ErrNotFound) {
		r.mu.Lock()
		l := r.live[id]
		delete(r.live, id)
		r.mu.Unlock()
		if l != nil {
			l.close()
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("instance: reading instance %d: %w", id, err)
	}
	l, added, err := r.insert(inst)
	if err != nil || !added {
		return err
	}
	if r.opensAll() {
		r.open(ctx, l)
	}
	return nil
}

// opensAll reports whether the registry opens every instance's session
// itself: not when lazy, nor in cluster mode.
func (r *Registry) opensAll() bool { return !r.opts.Lazy && r.opts.Acting == nil }

// insert puts inst in the live set, or updates the credentials and
// settings of the one there; added says which.
func (r *Registry) insert(inst portrait.Instance) (l *live, added bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, false, errors.New("instance: registry closed")
	}
	if l, ok := r.live[inst.ID]; ok {
		l.update(inst)
		return l, false, nil
	}
	l = r.newLive(inst)
	r.live[inst.ID] = l
	return l, true, nil
}

func (r *Registry) newLive(inst portrait.Instance) *live {
	l := &live{r: r, id: inst.ID, typ: inst.Type, engine: inst.Engine, created: inst.CreatedAt}
	l.update(inst)
	return l
}

// Reload re-reads every instance (after a store's notifications may have
// been missed).
func (r *Registry) Reload(ctx context.Context) error { return r.reconcile(ctx) }

// reconcile makes the live set match the store.
func (r *Registry) reconcile(ctx context.Context) error {
	r.changeMu.Lock()
	defer r.changeMu.Unlock()
	gen, err := r.store.Generation(ctx)
	if err != nil {
		return fmt.Errorf("instance: reading generation: %w", err)
	}
	insts, err := r.store.Instances(ctx)
	if err != nil {
		return fmt.Errorf("instance: listing instances: %w", err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errors.New("instance: registry closed")
	}
	gone := make(map[portrait.InstanceID]*live, len(r.live))
	for id, l := range r.live {
		gone[id] = l
	}
	var added []*live
	for _, inst := range insts {
		if l, ok := gone[inst.ID]; ok {
			l.update(inst)
			delete(gone, inst.ID)
			continue
		}
		l := r.newLive(inst)
		r.live[inst.ID] = l
		added = append(added, l)
	}
	for id := range gone {
		delete(r.live, id)
	}
	r.gen = gen
	r.mu.Unlock()
	if r.opensAll() {
		r.openAll(ctx, added)
	}
	for _, l := range gone {
		l.close()
	}
	return nil
}

// openWorkers bounds the sessions opened at once at start: opening is
// mostly waiting for the store (a round trip each on PostgreSQL), so a few
// at a time make a server with many instances ready sooner.
const openWorkers = 8

// openAll opens the sessions of ls, a few at a time. Engines open
// different instances concurrently.
func (r *Registry) openAll(ctx context.Context, ls []*live) {
	next := make(chan *live)
	var wg sync.WaitGroup
	for w := 0; w < min(openWorkers, len(ls)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range next {
				r.open(ctx, l)
			}
		}()
	}
	for _, l := range ls {
		next <- l
	}
	close(next)
	wg.Wait()
}

// open opens l's session on its engine. Events the engine reports while
// it opens are held until the session is in place.
func (r *Registry) open(ctx context.Context, l *live) {
	inst := l.instance()
	eng, ok := r.engines[inst.Engine]
	if !ok {
		err := fmt.Errorf("%w: engine %q is not available in this server", portrait.ErrUnavailable, inst.Engine)
		r.log.Error("instance not opened", "idInstance", int64(inst.ID), "err", err)
		l.opened(nil, err)
		return
	}
	sess, err := eng.Open(ctx, inst, sink{l})
	if err != nil {
		r.log.Error("instance not opened", "idInstance", int64(inst.ID), "err", err)
		l.opened(nil, fmt.Errorf("%w: opening instance on engine %s: %w", portrait.ErrUnavailable, inst.Engine, err))
		return
	}
	l.opened(sess, nil)
}

func (r *Registry) get(id portrait.InstanceID) *live {
	r.mu.RLock()
	l := r.live[id]
	r.mu.RUnlock()
	return l
}

// Authenticate implements portrait.Instances.
func (r *Registry) Authenticate(_ context.Context, id portrait.InstanceID, token string) (portrait.Handle, error) {
	l := r.get(id)
	if l == nil {
		return nil, portrait.ErrUnknownInstance
	}
	if !TokenMatches(*l.hash.Load(), token) {
		return nil, portrait.ErrBadToken
	}
	return l, nil
}

// Get implements portrait.Instances.
func (r *Registry) Get(_ context.Context, id portrait.InstanceID) (portrait.Handle, error) {
	if l := r.get(id); l != nil {
		return l, nil
	}
	return nil, fmt.Errorf("instance %d: %w", id, portrait.ErrUnknownInstance)
}

// List implements portrait.Instances.
func (r *Registry) List(context.Context) ([]portrait.Handle, error) {
	r.mu.RLock()
	ls := make([]*live, 0, len(r.live))
	for _, l := range r.live {
		ls = append(ls, l)
	}
	r.mu.RUnlock()
	sort.Slice(ls, func(i, j int) bool { return ls[i].id < ls[j].id })
	out := make([]portrait.Handle, len(ls))
	for i, l := range ls {
		out[i] = l
	}
	return out, nil
}

// Create implements portrait.Instances. An instance its engine refuses to
// open is not kept.
func (r *Registry) Create(ctx context.Context, t portrait.InstanceType, engine string) (portrait.Handle, string, error) {
	if engine == "" {
		engine = r.opts.DefaultEngine
	}
	if !t.Valid() {
		return nil, "", fmt.Errorf("instance: unknown type %q", t)
	}
	eng, ok := r.engines[engine]
	if !ok {
		return nil, "", fmt.Errorf("unknown engine %q (available: %s)", engine, r.engineNames())
	}
	if !slices.Contains(eng.Types(), t) {
		served := make([]string, 0, len(eng.Types()))
		for _, st := range eng.Types() {
			served = append(served, typeName(st))
		}
		return nil, "", fmt.Errorf("the %s engine does not serve %s instances (it serves %s)", engine, typeName(t), strings.Join(served, " and "))
	}
	l, token, err := r.createLocked(ctx, t, engine)
	if err != nil {
		return nil, "", err
	}
	if !r.opensAll() && r.opts.Created != nil {
		r.opts.Created(ctx, l.id) // in cluster mode: its node may take it at once
	}
	return l, token, nil
}

// createLocked stores and inserts a new instance under changeMu and, when
// the registry opens every session itself, opens it: an instance its
// engine refuses to open is not kept.
func (r *Registry) createLocked(ctx context.Context, t portrait.InstanceType, engine string) (*live, string, error) {
	r.changeMu.Lock()
	defer r.changeMu.Unlock()
	inst, token, err := create(ctx, r.store, t, engine)
	if err != nil {
		return nil, "", err
	}
	l, _, err := r.insert(inst)
	if err != nil {
		return nil, "", err
	}
	if !r.opensAll() {
		return l, token, nil // opened when first needed, or by its owner
	}
	r.open(ctx, l)
	if openErr := l.Err(); openErr != nil {
		if err := r.deleteLocked(ctx, l); err != nil {
			r.log.Warn("removing an instance its engine refused", "idInstance", int64(inst.ID), "err", err)
		}
		return nil, "", openErr
	}
	return l, token, nil
}

// typeName names an instance type for people.
func typeName(t portrait.InstanceType) string {
	switch t {
	case portrait.TypeWhatsApp:
		return "WhatsApp"
	case portrait.TypeMAX:
		return "MAX (v3)"
	}
	return string(t)
}

func (r *Registry) engineNames() string {
	names := make([]string, 0, len(r.engines))
	for n := range r.engines {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Sprint(names)
}

// Delete implements portrait.Instances.
func (r *Registry) Delete(ctx context.Context, id portrait.InstanceID) error {
	r.changeMu.Lock()
	defer r.changeMu.Unlock()
	l := r.get(id)
	if l == nil {
		return fmt.Errorf("instance: delete %d: %w", id, portrait.ErrUnknownInstance)
	}
	l.logoutForDelete(ctx)
	return r.deleteLocked(ctx, l)
}

func (r *Registry) deleteLocked(ctx context.Context, l *live) error {
	if err := r.store.DeleteInstance(ctx, l.id); err != nil {
		return fmt.Errorf("instance: delete %d: %w", l.id, err)
	}
	r.mu.Lock()
	if r.live[l.id] == l {
		delete(r.live, l.id)
	}
	r.mu.Unlock()
	l.close()
	return nil
}

// RotateToken implements portrait.Instances.
func (r *Registry) RotateToken(ctx context.Context, id portrait.InstanceID) (string, error) {
	token := NewToken()
	hash := HashToken(token)
	if err := r.store.SetTokenHash(ctx, id, hash); err != nil {
		return "", fmt.Errorf("instance: rotate token of %d: %w", id, err)
	}
	if l := r.get(id); l != nil {
		l.hash.Store(&hash)
	}
	return token, nil
}

// SetSettings implements portrait.Instances.
func (r *Registry) SetSettings(ctx context.Context, id portrait.InstanceID, s portrait.Settings) error {
	if err := r.store.SetSettings(ctx, id, s); err != nil {
		return fmt.Errorf("instance: save settings of %d: %w", id, err)
	}
	if l := r.get(id); l != nil {
		l.settings.Store(&s)
	}
	return nil
}

// SetCredential implements portrait.Instances.
func (r *Registry) SetCredential(ctx context.Context, id portrait.InstanceID, secret string) error {
	l := r.get(id)
	if l == nil {
		return fmt.Errorf("instance %d: %w", id, portrait.ErrUnknownInstance)
	}
	c, ok := r.engines[l.engine].(portrait.Credentialed)
	if !ok {
		return fmt.Errorf("%w: the %s engine takes no credential", portrait.ErrUnsupported, l.engine)
	}
	return c.SetCredential(ctx, id, secret)
}

// IDs lists every instance (cluster.Owner).
func (r *Registry) IDs(context.Context) ([]portrait.InstanceID, error) {
	r.mu.RLock()
	ids := make([]portrait.InstanceID, 0, len(r.live))
	for id := range r.live {
		ids = append(ids, id)
	}
	r.mu.RUnlock()
	slices.Sort(ids)
	return ids, nil
}

// Own opens the session of the instance whose lease this node has just
// taken, under that lease (cluster.Owner). An instance the registry has
// not seen yet (created on another node a moment ago) is read first.
func (r *Registry) Own(ctx context.Context, lease portrait.Lease) {
	l := r.get(lease.Instance)
	if l == nil {
		if err := r.Refresh(ctx, lease.Instance); err != nil {
			r.log.Warn("reading an instance this node took", "idInstance", int64(lease.Instance), "err", err)
		}
		if l = r.get(lease.Instance); l == nil {
			return
		}
	}
	l.openMu.Lock()
	defer l.openMu.Unlock()
	if l.sess.Load() == nil {
		r.open(portrait.WithLease(ctx, lease), l)
	}
}

// Disown closes the session of an instance this node no longer owns
// (cluster.Owner). The instance stays known, unopened, so that it is
// authenticated and forwarded; calls on handles taken before fail.
func (r *Registry) Disown(id portrait.InstanceID) {
	r.mu.Lock()
	l := r.live[id]
	if l == nil || r.closed {
		r.mu.Unlock()
		return
	}
	r.live[id] = r.newLive(l.instance())
	r.mu.Unlock()
	l.close()
}

// Close closes every session.
func (r *Registry) Close() {
	r.changeMu.Lock()
	defer r.changeMu.Unlock()
	r.mu.Lock()
	all := r.live
	r.live = map[portrait.InstanceID]*live{}
	r.closed = true
	r.mu.Unlock()
	for _, l := range all {
		l.close()
	}
}

// create stores a new instance of type t on engine, drawing ids until one
// is free, and returns it with its token.
func create(ctx context.Context, store portrait.Store, t portrait.InstanceType, engine string) (portrait.Instance, string, error) {
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
	return portrait.Instance{}, "", fmt.Errorf("%w: instance: create: %w", portrait.ErrStorage, lastErr)
}
