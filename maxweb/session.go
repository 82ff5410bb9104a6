package maxweb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/outbox"
)

// Why a linking attempt ended, as QR shows it.
var (
	errLinkExpired   = errors.New("the QR code expired; ask for a new one")
	errLinkCancelled = errors.New("linking was cancelled")
	errNoCodeYet     = errors.New("MAX has not sent a QR code yet; try again in a moment")
)

// storeTimeout bounds KV writes made from the engine's own goroutines.
const storeTimeout = 10 * time.Second

// maxKnown bounds the remembered picture ids of a session.
const maxKnown = 100_000

// session is an open instance on the max engine: at most one logged-in
// connection, a supervisor goroutine that keeps a linked account
// connected, and at most one QR linking attempt while it is not linked.
//
// Lock order: kvMu before mu. No network call is made while mu is held.
type session struct {
	e   *Engine
	id  portrait.InstanceID
	log *slog.Logger
	out *outbox.Outbox

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // capacity 1: wakes the supervisor

	kvMu sync.Mutex // serialises writes of the login to the KV

	mu         sync.Mutex
	closed     bool
	state      portrait.State
	blocked    string     // why the state is blocked
	auth       authRecord // Token is "" when not linked
	conn       *conn      // the logged-in connection; nil when there is none
	profile    contact    // the own profile, as the login or a push told
	link       *linking   // the current QR linking attempt
	failures   int        // connection attempts since the last stable connection
	notBefore  time.Time  // no connection attempt before this
	loggedInAt time.Time
	known      map[string]string // chat id → the last picture id seen
}

// linking is one QR linking attempt: its own connection, MAX's QR codes as
// they rotate, until the phone scans one or Options.LinkTimeout passes.
type linking struct {
	ctx    context.Context
	cancel context.CancelFunc
	ready  chan struct{} // closed at the first code, or when the attempt ends

	// Guarded by session.mu.
	code     string
	ended    bool
	why      error // nil when linked
	holdTill time.Time
	signaled bool
}

var _ portrait.Session = (*session)(nil)

func newSession(e *Engine, id portrait.InstanceID, auth authRecord, sink portrait.EventSink) *session {
	s := &session{
		e:     e,
		id:    id,
		auth:  auth,
		log:   e.log.With("instance", int64(id)),
		out:   outbox.New(sink),
		kick:  make(chan struct{}, 1),
		known: map[string]string{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

func (s *session) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.auth.Token == "" {
		s.setStateLocked(portrait.StateNotAuthorized)
	} else {
		s.setStateLocked(portrait.StateStarting)
	}
	s.spawnLocked(s.supervise)
}

func (s *session) setStateLocked(st portrait.State) {
	if st == s.state {
		return
	}
	s.state = st
	id := s.id
	s.out.Push(func(sink portrait.EventSink) { sink.StateChanged(id, st) })
}

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

func (s *session) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// supervise keeps a linked account connected until Close.
func (s *session) supervise() {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		c, linked, wait := s.conn, s.auth.Token != "", time.Until(s.notBefore)
		s.mu.Unlock()
		switch {
		case c != nil:
			select {
			case <-s.ctx.Done():
				return
			case <-s.kick:
			case <-c.done:
				s.lost(c)
			}
		case !linked:
			select {
			case <-s.ctx.Done():
				return
			case <-s.kick:
			}
		case wait > 0:
			t := time.NewTimer(wait)
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-s.kick:
			case <-t.C:
			}
			t.Stop()
		default:
			s.connect()
		}
	}
}

