// Package greenapi is portrait's HTTP layer: the GREEN-API wire
// (/waInstance{id}/{method}/{token} and its /v3/ form for MAX), the stable
// avatar URLs, the admin API, health and metrics. routes.go lists every
// route; this file holds the plumbing every route shares.
package greenapi

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/adminauth"
	"github.com/portrait-dev/portrait/avatar"
	"github.com/portrait-dev/portrait/cluster"
	"github.com/portrait-dev/portrait/metrics"
	"github.com/portrait-dev/portrait/outbound"
)

// Config is the HTTP layer's part of the configuration.
type Config struct {
	// MetricsToken, when not empty, is required (as a Bearer token) to
	// read /metrics.
	MetricsToken string
	// MaxUploadBytes bounds the body of setProfilePicture and
	// setGroupPicture.
	MaxUploadBytes int64
	// UploadSetting names the setting that sets MaxUploadBytes, for the 413
	// message.
	UploadSetting string
	// RateLimits are the per-instance, per-method limits in requests per
	// second, by canonical method name; a method absent or ≤ 0 is
	// unlimited. DefaultRateLimits gives GREEN-API's.
	RateLimits map[string]float64
	// APIURL is the public base URL, printed by the admin API.
	APIURL string
	// WebhookAllow lists the address ranges webhooks may reach although
	// they are not public (the notification sender's own setting);
	// setSettings refuses a webhookUrl outside them, and pictures given by
	// URL are fetched under the same rule.
	WebhookAllow []netip.Prefix
	// FetchTimeout bounds the download of a picture given by URL; 0 means
	// 20 s.
	FetchTimeout time.Duration
	// BodyTimeout bounds the time a client may take to send a request
	// body, UploadTimeout that of a multipart upload; past it the read
	// fails (the reply is 400 or 413) and the connection is closed. Zero
	// means no bound.
	BodyTimeout, UploadTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Deps are what the HTTP layer serves.
type Deps struct {
	Instances portrait.Instances
	Avatars   *avatar.Service
	Notify    Notifier
	Sandbox   SandboxAdmin // nil when the sandbox engine is not in use
	Console   http.Handler // serves /console and /console/…; nil for none
	Admin     *Admin       // the admin API's needs; nil switches /admin/ off (404)
	Metrics   *metrics.Metrics
	Log       *slog.Logger
	// Ready reports whether the server can serve; /readyz answers 503
	// with its error otherwise.
	Ready func(ctx context.Context) error
	// AuthFailures limits failed authentications per client address, for
	// the GREEN-API methods and the admin API alike; nil limits nothing.
	AuthFailures *adminauth.Limiter
	// Cluster forwards the requests for instances another node owns;
	// nil on a server of its own.
	Cluster Cluster
}

// Cluster is what the HTTP layer needs of cluster mode (cluster.Node).
type Cluster interface {
	// Forward serves r by the node that owns id and returns true, or
	// returns false when r is to be served here. admin says the request
	// was authenticated as the admin's. On error nothing was written.
	Forward(w http.ResponseWriter, r *http.Request, id portrait.InstanceID, admin bool) (bool, error)
	// Trusted reports whether r was forwarded by a node of the cluster,
	// and whether that node authenticated it as the admin's.
	Trusted(r *http.Request) (forwarded, admin bool)
	// Owns reports whether this node serves id now (it owns id and its
	// session is open).
	Owns(id portrait.InstanceID) bool
	// Gather asks every other node for path (an admin GET, as r's
	// forwarded call) and returns the bodies of their 200 replies.
	Gather(r *http.Request, path string) [][]byte
}

// forward serves q by the node that owns its instance, when that is
// another node of the cluster; it reports whether it did (or failed).
func (s *Server) forward(w http.ResponseWriter, r *http.Request, id portrait.InstanceID, admin bool) (bool, *apiError) {
	if s.Cluster == nil {
		return false, nil
	}
	done, err := s.Cluster.Forward(w, r, id, admin)
	if err == nil {
		return done, nil
	}
	switch {
	case errors.Is(err, cluster.ErrMisdirected):
		cluster.MarkNotOwner(w.Header())
		return true, newError(http.StatusMisdirectedRequest, "Misdirected Request: this node does not serve instance %d", id)
	case errors.Is(err, cluster.ErrBadSecret):
		return true, newError(http.StatusForbidden, "Forbidden: a node-to-node call without the cluster's secret")
	case errors.Is(err, cluster.ErrTooLarge):
		return true, newError(http.StatusRequestEntityTooLarge, "Request Entity Too Large: the body is more than %d MiB over the upload limit (%s, %d bytes); send a smaller one, or raise the limit on every node", cluster.UploadSlack>>20, s.cfg.UploadSetting, s.cfg.MaxUploadBytes)
	case errors.Is(err, cluster.ErrOwnerFailed):
		s.Log.Warn("forwarding a request", "idInstance", int64(id), "err", err)
		return true, &apiError{status: http.StatusBadGateway, retryAfter: time.Second,
			message: fmt.Sprintf("Bad Gateway: the node that serves instance %d did not answer; try again", id)}
	}
	return true, &apiError{status: http.StatusServiceUnavailable, retryAfter: time.Second,
		message: fmt.Sprintf("Service Unavailable: no node of the cluster serves instance %d right now (one is taking it over); try again", id)}
}

// Server is the HTTP handler of portrait.
type Server struct {
	Deps
	cfg    Config
	limits limiter
	// webhookGuard judges webhook addresses at save time, as the sender
	// does at delivery.
	webhookGuard *outbound.Guard
	// fetcher downloads pictures given by URL through webhookGuard.
	fetcher *http.Client
	methods map[string]*Method // by lower-case name
	mux     *http.ServeMux
}

// New returns the Server for deps and cfg.
func New(deps Deps, cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.UploadSetting == "" {
		cfg.UploadSetting = "PORTRAIT_MAX_UPLOAD_BYTES"
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = defaultFetchTimeout
	}
	guard := outbound.NewGuard(cfg.WebhookAllow, "PORTRAIT_WEBHOOK_ALLOW")
	s := &Server{Deps: deps, cfg: cfg, limits: limiter{rates: cfg.RateLimits}, webhookGuard: guard, fetcher: guard.Client(0, 5)}
	s.methods = map[string]*Method{}
	for _, m := range Methods {
		s.methods[strings.ToLower(m.Name)] = m
	}
	s.mux = http.NewServeMux()
	s.routes(s.mux)
	return s
}

// ServeHTTP serves GREEN-API calls directly (they cannot be expressed as
// ServeMux patterns, and ServeMux would redirect "//waInstance…") and
// everything else through the route table.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(requestIDHeader, requestID(r))
	s.bodyDeadline(w, r)
	if c, ok := parseCall(r.URL.Path); ok {
		s.serveCall(w, r, c)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	start := time.Now()
	s.mux.ServeHTTP(sw, r)
	route := "other"
	if r.Pattern != "" { // set by the mux on r as it dispatched
		route = r.Pattern
	}
	s.Metrics.Request(route, sw.status())
	s.logRequest(w, r, RedactPath(r.URL.Path), sw.status(), start)
}

// requestIDHeader carries the request id: the client's own when it sent a
// usable one, else a new one. Replies carry it, 5xx error messages name it,
// and the log lines about the request have it.
const requestIDHeader = "X-Request-Id"

// requestID returns the id of r.
func requestID(r *http.Request) string {
	if id := r.Header.Get(requestIDHeader); id != "" && len(id) <= 64 && isIDChars(id) {
		return id
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

func isIDChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// tooManyFailures is the reply to a client address that has used up its
// failed authentications.
func tooManyFailures(wait time.Duration) *apiError {
	return &apiError{status: http.StatusTooManyRequests, retryAfter: wait,
		message: fmt.Sprintf("%s: too many failed authentications from this address; retry after %s", msgTooManyRequests, roundUp(wait))}
}

// bodyDeadline bounds the time to read r's body: UploadTimeout for a
// multipart body, BodyTimeout for any other. The deadline is lifted once the
// body has been read, so that it cannot cut a long poll short.
func (s *Server) bodyDeadline(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	d := s.cfg.BodyTimeout
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		d = s.cfg.UploadTimeout
	}
	if d <= 0 {
		return
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(d)) != nil {
		return
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, lift: func() { _ = rc.SetReadDeadline(time.Time{}) }}
}

// deadlineBody lifts the read deadline when the body has been read to its
// end. A body that failed (too slow, cut off) keeps it: its connection is
// closed after the reply.
type deadlineBody struct {
	io.ReadCloser
	lift func()
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.lift()
	}
	return n, err
}

// bodyUnread reports whether r has a body that has not been read to its
// end.
func bodyUnread(r *http.Request) bool {
	if b, ok := r.Body.(*deadlineBody); ok {
		return !b.done
	}
	return false
}

// fail writes e as the reply to r, logging the cause of a server-side
// failure with the request id.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, e *apiError) {
	s.failPath(w, r, RedactPath(r.URL.Path), e)
}

