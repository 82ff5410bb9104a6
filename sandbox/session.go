package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
)

// session is an open instance on the sandbox engine.
type session struct {
	e      *Engine
	in     *instance
	typ    portrait.InstanceType
	events *queue

	// ctx ends when the session is closed; background work uses it.
	ctx    context.Context
	cancel context.CancelFunc

	lease context.Context // carries the lease the session was opened under, for its record

	qrSeed   [32]byte
	qrEpoch  time.Time      // Options.Clock time of Open: QR periods count from it
	starting sync.WaitGroup // start timers armed and not yet finished

	mu      sync.Mutex // guards the fields below; taken after instance.mu
	state   portrait.State
	account portrait.Account
	linked  bool
	closed  bool
	timer   *time.Timer
	gen     uint64 // bumped by every (re)start, so stale timers do nothing
}

var _ portrait.Session = (*session)(nil)

func newSession(e *Engine, in *instance, t portrait.InstanceType, sink portrait.EventSink) *session {
	s := &session{e: e, in: in, typ: t, events: newQueue(in.id, sink), qrEpoch: e.now()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	_, _ = rand.Read(s.qrSeed[:]) // never fails (crypto/rand panics instead)
	return s
}

// begin (re)starts the session on world sw: StateStarting for
// Options.StartDelay, then the real state. A reboot reports StateStarting
// even without a delay. in.mu must be held.
func (s *session) begin(sw *storedWorld, reboot bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.gen++
	s.stopTimerLocked()
	s.observeLocked(&sw.World)
	delay := s.e.opts.StartDelay
	if delay <= 0 {
		if reboot {
			s.setStateLocked(portrait.StateStarting)
		}
		s.setStateLocked(s.realStateLocked())
		return
	}
	s.setStateLocked(portrait.StateStarting)
	gen := s.gen
	s.starting.Add(1)
	s.timer = time.AfterFunc(delay, func() {
		defer s.starting.Done()
		s.finishStart(gen)
	})
}

// stopTimerLocked stops a pending start timer. s.mu must be held.
func (s *session) stopTimerLocked() {
	if s.timer != nil && s.timer.Stop() {
		s.starting.Done() // the callback will not run
	}
	s.timer = nil
}

// finishStart ends the starting period begun with generation gen.
func (s *session) finishStart(gen uint64) {
	s.in.mu.Lock()
	defer s.in.mu.Unlock()
	if _, err := s.e.load(s.ctx, s.in); err != nil && s.ctx.Err() == nil {
		// Keep the account last seen; the next call that loads the world
		// corrects the state if needed.
		s.e.log.Warn("sandbox: start: cannot load world", "instance", s.in.id, "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.gen != gen {
		return
	}
	s.timer = nil
	s.setStateLocked(s.realStateLocked())
}

// observe updates the session with the account in w; see observeLocked.
func (s *session) observe(w *World) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observeLocked(w)
}

// observeLocked updates the cached account, and the state when the session
// is past starting and the account was linked or unlinked. s.mu must be held.
func (s *session) observeLocked(w *World) {
	if s.closed {
		return
	}
	s.linked = w.Account.Linked
	s.account = portrait.Account{}
	if s.linked {
		if w.Type == portrait.TypeMAX {
			s.account = portrait.Account{Wid: w.Account.ID, Phone: w.Account.Phone}
		} else {
			s.account = portrait.Account{
				Wid:      w.Account.Phone + "@c.us",
				Phone:    w.Account.Phone,
				DeviceID: w.Account.Phone + ":1@s.whatsapp.net",
			}
		}
	}
	if s.state != portrait.StateStarting && s.state != "" {
		s.setStateLocked(s.realStateLocked())
	}
}

func (s *session) realStateLocked() portrait.State {
	if s.linked {
		return portrait.StateAuthorized
	}
	return portrait.StateNotAuthorized
}

// setStateLocked changes the state and reports it, unless it is the same.
// s.mu must be held.
func (s *session) setStateLocked(st portrait.State) {
	if st == s.state {
		return
	}
	s.state = st
	s.events.push(event{state: st})
}

// pictureChanged reports a change to the sink if the session is authorized
// (a session that is not connected hears nothing). It returns a channel
// closed once the sink has taken the change, or nil when nothing is
// reported. in.mu must be held.
func (s *session) pictureChanged(c portrait.PictureChange) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.state != portrait.StateAuthorized {
		return nil
	}
	done := make(chan struct{})
	s.events.push(event{change: &c, done: done})
	return done
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
	defer s.mu.Unlock()
	return s.account
}

