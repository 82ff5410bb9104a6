package adminauth

import (
	"net/http/httptest"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := NewLimiter(3)
	now := time.Unix(1_700_000_000, 0)
	a := httptest.NewRequest("GET", "/", nil)
	a.RemoteAddr = "192.0.2.1:4000"
	a2 := httptest.NewRequest("GET", "/", nil)
	a2.RemoteAddr = "192.0.2.1:4001" // same address, other port
	b := httptest.NewRequest("GET", "/", nil)
	b.RemoteAddr = "[2001:db8:1:2::5]:4000"
	b2 := httptest.NewRequest("GET", "/", nil)
	b2.RemoteAddr = "[2001:db8:1:2:ffff::9]:4000" // same /64
	for i := 0; i < 3; i++ {
		if ok, _ := l.Fail(a, now); !ok {
			t.Fatalf("failure %d refused", i+1)
		}
	}
	if blocked, _ := l.Blocked(a2, now); !blocked {
		t.Error("the same address on another port is not blocked")
	}
	ok, wait := l.Fail(a, now)
	if ok || wait <= 0 || wait > 20*time.Second {
		t.Errorf("fourth failure: ok=%v wait=%v; want refused with a wait of at most 20 s", ok, wait)
	}
	if blocked, _ := l.Blocked(b, now); blocked {
		t.Error("another address is blocked")
	}
	for i := 0; i < 3; i++ {
		l.Fail(b, now)
	}
	if blocked, _ := l.Blocked(b2, now); !blocked {
		t.Error("another address of the same IPv6 /64 is not blocked")
	}
	if blocked, _ := l.Blocked(a, now.Add(20*time.Second)); blocked {
		t.Error("no try regained after 20 s at 3 per minute")
	}
	var none *Limiter
	if ok, _ := none.Fail(a, now); !ok {
		t.Error("a nil Limiter refused")
	}
	if NewLimiter(0) != nil {
		t.Error("NewLimiter(0) is not nil")
	}
}
