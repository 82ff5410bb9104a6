package picture

import (
	"context"
	"fmt"
	"sync"
)

// Budget bounds the memory that decodes may hold at once across a
// process. Every Process call whose Limits name the same Budget is
// admitted by its estimated memory (see Estimate) before it decodes: it
// goes on at once while that fits in what is left, waits its turn (first
// come, first served) while it does not, and is refused with
// ErrOverBudget when it alone needs more than the whole capacity.
//
// A Budget is safe for concurrent use; its zero value is not usable, make
// one with NewBudget.
type Budget struct {
	capacity int64

	mu      sync.Mutex
	used    int64
	waiting []*budgetWaiter // in arrival order
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed when the bytes are granted
}

// NewBudget returns a budget of capacity bytes (at least 1).
func NewBudget(capacity int64) *Budget {
	return &Budget{capacity: max(capacity, 1)}
}

// Capacity returns the budget's size in bytes.
func (b *Budget) Capacity() int64 { return b.capacity }

// InUse returns the bytes currently granted to decodes.
func (b *Budget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// Waiting returns how many decodes are waiting to be admitted.
func (b *Budget) Waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiting)
}

// acquire grants n bytes, waiting while they are not free, and returns
// the function that gives them back (call it exactly once). It fails with
// ErrOverBudget when n exceeds the capacity, and with ErrBusy (wrapping
// ctx's error) when ctx ends while it waits.
func (b *Budget) acquire(ctx context.Context, n int64) (func(), error) {
	if n > b.capacity {
		return nil, fmt.Errorf("%w: decoding needs about %d MiB, the budget is %d MiB",
			ErrOverBudget, (n+1<<20-1)>>20, b.capacity>>20)
	}
	n = max(n, 0)
	b.mu.Lock()
	if len(b.waiting) == 0 && b.used+n <= b.capacity {
		b.used += n
		b.mu.Unlock()
		return b.releaser(n), nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiting = append(b.waiting, w)
	b.mu.Unlock()

	select {
	case <-w.ready:
		return b.releaser(n), nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready:
		// Granted just as ctx ended: give the bytes back.
		b.used -= n
	default:
		for i, o := range b.waiting {
			if o == w {
				b.waiting = append(b.waiting[:i], b.waiting[i+1:]...)
				break
			}
		}
	}
	// Those behind it may fit now.
	b.grantLocked()
	return nil, fmt.Errorf("%w: waited for %d MiB of decode memory: %w", ErrBusy, (n+1<<20-1)>>20, ctx.Err())
}

// releaser returns a function that gives n bytes back once.
func (b *Budget) releaser(n int64) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.used -= n
			b.grantLocked()
			b.mu.Unlock()
		})
	}
}

// grantLocked admits waiters in arrival order while the first one fits.
func (b *Budget) grantLocked() {
	for len(b.waiting) > 0 && b.used+b.waiting[0].n <= b.capacity {
		w := b.waiting[0]
		b.waiting = b.waiting[1:]
		b.used += w.n
		close(w.ready)
	}
}
