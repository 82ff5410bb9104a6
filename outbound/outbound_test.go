package outbound

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestPublic(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"93.184.215.14", true},
		{"8.8.8.8", true},
		{"2606:4700::1111", true},
		{"127.0.0.1", false},
		{"127.8.9.10", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"172.32.0.1", true},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"fe80::1", false},
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
		{"192.0.2.10", false},
		{"198.18.0.1", false},
		{"2001:db8::1", false},
		// IPv6 addresses that embed an IPv4 one are judged by it.
		{"::ffff:10.0.0.1", false}, // IPv4-mapped
		{"::ffff:8.8.8.8", true},
		{"::127.0.0.1", false}, // IPv4-compatible
		{"::10.0.0.1", false},
		{"::8.8.8.8", true},
		{"64:ff9b::a00:1", false}, // NAT64 of 10.0.0.1
		{"64:ff9b::7f00:1", false},
		{"64:ff9b::808:808", true},
		{"64:ff9b:1::808:808", false}, // local-use NAT64
		{"2002:7f00:1::1", false},     // 6to4 of 127.0.0.1
		{"2002:a9fe:a9fe::1", false},
		{"2002:808:808::1", true},
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", false}, // Teredo, client 127.0.0.1
		{"2001:0:a00:1::f7f7:f7f7", false},              // Teredo, server 10.0.0.1
		{"2001:0:4136:e378::f7f7:f7f7", true},           // Teredo, client 8.8.8.8
	} {
		if got := Public(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Public(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestDialControl(t *testing.T) {
	g := NewGuard([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.9.0.0/16")}, "PORTRAIT_WEBHOOK_ALLOW")
	for addr, ok := range map[string]bool{
		"127.0.0.1:80":       true,
		"10.9.1.1:443":       true,
		"10.8.1.1:443":       false,
		"[::1]:80":           false,
		"[::127.0.0.1]:80":   false,
		"[2002:a00:1::]:80":  false,
		"169.254.169.254:80": false,
		"93.184.215.14:443":  true,
		"not-an-address":     false,
	} {
		err := g.control("tcp", addr, nil)
		if (err == nil) != ok {
			t.Errorf("control(%s) = %v, want allowed %v", addr, err, ok)
		}
		if err != nil && !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("control(%s) = %v, want ErrForbiddenAddress", addr, err)
		}
		if err != nil && addr != "not-an-address" && !strings.Contains(err.Error(), "PORTRAIT_WEBHOOK_ALLOW") {
			t.Errorf("control(%s) = %v: the message should name the setting", addr, err)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.example.com/in?apikey=s3cret#x": "https://hooks.example.com/in",
		"http://user:pw@example.com:8080/a/b?token=1":  "http://example.com:8080/a/b",
		"::not a url": "(unparsable URL)",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	err := fmt.Errorf("webhook: %w", &url.Error{Op: "Post", URL: "https://x.example/h?apikey=s3cret", Err: errors.New("connection refused")})
	if got := RedactError(err).Error(); strings.Contains(got, "s3cret") || !strings.Contains(got, "connection refused") {
		t.Errorf("RedactError: %q", got)
	}
}
