package greenapi

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		rate      float64
		burst     int           // requests that pass at once
		wait      time.Duration // then, the wait for the next token
		remaining []int         // X-RateLimit-Remaining after each passing request
	}{
		{rate: 10, burst: 10, wait: 100 * time.Millisecond, remaining: []int{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
		{rate: 1, burst: 1, wait: time.Second, remaining: []int{0}},
		{rate: 0.1, burst: 1, wait: 10 * time.Second, remaining: []int{0}},
		{rate: 2.5, burst: 3, wait: 400 * time.Millisecond, remaining: []int{2, 1, 0}},
	} {
		b := newBucket(tc.rate, t0)
		for i := 0; i < tc.burst; i++ {
			ok, rem, _ := b.take(t0)
			if !ok || rem != tc.remaining[i] {
				t.Fatalf("rate %v request %d: ok %v remaining %d, want true %d", tc.rate, i, ok, rem, tc.remaining[i])
			}
		}
		ok, rem, wait := b.take(t0)
		if ok || rem != 0 || wait != tc.wait {
			t.Errorf("rate %v over the burst: ok %v remaining %d wait %v, want false 0 %v", tc.rate, ok, rem, wait, tc.wait)
		}
		// After the wait one request passes, and not two.
		if ok, _, _ := b.take(t0.Add(tc.wait)); !ok {
			t.Errorf("rate %v: refused after waiting %v", tc.rate, tc.wait)
		}
		if ok, _, _ := b.take(t0.Add(tc.wait)); ok {
			t.Errorf("rate %v: two requests passed after one wait", tc.rate)
		}
		// A long pause refills only up to the burst.
		later := t0.Add(time.Hour)
		for i := 0; i < tc.burst; i++ {
			if ok, _, _ := b.take(later); !ok {
				t.Fatalf("rate %v: refused within the refilled burst", tc.rate)
			}
		}
		if ok, _, _ := b.take(later); ok {
			t.Errorf("rate %v: the bucket refilled past its burst", tc.rate)
		}
	}
}

func TestLimiterPerInstanceAndMethod(t *testing.T) {
	l := limiter{rates: map[string]float64{"getAvatar": 1, "qr": 0}}
	now := time.Unix(1000, 0)
	h := map[string]string{}
	set := func(k, v string) { h[k] = v }
	if ok, _ := l.allow(1, "getAvatar", now, set); !ok || h["X-RateLimit-Replenish-Rate"] != "1" || h["X-RateLimit-Remaining"] != "0" {
		t.Fatalf("first: %v %v", ok, h)
	}
	if ok, wait := l.allow(1, "getAvatar", now, set); ok || wait != time.Second {
		t.Errorf("second: %v %v", ok, wait)
	}
	if ok, _ := l.allow(2, "getAvatar", now, set); !ok {
		t.Error("another instance shares the bucket")
	}
	h = map[string]string{}
	for i := 0; i < 100; i++ {
		if ok, _ := l.allow(1, "qr", now, set); !ok {
			t.Fatal("an unlimited method was limited")
		}
	}
	if len(h) != 0 {
		t.Errorf("an unlimited method set headers: %v", h)
	}
	l.forget(1)
	if ok, _ := l.allow(1, "getAvatar", now, set); !ok {
		t.Error("forget kept the instance's bucket")
	}
}
