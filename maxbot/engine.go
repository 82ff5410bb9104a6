package maxbot

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/sessions"
)

// Name is the engine's name, as stored on instances.
const Name = "maxbot"

// KeyToken is the KV key of an instance's bot token.
const KeyToken = "maxbot/token"

// Defaults of Options.
const (
	// DefaultBaseURL is the Bot API (platform-api.max.ru is deprecated).
	DefaultBaseURL         = "https://platform-api2.max.ru"
	DefaultRequestTimeout  = 20 * time.Second
	DefaultDownloadTimeout = 20 * time.Second
	DefaultMaxPictureBytes = 5 << 20
	// DefaultRateLimit is MAX's documented limit: 30 requests a second per
	// bot.
	DefaultRateLimit    = 30
	DefaultRetryMin     = time.Second
	DefaultRetryMax     = 2 * time.Minute
	DefaultScanChats    = 200
	DefaultNotReadyWait = 500 * time.Millisecond
	DefaultNotReadyTry  = 5
)

// DefaultPictureHosts are the hosts (and their subdomains) pictures are
// downloaded from and uploaded to, besides the API's own: MAX's oneme.ru
// and max.ru, and VK's CDNs okcdn.ru and mycdn.me, which public MAX bot
// clients trust for MAX's media.
var DefaultPictureHosts = []string{"oneme.ru", "max.ru", "okcdn.ru", "mycdn.me"}

var (
	// ErrClosed is returned by a session's methods after Close.
	ErrClosed = errors.New("maxbot: session closed")
	// ErrPictureTooLarge is returned (wrapped) when a picture is larger
	// than Options.MaxPictureBytes.
	ErrPictureTooLarge = errors.New("maxbot: picture larger than the download limit")
	// ErrRefusedURL is returned (wrapped) for a picture or upload address
	// that is not https on the API's host or Options.PictureHosts.
	ErrRefusedURL = errors.New("maxbot: address is not on MAX's hosts")
	// ErrNotVisible wraps portrait.ErrUnsupported: the Bot API does not
	// show this bot the chat or user asked for. It is not "no picture".
	ErrNotVisible = fmt.Errorf("%w: the MAX bot cannot see this chat or user", portrait.ErrUnsupported)
	// ErrRefused is wrapped by the errors of SetPicture when the Bot API
	// refused for a reason portrait has no sentinel for; the message
	// carries the API's code and text.
	ErrRefused = portrait.ErrRefused
	// ErrBadToken is returned by SetToken for a value that cannot be a bot
	// token.
	ErrBadToken = errors.New("maxbot: not a bot token")
)

// Options tune the engine. Zero fields take the defaults above.
type Options struct {
	// BaseURL is the Bot API's address (DefaultBaseURL).
	BaseURL string
	// RootCAs verifies the Bot API's TLS certificate. MAX's documentation
	// asks clients to trust the Russian Ministry of Digital Development's
	// root certificate: build the pool with RootCAsFromPEM. nil means the
	// system pool.
	RootCAs *x509.CertPool
	// PictureHosts are the hosts pictures may come from and uploads go to
	// (https only; "host" allows its subdomains on 443, "host:port" exactly
	// that), besides the API's own.
	PictureHosts []string
	// RequestTimeout bounds each request to the Bot API.
	RequestTimeout time.Duration
	// DownloadTimeout bounds a picture download or upload.
	DownloadTimeout time.Duration
	// MaxPictureBytes caps a downloaded picture.
	MaxPictureBytes int64
	// RateLimit is the requests per second one bot token may make
	// (DefaultRateLimit); requests wait for their turn.
	RateLimit float64
	// RetryMin and RetryMax bound the backoff of the token's check while
	// the Bot API cannot be reached.
	RetryMin, RetryMax time.Duration
	// ScanChats bounds the chats looked through to find a user's picture.
	ScanChats int
	// NotReadyWait and NotReadyTries: how long to wait between, and how
	// often to try, setting an icon while MAX answers
	// "attachment.not.ready" for a fresh upload.
	NotReadyWait  time.Duration
	NotReadyTries int
	// Logger receives the engine's logs (never tokens); nil means
	// slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	if len(o.PictureHosts) == 0 {
		o.PictureHosts = DefaultPictureHosts
	}
	d := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	d(&o.RequestTimeout, DefaultRequestTimeout)
	d(&o.DownloadTimeout, DefaultDownloadTimeout)
	d(&o.RetryMin, DefaultRetryMin)
	d(&o.RetryMax, DefaultRetryMax)
	d(&o.NotReadyWait, DefaultNotReadyWait)
	if o.RetryMax < o.RetryMin {
		o.RetryMax = o.RetryMin
	}
	if o.MaxPictureBytes <= 0 {
		o.MaxPictureBytes = DefaultMaxPictureBytes
	}
	if o.RateLimit <= 0 {
		o.RateLimit = DefaultRateLimit
	}
	if o.ScanChats <= 0 {
		o.ScanChats = DefaultScanChats
	}
	if o.NotReadyTries <= 0 {
		o.NotReadyTries = DefaultNotReadyTry
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// RootCAsFromPEM returns the system's root certificates plus the PEM
// certificates in pem (for example the Russian Ministry of Digital
// Development's root, which MAX's documentation asks clients to trust).
func RootCAsFromPEM(pem []byte) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("maxbot: no PEM certificate found in the root CA file")
	}
	return pool, nil
}

