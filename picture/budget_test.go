package picture

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"runtime"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBudgetAdmitsWaitsAndReleases(t *testing.T) {
	b := NewBudget(100)
	ctx := context.Background()
	r1, err := b.acquire(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := b.acquire(ctx, 40)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.InUse(); got != 100 {
		t.Fatalf("in use %d, want 100", got)
	}
	// 30 does not fit: it waits until 60 are given back.
	got := make(chan func(), 1)
	go func() {
		r, err := b.acquire(ctx, 30)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	waitFor(t, "a waiter", func() bool { return b.Waiting() == 1 })
	select {
	case <-got:
		t.Fatal("admitted while the budget was full")
	case <-time.After(20 * time.Millisecond):
	}
	r1()
	r1() // a second call gives nothing back
	r3 := <-got
	if got := b.InUse(); got != 70 {
		t.Fatalf("in use %d, want 40+30", got)
	}
	r2()
	r3()
	if got := b.InUse(); got != 0 {
		t.Fatalf("in use %d after all releases", got)
	}
}

// TestBudgetFirstComeFirstServed: a large request is not starved by
// small ones that arrive after it.
func TestBudgetFirstComeFirstServed(t *testing.T) {
	b := NewBudget(100)
	ctx := context.Background()
	hold, _ := b.acquire(ctx, 50)
	var mu sync.Mutex
	var order []int64
	var wg sync.WaitGroup
	start := func(n int64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := b.acquire(ctx, n)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, n)
			mu.Unlock()
			r()
		}()
	}
	start(80) // does not fit beside the 50 held
	waitFor(t, "the large waiter", func() bool { return b.Waiting() == 1 })
	start(30) // would fit beside the 50, but must queue behind 80
	waitFor(t, "the small waiter", func() bool { return b.Waiting() == 2 })
	if b.InUse() != 50 {
		t.Fatalf("in use %d, want 50: the small request overtook", b.InUse())
	}
	hold()
	wg.Wait()
	if len(order) != 2 || order[0] != 80 {
		t.Fatalf("admitted in order %v, want 80 first", order)
	}
}

func TestBudgetContext(t *testing.T) {
	b := NewBudget(100)
	hold, _ := b.acquire(context.Background(), 100)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := b.acquire(ctx, 10)
	if !errors.Is(err, ErrBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want ErrBusy and DeadlineExceeded", err)
	}
	if b.Waiting() != 0 {
		t.Fatalf("%d waiters left after the context ended", b.Waiting())
	}
	hold()
	if b.InUse() != 0 {
		t.Fatalf("in use %d", b.InUse())
	}
	// A cancelled waiter at the head lets the ones behind it in.
	hold, _ = b.acquire(context.Background(), 60)
	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := b.acquire(ctx, 90); errc <- err }()
	waitFor(t, "the large waiter", func() bool { return b.Waiting() == 1 })
	small := make(chan func(), 1)
	go func() { r, _ := b.acquire(context.Background(), 30); small <- r }()
	waitFor(t, "the small waiter", func() bool { return b.Waiting() == 2 })
	cancel()
	if err := <-errc; !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
	(<-small)()
	hold()
	if b.InUse() != 0 {
		t.Fatalf("in use %d", b.InUse())
	}
}

func TestProcessBudget(t *testing.T) {
	data := encodeJPEGTest(t, photo(1600, 1200), 85)
	_, need, err := Estimate(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	// Over the whole budget: refused at once, with nothing held.
	small := NewBudget(need - 1)
	_, err = Process(data, Limits{Budget: small})
	matchesExactly(t, err, ErrOverBudget)
	// Exactly fits: admitted, and everything is given back.
	b := NewBudget(need)
	if _, err := Process(data, Limits{Budget: b}); err != nil {
		t.Fatal(err)
	}
	if b.InUse() != 0 {
		t.Fatalf("in use %d after Process", b.InUse())
	}
	// While another decode holds the budget, Process waits; with a
	// deadline it gives up with ErrBusy.
	hold, _ := b.acquire(context.Background(), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = ProcessContext(ctx, data, Limits{Budget: b})
	matchesExactly(t, err, ErrBusy)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap the context's", err)
	}
	done := make(chan error, 1)
	go func() { _, err := Process(data, Limits{Budget: b}); done <- err }()
	waitFor(t, "Process to wait", func() bool { return b.Waiting() == 1 })
	hold()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b.InUse() != 0 {
		t.Fatalf("in use %d after Process", b.InUse())
	}
	// A corrupt picture gives its bytes back too.
	_, err = Process(data[:len(data)/3], Limits{Budget: b})
	if err == nil {
		t.Fatal("a truncated JPEG was accepted")
	}
	if b.InUse() != 0 {
		t.Fatalf("in use %d after a failed Process", b.InUse())
	}
}

// TestEstimateFromHeader checks the estimates of the pictures in the
// issue: a 7700×7700 PNG, 8-bit and 16-bit RGBA, from the header alone.
func TestEstimateFromHeader(t *testing.T) {
	const side = 7700
	for _, c := range []struct {
		depth, ctype byte
		perPixel     int64
	}{
		{8, 6, 4},  // RGBA → image.NRGBA
		{16, 6, 8}, // RGBA64 → image.NRGBA64
		{8, 2, 4},  // RGB → image.RGBA
		{8, 0, 1},  // grey
	} {
		_, got, err := Estimate(pngHeaderOf(side, side, c.depth, c.ctype), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		low := side * side * c.perPixel
		if got < low || got > low+32<<20 {
			t.Errorf("depth %d type %d: estimate %d MiB, want %d MiB plus the scaling buffers", c.depth, c.ctype, got>>20, low>>20)
		}
	}
	// With a 256 MiB budget the 16-bit one is refused before decoding.
	_, err := Process(pngHeaderOf(side, side, 16, 6), Limits{Budget: NewBudget(256 << 20)})
	matchesExactly(t, err, ErrOverBudget)
}

// TestEstimateCoversTheHeap decodes pictures of each path and checks that
// the heap they use stays within their estimate.
func TestEstimateCoversTheHeap(t *testing.T) {
	m := photo(1200, 900)
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"jpeg-scaled", encodeJPEGTest(t, m, 90)},
		{"jpeg-progressive", readFixture(t, "jpeg/progressive.jpg")},
		{"png-rgba", pngBytes(t, photoRGBA(1200, 900))},
		{"webp-lossy", readFixture(t, "webp/photo-lossy.webp")},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, est, err := Estimate(c.data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			if _, err := Process(c.data, Limits{}); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			// Everything Process allocated, garbage included: an upper
			// bound of what it held at once.
			used := int64(after.TotalAlloc - before.TotalAlloc)
			if used > est {
				t.Errorf("allocated %d KiB, estimate %d KiB", used>>10, est>>10)
			}
		})
	}
}

// pngHeaderOf is pngHeader with another bit depth and colour type.
func pngHeaderOf(w, h uint32, depth, ctype byte) []byte {
	b := pngHeader(w, h)
	b[24], b[25] = depth, ctype
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}
