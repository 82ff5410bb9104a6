package console_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/adminauth"
	"github.com/portrait-dev/portrait/console"
)

const testToken = "console-test-token"

const wantCSP = "default-src 'self'; img-src 'self' data: http: https:; style-src 'self'; " +
	"script-src 'self'; frame-ancestors 'none'; form-action 'self'"

// do sends one request to h and returns the response with its body read.
func do(t *testing.T, h http.Handler, method, target string, body io.Reader, header ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// testAuth is the admin side with testToken and opts' other fields.
func testAuth(t *testing.T, opts adminauth.Options) *adminauth.Auth {
	t.Helper()
	opts.Token = testToken
	a, err := adminauth.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// signIn signs in to h and returns the session cookie.
func signIn(t *testing.T, h http.Handler) *http.Cookie {
	t.Helper()
	resp, _ := do(t, h, "POST", "/console/login", form(testToken), "Content-Type", formType)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d, want 303", resp.StatusCode)
	}
	return sessionCookie(t, resp)
}

func form(token string) io.Reader {
	return strings.NewReader(url.Values{"token": {token}}.Encode())
}

const formType = "application/x-www-form-urlencoded"

// checkSecurityHeaders checks the headers every console response carries.
func checkSecurityHeaders(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	for name, want := range map[string]string{
		"Content-Security-Policy": wantCSP,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s: %s = %q, want %q", what, name, got, want)
		}
	}
}

func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == adminauth.Cookie {
			return c
		}
	}
	t.Fatalf("no %s cookie in %q", adminauth.Cookie, resp.Header.Values("Set-Cookie"))
	return nil
}

func TestDisabledWithoutAdminToken(t *testing.T) {
	h := console.New(console.Options{})
	for _, c := range []struct{ method, path string }{
		{"GET", "/console"},
		{"GET", "/console/"},
		{"POST", "/console/login"},
		{"POST", "/console/logout"},
		{"GET", "/console/assets/console.js"},
		{"GET", "/console/assets/console.css"},
	} {
		var body io.Reader
		if c.method == "POST" {
			body = form("")
		}
		resp, _ := do(t, h, c.method, c.path, body, "Content-Type", formType)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s without an admin token: %d, want 404", c.method, c.path, resp.StatusCode)
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("%s %s without an admin token set a cookie", c.method, c.path)
		}
		checkSecurityHeaders(t, c.method+" "+c.path, resp)
	}
}

func TestSignInForm(t *testing.T) {
	h := console.New(console.Options{Auth: testAuth(t, adminauth.Options{})})
	resp, body := do(t, h, "GET", "/console", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /console signed out: %d, want 200", resp.StatusCode)
	}
	checkSecurityHeaders(t, "sign-in form", resp)
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	for _, want := range []string{
		`<form id="signin" method="post" action="/console/login">`,
		`<label for="token">`,
		`<input id="token" name="token" type="password"`,
		`href="/console/assets/console.css"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the sign-in form lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, `id="instances"`) || strings.Contains(body, "console.js") {
		t.Errorf("the sign-in form shows the console page:\n%s", body)
	}
	if strings.Contains(body, "class=\"error\"") {
		t.Errorf("the first sign-in form shows an error:\n%s", body)
	}

	// A cookie that is not the session's is no session.
	resp, body = do(t, h, "GET", "/console", nil, "Cookie", adminauth.Cookie+"="+testToken)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="signin"`) {
		t.Errorf("GET /console with the token as the cookie: %d, want the sign-in form:\n%s", resp.StatusCode, body)
	}
}