// ready fails unless the session is open and authorized.
func (s *session) ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.state == portrait.StateStarting:
		return portrait.ErrStarting
	case s.state != portrait.StateAuthorized:
		return portrait.ErrNotAuthorized
	}
	return nil
}

// sleep waits for d, returning early with ctx.Err() when ctx ends or
// ErrClosed when the session is closed.
func (s *session) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return ErrClosed
	}
}

// hang simulates an upstream call that fails with outcome after d. When ctx
// ends first, the error wraps both outcome and ctx.Err().
func (s *session) hang(ctx context.Context, d time.Duration, outcome error) error {
	if err := s.sleep(ctx, d); err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		return fmt.Errorf("%w (%w)", outcome, err)
	}
	return outcome
}

// Picture returns the picture of chat as the simulated messenger holds it.
func (s *session) Picture(ctx context.Context, chat portrait.ChatID, existingID string) (portrait.RemotePicture, error) {
	s.e.record(ctx, RecordAct, s.in.id)
	pic, wait, err := s.picture(ctx, chat, existingID)
	if isHang(err) {
		err = s.hang(ctx, wait, err)
	}
	if err != nil {
		return portrait.RemotePicture{}, fmt.Errorf("sandbox: picture of %q: %w", chat.String(), err)
	}
	return pic, nil
}

// isHang reports whether err is an outcome that the upstream reaches by
// timing out.
func isHang(err error) bool {
	return errors.Is(err, portrait.ErrUpstreamTimeout) || errors.Is(err, portrait.ErrGroupNotFound)
}

// picture looks chat up. When the outcome is reached by timing out, it
// returns how long to hang before failing with err.
func (s *session) picture(ctx context.Context, chat portrait.ChatID, existingID string) (portrait.RemotePicture, time.Duration, error) {
	if err := s.ready(); err != nil {
		return portrait.RemotePicture{}, 0, err
	}
	if chat.IsZero() {
		return portrait.RemotePicture{}, 0, errors.New("empty chat id")
	}
	if err := s.sleep(ctx, s.e.opts.Latency); err != nil {
		return portrait.RemotePicture{}, 0, err
	}
	in := s.in
	in.mu.Lock()
	defer in.mu.Unlock()
	sw, err := s.e.load(ctx, in)
	if err != nil {
		return portrait.RemotePicture{}, 0, err
	}
	w := &sw.World
	id := chat.String()
	var (
		pic *Picture
		key = id
	)
	switch {
	case id == w.OwnChatID():
		pic, key = w.Account.Picture, ownPictureKey
	case chat.Kind() == portrait.KindGroup:
		g := w.group(id)
		if g == nil {
			return portrait.RemotePicture{}, s.e.opts.UnknownGroupTimeout, portrait.ErrGroupNotFound
		}
		if g.Role == RoleNone {
			return portrait.RemotePicture{}, 0, portrait.ErrPictureHidden
		}
		pic = g.Picture
	default:
		c := w.contact(id)
		if c == nil {
			return portrait.RemotePicture{}, 0, portrait.ErrNoAccount
		}
		if s.e.opts.Faults {
			switch c.Fault {
			case FaultTimeout:
				return portrait.RemotePicture{}, s.e.opts.FaultTimeout, portrait.ErrUpstreamTimeout
			case FaultRateLimit:
				return portrait.RemotePicture{}, 0, portrait.ErrUpstreamRateLimit
			}
		}
		if !c.HasAccount {
			return portrait.RemotePicture{}, 0, portrait.ErrNoAccount
		}
		if c.Hidden {
			return portrait.RemotePicture{}, 0, portrait.ErrPictureHidden
		}
		pic = c.Picture
	}
	if pic == nil {
		return portrait.RemotePicture{}, 0, portrait.ErrPictureNotSet
	}
	if existingID != "" && existingID == pic.ID {
		return portrait.RemotePicture{ID: pic.ID, Unchanged: true}, 0, nil
	}
	data, err := s.e.readPicture(ctx, in, key)
	if err != nil {
		return portrait.RemotePicture{}, 0, err
	}
	return portrait.RemotePicture{ID: pic.ID, Data: data}, 0, nil
}