// connect makes one attempt to connect and log in with the stored token.
func (s *session) connect() {
	s.mu.Lock()
	if s.closed || s.auth.Token == "" || s.conn != nil {
		s.mu.Unlock()
		return
	}
	if s.state != portrait.StateBlocked {
		s.setStateLocked(portrait.StateStarting)
	}
	s.failures++
	n := s.failures
	wait := s.e.backoff(n)
	s.notBefore = time.Now().Add(wait)
	auth := s.auth
	s.mu.Unlock()

	c, info, err := s.login(s.ctx, auth)
	if err != nil {
		if s.ctx.Err() != nil {
			return
		}
		var me *Error
		switch {
		case errors.As(err, &me) && me.Opcode == opLogin && errorKind(me.Code) == kindBadToken:
			s.log.Warn("max: MAX no longer accepts the login (logged out on the phone, or the session was ended there); link the instance again", "code", me.Code)
			s.unlink(auth.Token)
		case errors.As(err, &me) && me.Opcode == opHello:
			why := fmt.Sprintf("MAX refused the handshake (%s: %s); the announced app version %s may be too old (see Options.AppVersion)", me.Code, me.Message, s.e.opts.AppVersion)
			s.log.Error("max: "+why, "retryIn", s.e.opts.ReconnectMax)
			s.mu.Lock()
			if s.auth.Token == auth.Token && !s.closed {
				s.blocked = why
				s.notBefore = time.Now().Add(s.e.opts.ReconnectMax)
				s.setStateLocked(portrait.StateBlocked)
			}
			s.mu.Unlock()
		default:
			s.log.Warn("max: connecting failed; will retry", "attempt", n, "retryIn", wait, "err", err)
		}
		return
	}

	s.kvMu.Lock()
	defer s.kvMu.Unlock()
	s.mu.Lock()
	if s.closed || s.auth.Token != auth.Token || s.conn != nil {
		s.mu.Unlock()
		c.close()
		return
	}
	changed := s.installLocked(c, info)
	auth = s.auth
	s.mu.Unlock()
	s.log.Info("max: logged in", "user", auth.UserID)
	if changed {
		s.store(auth)
	}
}

// installLocked makes c the logged-in connection. It returns whether the
// account's id or phone changed (and must be stored). s.mu must be held.
func (s *session) installLocked(c *conn, info loginInfo) bool {
	s.conn = c
	s.profile = info.Profile
	s.loggedInAt = time.Now()
	s.blocked = ""
	user, phone := string(info.Profile.ID), string(info.Profile.Phone)
	changed := s.auth.UserID != user || (phone != "" && s.auth.Phone != phone)
	s.auth.UserID = user
	if phone != "" {
		s.auth.Phone = phone
	}
	// The login lists the contacts and chats with their current pictures:
	// what changed while the instance was not connected (no push came) is
	// reported now, compared with what the session saw before.
	old := s.known
	s.known = map[string]string{}
	s.setStateLocked(portrait.StateAuthorized)
	now := time.Now()
	for _, ct := range append(info.Contacts, info.Profile) {
		s.seenLocked(old, string(ct.ID), ct.pictureID(), user == string(ct.ID), false, now)
	}
	for _, ch := range info.Chats {
		if ch.Type == "" || ch.Type == "CHAT" {
			s.seenLocked(old, string(ch.ID), ch.pictureID(), false, true, now)
		}
	}
	return changed
}

// seenLocked records the picture id of a chat listed by a login, and
// reports a change when the session knew another one before. s.mu must be
// held.
func (s *session) seenLocked(old map[string]string, id, pictureID string, self, group bool, at time.Time) {
	prev, known := old[id]
	if !known || prev == pictureID {
		s.rememberLocked(id, pictureID)
		return
	}
	chat, err := portrait.ParseChatID(portrait.TypeMAX, id)
	if err != nil || (chat.Kind() == portrait.KindGroup) != group {
		return
	}
	kind := portrait.SubjectContact
	switch {
	case group:
		kind = portrait.SubjectGroup
	case self:
		kind = portrait.SubjectSelf
	}
	s.changeLocked(chat, kind, pictureID, at)
}

// login connects, says hello and logs in with auth's token.
func (s *session) login(ctx context.Context, auth authRecord) (*conn, loginInfo, error) {
	c, err := s.e.dial(ctx, s.log, s.onPush)
	if err != nil {
		return nil, loginInfo{}, err
	}
	info, err := s.loginOn(ctx, c, auth, true)
	if err != nil {
		c.close()
		return nil, loginInfo{}, err
	}
	return c, info, nil
}

