package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/outbox"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
)

// Why a linking attempt ended, as QR shows it.
const (
	whyExpired   = "the QR code expired; ask for a new one"
	whyCancelled = "linking was cancelled"
)

// session is an open instance on the whatsapp engine: one whatsmeow client
// at a time, a supervisor goroutine that keeps a linked device connected,
// and at most one linking attempt while it is not linked.
//
// Lock order: kvMu before mu. No client method is called while mu is held,
// and whatsmeow's event goroutines only ever take mu briefly.
type session struct {
	e   *Engine
	id  portrait.InstanceID
	log *slog.Logger
	out *outbox.Outbox

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the supervisor, linking attempts and chores
	kick   chan struct{}  // capacity 1: wakes the supervisor

	kvMu sync.Mutex // serialises writes of the device JID to the KV

	mu          sync.Mutex
	closed      bool
	state       portrait.State
	blocked     string    // why the state is blocked
	jid         types.JID // the linked device; empty when not linked
	cli         waClient  // the current client; nil when there is none
	pair        *pairing  // the current linking attempt (only while not linked)
	failures    int       // connection attempts since the last stable connection
	notBefore   time.Time // no connection attempt before this (backoff, ban)
	dialedAt    time.Time // when the current connection was made
	loggedInAt  time.Time // when the current connection logged in; zero if it has not
	communities map[types.JID]bool
}

// pairing is one linking attempt: a client on a new device, connected, with
// whatsmeow's QR channel giving the codes until the phone scans one or they
// run out (about 160 s).
type pairing struct {
	ctx    context.Context // ends when the attempt is abandoned
	cancel context.CancelFunc
	ready  chan struct{} // closed at the first code, or when the attempt ends

	// Guarded by session.mu.
	cli      waClient
	code     string // the latest code
	ended    bool
	failed   bool // ended by an error (not by expiry or success)
	why      string
	endedAt  time.Time
	signaled bool // ready is closed
}

var _ portrait.Session = (*session)(nil)