func TestWrongToken(t *testing.T) {
	h := console.New(console.Options{Auth: testAuth(t, adminauth.Options{})})
	for _, token := range []string{"", "wrong", testToken + "x", strings.ToUpper(testToken)} {
		resp, body := do(t, h, "POST", "/console/login", form(token), "Content-Type", formType)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: %d, want 401", token, resp.StatusCode)
		}
		checkSecurityHeaders(t, "wrong token", resp)
		if len(resp.Cookies()) != 0 {
			t.Errorf("token %q set a cookie: %q", token, resp.Header.Values("Set-Cookie"))
		}
		if !strings.Contains(body, `id="signin"`) || !strings.Contains(body, `class="error"`) {
			t.Errorf("token %q: want the form with an error:\n%s", token, body)
		}
		if token != "" && strings.Contains(body, token) {
			t.Errorf("the form repeats the token %q", token)
		}
	}
}

// TestFailedSignInsAreLimited: after ten wrong tokens from one address
// the console refuses sign-ins from that address, the right token included
// (else the answer would tell a guess right), with 429; other addresses
// are not affected, so nobody can lock the admin out.
func TestFailedSignInsAreLimited(t *testing.T) {
	h := console.New(console.Options{Auth: testAuth(t, adminauth.Options{Failures: adminauth.NewLimiter(10)})})
	// do sends from httptest's default address, 192.0.2.1.
	for i := 0; i < 10; i++ {
		if resp, _ := do(t, h, "POST", "/console/login", form(fmt.Sprint("guess-", i)), "Content-Type", formType); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i, resp.StatusCode)
		}
	}
	for _, token := range []string{"guess-10", testToken} {
		resp, body := do(t, h, "POST", "/console/login", form(token), "Content-Type", formType)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || len(resp.Cookies()) != 0 || !strings.Contains(body, "Too many wrong tokens from this address") {
			t.Errorf("token %q after ten failures: %d, Retry-After %q, cookies %v", token, resp.StatusCode, resp.Header.Get("Retry-After"), resp.Cookies())
		}
	}
	// Another address signs in.
	req := httptest.NewRequest("POST", "/console/login", form(testToken))
	req.Header.Set("Content-Type", formType)
	req.RemoteAddr = "198.51.100.7:5555"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Errorf("the right token from another address: %d, want 303", rec.Code)
	}
}

