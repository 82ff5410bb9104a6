package adminauth

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func bearer(token string) *http.Request {
	r := httptest.NewRequest("GET", "/admin/instances", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

func withCookie(id string) *http.Request {
	r := httptest.NewRequest("GET", "/admin/instances", nil)
	r.AddCookie(&http.Cookie{Name: Cookie, Value: id})
	return r
}

func TestGivenToken(t *testing.T) {
	a, err := New(Options{Token: "s3cret", TokenFile: filepath.Join(t.TempDir(), "nope")})
	if err != nil {
		t.Fatal(err)
	}
	for token, want := range map[string]bool{"s3cret": true, "s3cre": false, "s3cret ": false, "": false, "S3CRET": false} {
		if got := a.Authorized(bearer(token)); got != want {
			t.Errorf("Bearer %q: %v, want %v", token, got, want)
		}
	}
	if a.Authorized(httptest.NewRequest("GET", "/", nil)) {
		t.Error("a request without credentials is authorized")
	}
	if a.Authorized(withCookie("s3cret")) {
		t.Error("the token as the cookie is a session")
	}
	var none *Auth
	if none.Authorized(bearer("")) || none.TokenMatches("") {
		t.Error("a nil Auth authorizes")
	}
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, TokenFileName)
	if _, err := New(Options{TokenFile: path}); err == nil {
		t.Fatal("New without a token and without the file succeeded")
	}
	first, err := CreateTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(first) {
		t.Fatalf("token %q: want 64 hex digits", first)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), first) {
		t.Error("the file holds the token itself")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	// A second start keeps the token.
	if again, err := CreateTokenFile(path); err != nil || again != "" {
		t.Fatalf("CreateTokenFile on an existing file: %q, %v; want no new token", again, err)
	}

	now := time.Unix(1_800_000_000, 0)
	a, err := New(Options{TokenFile: path, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Authorized(bearer(first)) || a.Authorized(bearer("x"+first[1:])) {
		t.Fatal("the file's token is not the admin token")
	}
	session, err := a.SignIn()
	if err != nil {
		t.Fatal(err)
	}
	if !a.Authorized(withCookie(session)) {
		t.Fatal("a new session is not authorized")
	}

	// Another process rotates it: within a second the server takes the
	// new token, refuses the old one and ends the sessions.
	second, err := RotateTokenFile(path)
	if err != nil || second == first {
		t.Fatalf("RotateTokenFile: %q, %v", second, err)
	}
	now = now.Add(1100 * time.Millisecond)
	if a.Authorized(bearer(first)) {
		t.Error("the old token still works after the rotation")
	}
	if !a.Authorized(bearer(second)) {
		t.Error("the new token does not work")
	}
	if a.Authorized(withCookie(session)) {
		t.Error("a session of the old token survived the rotation")
	}

	// A damaged file is not silently replaced, and a running server keeps
	// the last good token.
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateTokenFile(path); err == nil || !strings.Contains(err.Error(), "rotate-token") {
		t.Errorf("CreateTokenFile on a damaged file: %v; want an error saying what to do", err)
	}
	now = now.Add(2 * time.Second)
	if !a.Authorized(bearer(second)) {
		t.Error("a damaged file locked the admin out")
	}
}

func TestSessions(t *testing.T) {
	s := NewSessions(time.Minute, time.Hour)
	now := time.Unix(1_800_000_000, 0)
	a, err := s.Start(now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Start(now)
	if a == b || len(a) != 43 {
		t.Fatalf("session ids %q and %q: want two different 32-byte ids", a, b)
	}
	if !s.Valid(a, now.Add(59*time.Second)) {
		t.Error("a session ended before its idle timeout")
	}
	if s.Valid(b, now.Add(time.Minute)) {
		t.Error("a session outlived its idle timeout")
	}
	s.End(a)
	if s.Valid(a, now.Add(time.Minute)) {
		t.Error("an ended session is valid")
	}
	if s.Valid("", now) || s.Valid("unknown", now) {
		t.Error("an unknown id is valid")
	}
	c, _ := s.Start(now)
	s.Clear()
	if s.Valid(c, now) || s.Len() != 0 {
		t.Error("Clear left a session")
	}
}

func TestSessionsBounded(t *testing.T) {
	s := NewSessions(time.Hour, time.Hour)
	now := time.Unix(1_800_000_000, 0)
	first, _ := s.Start(now)
	for i := 1; i < MaxSessions+5; i++ {
		if _, err := s.Start(now.Add(time.Duration(i) * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() != MaxSessions {
		t.Errorf("%d sessions kept, want %d", s.Len(), MaxSessions)
	}
	if s.Valid(first, now.Add(time.Second)) {
		t.Error("the session used longest ago survived the bound")
	}
}