// SetPicture sets the picture of a group, or the account's own picture when
// chat is zero or the account's own id. The preview is not kept.
func (s *session) SetPicture(ctx context.Context, chat portrait.ChatID, jpeg, preview []byte) (string, error) {
	s.e.record(ctx, RecordAct, s.in.id)
	id, wait, err := s.setPicture(ctx, chat, jpeg)
	if isHang(err) {
		err = s.hang(ctx, wait, err)
	}
	if err != nil {
		what := "own picture"
		if !chat.IsZero() {
			what = fmt.Sprintf("picture of %q", chat.String())
		}
		return "", fmt.Errorf("sandbox: set %s: %w", what, err)
	}
	return id, nil
}

func (s *session) setPicture(ctx context.Context, chat portrait.ChatID, data []byte) (string, time.Duration, error) {
	if err := s.ready(); err != nil {
		return "", 0, err
	}
	remove := len(data) == 0
	if !remove {
		if _, err := sniffImage(data); err != nil {
			return "", 0, fmt.Errorf("picture: %w", err)
		}
	}
	if err := s.sleep(ctx, s.e.opts.Latency); err != nil {
		return "", 0, err
	}
	in := s.in
	in.mu.Lock()
	defer in.mu.Unlock()
	sw, err := s.e.load(ctx, in)
	if err != nil {
		return "", 0, err
	}
	w := &sw.World
	var (
		target **Picture
		key    string
	)
	switch {
	case chat.IsZero() || chat.String() == w.OwnChatID():
		target, key = &w.Account.Picture, ownPictureKey
	case chat.Kind() == portrait.KindGroup:
		g := w.group(chat.String())
		switch {
		case g == nil:
			return "", s.e.opts.UnknownGroupTimeout, portrait.ErrGroupNotFound
		case g.Role == RoleNone:
			return "", 0, portrait.ErrNotGroupMember
		case g.Role == RoleMember && g.OnlyAdminsEditInfo:
			return "", 0, portrait.ErrNotGroupAdmin
		}
		target, key = &g.Picture, chat.String()
	default:
		return "", 0, errors.New("only the pictures of groups and of the account itself can be set")
	}
	now := s.e.now()
	if cd := s.e.opts.PictureCooldown; cd > 0 {
		if last, ok := in.lastSet[key]; ok && now.Sub(last) < cd {
			return "", 0, portrait.ErrUpstreamRateLimit
		}
	}
	if remove {
		*target = nil
		if err := s.e.save(ctx, in, sw); err != nil {
			return "", 0, err
		}
		in.lastSet[key] = now
		return "", 0, nil
	}
	p, err := s.e.storePicture(ctx, in, sw, key, data, "set")
	if err != nil {
		return "", 0, err
	}
	*target = p
	if err := s.e.save(ctx, in, sw); err != nil {
		return "", 0, err
	}
	in.lastSet[key] = now
	return p.ID, 0, nil
}

// QR returns the code to scan while the account is not linked. The code
// changes every Options.QRRotate.
func (s *session) QR(ctx context.Context) (portrait.QR, error) {
	if err := ctx.Err(); err != nil {
		return portrait.QR{}, fmt.Errorf("sandbox: qr: %w", err)
	}
	s.mu.Lock()
	st, closed := s.state, s.closed
	s.mu.Unlock()
	switch {
	case closed:
		return portrait.QR{}, fmt.Errorf("sandbox: qr: %w", ErrClosed)
	case st == portrait.StateStarting:
		return portrait.QR{Kind: portrait.QRError, Err: portrait.ErrStarting}, nil
	case st == portrait.StateAuthorized:
		return portrait.QR{Kind: portrait.QRAlreadyLogged}, nil
	}
	var period int64
	if r := s.e.opts.QRRotate; r > 0 {
		elapsed := s.e.now().Sub(s.qrEpoch)
		period = int64(elapsed / r)
		if elapsed < 0 {
			period--
		}
	}
	return portrait.QR{Kind: portrait.QRCode, Code: s.qrCode(period)}, nil
}

// pairingAlphabet is the alphabet of pairing codes: no 0, O, I or U, as
// WhatsApp's.
const pairingAlphabet = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"

