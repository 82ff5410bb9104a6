package greenapi

import (
	"strings"
	"testing"
)

func TestParseFileURL(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{"https://example.com/a.jpg", ""},
		{"http://127.0.0.1:8080/p?x=1", ""},
		{"  https://example.com/a.jpg  ", ""},
		{"", "empty"},
		{"ftp://example.com/a.jpg", "http:// or https://"},
		{"file:///etc/passwd", "http:// or https://"},
		{"https:///nohost", "no host"},
		{"https://user:pw@example.com/a.jpg", "user name"},
		{"https://example.com/" + strings.Repeat("a", 3000), "longer than"},
		{"::::", "not a URL"},
	} {
		_, err := parseFileURL(tc.in)
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("parseFileURL(%q) = %v, want %q", tc.in, err, tc.err)
		}
	}
}

// FuzzParseFileURL: whatever urlFile holds, the check does not panic, and
// what it accepts is http(s) with a host and no user information.
func FuzzParseFileURL(f *testing.F) {
	for _, s := range []string{"https://example.com/a.jpg", "http://[::1]:80/x", "https://u@h/", "javascript:alert(1)", "http://%41/", "https://h/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := parseFileURL(raw)
		if err != nil {
			return
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil || len(strings.TrimSpace(raw)) > maxURLLength {
			t.Fatalf("accepted %q as %v", raw, u)
		}
	})
}