// loginOn says hello on c (unless hello is false) and logs in.
func (s *session) loginOn(ctx context.Context, c *conn, auth authRecord, hello bool) (loginInfo, error) {
	if hello {
		if _, err := c.call(ctx, opHello, s.helloPayload(auth.DeviceID)); err != nil {
			return loginInfo{}, fmt.Errorf("handshake: %w", err)
		}
	}
	// The sync markers 0 ask for the current contacts and chats, whose
	// picture ids seed the change detection (szonov/max maxclient/config.go).
	payload, err := c.call(ctx, opLogin, map[string]any{
		"interactive":  true,
		"token":        auth.Token,
		"chatsCount":   40,
		"chatsSync":    0,
		"contactsSync": 0,
		"presenceSync": -1,
		"draftsSync":   0,
	})
	if err != nil {
		return loginInfo{}, fmt.Errorf("login: %w", err)
	}
	return parseLogin(payload)
}

// helloPayload is the handshake (opcode 6) of the web client.
func (s *session) helloPayload(deviceID string) map[string]any {
	return map[string]any{
		"deviceId": deviceID,
		"userAgent": map[string]any{
			"deviceType":      "WEB",
			"locale":          "ru",
			"deviceLocale":    "ru",
			"osVersion":       "Linux",
			"deviceName":      "Chrome",
			"headerUserAgent": s.e.opts.UserAgent,
			"appVersion":      s.e.opts.AppVersion,
			"screen":          "1080x1920 1.0x",
			"timezone":        "Europe/Moscow",
		},
	}
}

// lost handles the end of the logged-in connection c.
func (s *session) lost(c *conn) {
	s.mu.Lock()
	if s.conn != c {
		s.mu.Unlock()
		return
	}
	s.conn = nil
	if !s.loggedInAt.IsZero() && time.Since(s.loggedInAt) >= s.e.opts.ReconnectMax {
		// It was stable: connect again at once, with a fresh backoff.
		s.failures = 0
		s.notBefore = time.Time{}
	}
	s.loggedInAt = time.Time{}
	if s.state != portrait.StateBlocked {
		s.setStateLocked(portrait.StateStarting)
	}
	s.mu.Unlock()
	s.log.Warn("max: the connection to MAX ended; reconnecting", "err", c.cause())
	c.close()
}

// unlink forgets the login whose token is token: MAX no longer accepts it.
func (s *session) unlink(token string) {
	s.kvMu.Lock()
	defer s.kvMu.Unlock()
	s.mu.Lock()
	if s.closed || s.auth.Token != token {
		s.mu.Unlock()
		return
	}
	c := s.conn
	s.conn = nil
	s.auth = authRecord{DeviceID: newDeviceID()}
	s.blocked = ""
	s.failures, s.notBefore = 0, time.Time{}
	s.setStateLocked(portrait.StateNotAuthorized)
	s.mu.Unlock()
	if c != nil {
		c.close()
	}
	s.store(authRecord{})
}

// store writes auth to the KV (an empty token forgets the login). kvMu
// must be held.
func (s *session) store(auth authRecord) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := s.e.saveAuth(ctx, s.id, auth); err != nil {
		s.log.Error("max: cannot store the login; the instance will have to be linked again after a restart", "err", err)
	}
}

// State returns the current state.
func (s *session) State() portrait.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Account returns the linked account: Wid is the own MAX user id.
func (s *session) Account() portrait.Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.auth.Token == "" || s.auth.UserID == "" {
		return portrait.Account{}
	}
	return portrait.Account{Wid: s.auth.UserID, Phone: s.auth.Phone, DeviceID: s.auth.DeviceID}
}

// ready returns the logged-in connection and own user id, or why there is
// none.
func (s *session) ready() (*conn, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, "", ErrClosed
	case s.state == portrait.StateStarting:
		return nil, "", portrait.ErrStarting
	case s.state == portrait.StateBlocked:
		return nil, "", fmt.Errorf("%w: %s", portrait.ErrNotAuthorized, s.blocked)
	case s.state != portrait.StateAuthorized || s.conn == nil:
		return nil, "", portrait.ErrNotAuthorized
	}
	return s.conn, s.auth.UserID, nil
}

