package maxbot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/outbox"
	"github.com/portrait-dev/portrait/internal/sessions"
)

// session is an open instance on the maxbot engine: the bot token, and a
// goroutine that checks it (GET /me) after Open, SetToken and Reboot, with
// backoff while the Bot API cannot be reached. There is no connection: the
// Bot API is plain HTTPS.
type session struct {
	e   *Engine
	id  portrait.InstanceID
	log *slog.Logger
	out *outbox.Outbox

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	mu       sync.Mutex
	closed   bool
	state    portrait.State
	token    string
	bot      user   // the bot itself, once checked
	why      string // why the state is notAuthorized with a token
	checked  bool   // the current token passed GET /me
	failures int
	seen     map[int64]int64 // user id → a chat where the bot saw them (dialog or members)
}

var _ portrait.Session = (*session)(nil)

func newSession(e *Engine, id portrait.InstanceID, token string, sink portrait.EventSink) *session {
	s := &session{
		e:     e,
		id:    id,
		log:   e.log.With("instance", int64(id)),
		out:   outbox.New(sink),
		token: token,
		kick:  make(chan struct{}, 1),
		seen:  map[int64]int64{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

func (s *session) start() {
	s.mu.Lock()
	if s.token == "" {
		s.setStateLocked(portrait.StateNotAuthorized)
	} else {
		s.setStateLocked(portrait.StateStarting)
	}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.supervise()
	}()
}

// setStateLocked changes the state and reports it, unless it is the same.
func (s *session) setStateLocked(st portrait.State) {
	if st == s.state {
		return
	}
	s.state = st
	id := s.id
	s.out.Push(func(sink portrait.EventSink) { sink.StateChanged(id, st) })
}

func (s *session) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// supervise checks the token whenever it is set and not yet checked.
func (s *session) supervise() {
	for {
		s.mu.Lock()
		need := !s.closed && s.token != "" && !s.checked && s.why == ""
		token := s.token
		s.mu.Unlock()
		var t *time.Timer
		var wait <-chan time.Time
		if need {
			if d, again := s.check(token); again {
				t = time.NewTimer(d)
				wait = t.C
			}
		}
		select {
		case <-s.ctx.Done():
		case <-s.kick:
		case <-wait:
		}
		if t != nil {
			t.Stop()
		}
		if s.ctx.Err() != nil {
			return
		}
	}
}

// check asks the Bot API who the bot is (GET /me). It returns when to try
// again when the API could not say.
func (s *session) check(token string) (time.Duration, bool) {
	var me user
	err := s.call(s.ctx, token, "GET", "/me", nil, nil, &me)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.token != token {
		return 0, false
	}
	switch {
	case err == nil && me.UserID != 0:
		s.bot, s.checked, s.why, s.failures = me, true, "", 0
		s.setStateLocked(portrait.StateAuthorized)
		s.log.Info("maxbot: bot token accepted", "bot", me.UserID)
		return 0, false
	case errors.Is(err, portrait.ErrNotAuthorized):
		return 0, false // rejected already set the state
	case err == nil:
		err = errors.New("GET /me: the reply has no user_id")
	}
	if s.ctx.Err() != nil {
		return 0, false
	}
	s.failures++
	d := sessions.Backoff(s.e.opts.RetryMin, s.e.opts.RetryMax, s.failures)
	s.log.Warn("maxbot: cannot check the bot token; will retry", "retryIn", d, "err", err)
	return d, true
}

// rejected handles a 401 for token: the Bot API no longer accepts it.
func (s *session) rejected(token string, ae *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.token != token {
		return
	}
	s.checked = false
	s.why = fmt.Sprintf("the Bot API refused the bot token (%s); set a valid one", cmp.Or(ae.Code, "401"))
	s.setStateLocked(portrait.StateNotAuthorized)
	s.log.Warn("maxbot: " + s.why)
}

// setToken switches the session to a new token (SetToken).
func (s *session) setToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.token, s.checked, s.why, s.failures, s.bot = token, false, "", 0, user{}
	s.seen = map[int64]int64{}
	if token == "" {
		s.setStateLocked(portrait.StateNotAuthorized)
	} else {
		s.setStateLocked(portrait.StateStarting)
	}
	s.wake()
}

// State returns the current state.
func (s *session) State() portrait.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Account is the bot: Wid is its user id.
func (s *session) Account() portrait.Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.checked || s.bot.UserID == 0 {
		return portrait.Account{}
	}
	return portrait.Account{Wid: strconv.FormatInt(s.bot.UserID, 10)}
}

// ready returns the token of an authorized session, or why there is none.
func (s *session) ready() (string, user, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return "", user{}, ErrClosed
	case s.state == portrait.StateStarting:
		return "", user{}, portrait.ErrStarting
	case s.state != portrait.StateAuthorized:
		if s.why != "" {
			return "", user{}, fmt.Errorf("%w: %s", portrait.ErrNotAuthorized, s.why)
		}
		return "", user{}, fmt.Errorf("%w: the instance has no bot token", portrait.ErrNotAuthorized)
	}
	return s.token, s.bot, nil
}

// qrMessage is the qr answer of a bot instance without a valid token.
const qrMessage = "this MAX instance runs on a bot (the maxbot engine): it is linked by setting its bot token, not by a QR code"

// QR answers alreadyLogged when the bot token works, and otherwise an
// error saying that a bot is linked by its token.
func (s *session) QR(ctx context.Context) (portrait.QR, error) {
	if err := ctx.Err(); err != nil {
		return portrait.QR{}, fmt.Errorf("maxbot: qr: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return portrait.QR{}, fmt.Errorf("maxbot: qr: %w", ErrClosed)
	case s.state == portrait.StateAuthorized:
		return portrait.QR{Kind: portrait.QRAlreadyLogged}, nil
	case s.state == portrait.StateStarting:
		return qrError(portrait.ErrStarting), nil
	case s.why != "":
		return qrError(errors.New(qrMessage + ": " + s.why)), nil
	}
	return qrError(errors.New(qrMessage)), nil
}

// qrError is the qr reply of kind error that shows err's text (the one
// place that knows the shape of portrait.QR's error field).
func qrError(err error) portrait.QR {
	return portrait.QR{Kind: portrait.QRError, Err: err}
}

// PairingCode is not how a bot is linked.
func (s *session) PairingCode(ctx context.Context, phone string) (string, error) {
	return "", fmt.Errorf("maxbot: pairing code: %w: a MAX bot is linked by its token", portrait.ErrUnsupported)
}

// Logout forgets the bot token (in the KV too); the bot itself is not
// affected.
func (s *session) Logout(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("maxbot: logout: %w", ErrClosed)
	}
	s.mu.Unlock()
	if err := SetToken(ctx, s.e.kv, s.id, ""); err != nil {
		return fmt.Errorf("maxbot: logout: %w", err)
	}
	s.setToken("")
	return nil
}

// Reboot reads the token from the KV again and checks it.
func (s *session) Reboot(ctx context.Context) error {
	token, err := s.e.loadToken(ctx, s.id)
	if err != nil {
		return fmt.Errorf("maxbot: reboot: %w", err)
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("maxbot: reboot: %w", ErrClosed)
	}
	s.setToken(token)
	return nil
}

// Close ends the session; once it returns, no more events reach the sink.
func (s *session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.out.Close()
	s.e.sessions.Forget(s.id, s)
	return nil
}
