package adminauth

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Limiter counts failed authentications per client address (IPv6 by /64,
// since one client holds a whole /64): each address may fail perMinute
// times in a row, and regains one try every 60/perMinute seconds. An
// address that has used its tries gets 429 for requests that would fail,
// while requests with valid credentials are still served, so nobody can lock
// the rightful owner out and nobody can enumerate instances or guess tokens
// at speed. A nil Limiter limits nothing.
type Limiter struct {
	rate  float64 // tries regained per second
	burst float64

	mu      sync.Mutex
	buckets map[netip.Prefix]*tries
}

type tries struct {
	left float64
	last time.Time
}

// NewLimiter returns a Limiter allowing perMinute failures per address;
// perMinute ≤ 0 returns nil (no limit).
func NewLimiter(perMinute int) *Limiter {
	if perMinute <= 0 {
		return nil
	}
	return &Limiter{rate: float64(perMinute) / 60, burst: float64(perMinute), buckets: map[netip.Prefix]*tries{}}
}

// ClientKey is the address r came from, as the Limiter counts it: the
// IPv4 address, or the /64 of an IPv6 address.
func ClientKey(r *http.Request) netip.Prefix { return AddrKey(r.RemoteAddr) }

// AddrKey is ClientKey for a remote address as net.Conn and http.Request
// give it ("host:port").
func AddrKey(remote string) netip.Prefix {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// refill brings b up to date; the caller holds l.mu.
func (l *Limiter) refill(b *tries, now time.Time) {
	if el := now.Sub(b.last); el > 0 {
		b.left = math.Min(l.burst, b.left+el.Seconds()*l.rate)
		b.last = now
	}
}

// Blocked reports whether r's address has no tries left, and when it gets
// the next one.
func (l *Limiter) Blocked(r *http.Request, now time.Time) (bool, time.Duration) {
	if l == nil {
		return false, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[ClientKey(r)]
	if !ok {
		return false, 0
	}
	l.refill(b, now)
	if b.left >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - b.left) / l.rate * float64(time.Second))
}

// Fail records a failed authentication from r's address. It returns false,
// with the wait, when the address had no tries left: the caller answers 429
// instead of the failure.
func (l *Limiter) Fail(r *http.Request, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	key := ClientKey(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxTracked {
			l.sweep(now)
		}
		b = &tries{left: l.burst, last: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	if b.left < 1 {
		return false, time.Duration((1 - b.left) / l.rate * float64(time.Second))
	}
	b.left--
	return true, 0
}

// maxTracked bounds the addresses remembered; past it, addresses whose tries
// are full again are forgotten.
const maxTracked = 100_000

// sweep forgets addresses that have all their tries back; the caller holds
// l.mu.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.left >= l.burst {
			delete(l.buckets, k)
		}
	}
}
