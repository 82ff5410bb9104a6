package maxweb

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/sessions"
)

// Name is the engine's name, as stored on instances.
const Name = "max"

// keyAuth is the KV key of an instance's device id and login token (JSON,
// see authRecord). The token is the linked device's credential.
const keyAuth = "max/auth"

// Defaults of Options.
const (
	// DefaultURL is the WebSocket endpoint of MAX's web client.
	DefaultURL = "wss://ws-api.oneme.ru/websocket"
	// DefaultOrigin is the Origin header of the web client.
	DefaultOrigin = "https://web.max.ru"
	// DefaultAppVersion is the web client version portrait announces. MAX
	// refuses logins from versions it considers too old (PyMax: older than
	// 25.12.13), so it must follow the web client: the value to use is the
	// appVersion that web.max.ru itself sends in its first WebSocket frame
	// (opcode 6, payload.userAgent.appVersion), visible in a browser's
	// developer tools. 26.7.15 is what PyMax's web client announced on
	// 2026-12-01.
	DefaultAppVersion = "26.7.15"
	// DefaultUserAgent is the browser user agent announced in the header
	// and in the handshake.
	DefaultUserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"

	DefaultRequestTimeout  = 20 * time.Second
	DefaultDownloadTimeout = 20 * time.Second
	DefaultMaxPictureBytes = 5 << 20
	DefaultReconnectMin    = time.Second
	DefaultReconnectMax    = 2 * time.Minute
	DefaultPingInterval    = 30 * time.Second
	DefaultLinkTimeout     = 3 * time.Minute
	DefaultMaxFrameBytes   = 16 << 20
)

// DefaultPictureHosts are the hosts (and their subdomains) pictures are
// downloaded from and uploaded to: GREEN-API's MAX avatars are on
// i.oneme.ru, image uploads go to iu.oneme.ru (the address comes from MAX
// itself), and public MAX clients also trust VK's CDNs okcdn.ru and
// mycdn.me for MAX's media.
var DefaultPictureHosts = []string{"oneme.ru", "max.ru", "okcdn.ru", "mycdn.me"}

var (
	// ErrClosed is returned by a session's methods after Close, and by Open
	// after Engine.Close.
	ErrClosed = errors.New("max: session closed")
	// ErrPictureTooLarge is returned (wrapped) by Session.Picture when the
	// picture is larger than Options.MaxPictureBytes.
	ErrPictureTooLarge = errors.New("max: picture larger than the download limit")
	// ErrRefusedURL is returned (wrapped) when MAX hands out a picture or
	// upload address that is not https on one of Options.PictureHosts.
	ErrRefusedURL = errors.New("max: address is not on MAX's picture hosts")
	// ErrRefused is wrapped by the errors of SetPicture when MAX refused to
	// change a picture for a reason portrait has no sentinel for; the
	// message carries MAX's own error code and text.
	ErrRefused = portrait.ErrRefused
)

// Options tune the engine. Zero fields take the defaults above.
type Options struct {
	// URL is MAX's WebSocket endpoint (DefaultURL).
	URL string
	// Origin is the Origin header sent to it (DefaultOrigin).
	Origin string
	// AppVersion is the web client version announced in the handshake
	// (DefaultAppVersion). MAX gates logins on it.
	AppVersion string
	// UserAgent is the browser user agent announced (DefaultUserAgent).
	UserAgent string
	// PictureHosts are the hosts pictures may be downloaded from and
	// uploaded to, over https only: an entry "example.org" allows it and
	// its subdomains on port 443; an entry with a port ("127.0.0.1:8443")
	// allows exactly that host and port.
	PictureHosts []string
	// RootCAs verifies MAX's TLS certificates; nil means the system pool.
	RootCAs *x509.CertPool
	// RequestTimeout bounds each request to MAX and the connection's dial.
	RequestTimeout time.Duration
	// DownloadTimeout bounds a picture download or upload.
	DownloadTimeout time.Duration
	// MaxPictureBytes caps a downloaded picture.
	MaxPictureBytes int64
	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// connection attempts of a linked instance.
	ReconnectMin, ReconnectMax time.Duration
	// PingInterval is the keep-alive period (opcode 1).
	PingInterval time.Duration
	// LinkTimeout ends a QR linking attempt nobody completes; the next qr
	// request starts a new one.
	LinkTimeout time.Duration
	// MaxFrameBytes caps one frame received from MAX.
	MaxFrameBytes int64
	// Logger receives the engine's logs (never tokens, QR links or
	// upload addresses); nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.URL, DefaultURL)
	def(&o.Origin, DefaultOrigin)
	def(&o.AppVersion, DefaultAppVersion)
	def(&o.UserAgent, DefaultUserAgent)
	if len(o.PictureHosts) == 0 {
		o.PictureHosts = DefaultPictureHosts
	}
	defd(&o.RequestTimeout, DefaultRequestTimeout)
	defd(&o.DownloadTimeout, DefaultDownloadTimeout)
	defd(&o.ReconnectMin, DefaultReconnectMin)
	defd(&o.ReconnectMax, DefaultReconnectMax)
	defd(&o.PingInterval, DefaultPingInterval)
	defd(&o.LinkTimeout, DefaultLinkTimeout)
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = o.ReconnectMin
	}
	if o.MaxPictureBytes <= 0 {
		o.MaxPictureBytes = DefaultMaxPictureBytes
	}
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Engine links one MAX account per instance over MAX's web protocol.
type Engine struct {
	opts Options
	kv   portrait.KV
	log  *slog.Logger
	http *http.Client // the WebSocket dial, picture downloads and uploads

	sessions sessions.Registry[*session]
}

