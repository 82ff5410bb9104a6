package sessions

import (
	"errors"
	"testing"
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
}