func newSession(e *Engine, id portrait.InstanceID, jid types.JID, sink portrait.EventSink) *session {
	s := &session{
		e:           e,
		id:          id,
		jid:         jid,
		log:         e.log.With("instance", int64(id)),
		out:         outbox.New(sink),
		kick:        make(chan struct{}, 1),
		communities: map[types.JID]bool{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// start reports the first state and starts the supervisor.
func (s *session) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jid.IsEmpty() {
		s.setStateLocked(portrait.StateNotAuthorized)
	} else {
		s.setStateLocked(portrait.StateStarting)
	}
	s.spawnLocked(s.supervise)
}

// setStateLocked changes the state and reports it, unless it is the same.
// s.mu must be held.
func (s *session) setStateLocked(st portrait.State) {
	if st == s.state {
		return
	}
	s.state = st
	id := s.id
	s.out.Push(func(sink portrait.EventSink) { sink.StateChanged(id, st) })
}

func (s *session) resetBackoffLocked() {
	s.failures = 0
	s.notBefore = time.Time{}
}

// stableLocked reports whether the current connection has been logged in
// long enough (ReconnectMax) for its loss not to count as a failure: a
// server that accepts and drops connections at once is retried with
// growing backoff, a connection lost after a while is made again at once.
// s.mu must be held.
func (s *session) stableLocked() bool {
	return !s.loggedInAt.IsZero() && time.Since(s.loggedInAt) >= s.e.opts.ReconnectMax
}

// spawnLocked runs fn on a goroutine Close waits for. s.mu must be held.
func (s *session) spawnLocked(fn func()) {
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// wake makes the supervisor look at the session now.
func (s *session) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// again is what tick returns to be called again at once.
const again time.Duration = -1

// supervise keeps a linked device connected until Close.
func (s *session) supervise() {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		wait := s.tick()
		if wait == again {
			if s.ctx.Err() != nil {
				return
			}
			continue
		}
		var fire <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			fire = timer.C
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
		case <-fire:
		}
	}
}

// tick does what a linked device needs now (a client, a connection) and
// returns when to look again: 0 means at the next wake.
func (s *session) tick() time.Duration {
	s.mu.Lock()
	if s.closed || s.jid.IsEmpty() {
		s.mu.Unlock()
		return 0
	}
	if wait := time.Until(s.notBefore); wait > 0 {
		s.mu.Unlock()
		return wait
	}
	c, jid := s.cli, s.jid
	s.mu.Unlock()

	if c == nil {
		nc, err := s.e.newClient(s.ctx, jid, s.log)
		switch {
		case errors.Is(err, errNoDevice):
			s.log.Warn("whatsapp: the linked device is no longer in the store; link the instance again", "device", jid.String())
			if old, ok := s.unlinkState(nil, jid); ok {
				s.afterUnlink(old, jid)
			}
			return again
		case err != nil:
			if s.ctx.Err() != nil {
				return 0
			}
			return s.failed("whatsapp: cannot load the device; will retry", err)
		}
		if !s.install(nc, jid) {
			return again
		}
		c = nc
	}

	if c.IsConnected() {
		if c.IsLoggedIn() {
			return s.e.healthEvery
		}
		s.mu.Lock()
		left := s.e.loginTimeout - time.Since(s.dialedAt)
		s.mu.Unlock()
		if left > 0 {
			return left
		}
		s.log.Warn("whatsapp: connected but not logged in in time; reconnecting")
		c.Disconnect()
	}

	s.mu.Lock()
	if s.closed || s.cli != c {
		s.mu.Unlock()
		return again
	}
	if s.state != portrait.StateBlocked {
		s.setStateLocked(portrait.StateStarting)
	}
	if s.stableLocked() {
		s.failures = 0
	}
	s.failures++
	n := s.failures
	wait := s.e.backoff(n)
	now := time.Now()
	s.notBefore = now.Add(wait)
	s.dialedAt = now
	s.loggedInAt = time.Time{}
	s.mu.Unlock()

	err := c.ConnectContext(s.ctx)
	s.mu.Lock()
	current := !s.closed && s.cli == c
	s.mu.Unlock()
	if !current {
		// Logged out, rebooted or closed while connecting.
		c.Disconnect()
		return again
	}
	if err != nil && !errors.Is(err, whatsmeow.ErrAlreadyConnected) {
		if s.ctx.Err() != nil {
			return 0
		}
		s.log.Warn("whatsapp: connecting failed; will retry", "attempt", n, "retryIn", wait, "err", err)
		return wait
	}
	// Connected: the login is reported by events.Connected; look again
	// if it does not come.
	return s.e.loginTimeout
}

// failed counts a failed attempt and returns the backoff before the next.
func (s *session) failed(msg string, err error) time.Duration {
	s.mu.Lock()
	s.failures++
	wait := s.e.backoff(s.failures)
	s.notBefore = time.Now().Add(wait)
	s.mu.Unlock()
	s.log.Warn(msg, "retryIn", wait, "err", err)
	return wait
}

// install makes c the client of the linked device jid, unless things
// changed meanwhile.
func (s *session) install(c waClient, jid types.JID) bool {
	c.AddEventHandler(func(evt any) { s.handle(c, evt) })
	s.mu.Lock()
	ok := !s.closed && s.cli == nil && s.jid == jid
	if ok {
		s.cli = c
	}
	s.mu.Unlock()
	if !ok {
		c.RemoveEventHandlers()
	}
	return ok
}

// unlinkState forgets the linked device jid in memory: the session turns
// notAuthorized. It returns the client to dispose of and whether jid was
// still the linked device; c, when not nil, must be the current client.
func (s *session) unlinkState(c waClient, jid types.JID) (waClient, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.jid.IsEmpty() || s.jid != jid || (c != nil && s.cli != c) {
		return nil, false
	}
	old := s.cli
	s.cli = nil
	s.jid = types.EmptyJID
	s.blocked = ""
	s.resetBackoffLocked()
	s.setStateLocked(portrait.StateNotAuthorized)
	return old, true
}

// afterUnlink disposes of the client of an unlinked device and forgets its
// JID in the KV. It must not run on a whatsmeow event goroutine.
func (s *session) afterUnlink(old waClient, jid types.JID) {
	if old != nil {
		old.Disconnect()
		old.RemoveEventHandlers()
	}
	s.kvMu.Lock()
	defer s.kvMu.Unlock()
	s.mu.Lock()
	relinked := !s.jid.IsEmpty()
	s.mu.Unlock()
	if relinked {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.e.storeTimeout)
	defer cancel()
	if err := s.e.saveJID(ctx, s.id, types.EmptyJID); err != nil {
		s.log.Error("whatsapp: cannot forget the unlinked device", "device", jid.String(), "err", err)
	}
}

// State returns the current state.
func (s *session) State() portrait.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Account returns the linked account, or the zero Account.
func (s *session) Account() portrait.Account {
	s.mu.Lock()
	jid := s.jid
	s.mu.Unlock()
	if jid.IsEmpty() {
		return portrait.Account{}
	}
	return portrait.Account{Wid: jid.User + "@c.us", Phone: jid.User, DeviceID: jid.String()}
}

// ready returns the client of an authorized session, or why there is none.
func (s *session) ready() (waClient, types.JID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, types.EmptyJID, ErrClosed
	case s.state == portrait.StateStarting:
		return nil, types.EmptyJID, portrait.ErrStarting
	case s.state == portrait.StateBlocked:
		return nil, types.EmptyJID, fmt.Errorf("%w: the account is blocked (%s)", portrait.ErrNotAuthorized, s.blocked)
	case s.state != portrait.StateAuthorized || s.cli == nil:
		return nil, types.EmptyJID, portrait.ErrNotAuthorized
	}
	return s.cli, s.jid, nil
}

