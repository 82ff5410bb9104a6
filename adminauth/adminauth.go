// Package adminauth decides who may use portrait's admin side: the admin
// API under /admin/ and the console page. Both accept the admin token as
// "Authorization: Bearer <token>" or a console session cookie: a random
// session id that signing in with the token creates, that signing out
// ends, and that expires (see Sessions). The server keeps only the
// token's SHA-256: given on the command line, or kept in a file of the data
// directory (see CreateTokenFile), which a running server re-reads when
// `portrait admin rotate-token` replaces it.
package adminauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Cookie is the name of the cookie that carries a console session.
const Cookie = "portrait_console"

// Options configure an Auth.
type Options struct {
	// Token is the admin token given in the configuration; it wins over
	// TokenFile.
	Token string
	// TokenFile holds the token's SHA-256 (see CreateTokenFile) when Token
	// is empty. It is re-read when it changes, at most once per
	// ReloadEvery; a change ends every console session.
	TokenFile string
	// TokenSource, when set in place of TokenFile, reads the token's
	// SHA-256 from where the nodes of a cluster share it; it is re-read
	// like TokenFile. A change does not end the console sessions here:
	// the command that rotates the token ends them where they are kept.
	TokenSource func() ([sha256.Size]byte, error)
	// ReloadEvery bounds how often TokenFile is checked; 0 means every
	// second.
	ReloadEvery time.Duration
	// Sessions keeps the console sessions; nil keeps them in memory with
	// SessionIdle and SessionMax.
	Sessions *Sessions
	// SessionIdle ends a console session unused this long; SessionMax
	// ends one this long after sign-in, used or not. Zero takes the
	// defaults (30 minutes, 12 hours).
	SessionIdle, SessionMax time.Duration
	// Failures limits wrong tokens per client address, on the console's
	// sign-in and the admin API alike; nil limits nothing.
	Failures *Limiter
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Default session timeouts.
const (
	DefaultSessionIdle = 30 * time.Minute
	DefaultSessionMax  = 12 * time.Hour
)

// Auth is the admin side's credentials: the admin token's SHA-256 and the
// console's sessions. A nil *Auth authorizes nobody (the admin side is
// off).
type Auth struct {
	// Sessions are the console's sessions.
	Sessions *Sessions
	// Failures limits wrong tokens per client address (may be nil).
	Failures *Limiter

	file        string
	source      func() ([sha256.Size]byte, error)
	reloadEvery time.Duration
	now         func() time.Time

	mu      sync.Mutex
	hash    [sha256.Size]byte // the admin token's
	checked time.Time         // when file was last read
}

// New returns the Auth for opts. With neither a token nor a readable
// token file it fails: the admin side would have no way in.
func New(opts Options) (*Auth, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ReloadEvery <= 0 {
		opts.ReloadEvery = time.Second
	}
	a := &Auth{
		Sessions:    opts.Sessions,
		Failures:    opts.Failures,
		reloadEvery: opts.ReloadEvery,
		now:         opts.Now,
	}
	if a.Sessions == nil {
		a.Sessions = NewSessions(opts.SessionIdle, opts.SessionMax)
	}
	if opts.Token != "" {
		a.hash = sha256.Sum256([]byte(opts.Token))
		return a, nil
	}
	a.file, a.source = opts.TokenFile, opts.TokenSource
	if a.source == nil {
		a.source = func() ([sha256.Size]byte, error) { return readTokenFile(a.file) }
	}
	hash, err := a.source()
	if err != nil {
		return nil, err
	}
	a.hash, a.checked = hash, opts.Now()
	return a, nil
}

// current returns the token's SHA-256, re-reading the token file (65
// bytes) at most once per reloadEvery. A file that cannot be read keeps the
// hash last read.
func (a *Auth) current() [sha256.Size]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.source == nil {
		return a.hash
	}
	now := a.now()
	if now.Sub(a.checked) < a.reloadEvery && !now.Before(a.checked) {
		return a.hash
	}
	a.checked = now
	hash, err := a.source()
	if err != nil {
		return a.hash
	}
	if hash != a.hash {
		a.Sessions.tokenRotated()
		a.hash = hash
	}
	return a.hash
}

// TokenMatches compares a presented token with the admin token in
// constant time.
func (a *Auth) TokenMatches(presented string) bool {
	if a == nil {
		return false
	}
	want, got := a.current(), sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// Authorized reports whether r carries the admin token (as
// "Authorization: Bearer <token>") or the cookie of a live console session,
// which it keeps alive. A nil Auth authorizes nobody.
func (a *Auth) Authorized(r *http.Request) bool {
	if a == nil {
		return false
	}
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return a.TokenMatches(token)
	}
	if c, err := r.Cookie(Cookie); err == nil {
		a.current() // a rotated token ends the sessions
		return a.Sessions.Valid(c.Value, a.now())
	}
	return false
}

// SignIn starts a console session and returns its id, the cookie's value.
func (a *Auth) SignIn() (string, error) {
	return a.Sessions.Start(a.now())
}

// SignOut ends the console session r carries, if any.
func (a *Auth) SignOut(r *http.Request) {
	if c, err := r.Cookie(Cookie); err == nil {
		a.Sessions.End(c.Value)
	}
}

// Now is the Auth's clock.
func (a *Auth) Now() time.Time { return a.now() }
