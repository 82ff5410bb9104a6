package notify

import (
	"errors"
	"net/netip"
	"testing"
)

func TestPublicAddresses(t *testing.T) {
	for addr, want := range map[string]bool{
		"93.184.215.14":   true,
		"8.8.8.8":         true,
		"2606:4700::1111": true,
		"127.0.0.1":       false,
		"127.8.9.10":      false,
		"::1":             false,
		"10.1.2.3":        false,
		"172.16.0.1":      false,
		"172.31.255.255":  false,
		"172.32.0.1":      true,
		"192.168.1.1":     false,
		"169.254.169.254": false, // cloud metadata
		"fe80::1":         false,
		"fc00::1":         false,
		"fd12:3456::1":    false,
		"100.64.0.1":      false,
		"0.0.0.0":         false,
		"::":              false,
		"224.0.0.1":       false,
		"255.255.255.255": false,
		"192.0.2.10":      false,
		"198.18.0.1":      false,
		"64:ff9b::a00:1":  false, // NAT64 of 10.0.0.1
		"::ffff:10.0.0.1": false, // IPv4-mapped private
		"::ffff:8.8.8.8":  true,
	} {
		if got := public(netip.MustParseAddr(addr).Unmap()); got != want {
			t.Errorf("public(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestDialControl(t *testing.T) {
	c := newWebhookClient(0, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.9.0.0/16")})
	for addr, ok := range map[string]bool{
		"127.0.0.1:80":       true,
		"10.9.1.1:443":       true,
		"10.8.1.1:443":       false,
		"[::1]:80":           false,
		"169.254.169.254:80": false,
		"93.184.215.14:443":  true,
		"not-an-address":     false,
	} {
		err := c.control("tcp", addr, nil)
		if (err == nil) != ok {
			t.Errorf("control(%s) = %v, want allowed %v", addr, err, ok)
		}
		if err != nil && !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("control(%s) = %v, want ErrForbiddenAddress", addr, err)
		}
	}
}