// PairingCode returns a code to "type on the phone" with that number. The
// sandbox has no phone: Engine.Scan completes the linking, as it does for a
// QR code. MAX links by QR code or SMS, not by pairing code.
func (s *session) PairingCode(ctx context.Context, phone string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("sandbox: pairing code: %w", err)
	}
	if s.typ == portrait.TypeMAX {
		return "", fmt.Errorf("sandbox: pairing code: %w", portrait.ErrUnsupported)
	}
	s.mu.Lock()
	st, closed := s.state, s.closed
	s.mu.Unlock()
	switch {
	case closed:
		return "", fmt.Errorf("sandbox: pairing code: %w", ErrClosed)
	case st == portrait.StateStarting:
		return "", fmt.Errorf("sandbox: pairing code: %w", portrait.ErrStarting)
	case st == portrait.StateAuthorized:
		return "", fmt.Errorf("sandbox: pairing code: %w", portrait.ErrAlreadyLinked)
	}
	h := sha256.New()
	h.Write(s.qrSeed[:])
	h.Write([]byte("pair:" + phone))
	sum := h.Sum(nil)
	code := make([]byte, 0, 9)
	for i := 0; i < 8; i++ {
		if i == 4 {
			code = append(code, '-')
		}
		code = append(code, pairingAlphabet[int(sum[i])%len(pairingAlphabet)])
	}
	return string(code), nil
}

// qrCode returns the code of a rotation period. WhatsApp codes have the shape
// of real ones ("2@ref,noise key,identity key,adv secret"); MAX codes are an
// opaque "max-sandbox:" token. Neither can be scanned by a real phone.
func (s *session) qrCode(period int64) string {
	part := func(label string, n int) string {
		h := sha256.New()
		h.Write(s.qrSeed[:])
		h.Write([]byte(label))
		if label == "ref" {
			_ = binary.Write(h, binary.BigEndian, period)
		}
		return base64.StdEncoding.EncodeToString(h.Sum(nil)[:n])
	}
	if s.typ == portrait.TypeMAX {
		return "max-sandbox:" + base64.RawURLEncoding.EncodeToString([]byte(part("ref", 24)))
	}
	return "2@" + part("ref", 27) + "," + part("noise", 32) + "," + part("identity", 32) + "," + part("adv", 32)
}

// Logout unlinks the account (persisted); the session turns
// StateNotAuthorized.
func (s *session) Logout(ctx context.Context) error {
	if err := s.check(); err != nil {
		return fmt.Errorf("sandbox: logout: %w", err)
	}
	if err := s.sleep(ctx, s.e.opts.Latency); err != nil {
		return fmt.Errorf("sandbox: logout: %w", err)
	}
	in := s.in
	in.mu.Lock()
	defer in.mu.Unlock()
	sw, err := s.e.load(ctx, in)
	if err != nil {
		return fmt.Errorf("sandbox: logout: %w", err)
	}
	if !sw.World.Account.Linked {
		return nil
	}
	sw.World.Account.Linked = false
	if err := s.e.save(ctx, in, sw); err != nil {
		return fmt.Errorf("sandbox: logout: %w", err)
	}
	return nil
}

// Reboot reconnects: StateStarting for Options.StartDelay, then the real state.
func (s *session) Reboot(ctx context.Context) error {
	if err := s.check(); err != nil {
		return fmt.Errorf("sandbox: reboot: %w", err)
	}
	in := s.in
	in.mu.Lock()
	defer in.mu.Unlock()
	sw, err := s.e.load(ctx, in)
	if err != nil {
		return fmt.Errorf("sandbox: reboot: %w", err)
	}
	s.begin(sw, true)
	return nil
}

// check fails when the session is closed.
func (s *session) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// Close ends the session: pending waits return ErrClosed, the start timer
// stops, and once Close returns no more events reach the sink. Close must
// not be called from a sink method. Closing twice is not an error.
func (s *session) Close() error {
	in := s.in
	in.mu.Lock()
	delete(in.sessions, s)
	s.mu.Lock()
	wasClosed := s.closed
	s.closed = true
	s.stopTimerLocked()
	s.mu.Unlock()
	in.mu.Unlock()

	s.cancel()
	s.starting.Wait()
	s.events.close()
	if !wasClosed {
		s.e.record(s.lease, RecordClose, s.in.id)
	}
	return nil
}