// QR returns the code to scan while the account is not linked. Asking
// starts a linking attempt when none is running: a new device connects and
// WhatsApp hands out codes, which rotate (the first after 60 s, then every
// 20 s, six in all); QR returns the latest. When they run out the attempt
// ends and the next QR starts another.
func (s *session) QR(ctx context.Context) (portrait.QR, error) {
	if err := ctx.Err(); err != nil {
		return portrait.QR{}, fmt.Errorf("whatsapp: qr: %w", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return portrait.QR{}, fmt.Errorf("whatsapp: qr: %w", ErrClosed)
	}
	if q, ok := s.qrStateLocked(); ok {
		s.mu.Unlock()
		return q, nil
	}
	p := s.pairingLocked()
	s.mu.Unlock()

	if err := s.waitPairing(ctx, p); errors.Is(err, errNoCodeYet) {
		return portrait.QR{Kind: portrait.QRError, Err: err}, nil
	} else if err != nil {
		return portrait.QR{}, fmt.Errorf("whatsapp: qr: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.qrStateLocked(); ok {
		return q, nil
	}
	if p.ended {
		return portrait.QR{Kind: portrait.QRError, Err: errors.New(p.why)}, nil
	}
	return portrait.QR{Kind: portrait.QRCode, Code: p.code}, nil
}

// qrStateLocked returns the QR reply of a session that cannot link now.
func (s *session) qrStateLocked() (portrait.QR, bool) {
	switch {
	case s.state == portrait.StateStarting:
		return portrait.QR{Kind: portrait.QRError, Err: portrait.ErrStarting}, true
	case s.state == portrait.StateBlocked:
		return portrait.QR{Kind: portrait.QRError, Err: errors.New("instance account blocked by WhatsApp: " + s.blocked)}, true
	case s.state == portrait.StateAuthorized || !s.jid.IsEmpty():
		return portrait.QR{Kind: portrait.QRAlreadyLogged}, true
	}
	return portrait.QR{}, false
}

// PairingCode links by phone number: it asks WhatsApp for a code to type on
// the phone with that number, which also gets a notification. The code is
// valid while the linking attempt runs (up to about 160 s).
func (s *session) PairingCode(ctx context.Context, phone string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("whatsapp: pairing code: %w", err)
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return "", fmt.Errorf("whatsapp: pairing code: %w", ErrClosed)
	case s.state == portrait.StateStarting:
		s.mu.Unlock()
		return "", fmt.Errorf("whatsapp: pairing code: %w", portrait.ErrStarting)
	case !s.jid.IsEmpty() || s.state == portrait.StateAuthorized:
		s.mu.Unlock()
		return "", fmt.Errorf("whatsapp: pairing code: %w", portrait.ErrAlreadyLinked)
	}
	p := s.pairingLocked()
	s.mu.Unlock()

	// PairPhone needs the linking connection up: WhatsApp's first QR code
	// says it is.
	if err := s.waitPairing(ctx, p); errors.Is(err, errNoCodeYet) {
		return "", fmt.Errorf("whatsapp: pairing code: %w: %w", portrait.ErrUpstreamTimeout, err)
	} else if err != nil {
		return "", fmt.Errorf("whatsapp: pairing code: %w", err)
	}
	s.mu.Lock()
	linked, c, ended, why := !s.jid.IsEmpty(), p.cli, p.ended, p.why
	s.mu.Unlock()
	switch {
	case linked:
		return "", fmt.Errorf("whatsapp: pairing code: %w", portrait.ErrAlreadyLinked)
	case ended || c == nil:
		return "", fmt.Errorf("whatsapp: pairing code: %s", why)
	}
	rctx, cancel := context.WithTimeout(ctx, s.e.opts.RequestTimeout)
	defer cancel()
	code, err := c.PairPhone(rctx, phone, true, whatsmeow.PairClientChrome, s.e.opts.PairingClient)
	if err != nil {
		return "", fmt.Errorf("whatsapp: pairing code: %w", pairPhoneError(err))
	}
	return code, nil
}

// pairingLocked returns the running linking attempt, or starts one. An
// attempt that failed is reused (and its failure shown) for ReconnectMin,
// so that clients polling QR do not hammer WhatsApp. s.mu must be held.
func (s *session) pairingLocked() *pairing {
	if p := s.pair; p != nil && (!p.ended || (p.failed && time.Since(p.endedAt) < s.e.opts.ReconnectMin)) {
		return p
	}
	p := &pairing{ready: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancel(s.ctx)
	s.pair = p
	s.spawnLocked(func() { s.runPairing(p) })
	return p
}

// errNoCodeYet: WhatsApp has not sent the first code within RequestTimeout
// (the attempt goes on).
var errNoCodeYet = errors.New("WhatsApp has not sent a QR code yet; try again in a moment")

// waitPairing waits for the first code of p, or its end, for at most
// RequestTimeout.
func (s *session) waitPairing(ctx context.Context, p *pairing) error {
	t := time.NewTimer(s.e.opts.RequestTimeout)
	defer t.Stop()
	select {
	case <-p.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for WhatsApp: %w", ctx.Err())
	case <-t.C:
		return errNoCodeYet
	case <-s.ctx.Done():
		return ErrClosed
	}
}

// runPairing runs linking attempt p: a new device, its QR channel, its
// connection, then the codes until the channel ends.
func (s *session) runPairing(p *pairing) {
	defer p.cancel()
	c, err := s.e.newClient(p.ctx, types.EmptyJID, s.log)
	if err != nil {
		s.endPairing(p, nil, true, fmt.Sprintf("cannot create a new device: %v", err))
		return
	}
	// The session's handler comes before the QR channel's, so that a
	// PairSuccess has been handled when the channel reports it.
	c.AddEventHandler(func(evt any) { s.handle(c, evt) })
	s.mu.Lock()
	if s.closed || s.pair != p || !s.jid.IsEmpty() {
		s.mu.Unlock()
		c.RemoveEventHandlers()
		s.endPairing(p, nil, false, whyCancelled)
		return
	}
	old := s.cli
	s.cli, p.cli = c, c
	s.mu.Unlock()
	if old != nil { // the client of an earlier attempt, not linked
		old.Disconnect()
		old.RemoveEventHandlers()
	}

	ch, err := c.GetQRChannel(p.ctx)
	if err != nil {
		s.endPairing(p, c, true, fmt.Sprintf("cannot start linking: %v", err))
		return
	}
	// The client outlives the attempt once linked: it connects for the
	// session, not for the attempt.
	if err := c.ConnectContext(s.ctx); err != nil {
		s.endPairing(p, c, true, fmt.Sprintf("cannot connect to WhatsApp: %v", err))
		return
	}
	for {
		select {
		case <-p.ctx.Done():
			s.endPairing(p, c, false, whyCancelled)
			return
		case item, ok := <-ch:
			if !ok {
				s.endPairing(p, c, false, whyExpired)
				return
			}
			switch item.Event {
			case whatsmeow.QRChannelEventCode:
				s.newCode(p, item.Code)
				continue
			case whatsmeow.QRChannelScannedWithoutMultidevice.Event:
				s.log.Warn("whatsapp: the QR code was scanned by a phone without multi-device support; update WhatsApp on the phone and scan again")
				continue
			case whatsmeow.QRChannelSuccess.Event:
				s.endPairing(p, c, false, "")
			case whatsmeow.QRChannelTimeout.Event:
				s.endPairing(p, c, false, whyExpired)
			case whatsmeow.QRChannelEventError:
				s.endPairing(p, c, true, fmt.Sprintf("linking failed: %v", item.Error))
			case whatsmeow.QRChannelClientOutdated.Event:
				s.endPairing(p, c, true, "WhatsApp refused this client as outdated; update portrait")
			default:
				s.endPairing(p, c, true, "linking failed: "+item.Event)
			}
			return
		}
	}
}

// newCode records the latest code of p.
func (s *session) newCode(p *pairing, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.ended {
		return
	}
	p.code = code
	if !p.signaled {
		p.signaled = true
		close(p.ready)
	}
}

// endPairing ends attempt p and disposes of its client c unless c became
// the client of the linked device.
func (s *session) endPairing(p *pairing, c waClient, failed bool, why string) {
	s.mu.Lock()
	if !p.ended {
		p.ended, p.failed, p.why, p.endedAt, p.code = true, failed, why, time.Now(), ""
	}
	if !p.signaled {
		p.signaled = true
		close(p.ready)
	}
	linked := !s.jid.IsEmpty()
	if linked && s.pair == p {
		s.pair = nil
	}
	keep := c != nil && linked && s.cli == c
	if c != nil && !keep && s.cli == c {
		s.cli = nil
	}
	s.mu.Unlock()
	if c != nil && !keep {
		c.Disconnect()
		c.RemoveEventHandlers()
	}
	if failed {
		s.log.Warn("whatsapp: linking failed", "reason", why)
	}
}

// Logout unlinks the account: WhatsApp is told to remove the device (when
// connected), its keys are deleted from the store and the KV forgets it.
// When WhatsApp cannot be told, the device is forgotten locally all the
// same (the phone then still lists it under Linked devices until removed
// there). The session turns notAuthorized and can show a new QR code.
func (s *session) Logout(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("whatsapp: logout: %w", ErrClosed)
	}
	c, jid, p := s.cli, s.jid, s.pair
	s.cli, s.pair, s.jid = nil, nil, types.EmptyJID
	s.blocked = ""
	s.resetBackoffLocked()
	s.setStateLocked(portrait.StateNotAuthorized)
	s.mu.Unlock()

	if p != nil {
		p.cancel()
	}
	if c != nil {
		c.RemoveEventHandlers()
	}
	if jid.IsEmpty() {
		if c != nil {
			c.Disconnect() // a linking attempt's client
		}
		return nil
	}

	var errs []error
	unlinked := false
	if c != nil && c.IsConnected() && c.IsLoggedIn() {
		rctx, cancel := context.WithTimeout(ctx, s.e.opts.RequestTimeout)
		err := c.Logout(rctx) // tells WhatsApp, disconnects, deletes the device
		cancel()
		if err == nil {
			unlinked = true
		} else {
			s.log.Warn("whatsapp: logout: WhatsApp did not confirm; forgetting the device here anyway (the phone may still list it under Linked devices)", "err", err)
		}
	}
	if !unlinked {
		if c == nil {
			var err error
			c, err = s.e.newClient(ctx, jid, s.log)
			if err != nil && !errors.Is(err, errNoDevice) {
				errs = append(errs, err)
			}
		}
		if c != nil {
			c.Disconnect()
			if err := c.DeleteDevice(ctx); err != nil {
				errs = append(errs, fmt.Errorf("deleting the device: %w", err))
			}
		}
	}

	s.kvMu.Lock()
	s.mu.Lock()
	relinked := !s.jid.IsEmpty()
	s.mu.Unlock()
	if !relinked {
		if err := s.e.saveJID(ctx, s.id, types.EmptyJID); err != nil {
			errs = append(errs, err)
		}
	}
	s.kvMu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("whatsapp: logout: %w", err)
	}
	return nil
}

