package instance

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portrait-dev/portrait"
)

// live is one instance of a Registry: its identity, current credentials and
// settings, and its engine session. It is the portrait.Handle the Registry
// hands out.
type live struct {
	r      *Registry
	id     portrait.InstanceID
	typ    portrait.InstanceType
	engine string

	hash     atomic.Pointer[[]byte]
	settings atomic.Pointer[portrait.Settings]
	created  time.Time

	openMu sync.Mutex             // serialises lazy opening
	sess   atomic.Pointer[opened] // nil until the engine has opened the session

	evMu    sync.Mutex
	held    []func() // events reported before the session was in place
	passing bool     // held events are being handed on
	gone    bool     // closed: the session is closed, late events are dropped
}

// opened is the result of opening a session: the session, or why not.
type opened struct {
	s   portrait.Session
	err error // wraps portrait.ErrUnavailable
}

var _ portrait.Handle = (*live)(nil)

// update applies an instance's stored credentials and settings.
func (l *live) update(inst portrait.Instance) {
	hash := inst.TokenHash
	l.hash.Store(&hash)
	s := inst.Settings
	l.settings.Store(&s)
}

// instance is the stored instance as the engine opens it.
func (l *live) instance() portrait.Instance {
	return portrait.Instance{ID: l.id, Type: l.typ, Engine: l.engine, TokenHash: *l.hash.Load(),
		Settings: *l.settings.Load(), CreatedAt: l.created}
}

// opened puts the session in place (or records why there is none) and
// hands on the events the engine reported meanwhile, in order, also those
// that arrive while it does.
func (l *live) opened(s portrait.Session, err error) {
	l.evMu.Lock()
	if l.gone {
		l.evMu.Unlock()
		if s != nil {
			l.closeSession(s)
		}
		return
	}
	l.sess.Store(&opened{s: s, err: err})
	l.passing = true
	for {
		evs := l.held
		l.held = nil
		if len(evs) == 0 {
			l.passing = false
			l.evMu.Unlock()
			return
		}
		l.evMu.Unlock()
		for _, ev := range evs {
			ev()
		}
		l.evMu.Lock()
	}
}

// deliver hands an engine event on, or holds it until the session is in
// place; events of a closed instance are dropped.
func (l *live) deliver(ev func(portrait.Events)) {
	call := func() {
		if evs := l.r.events; evs != nil {
			ev(evs)
		}
	}
	l.evMu.Lock()
	if l.gone {
		l.evMu.Unlock()
		return
	}
	if l.sess.Load() == nil || l.passing { // not in place yet, or earlier events still going out
		l.held = append(l.held, call)
		l.evMu.Unlock()
		return
	}
	l.evMu.Unlock()
	call()
}

// close closes the session, if any, and drops later events.
func (l *live) close() {
	l.evMu.Lock()
	if l.gone {
		l.evMu.Unlock()
		return
	}
	l.gone = true
	l.held = nil
	o := l.sess.Load()
	l.evMu.Unlock()
	if o != nil && o.s != nil {
		l.closeSession(o.s)
	}
}

func (l *live) closeSession(s portrait.Session) {
	if err := s.Close(); err != nil {
		l.r.log.Warn("closing instance session", "idInstance", int64(l.id), "err", err)
	}
}

// sink is the portrait.EventSink an engine reports one instance's events
// to.
type sink struct{ l *live }

func (s sink) StateChanged(_ portrait.InstanceID, st portrait.State) {
	s.l.deliver(func(e portrait.Events) { e.StateChanged(s.l, st) })
}

func (s sink) PictureChanged(_ portrait.InstanceID, c portrait.PictureChange) {
	s.l.deliver(func(e portrait.Events) { e.PictureChanged(s.l, c) })
}

// ID implements portrait.Handle.
func (l *live) ID() portrait.InstanceID { return l.id }

// Type implements portrait.Handle.
func (l *live) Type() portrait.InstanceType { return l.typ }

// Engine implements portrait.Handle.
func (l *live) Engine() string { return l.engine }

// Settings implements portrait.Handle.
func (l *live) Settings() portrait.Settings { return *l.settings.Load() }

// CreatedAt implements portrait.Handle.
func (l *live) CreatedAt() time.Time { return l.created }

// State implements portrait.Handle.
func (l *live) State() portrait.State {
	o := l.sess.Load()
	switch {
	case o == nil:
		return portrait.StateStarting
	case o.err != nil:
		return ""
	}
	return o.s.State()
}

// Account implements portrait.Handle.
func (l *live) Account() portrait.Account {
	if o := l.sess.Load(); o != nil && o.s != nil {
		return o.s.Account()
	}
	return portrait.Account{}
}

