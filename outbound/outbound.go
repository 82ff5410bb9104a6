// Package outbound makes HTTP requests to addresses that users give
// portrait (webhook receivers, picture URLs) without letting them reach the
// networks portrait itself sits in: every connection, redirects included,
// is checked at dial time against the address it really goes to, so a
// hostname that resolves to an internal address is refused as well as a
// literal one, and an IPv6 address that embeds an IPv4 one is judged by the
// IPv4 address.
package outbound

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// ErrForbiddenAddress is the error of a request whose host resolves to a
// loopback, private, link-local or otherwise internal address that the
// configuration does not allow.
var ErrForbiddenAddress = errors.New("address is not public")

// Guard decides which addresses outbound requests may reach.
type Guard struct {
	allow   []netip.Prefix
	setting string
}

// NewGuard returns a Guard that refuses every address that is not public
// internet unicast, except those in allow. setting names the configuration
// setting that sets allow, for the error message.
func NewGuard(allow []netip.Prefix, setting string) *Guard {
	return &Guard{allow: allow, setting: setting}
}

// Check returns nil when ip may be reached, else ErrForbiddenAddress.
func (g *Guard) Check(ip netip.Addr) error {
	ip = ip.Unmap()
	for _, p := range g.allow {
		if p.Contains(ip) {
			return nil
		}
	}
	if !Public(ip) {
		if g.setting != "" {
			return fmt.Errorf("%w: %s (allow it with %s)", ErrForbiddenAddress, ip, g.setting)
		}
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, ip)
	}
	return nil
}

// control is the dialer's check of the address a connection goes to.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
	}
	return g.Check(ap.Addr())
}

// Client returns an HTTP client whose every connection is checked by g,
// with timeout bounding a whole request (0: none), no proxy (it would hide
// the real destination from the check) and at most maxRedirects redirects,
// to http and https only.
func (g *Guard) Client(timeout time.Duration, maxRedirects int) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: g.control}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: timeout,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to a %s: URL", req.URL.Scheme)
			}
			return nil
		},
	}
}

// Public reports whether ip is a globally routable unicast address. An
// IPv6 address that embeds an IPv4 address (IPv4-mapped and -compatible,
// NAT64, 6to4, Teredo) is public only when the embedded address is.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsMulticast() || ip.IsUnspecified() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range reserved {
		if p.Contains(ip) {
			return false
		}
	}
	for _, v4 := range embeddedIPv4(ip) {
		if !Public(v4) {
			return false
		}
	}
	return true
}

// reserved are further ranges that are not the public internet.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64: translated by the local network
}

// The IPv6 ranges whose addresses carry an IPv4 address.
var (
	compatible = netip.MustParsePrefix("::/96")        // IPv4-compatible (deprecated): ::a.b.c.d
	nat64      = netip.MustParsePrefix("64:ff9b::/96") // well-known NAT64 prefix: last 32 bits
	sixToFour  = netip.MustParsePrefix("2002::/16")    // 6to4: bits 16–47
	teredo     = netip.MustParsePrefix("2001:0::/32")  // Teredo: server in bits 32–63, client inverted in the last 32
	v4         = func(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b)) }
)

// embeddedIPv4 returns the IPv4 addresses an IPv6 address carries.
func embeddedIPv4(ip netip.Addr) []netip.Addr {
	if !ip.Is6() {
		return nil
	}
	b := ip.As16()
	switch {
	case compatible.Contains(ip):
		return []netip.Addr{v4(b[12:16])}
	case nat64.Contains(ip):
		return []netip.Addr{v4(b[12:16])}
	case sixToFour.Contains(ip):
		return []netip.Addr{v4(b[2:6])}
	case teredo.Contains(ip):
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return []netip.Addr{v4(b[4:8]), netip.AddrFrom4(client)}
	}
	return nil
}

// RedactURL returns raw as it may be logged: scheme, host and path only,
// without user information, query or fragment (which may hold secrets
// such as "?apikey=…").
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// RedactError returns err as it may be logged: the error of an HTTP client
// names the whole URL; this one names the redacted URL.
func RedactError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: ue.Err}
	}
	return err
}