func TestSignInAndOut(t *testing.T) {
	for _, secure := range []bool{false, true} {
		auth := testAuth(t, adminauth.Options{})
		h := console.New(console.Options{Auth: auth, Secure: secure})
		resp, _ := do(t, h, "POST", "/console/login", form(testToken), "Content-Type", formType)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign in: %d, want 303", resp.StatusCode)
		}
		checkSecurityHeaders(t, "sign in", resp)
		if loc := resp.Header.Get("Location"); loc != "/console" {
			t.Errorf("sign in: Location %q, want /console", loc)
		}
		c := sessionCookie(t, resp)
		if len(c.Value) < 40 || strings.Contains(c.Value, testToken) {
			t.Errorf("cookie value %q: want a random session id of 32 bytes, not the token", c.Value)
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure != secure {
			t.Errorf("cookie %s: want HttpOnly, SameSite=Strict, Path=/, Secure=%v", c, secure)
		}
		if c.MaxAge != int(adminauth.DefaultSessionMax/time.Second) {
			t.Errorf("cookie Max-Age %d, want the absolute timeout %d", c.MaxAge, int(adminauth.DefaultSessionMax/time.Second))
		}
		// Every sign-in is a session of its own.
		if other := signIn(t, h); other.Value == c.Value {
			t.Errorf("two sign-ins got the same session id %q", c.Value)
		}

		// The cookie opens the page, and the admin API accepts it.
		cookie := "Cookie"
		cv := c.Name + "=" + c.Value
		resp, body := do(t, h, "GET", "/console", nil, cookie, cv)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /console signed in: %d", resp.StatusCode)
		}
		checkSecurityHeaders(t, "page", resp)
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("page: Cache-Control %q, want no-store", cc)
		}
		for _, want := range []string{`id="instances"`, `src="/console/assets/console.js"`, `action="/console/logout"`} {
			if !strings.Contains(body, want) {
				t.Errorf("the page lacks %s", want)
			}
		}
		req := httptest.NewRequest("GET", "/admin/instances", nil)
		req.AddCookie(c)
		if !auth.Authorized(req) {
			t.Errorf("the admin API does not accept the console's cookie")
		}

		// HEAD: the page's headers, no body.
		resp, body = do(t, h, "HEAD", "/console", nil, cookie, cv)
		if resp.StatusCode != http.StatusOK || body != "" {
			t.Errorf("HEAD /console: %d with %d bytes", resp.StatusCode, len(body))
		}

		// Sign out.
		resp, _ = do(t, h, "POST", "/console/logout", nil, cookie, cv)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console" {
			t.Errorf("sign out: %d to %q, want 303 to /console", resp.StatusCode, resp.Header.Get("Location"))
		}
		checkSecurityHeaders(t, "sign out", resp)
		out := sessionCookie(t, resp)
		if out.Value != "" || out.MaxAge >= 0 || out.Path != "/" || !out.HttpOnly || out.SameSite != http.SameSiteStrictMode {
			t.Errorf("sign out: cookie %s does not clear the session", out)
		}
		if !strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), "\n"), "Max-Age=0") {
			t.Errorf("sign out: Set-Cookie %q lacks Max-Age=0", resp.Header.Values("Set-Cookie"))
		}

		// The session has ended on the server: the old cookie, kept by
		// someone, no longer opens anything.
		resp, body = do(t, h, "GET", "/console", nil, cookie, cv)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="signin"`) {
			t.Errorf("GET /console with a signed-out cookie: %d, want the sign-in form", resp.StatusCode)
		}
		req = httptest.NewRequest("GET", "/admin/instances", nil)
		req.AddCookie(c)
		if auth.Authorized(req) {
			t.Errorf("the admin API accepts a signed-out session's cookie")
		}
	}
}

// TestSessionsExpire: a session unused for the idle timeout ends, and so
// does one used all the time once the absolute timeout has passed.
func TestSessionsExpire(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	auth := testAuth(t, adminauth.Options{SessionIdle: 10 * time.Minute, SessionMax: time.Hour, Now: func() time.Time { return now }})
	h := console.New(console.Options{Auth: auth})
	signedIn := func(c *http.Cookie) bool {
		_, body := do(t, h, "GET", "/console", nil, "Cookie", c.Name+"="+c.Value)
		return strings.Contains(body, `id="instances"`)
	}

	idle := signIn(t, h)
	busy := signIn(t, h)
	if c := busy; c.MaxAge != 3600 {
		t.Errorf("Max-Age %d, want 3600 (the absolute timeout)", c.MaxAge)
	}
	for i := 0; i < 5; i++ { // 45 minutes of use every 9 minutes
		now = now.Add(9 * time.Minute)
		if !signedIn(busy) {
			t.Fatalf("a session used every 9 minutes ended after %d uses", i+1)
		}
	}
	if signedIn(idle) {
		t.Errorf("a session unused for 45 minutes is still valid (idle timeout 10 minutes)")
	}
	now = now.Add(9 * time.Minute) // 54 minutes
	if !signedIn(busy) {
		t.Fatalf("the busy session ended before the absolute timeout")
	}
	now = now.Add(6 * time.Minute) // 60 minutes
	if signedIn(busy) {
		t.Errorf("a session is valid past the absolute timeout")
	}
	// Signing in again works.
	if !signedIn(signIn(t, h)) {
		t.Errorf("a new sign-in after the timeouts does not open the page")
	}
}

func TestAssets(t *testing.T) {
	h := console.New(console.Options{Auth: testAuth(t, adminauth.Options{})})
	for _, c := range []struct{ path, ctype, contains string }{
		{"/console/assets/console.js", "text/javascript; charset=utf-8", "'use strict'"},
		{"/console/assets/console.css", "text/css; charset=utf-8", ".instance"},
	} {
		// Assets need no session: the sign-in form uses the style sheet.
		resp, body := do(t, h, "GET", c.path, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", c.path, resp.StatusCode)
			continue
		}
		checkSecurityHeaders(t, c.path, resp)
		if got := resp.Header.Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if !strings.Contains(body, c.contains) {
			t.Errorf("GET %s: body lacks %q", c.path, c.contains)
		}
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", c.path)
			continue
		}
		resp, _ = do(t, h, "GET", c.path, nil, "If-None-Match", etag)
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match: %d, want 304", c.path, resp.StatusCode)
		}
	}
	for _, p := range []string{
		"/console/assets/", "/console/assets/nope.js", "/console/assets/index.html",
		"/console/assets/../console.go", "/console/nope", "/console/index.html", "/console/signin.html",
	} {
		resp, _ := do(t, h, "GET", p, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
		checkSecurityHeaders(t, p, resp)
	}
}

func TestMethodsAndOrigins(t *testing.T) {
	h := console.New(console.Options{Auth: testAuth(t, adminauth.Options{})})
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/console/login", http.StatusMethodNotAllowed},
		{"GET", "/console/logout", http.StatusMethodNotAllowed},
		{"POST", "/console", http.StatusMethodNotAllowed},
		{"DELETE", "/console/assets/console.js", http.StatusMethodNotAllowed},
		{"GET", "/console/", http.StatusMovedPermanently},
	} {
		resp, _ := do(t, h, c.method, c.path, nil)
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.status)
		}
		checkSecurityHeaders(t, c.method+" "+c.path, resp)
	}

	// Another site's page cannot sign the browser in or out.
	for _, p := range []string{"/console/login", "/console/logout"} {
		resp, _ := do(t, h, "POST", p, form(testToken), "Content-Type", formType, "Sec-Fetch-Site", "cross-site")
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Errorf("cross-site POST %s: %d (cookies %q), want 403 and no cookie", p, resp.StatusCode, resp.Header.Values("Set-Cookie"))
		}
	}
	resp, _ := do(t, h, "POST", "/console/login", form(testToken), "Content-Type", formType, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin sign in: %d, want 303", resp.StatusCode)
	}

	// A huge form is refused, not read.
	big := strings.NewReader("token=" + strings.Repeat("x", 1<<20))
	resp, body := do(t, h, "POST", "/console/login", big, "Content-Type", formType)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="signin"`) {
		t.Errorf("1 MiB form: %d, want 400 with the form", resp.StatusCode)
	}
}

