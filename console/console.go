// Package console serves portrait's console: one web page, behind the admin
// token, for the operator: it lists the instances with their state and own
// picture, creates and deletes them, replaces their tokens, links accounts
// (live QR code, pairing code, a simulated scan on the sandbox), edits
// settings and tests the webhook, shows each notification queue, and sets
// and looks up pictures. It is a client of the admin API only.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary; it talks
// to the admin API (/admin/…) with the session cookie that signing in sets:
// a random session id kept server-side (see adminauth.Sessions), which
// signing out ends and which expires.
//
// Routes, all under /console:
//
//	GET  /console                 the page, or the sign-in form
//	POST /console/login           form field "token": signs in
//	POST /console/logout          signs out
//	GET  /console/assets/{file}   console.js, console.css
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/portrait-dev/portrait/adminauth"
)

// Options configure the console.
type Options struct {
	// Auth holds the admin token (people sign in with it), the sessions
	// and the limit on wrong tokens per client address, shared with the
	// admin API. Nil switches the console off: it answers 404 for
	// everything.
	Auth *adminauth.Auth
	// Secure sets the session cookie's Secure flag; set it when the public
	// URL is https.
	Secure bool
}

// The security headers of every console response. The page has no inline
// script or style; avatar URLs may point at another origin (the public
// URL), and the QR code is a data: URL.
const (
	contentSecurityPolicy = "default-src 'self'; img-src 'self' data: http: https:; style-src 'self'; " +
		"script-src 'self'; frame-ancestors 'none'; form-action 'self'"
	maxFormBytes = 16 << 10
)

//go:embed assets
var assetFS embed.FS

//go:embed index.html signin.html
var pageFS embed.FS

var signinTemplate = template.Must(template.ParseFS(pageFS, "signin.html"))

// asset is one embedded file as served.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// contentTypes are the types of the embedded files, by extension; a file of
// another kind is not served.
var contentTypes = map[string]string{
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".html": "text/html; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

func load(fsys fs.FS, name string) asset {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		panic("console: embedded file missing: " + name)
	}
	sum := sha256.Sum256(b)
	return asset{body: b, contentType: contentTypes[path.Ext(name)], etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// handler is the console.
type handler struct {
	opts   Options
	index  asset
	assets map[string]asset // by file name
	csrf   *http.CrossOriginProtection
}

// New returns the console's handler. It expects every request whose path is
// /console or starts with /console/ and answers 404 for the others.
func New(opts Options) http.Handler {
	h := &handler{
		opts:   opts,
		index:  load(pageFS, "index.html"),
		assets: map[string]asset{},
		csrf:   http.NewCrossOriginProtection(),
	}
	entries, err := fs.ReadDir(assetFS, "assets")
	if err != nil {
		panic("console: embedded assets missing")
	}
	for _, e := range entries {
		if _, ok := contentTypes[path.Ext(e.Name())]; ok && !e.IsDir() {
			h.assets[e.Name()] = load(assetFS, "assets/"+e.Name())
		}
	}
	return h
}

// ServeHTTP routes a console request.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	if h.opts.Auth == nil {
		http.NotFound(w, r)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/console":
		if !allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		h.page(w, r)
	case p == "/console/":
		http.Redirect(w, r, "/console", http.StatusMovedPermanently)
	case p == "/console/login":
		if !allow(w, r, http.MethodPost) || !h.sameOrigin(w, r) {
			return
		}
		h.login(w, r)
	case p == "/console/logout":
		if !allow(w, r, http.MethodPost) || !h.sameOrigin(w, r) {
			return
		}
		h.logout(w, r)
	case strings.HasPrefix(p, "/console/assets/"):
		if !allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		a, ok := h.assets[strings.TrimPrefix(p, "/console/assets/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		hd.Set("Content-Type", a.contentType)
		hd.Set("ETag", a.etag)
		hd.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	default:
		http.NotFound(w, r)
	}
}

// allow answers 405 unless r's method is one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
	return false
}

// sameOrigin answers 403 to a POST another site's page made the browser
// send.
func (h *handler) sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	if err := h.csrf.Check(r); err != nil {
		http.Error(w, "403 forbidden: cross-origin request", http.StatusForbidden)
		return false
	}
	return true
}

// page serves the console page, or the sign-in form.
func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	if !h.opts.Auth.Authorized(r) { // a live session's cookie, or the admin token
		h.signin(w, r, http.StatusOK, "")
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", h.index.contentType)
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(h.index.body)
	}
}

// signin serves the sign-in form with status and an error message.
func (h *handler) signin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	var buf bytes.Buffer
	if err := signinTemplate.Execute(&buf, struct{ Error string }{msg}); err != nil {
		http.Error(w, "500 internal error", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// login checks the form's token and sets the session cookie.
func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.signin(w, r, http.StatusBadRequest, "The form could not be read. Please try again.")
		return
	}
	auth := h.opts.Auth
	if blocked, wait := auth.Failures.Blocked(r, auth.Now()); blocked {
		h.tooMany(w, r, wait)
		return
	}
	if !auth.TokenMatches(r.PostForm.Get("token")) {
		if ok, wait := auth.Failures.Fail(r, auth.Now()); !ok {
			h.tooMany(w, r, wait)
			return
		}
		h.signin(w, r, http.StatusUnauthorized, "That is not the admin token.")
		return
	}
	id, err := auth.SignIn()
	if err != nil {
		h.signin(w, r, http.StatusInternalServerError, "The session could not be started. Please try again.")
		return
	}
	http.SetCookie(w, h.cookie(id, int(auth.Sessions.MaxAge()/time.Second)))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/console", http.StatusSeeOther)
}

// tooMany answers a sign-in from an address that has used up its wrong
// tokens.
func (h *handler) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	secs := int((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	h.signin(w, r, http.StatusTooManyRequests, fmt.Sprintf("Too many wrong tokens from this address. Please wait %d seconds and try again.", secs))
}

// logout ends the session and clears its cookie.
func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	h.opts.Auth.SignOut(r)
	http.SetCookie(w, h.cookie("", -1))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/console", http.StatusSeeOther)
}

// cookie is the session cookie with value; maxAge < 0 deletes it.
func (h *handler) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     adminauth.Cookie,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   h.opts.Secure,
		SameSite: http.SameSiteStrictMode,
	}
}
