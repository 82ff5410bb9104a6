package app

import (
	"context"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLimitPerClient: a client address holds at most max connections; the
// next one is closed at once, and a slot comes back when one closes.
func TestLimitPerClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int32
	l := limitPerClient(ln, 2, func(netip.Prefix) { refused.Add(1) })
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := dial(), dial()
	defer a.Close()
	defer b.Close()
	srvA, srvB := <-accepted, <-accepted
	third := dial()
	defer third.Close()
	third.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := third.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("third connection: read %v, want EOF (closed by the server)", err)
	}
	select {
	case c := <-accepted:
		t.Fatalf("the third connection was accepted: %v", c.RemoteAddr())
	default:
	}
	if n := refused.Load(); n != 1 {
		t.Errorf("%d refusals reported, want 1", n)
	}
	srvA.Close()
	fourth := dial()
	defer fourth.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("no slot came back after a connection closed")
	}
	srvB.Close()
}

// TestReadyFailsWithoutDisk: readiness fails, saying why, when the data
// directory does not accept a write.
func TestReadyFailsWithoutDisk(t *testing.T) {
	dir := t.TempDir()
	d, err := openData(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.db.Close()
	if err := ready(context.Background(), d); err != nil {
		t.Fatalf("a writable data directory: %v", err)
	}
	d.disk = filepath.Join(dir, "portrait.db", "not-a-directory") // a file's child: no write can succeed
	if err := ready(context.Background(), d); err == nil || !strings.Contains(err.Error(), "data directory does not accept writes") {
		t.Errorf("an unwritable data directory: %v", err)
	}
}