// QR returns the login link to show as a QR code while the account is not
// linked. Asking starts a linking attempt when none runs; its codes rotate
// as MAX rotates them (expiresAt) and QR returns the latest.
func (s *session) QR(ctx context.Context) (portrait.QR, error) {
	if err := ctx.Err(); err != nil {
		return portrait.QR{}, fmt.Errorf("max: qr: %w", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return portrait.QR{}, fmt.Errorf("max: qr: %w", ErrClosed)
	}
	if q, ok := s.qrStateLocked(); ok {
		s.mu.Unlock()
		return q, nil
	}
	p := s.linkingLocked()
	s.mu.Unlock()

	t := time.NewTimer(s.e.opts.RequestTimeout)
	defer t.Stop()
	select {
	case <-p.ready:
	case <-t.C:
		return qrError(errNoCodeYet), nil
	case <-ctx.Done():
		return portrait.QR{}, fmt.Errorf("max: qr: %w", ctx.Err())
	case <-s.ctx.Done():
		return portrait.QR{}, fmt.Errorf("max: qr: %w", ErrClosed)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.qrStateLocked(); ok {
		return q, nil
	}
	if p.ended {
		return qrError(p.why), nil
	}
	return portrait.QR{Kind: portrait.QRCode, Code: p.code}, nil
}

func (s *session) qrStateLocked() (portrait.QR, bool) {
	switch {
	case s.state == portrait.StateStarting:
		return qrError(portrait.ErrStarting), true
	case s.state == portrait.StateBlocked:
		return qrError(errors.New("instance account blocked: " + s.blocked)), true
	case s.state == portrait.StateAuthorized || s.auth.Token != "":
		return portrait.QR{Kind: portrait.QRAlreadyLogged}, true
	}
	return portrait.QR{}, false
}

// linkingLocked returns the running linking attempt, or starts one. A
// failed attempt is shown (not retried) until its hold passes.
func (s *session) linkingLocked() *linking {
	if p := s.link; p != nil && (!p.ended || time.Now().Before(p.holdTill)) {
		return p
	}
	p := &linking{ready: make(chan struct{})}
	p.ctx, p.cancel = context.WithTimeout(s.ctx, s.e.opts.LinkTimeout)
	s.link = p
	s.spawnLocked(func() { s.runLinking(p) })
	return p
}

// runLinking runs attempt p: a connection, a handshake, then QR codes
// (opcode 288) polled (289) until one is scanned, then the login (291) and
// the session (19) on the same connection, which becomes the session's.
func (s *session) runLinking(p *linking) {
	defer p.cancel()
	s.mu.Lock()
	auth := authRecord{DeviceID: s.auth.DeviceID}
	s.mu.Unlock()

	c, err := s.e.dial(p.ctx, s.log, s.onPush)
	if err != nil {
		s.endLinking(p, fmt.Errorf("cannot connect to MAX: %w", err))
		return
	}
	kept := false
	defer func() {
		if !kept {
			c.close()
		}
	}()
	if _, err := c.call(p.ctx, opHello, s.helloPayload(auth.DeviceID)); err != nil {
		s.endLinking(p, fmt.Errorf("MAX refused the handshake (is Options.AppVersion %s current?): %w", s.e.opts.AppVersion, err))
		return
	}
	err = s.showCodes(p, c, auth)
	kept = err == nil
	switch {
	case err == nil:
		s.endLinking(p, nil)
	case p.ctx.Err() != nil && s.ctx.Err() == nil && errors.Is(p.ctx.Err(), context.DeadlineExceeded):
		s.endLinking(p, errLinkExpired)
	case p.ctx.Err() != nil:
		s.endLinking(p, errLinkCancelled)
	default:
		s.endLinking(p, err)
	}
}

// showCodes asks MAX for QR codes on c (opcode 288), one after the other
// as they expire, until one is scanned, and then completes the login.
func (s *session) showCodes(p *linking, c *conn, auth authRecord) error {
	for {
		payload, err := c.call(p.ctx, opQRStart, map[string]any{})
		if err != nil {
			return err
		}
		q, err := parseQRStart(payload)
		if err != nil {
			return err
		}
		s.newCode(p, q.Link)
		scanned, err := s.pollQR(p, c, q)
		if err != nil {
			return err
		}
		if scanned {
			return s.finishLinking(p, c, q.TrackID, auth)
		}
		// Expired: the next code.
	}
}

// pollQR asks whether code q was scanned, every pollingInterval, until it
// expires (false) or is scanned (true).
func (s *session) pollQR(p *linking, c *conn, q qrStart) (bool, error) {
	every := time.Duration(q.PollingInterval) * time.Millisecond
	every = min(max(every, 50*time.Millisecond), 10*time.Second)
	expires := time.UnixMilli(q.ExpiresAt)
	if q.ExpiresAt <= 0 {
		expires = time.Now().Add(time.Minute)
	}
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return false, p.ctx.Err()
		case <-t.C:
		}
		if !time.Now().Before(expires) {
			return false, nil
		}
		payload, err := c.call(p.ctx, opQRStatus, map[string]any{"trackId": q.TrackID})
		var me *Error
		switch {
		case errors.As(err, &me) && errorKind(me.Code) == kindNotFound:
			return false, nil // the track expired on MAX's side
		case err != nil:
			return false, fmt.Errorf("asking whether the QR code was scanned: %w", err)
		}
		ok, err := parseQRStatus(payload)
		if err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
		t.Reset(every)
	}
}

