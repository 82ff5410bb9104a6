package app

import (
	"net"
	"net/netip"
	"sync"

	"github.com/portrait-dev/portrait/adminauth"
)

// perClientListener closes at once every connection of a client address
// (IPv6: its /64) that already holds max open ones, so that one client
// cannot take all the server's file descriptors with slow connections.
type perClientListener struct {
	net.Listener
	max      int
	onRefuse func(key netip.Prefix) // told of every connection closed at once

	mu   sync.Mutex
	open map[netip.Prefix]int
}

// limitPerClient wraps ln; max ≤ 0 returns ln unchanged. onRefuse (may be
// nil) is told of every connection closed for being over the limit.
func limitPerClient(ln net.Listener, max int, onRefuse func(netip.Prefix)) net.Listener {
	if max <= 0 {
		return ln
	}
	if onRefuse == nil {
		onRefuse = func(netip.Prefix) {}
	}
	return &perClientListener{Listener: ln, max: max, onRefuse: onRefuse, open: map[netip.Prefix]int{}}
}

// Accept returns the next connection of a client under its limit.
func (l *perClientListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := adminauth.AddrKey(c.RemoteAddr().String())
		l.mu.Lock()
		if l.open[key] >= l.max {
			l.mu.Unlock()
			_ = c.Close()
			l.onRefuse(key)
			continue
		}
		l.open[key]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(key) }}, nil
	}
}

func (l *perClientListener) release(key netip.Prefix) {
	l.mu.Lock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
	l.mu.Unlock()
}

// countedConn gives its slot back when it is closed.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