// Engine serves MAX instances through the official Bot API, one bot token
// per instance.
type Engine struct {
	opts Options
	kv   portrait.KV
	log  *slog.Logger
	base *url.URL
	http *http.Client

	sessions sessions.Registry[*session]

	limitsMu sync.Mutex
	limits   map[[32]byte]*bucket // per bot token (by hash)
}

// New returns the engine. kv holds each instance's bot token under
// KeyToken. A BaseURL that does not parse falls back to DefaultBaseURL
// (and is logged).
func New(kv portrait.KV, opts Options) *Engine {
	opts = opts.withDefaults()
	e := &Engine{
		opts:   opts,
		kv:     kv,
		log:    opts.Logger.With("engine", Name),
		limits: map[[32]byte]*bucket{},
	}
	e.sessions.Closed = ErrClosed
	base, err := url.Parse(opts.BaseURL)
	if err != nil || base.Scheme != "https" || base.Host == "" {
		e.log.Error("maxbot: the Bot API address must be https; using the default", "given", opts.BaseURL, "default", DefaultBaseURL)
		base, _ = url.Parse(DefaultBaseURL)
	}
	e.base = base
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12}
	e.http = &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			// Calls carrying the token are never redirected: the Bot API
			// does not redirect, and the token must not travel. Picture
			// downloads may be, to allowed hosts.
			switch {
			case via[0].Header.Get("Authorization") != "":
				return fmt.Errorf("%w: the Bot API redirected a call to %s", ErrRefusedURL, req.URL.Host)
			case len(via) >= 3:
				return fmt.Errorf("%w: more than 3 redirects", ErrRefusedURL)
			case !e.allowedURL(req.URL):
				return fmt.Errorf("%w: redirect to %s", ErrRefusedURL, req.URL.Host)
			}
			return nil
		},
	}
	return e
}

var _ portrait.Engine = (*Engine)(nil)

// Name returns "maxbot".
func (e *Engine) Name() string { return Name }

// Types returns the MAX instance type.
func (e *Engine) Types() []portrait.InstanceType {
	return []portrait.InstanceType{portrait.TypeMAX}
}

// SetToken stores the bot token of instance id in its KV (the way the CLI
// and the admin API give an instance its bot) and, when the instance is
// open, makes its session check the new token at once. An empty token
// forgets it. The token is never logged.
func (e *Engine) SetToken(ctx context.Context, id portrait.InstanceID, token string) error {
	token = strings.TrimSpace(token)
	if err := SetToken(ctx, e.kv, id, token); err != nil {
		return err
	}
	if s, ok := e.sessions.Get(id); ok {
		s.setToken(token)
	}
	return nil
}

// SetCredential implements portrait.Credentialed: the secret is the bot
// token.
func (e *Engine) SetCredential(ctx context.Context, id portrait.InstanceID, secret string) error {
	return e.SetToken(ctx, id, secret)
}