// finishLinking completes a scanned code: the token (291), the session on
// the same connection (19), and the handover to the session.
func (s *session) finishLinking(p *linking, c *conn, trackID string, auth authRecord) error {
	payload, err := c.call(p.ctx, opQRLogin, map[string]any{"trackId": trackID})
	if err != nil {
		return fmt.Errorf("completing the login: %w", err)
	}
	token, err := parseQRLogin(payload)
	if err != nil {
		return err
	}
	auth.Token = token
	info, err := s.loginOn(p.ctx, c, auth, false)
	if err != nil {
		return fmt.Errorf("MAX gave a login token but refused the session: %w", err)
	}
	if !s.adopt(p, c, auth, info) {
		return errLinkCancelled
	}
	return nil
}

// adopt makes the linking connection c the logged-in one and stores the
// new login.
func (s *session) adopt(p *linking, c *conn, auth authRecord, info loginInfo) bool {
	s.kvMu.Lock()
	defer s.kvMu.Unlock()
	s.mu.Lock()
	if s.closed || s.link != p || s.auth.Token != "" || s.conn != nil {
		s.mu.Unlock()
		return false
	}
	s.auth = auth
	s.failures, s.notBefore = 0, time.Time{}
	s.installLocked(c, info)
	s.link = nil
	auth = s.auth
	s.mu.Unlock()
	s.log.Info("max: linked", "user", auth.UserID)
	s.store(auth)
	s.wake()
	return true
}

func (s *session) newCode(p *linking, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.ended {
		return
	}
	p.code = code
	p.signalLocked()
}

// signalLocked closes p.ready unless it is closed already. session.mu must
// be held.
func (p *linking) signalLocked() {
	if !p.signaled {
		p.signaled = true
		close(p.ready)
	}
}

// endLinking ends attempt p; why is nil when it linked the account.
func (s *session) endLinking(p *linking, why error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.ended {
		return
	}
	p.ended, p.why, p.code = true, why, ""
	switch {
	case errors.Is(why, errCloudPassword):
		// Shown to every qr request for a while: scanning again does not help.
		p.holdTill = time.Now().Add(max(s.e.opts.ReconnectMin, s.e.opts.LinkTimeout/6))
	case why != nil && !errors.Is(why, errLinkExpired) && !errors.Is(why, errLinkCancelled):
		p.holdTill = time.Now().Add(s.e.opts.ReconnectMin)
	}
	p.signalLocked()
	if why != nil && !errors.Is(why, errLinkCancelled) {
		s.log.Warn("max: linking ended", "reason", why.Error())
	}
}

