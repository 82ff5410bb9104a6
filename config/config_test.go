package config

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the settings table in docs/configuration.md")

const (
	beginTable = "<!-- settings table: generated from config.Settings; go test ./config -update -->\n"
	endTable   = "<!-- end of settings table -->"
)

// TestReferenceIsTrue keeps docs/configuration.md's table equal to the
// settings the program has.
func TestReferenceIsTrue(t *testing.T) {
	path := "../docs/configuration.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(doc, []byte(beginTable)), bytes.Index(doc, []byte(endTable))
	if i < 0 || j < i {
		t.Fatalf("%s has no generated settings table between %q and %q", path, beginTable, endTable)
	}
	want := Markdown()
	if got := string(doc[i+len(beginTable) : j]); got != want {
		if *update {
			out := append(append(append([]byte{}, doc[:i+len(beginTable)]...), want...), doc[j:]...)
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("%s is out of date; run go test ./config -update", path)
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Parse(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8780" || c.DataDir != "./portrait-data" || c.PublicURL != "http://127.0.0.1:8780" ||
		c.CacheTTL != 10*time.Minute || c.MaxUploadBytes != 32<<20 || c.MaxPixels != 60_000_000 || c.MaxDecoders < 1 ||
		c.RateLimits != nil || !c.SandboxFaults || c.SandboxPictureCooldown != 10*time.Second || c.WebhookRetention != 24*time.Hour ||
		c.WebhookBackoffMax != time.Minute || c.AdminToken != "" || c.Decoders != "auto" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestPrecedence(t *testing.T) {
	e := env(map[string]string{"PORTRAIT_LISTEN": "0.0.0.0:9000", "PORTRAIT_CACHE_TTL": "1m", "PORTRAIT_DATA_DIR": "/srv/p"})
	c, err := Parse([]string{"--cache-ttl", "2m"}, e, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:9000" || c.CacheTTL != 2*time.Minute || c.DataDir != "/srv/p" {
		t.Errorf("flag > env > default broken: %+v", c)
	}
	if c.PublicURL != "http://localhost:9000" {
		t.Errorf("a wildcard listen address gives public URL %q", c.PublicURL)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		msg  string
	}{
		{[]string{"--listen", "nonsense"}, nil, "not host:port"},
		{[]string{"--public-url", "ftp://x"}, nil, "absolute http"},
		{[]string{"--cache-ttl", "soon"}, nil, "duration"},
		{[]string{"--max-pixels", "-1"}, nil, "≥ 1"},
		{nil, map[string]string{"PORTRAIT_LOG_LEVEL": "loud"}, "PORTRAIT_LOG_LEVEL"},
		{[]string{"--rate-limits", "getAvatar"}, nil, "method=requests-per-second"},
		{[]string{"--webhook-allow", "localhost"}, nil, "address range"},
		{[]string{"--sandbox-faults", "maybe"}, nil, "true or false"},
		{[]string{"--decoders", "native"}, nil, "auto, system or builtin"},
		{[]string{"--lease-ttl", "100ms"}, nil, "at least 1s"},
		{[]string{"extra"}, nil, "unexpected argument"},
	} {
		_, err := Parse(tc.args, env(tc.env), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v %v: %v, want %q", tc.args, tc.env, err, tc.msg)
		}
	}
}

func TestParseRateLimits(t *testing.T) {
	for in, want := range map[string]map[string]float64{
		"getAvatar=10,setProfilePicture=0.1": {"getAvatar": 10, "setProfilePicture": 0.1},
		" getAvatar = 5 , ":                  {"getAvatar": 5},
		"off":                                {"*": 0},
		"*=0":                                {"*": 0},
	} {
		got, err := ParseRateLimits(in)
		if err != nil || len(got) != len(want) {
			t.Errorf("%q: %v, %v", in, got, err)
			continue
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%q: %s = %v, want %v", in, k, got[k], v)
			}
		}
	}
	for _, bad := range []string{"getAvatar", "=3", "getAvatar=-1", "getAvatar=x"} {
		if _, err := ParseRateLimits(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestWebhookAllow(t *testing.T) {
	c, err := Parse([]string{"--webhook-allow", "127.0.0.0/8, 10.1.2.3,::1"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("::1/128")}
	if len(c.WebhookAllow) != len(want) {
		t.Fatalf("%v", c.WebhookAllow)
	}
	for i := range want {
		if c.WebhookAllow[i] != want[i] {
			t.Errorf("%v, want %v", c.WebhookAllow, want)
		}
	}
}
