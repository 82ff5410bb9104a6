package picfetch

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
)

func TestHostAllowed(t *testing.T) {
	allowed := []string{"oneme.ru", "127.0.0.1:8443"}
	for _, tc := range []struct {
		host, port string
		want       bool
	}{
		{"oneme.ru", "", true},
		{"oneme.ru", "443", true},
		{"i.oneme.ru", "", true},
		{"i.oneme.ru", "443", true},
		{"I.ONEME.RU", "", true},
		{"i.oneme.ru.", "", true},
		{"I.ONEME.RU.", "", true},
		{"evil-oneme.ru", "", false},
		{"xoneme.ru", "", false},
		{"oneme.ru.evil.com", "", false},
		{"oneme.ru", "8080", false},
		{"i.oneme.ru", "8443", false},
		{"127.0.0.1", "8443", true},
		{"127.0.0.1", "", false},
		{"127.0.0.1", "443", false},
		{"127.0.0.1", "9443", false},
		{"", "", false},
	} {
		if got := HostAllowed(allowed, tc.host, tc.port); got != tc.want {
			t.Errorf("HostAllowed(%q, %q) = %v, want %v", tc.host, tc.port, got, tc.want)
		}
	}
}

// FuzzHostAllowed: no host outside the allowed ones is accepted.
func FuzzHostAllowed(f *testing.F) {
	f.Add("i.oneme.ru", "")
	f.Add("oneme.ru.evil", "443")
	f.Fuzz(func(t *testing.T, host, port string) {
		if HostAllowed([]string{"oneme.ru"}, host, port) {
			h := strings.ToLower(strings.TrimSuffix(host, "."))
			if port != "" && port != "443" {
				t.Fatalf("accepted port %q", port)
			}
			if h != "oneme.ru" && !strings.HasSuffix(h, ".oneme.ru") {
				t.Fatalf("accepted %q", host)
			}
		}
	})
}

var errBig = errors.New("too large")

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			if r.Header.Get("User-Agent") != "test-agent" {
				w.WriteHeader(http.StatusTeapot)
			}
			w.Write([]byte("picture"))
		case "/big":
			w.Write(bytes.Repeat([]byte("x"), 100))
		case "/empty":
		case "/slow":
			time.Sleep(300 * time.Millisecond)
			w.Write([]byte("late"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	get := func(path string) ([]byte, error) {
		u, _ := url.Parse(srv.URL + path + "?signature=secret")
		return Get(context.Background(), Request{Client: srv.Client(), URL: u, Timeout: 100 * time.Millisecond, Max: 50,
			TooLarge: errBig, Header: http.Header{"User-Agent": {"test-agent"}}})
	}
	if b, err := get("/ok"); err != nil || string(b) != "picture" {
		t.Errorf("/ok: %q, %v", b, err)
	}
	for path, check := range map[string]func(error) bool{
		"/big":     func(err error) bool { return errors.Is(err, errBig) },
		"/empty":   func(err error) bool { return err != nil && strings.Contains(err.Error(), "empty") },
		"/missing": func(err error) bool { return err != nil && strings.Contains(err.Error(), "404") },
		"/slow":    func(err error) bool { return errors.Is(err, portrait.ErrUpstreamTimeout) },
	} {
		_, err := get(path)
		if !check(err) {
			t.Errorf("%s: %v", path, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the address: %v", path, err)
		}
	}
}

func TestCheckURL(t *testing.T) {
	refused := errors.New("refused")
	allowed := []string{"okcdn.ru", "127.0.0.1:8443"}
	for _, tc := range []struct {
		raw, err string // err: "" when allowed, else what the error names
	}{
		{"https://i.okcdn.ru/p.jpg?sig=secret", ""},
		{"https://127.0.0.1:8443/p.jpg", ""},
		{"http://i.okcdn.ru/p.jpg?sig=secret", "refused: http://i.okcdn.ru"},
		{"https://user:pw@i.okcdn.ru/p.jpg", "refused: https://i.okcdn.ru"}, // credentials never named
		{"https://evil.example/p.jpg?sig=secret", "refused: https://evil.example"},
		{"https://okcdn.ru.evil.example/p.jpg", "refused: https://okcdn.ru.evil.example"},
		{"https://i.okcdn.ru:8443/p.jpg", "refused: https://i.okcdn.ru:8443"},
		{"://bad", "refused: unparsable address"},
	} {
		u, err := CheckURL(allowed, tc.raw, refused)
		switch {
		case tc.err == "" && (err != nil || u == nil):
			t.Errorf("CheckURL(%q) = %v, want it allowed", tc.raw, err)
		case tc.err != "" && (!errors.Is(err, refused) || err.Error() != tc.err):
			// The exact messages also prove that no query or
			// credentials are named.
			t.Errorf("CheckURL(%q) = %v, want %q wrapping the engine's error", tc.raw, err, tc.err)
		}
	}
}