// qrError is the qr reply of kind error that shows err's text. (The one
// place that knows the shape of portrait.QR's error field.)
func qrError(err error) portrait.QR {
	return portrait.QR{Kind: portrait.QRError, Err: err}
}

// PairingCode is not how MAX links: it links by QR code.
func (s *session) PairingCode(ctx context.Context, phone string) (string, error) {
	return "", fmt.Errorf("max: pairing code: %w: MAX links by QR code only", portrait.ErrUnsupported)
}

// Logout ends the account's session on MAX (opcode 20, when connected)
// and forgets the token. When MAX cannot be told, the token is forgotten
// here all the same; the phone then still lists the session until it is
// ended there.
func (s *session) Logout(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("max: logout: %w", ErrClosed)
	}
	c, p, token := s.conn, s.link, s.auth.Token
	s.conn, s.link = nil, nil
	s.auth = authRecord{DeviceID: newDeviceID()}
	s.blocked = ""
	s.failures, s.notBefore = 0, time.Time{}
	s.setStateLocked(portrait.StateNotAuthorized)
	s.mu.Unlock()

	if p != nil {
		p.cancel()
	}
	if c == nil && token != "" {
		s.log.Warn("max: logout while not connected: forgetting the login here; the phone may still list the session until it is ended there")
	}
	if c != nil {
		if token != "" {
			if _, err := c.call(ctx, opLogout, map[string]any{}); err != nil {
				s.log.Warn("max: logout: MAX did not confirm; forgetting the login here anyway (the phone may still list the session)", "err", err)
			}
		}
		c.close()
	}
	s.kvMu.Lock()
	defer s.kvMu.Unlock()
	s.mu.Lock()
	relinked := s.auth.Token != ""
	s.mu.Unlock()
	if relinked || token == "" {
		return nil
	}
	if err := s.e.saveAuth(ctx, s.id, authRecord{}); err != nil {
		return fmt.Errorf("max: logout: %w", err)
	}
	return nil
}

// Reboot reconnects: a linked session turns starting, drops its
// connection and connects again at once; an unlinked one drops its
// linking attempt.
func (s *session) Reboot(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("max: reboot: %w", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("max: reboot: %w", ErrClosed)
	}
	c, p := s.conn, s.link
	s.conn, s.link = nil, nil
	s.blocked = ""
	s.failures, s.notBefore = 0, time.Time{}
	if s.auth.Token != "" {
		s.setStateLocked(portrait.StateStarting)
	}
	s.mu.Unlock()
	if p != nil {
		p.cancel()
	}
	if c != nil {
		c.close()
	}
	s.wake()
	return nil
}

// Close ends the session: the connection closes, background work stops,
// and once Close returns no more events reach the sink. It must not be
// called from a sink method.
func (s *session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	c, p := s.conn, s.link
	s.conn, s.link = nil, nil
	s.mu.Unlock()
	s.cancel()
	if p != nil {
		p.cancel()
	}
	if c != nil {
		c.close()
	}
	s.wg.Wait()
	s.out.Close()
	s.e.sessions.Forget(s.id, s)
	return nil
}

// remember records the picture id last seen for chat.
func (s *session) remember(chat, pictureID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rememberLocked(chat, pictureID)
}

// rememberLocked is remember with s.mu held. When maxKnown chats are
// remembered, a new one takes the place of one other: forgetting them all
// would make every push that follows look like a picture change.
func (s *session) rememberLocked(chat, pictureID string) {
	if _, ok := s.known[chat]; !ok && len(s.known) >= maxKnown {
		for other := range s.known {
			delete(s.known, other)
			break
		}
	}
	s.known[chat] = pictureID
}

// userID turns a contact chat id into MAX's number.
func userID(chat portrait.ChatID) (int64, error) {
	n, err := strconv.ParseInt(chat.String(), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a MAX chat id", chat.String())
	}
	return n, nil
}