// failPath is fail with the (redacted) path to report.
func (s *Server) failPath(w http.ResponseWriter, r *http.Request, path string, e *apiError) {
	if bodyUnread(r) {
		// Refused before its body was read: close the connection rather
		// than read a body nobody wants (or wait for a slow one).
		w.Header().Set("Connection", "close")
	}
	if e.status >= 500 {
		attrs := []any{"path", path, "status", e.status, "requestId", w.Header().Get(requestIDHeader), "reply", e.message}
		if e.detail != nil {
			attrs = append(attrs, "err", e.detail)
		}
		s.Log.Warn("request failed", attrs...)
	}
	writeError(w, path, e, s.cfg.Now())
}

// request is one authenticated GREEN-API call.
type request struct {
	w    http.ResponseWriter
	r    *http.Request
	call call
	h    portrait.Handle
	path string // redacted
}

func (q *request) ctx() context.Context { return q.r.Context() }

func (s *Server) serveCall(w http.ResponseWriter, r *http.Request, c call) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	q := &request{w: sw, r: r, call: c, path: c.redacted()}
	m := s.methods[strings.ToLower(c.method)]
	label := "unknown"
	if m != nil {
		label = m.Name
	}
	if e := s.dispatch(q, m); e != nil {
		s.failPath(sw, r, q.path, e)
	}
	s.Metrics.Request(label, sw.status())
	s.logRequest(w, r, q.path, sw.status(), start)
}