// Err implements portrait.Handle.
func (l *live) Err() error {
	if o := l.sess.Load(); o != nil {
		return o.err
	}
	return nil
}

// Ready implements portrait.Handle.
func (l *live) Ready() error {
	o := l.sess.Load()
	switch {
	case o == nil:
		return portrait.ErrStarting
	case o.err != nil:
		return o.err
	}
	return readiness(o.s)
}

func readiness(s portrait.Session) error {
	switch s.State() {
	case portrait.StateAuthorized:
		return nil
	case portrait.StateStarting:
		return portrait.ErrStarting
	}
	return portrait.ErrNotAuthorized
}

// session returns the open session, opening it first in a lazy registry,
// and the context to call it with: in cluster mode the one carrying this
// node's lease, and an error when this node does not own the instance.
func (l *live) session(ctx context.Context) (context.Context, portrait.Session, error) {
	if acting := l.r.opts.Acting; acting != nil {
		var ok bool
		if ctx, ok = acting(ctx, l.id); !ok {
			return ctx, nil, fmt.Errorf("%w: instance %d is served by another node of the cluster", portrait.ErrUnavailable, l.id)
		}
	}
	o := l.sess.Load()
	if o == nil && l.r.opts.Lazy {
		l.openMu.Lock()
		if o = l.sess.Load(); o == nil {
			l.r.open(ctx, l)
			o = l.sess.Load()
		}
		l.openMu.Unlock()
		if o == nil {
			return ctx, nil, fmt.Errorf("%w: instance %d was deleted", portrait.ErrUnavailable, l.id)
		}
	}
	switch {
	case o == nil:
		return ctx, nil, portrait.ErrStarting
	case o.err != nil:
		return ctx, nil, o.err
	}
	return ctx, o.s, nil
}

// readySession is session after the readiness check.
func (l *live) readySession(ctx context.Context) (context.Context, portrait.Session, error) {
	ctx, s, err := l.session(ctx)
	if err != nil {
		return ctx, nil, err
	}
	if err := readiness(s); err != nil {
		return ctx, nil, err
	}
	return ctx, s, nil
}

// Picture implements portrait.Handle.
func (l *live) Picture(ctx context.Context, chat portrait.ChatID, existingID string) (portrait.RemotePicture, error) {
	ctx, s, err := l.readySession(ctx)
	if err != nil {
		return portrait.RemotePicture{}, err
	}
	return s.Picture(ctx, chat, existingID)
}

// SetPicture implements portrait.Handle.
func (l *live) SetPicture(ctx context.Context, chat portrait.ChatID, jpeg, preview []byte) (string, error) {
	ctx, s, err := l.readySession(ctx)
	if err != nil {
		return "", err
	}
	return s.SetPicture(ctx, chat, jpeg, preview)
}

// QR implements portrait.Handle.
func (l *live) QR(ctx context.Context) (portrait.QR, error) {
	ctx, s, err := l.session(ctx)
	if err != nil {
		return portrait.QR{}, err
	}
	return s.QR(ctx)
}

// PairingCode implements portrait.Handle.
func (l *live) PairingCode(ctx context.Context, phone string) (string, error) {
	ctx, s, err := l.session(ctx)
	if err != nil {
		return "", err
	}
	return s.PairingCode(ctx, phone)
}

// Logout implements portrait.Handle.
func (l *live) Logout(ctx context.Context) error {
	ctx, s, err := l.session(ctx)
	if err != nil {
		return err
	}
	return s.Logout(ctx)
}

// Reboot implements portrait.Handle.
func (l *live) Reboot(ctx context.Context) error {
	ctx, s, err := l.session(ctx)
	if err != nil {
		return err
	}
	return s.Reboot(ctx)
}

// settleWait bounds how long Delete waits for a session that a lazy
// registry has just opened to leave StateStarting, and then for the
// logout.
const settleWait = 10 * time.Second

// logoutForDelete logs a linked account out before its instance is
// deleted, so that the phone no longer lists the device; best effort.
func (l *live) logoutForDelete(ctx context.Context) {
	ctx, s, err := l.session(ctx)
	if err != nil {
		return
	}
	if l.r.opts.Lazy {
		deadline := time.Now().Add(settleWait)
		for s.State() == portrait.StateStarting && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if s.State() != portrait.StateAuthorized {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, settleWait)
	defer cancel()
	if err := s.Logout(lctx); err != nil {
		l.r.log.Warn("logging out an instance being deleted", "idInstance", int64(l.id), "err", err)
	}
}