// SetToken stores token as instance id's bot token in kv (an empty token
// forgets it), for a process where the engine does not run (the CLI); an
// open session picks it up at its next Reboot.
func SetToken(ctx context.Context, kv portrait.KV, id portrait.InstanceID, token string) error {
	token = strings.TrimSpace(token)
	if err := checkToken(token); err != nil {
		return err
	}
	if token == "" {
		if err := kv.DeleteKey(ctx, id, KeyToken); err != nil {
			return fmt.Errorf("%w: maxbot: forgetting the bot token of instance %d: %w", portrait.ErrStorage, id, err)
		}
		return nil
	}
	if err := kv.Put(ctx, id, KeyToken, []byte(token)); err != nil {
		return fmt.Errorf("%w: maxbot: storing the bot token of instance %d: %w", portrait.ErrStorage, id, err)
	}
	return nil
}

// checkToken refuses values that cannot be a token (and would be unsafe in
// a header).
func checkToken(token string) error {
	if len(token) > 512 {
		return fmt.Errorf("%w: longer than 512 characters", ErrBadToken)
	}
	for _, r := range token {
		if r > unicode.MaxASCII || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("%w: it may hold printable ASCII characters only", ErrBadToken)
		}
	}
	return nil
}

func (e *Engine) loadToken(ctx context.Context, id portrait.InstanceID) (string, error) {
	b, err := e.kv.Get(ctx, id, KeyToken)
	if errors.Is(err, portrait.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the bot token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Open starts the session of a MAX instance on its bot token and returns
// at once: with a token it reports StateStarting while it checks the
// token (GET /me), without one StateNotAuthorized.
func (e *Engine) Open(ctx context.Context, inst portrait.Instance, sink portrait.EventSink) (portrait.Session, error) {
	if inst.Type != portrait.TypeMAX {
		return nil, fmt.Errorf("maxbot: open instance %d: it is a %q instance; the maxbot engine serves MAX bots only", inst.ID, inst.Type)
	}
	if e.kv == nil {
		return nil, fmt.Errorf("maxbot: open instance %d: the engine has no KV", inst.ID)
	}
	if sink == nil {
		sink = sessions.Discard{}
	}
	token, err := e.loadToken(ctx, inst.ID)
	if err != nil {
		return nil, fmt.Errorf("maxbot: open instance %d: %w", inst.ID, err)
	}
	s, err := e.sessions.Open(inst.ID, func() *session {
		s := newSession(e, inst.ID, token, sink)
		s.start()
		return s
	})
	if err != nil {
		return nil, fmt.Errorf("maxbot: open instance %d: %w", inst.ID, err)
	}
	return s, nil
}

// Close closes every session and makes Open fail.
func (e *Engine) Close() error {
	e.sessions.CloseAll()
	return nil
}

// limiter returns the rate limiter of a bot token: instances sharing a bot
// share its limit.
func (e *Engine) limiter(token string) *bucket {
	k := sha256.Sum256([]byte(token))
	e.limitsMu.Lock()
	defer e.limitsMu.Unlock()
	b := e.limits[k]
	if b == nil {
		b = newBucket(e.opts.RateLimit)
		e.limits[k] = b
	}
	return b
}

// bucket spaces requests apart (a burst of one) at 90 % of rate: the 10 %
// margin absorbs the jitter between sending a request and MAX counting
// it, so that no second MAX counts holds more than rate of them.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64) *bucket {
	return &bucket{rate: rate * 0.9, tokens: 1, last: time.Now()}
}

// wait takes one token, waiting for it when there is none.
func (b *bucket) wait(ctx context.Context) error {
	b.mu.Lock()
	now := time.Now()
	b.tokens = min(1, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens--
	var d time.Duration
	if b.tokens < 0 {
		d = time.Duration(-b.tokens / b.rate * float64(time.Second))
	}
	b.mu.Unlock()
	if d == 0 {
		return nil
	}
	if err := sleepCtx(ctx, d); err != nil {
		b.mu.Lock()
		b.tokens++ // not used after all
		b.mu.Unlock()
		return err
	}
	return nil
}