// Reboot reconnects: a linked session turns starting, disconnects and
// connects again at once; an unlinked one drops its linking attempt
// (reporting starting, then notAuthorized again).
func (s *session) Reboot(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("whatsapp: reboot: %w", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("whatsapp: reboot: %w", ErrClosed)
	}
	c, p := s.cli, s.pair
	linked := !s.jid.IsEmpty()
	s.setStateLocked(portrait.StateStarting)
	s.blocked = ""
	s.resetBackoffLocked()
	if !linked {
		s.pair, s.cli = nil, nil
		s.setStateLocked(portrait.StateNotAuthorized)
	}
	s.mu.Unlock()

	if p != nil {
		p.cancel()
	}
	if c != nil {
		c.Disconnect() // expected by whatsmeow: no events.Disconnected
		if !linked {
			c.RemoveEventHandlers()
		}
	}
	s.wake()
	return nil
}

// Close ends the session: the client disconnects, background work stops,
// and once Close returns no more events reach the sink. Closing twice is
// not an error. Close must not be called from a sink method.
func (s *session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	c, p := s.cli, s.pair
	s.cli, s.pair = nil, nil
	s.mu.Unlock()

	s.cancel()
	if p != nil {
		p.cancel()
	}
	if c != nil {
		c.RemoveEventHandlers()
		c.Disconnect()
	}
	s.wg.Wait()
	s.out.Close()
	s.e.sessions.Forget(s.id, s)
	return nil
}