func (s *Server) dispatch(q *request, m *Method) *apiError {
	c := q.call
	if !c.idOK {
		return validation("idInstance must be a number: the path is /waInstance{idInstance}/{method}/{apiTokenInstance}")
	}
	if c.token == "" {
		return validation("apiTokenInstance is missing: the path is /waInstance{idInstance}/{method}/{apiTokenInstance}")
	}
	h, err := s.Instances.Authenticate(q.ctx(), c.id, c.token)
	switch {
	case err == nil:
	case errors.Is(err, portrait.ErrUnknownInstance), errors.Is(err, portrait.ErrBadToken):
		if ok, wait := s.AuthFailures.Fail(q.r, s.cfg.Now()); !ok {
			return tooManyFailures(wait)
		}
		if errors.Is(err, portrait.ErrBadToken) {
			return &apiError{status: http.StatusUnauthorized, message: "Unauthorized"}
		}
		return &apiError{status: http.StatusForbidden, message: "Forbidden"}
	default:
		s.Log.Error("authenticating a request", "idInstance", int64(c.id), "err", err)
		return newError(http.StatusServiceUnavailable, "Service Unavailable: the instance could not be looked up; try again")
	}
	q.h = h
	typ := h.Type()
	if c.v3 != (typ == portrait.TypeMAX) {
		if typ == portrait.TypeMAX {
			return newError(http.StatusNotFound, "Not Found: instance %d is a MAX instance; call /v3/waInstance%d/%s/%s", c.id, c.id, c.method, TokenPlaceholder)
		}
		return newError(http.StatusNotFound, "Not Found: instance %d is a WhatsApp instance; call /waInstance%d/%s/%s without /v3", c.id, c.id, c.method, TokenPlaceholder)
	}
	if m == nil {
		return newError(http.StatusNotFound, "Not Found: unknown method '%s'", c.method)
	}
	if !m.serves(typ) {
		return newError(http.StatusNotFound, "Not Found: method '%s' is not available for %s instances", m.Name, typ)
	}
	if (c.extra != "") != m.Extra {
		if m.Extra {
			return newError(http.StatusNotFound, "Not Found: %s needs one more path segment: /%s/%s/{receiptId}", m.Name, m.Name, TokenPlaceholder)
		}
		return newError(http.StatusNotFound, "Not Found: unexpected path segment after the token")
	}
	if !slices.Contains(m.Verbs, q.r.Method) {
		q.w.Header().Set("Allow", strings.Join(m.Verbs, ", "))
		return newError(http.StatusMethodNotAllowed, "Method Not Allowed: %s takes %s", m.Name, strings.Join(m.Verbs, " or "))
	}
	if !m.Local {
		if m.Mirrored && s.Cluster != nil && q.r.Header.Get(cluster.HeaderForwardedBy) == "" && !s.Cluster.Owns(h.ID()) {
			if done, e := s.mirror(q, m); done {
				return e
			}
		} else if done, e := s.forward(q.w, q.r, h.ID(), false); done {
			return e
		}
	}
	if ok, wait := s.limits.allow(h.ID(), m.Name, s.cfg.Now(), q.w.Header().Set); !ok {
		return s.rateLimited(m, wait)
	}
	check := h.Err // can the instance be served at all
	if m.Ready {
		check = h.Ready // and is it linked (Ready includes Err)
	}
	if err := check(); err != nil {
		return engineError(err, "serve the instance")
	}
	return m.handle(s, q)
}

// rateLimited is the reply to a call over its method's rate limit.
func (s *Server) rateLimited(m *Method, wait time.Duration) *apiError {
	e := newError(http.StatusTooManyRequests, "%s: %s is limited to %s requests per second per instance; retry after %s",
		msgTooManyRequests, m.Name, strconv.FormatFloat(s.limits.rates[m.Name], 'f', -1, 64), roundUp(wait))
	e.retryAfter = wait
	return e
}

func roundUp(d time.Duration) string {
	secs := (d + time.Second - 1) / time.Second
	if secs < 1 {
		secs = 1
	}
	return (secs * time.Second).String()
}

func (s *Server) logRequest(w http.ResponseWriter, r *http.Request, path string, status int, start time.Time) {
	if !s.Log.Enabled(r.Context(), slog.LevelDebug) {
		return
	}
	s.Log.LogAttrs(r.Context(), slog.LevelDebug, "request",
		slog.String("method", r.Method), slog.String("path", path), slog.String("requestId", w.Header().Get(requestIDHeader)),
		slog.Int("status", status), slog.Duration("took", time.Since(start)))
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