// New returns the engine. kv is where each instance's device id and login
// token are kept.
func New(kv portrait.KV, opts Options) *Engine {
	opts = opts.withDefaults()
	e := &Engine{
		opts: opts,
		kv:   kv,
		log:  opts.Logger.With("engine", Name),
	}
	e.sessions.Closed = ErrClosed
	e.http = e.newHTTPClient()
	return e
}

var _ portrait.Engine = (*Engine)(nil)

// Name returns "max".
func (e *Engine) Name() string { return Name }

// Types returns the MAX instance type: the engine links MAX accounts only.
func (e *Engine) Types() []portrait.InstanceType {
	return []portrait.InstanceType{portrait.TypeMAX}
}

// Open starts the session of a MAX instance and returns at once: a linked
// instance reports StateStarting and connects in the background, an
// unlinked one reports StateNotAuthorized and connects only when a QR code
// is asked for. One session per instance may be open.
func (e *Engine) Open(ctx context.Context, inst portrait.Instance, sink portrait.EventSink) (portrait.Session, error) {
	if inst.Type != portrait.TypeMAX {
		return nil, fmt.Errorf("max: open instance %d: it is a %q instance; the max engine links MAX accounts only", inst.ID, inst.Type)
	}
	if e.kv == nil {
		return nil, fmt.Errorf("max: open instance %d: the engine has no KV", inst.ID)
	}
	if sink == nil {
		sink = sessions.Discard{}
	}
	auth, err := e.loadAuth(ctx, inst.ID)
	if err != nil {
		return nil, fmt.Errorf("max: open instance %d: %w", inst.ID, err)
	}
	s, err := e.sessions.Open(inst.ID, func() *session {
		s := newSession(e, inst.ID, auth, sink)
		s.start()
		return s
	})
	if err != nil {
		return nil, fmt.Errorf("max: open instance %d: %w", inst.ID, err)
	}
	return s, nil
}

// Close closes every open session and makes Open fail.
func (e *Engine) Close() error {
	e.sessions.CloseAll()
	return nil
}

// authRecord is what the KV keeps of a linked instance. Token is MAX's
// login token: whoever has it is logged in as the account.
type authRecord struct {
	DeviceID string `json:"deviceId"`
	Token    string `json:"token,omitempty"`
	UserID   string `json:"userId,omitempty"`
	Phone    string `json:"phone,omitempty"`
}

// String never shows the token.
func (a authRecord) String() string {
	return fmt.Sprintf("device %s, user %s, token set: %t", a.DeviceID, a.UserID, a.Token != "")
}

func (e *Engine) loadAuth(ctx context.Context, id portrait.InstanceID) (authRecord, error) {
	b, err := e.kv.Get(ctx, id, keyAuth)
	if errors.Is(err, portrait.ErrNotFound) || (err == nil && len(b) == 0) {
		return authRecord{DeviceID: newDeviceID()}, nil
	}
	if err != nil {
		return authRecord{}, fmt.Errorf("reading the login: %w", err)
	}
	var a authRecord
	if err := json.Unmarshal(b, &a); err != nil {
		// Never the value: it holds the token.
		return authRecord{}, fmt.Errorf("reading the login: the stored value is not valid (%d bytes)", len(b))
	}
	if a.DeviceID == "" {
		a.DeviceID = newDeviceID()
	}
	return a, nil
}

// saveAuth stores a (with its token), or forgets the login when a has no
// token.
func (e *Engine) saveAuth(ctx context.Context, id portrait.InstanceID, a authRecord) error {
	if a.Token == "" {
		if err := e.kv.DeleteKey(ctx, id, keyAuth); err != nil {
			return fmt.Errorf("forgetting the login: %w", err)
		}
		return nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("storing the login: %w", err)
	}
	if err := e.kv.Put(ctx, id, keyAuth, b); err != nil {
		return fmt.Errorf("storing the login: %w", err)
	}
	return nil
}

// newDeviceID returns a random UUID (version 4), as the web client's
// device ids are.
func newDeviceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newHTTPClient returns the client of the WebSocket dial, downloads and
// uploads: Options.RootCAs, redirects only to allowed hosts.
func (e *Engine) newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: e.opts.RootCAs, MinVersion: tls.VersionTLS12}
	// HTTP/1.1 only: a WebSocket upgrade cannot go over an HTTP/2
	// connection that ALPN would otherwise pick.
	tr.ForceAttemptHTTP2 = false
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrRefusedURL, maxRedirects)
			}
			if !e.allowedURL(req.URL) {
				return fmt.Errorf("%w: redirect to %s", ErrRefusedURL, req.URL.Host)
			}
			return nil
		},
	}
}

// backoff returns the wait before connection attempt n+1 after n failed
// ones (sessions.Backoff between ReconnectMin and ReconnectMax).
func (e *Engine) backoff(n int) time.Duration {
	return sessions.Backoff(e.opts.ReconnectMin, e.opts.ReconnectMax, n)
}