// TestNoInlineCode checks that the pages keep to the CSP: no inline script,
// style or event handler, and the script builds the page without innerHTML.
func TestNoInlineCode(t *testing.T) {
	h := console.New(console.Options{Auth: testAuth(t, adminauth.Options{})})
	_, signin := do(t, h, "GET", "/console", nil)
	c := signIn(t, h)
	_, page := do(t, h, "GET", "/console", nil, "Cookie", c.Name+"="+c.Value)
	_, js := do(t, h, "GET", "/console/assets/console.js", nil)
	scripts := regexp.MustCompile(`<script([^>]*)>([^<]*)</script>`)
	inline := []*regexp.Regexp{
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle\s*=`),
		regexp.MustCompile(`\son[a-z]+\s*=`),
		regexp.MustCompile(`javascript:`),
	}
	for name, html := range map[string]string{"sign-in form": signin, "page": page} {
		if n, m := strings.Count(html, "<script"), len(scripts.FindAllString(html, -1)); n != m {
			t.Errorf("%s: %d script tags, %d of them well-formed", name, n, m)
		}
		for _, m := range scripts.FindAllStringSubmatch(html, -1) {
			if !strings.Contains(m[1], ` src="/console/assets/`) || strings.TrimSpace(m[2]) != "" {
				t.Errorf("%s has an inline script: %q", name, m[0])
			}
		}
		for _, re := range inline {
			if m := re.FindString(html); m != "" {
				t.Errorf("%s has inline code: %q", name, m)
			}
		}
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "setAttribute('style'", ".style."} {
		if strings.Contains(js, bad) {
			t.Errorf("console.js uses %s", bad)
		}
	}
}
