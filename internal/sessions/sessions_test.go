package sessions

import (
	"errors"
	"testing"
	"time"
)

type fake struct {
	r      *Registry[*fake]
	closed int
}

func (f *fake) Close() error {
	f.closed++
	f.r.Forget(1, f)
	return nil
}

func TestRegistry(t *testing.T) {
	var r Registry[*fake]
	a, err := r.Open(1, func() *fake { return &fake{r: &r} })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open(1, func() *fake { t.Fatal("started a second session"); return nil }); !errors.Is(err, ErrAlreadyOpen) {
		t.Fatalf("second Open = %v, want ErrAlreadyOpen", err)
	}
	if got, ok := r.Get(1); !ok || got != a {
		t.Fatalf("Get = %v, %t", got, ok)
	}
	_ = a.Close()
	if _, ok := r.Get(1); ok {
		t.Fatal("a closed session is still registered")
	}
	b, err := r.Open(1, func() *fake { return &fake{r: &r} })
	if err != nil {
		t.Fatal(err)
	}
	r.Forget(1, a) // a stale session must not drop its successor
	if got, _ := r.Get(1); got != b {
		t.Fatal("Forget of a stale session dropped the open one")
	}
	r.CloseAll()
	if b.closed != 1 {
		t.Fatalf("CloseAll closed the session %d times", b.closed)
	}
	if _, err := r.Open(2, func() *fake { t.Fatal("started after CloseAll"); return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Open after CloseAll = %v, want ErrClosed", err)
	}

	own := errors.New("engine: session closed")
	r2 := Registry[*fake]{Closed: own}
	r2.CloseAll()
	if _, err := r2.Open(1, func() *fake { t.Fatal("started after CloseAll"); return nil }); err != own {
		t.Fatalf("Open after CloseAll = %v, want the engine's own error", err)
	}
}

func TestBackoffBounds(t *testing.T) {
	lo, hi := time.Second, 2*time.Minute
	for n := 1; n < 40; n++ {
		if d := Backoff(lo, hi, n); d < lo || d > hi {
			t.Fatalf("Backoff(%d) = %v, outside [%v, %v]", n, d, lo, hi)
		}
	}
	if d := Backoff(lo, hi, 1); d > lo*5/4 {
		t.Fatalf("Backoff(1) = %v, want about %v", d, lo)
	}
	if d := Backoff(lo, hi, 30); d < 90*time.Second {
		t.Fatalf("Backoff(30) = %v, want near the maximum", d)
	}
}
