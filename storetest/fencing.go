package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
)

// FenceStore is a store that keeps the queue and the leases of a cluster.
type FenceStore interface {
	QueueStore
	portrait.Leases
}

// RunFencing runs the fenced-write suite as subtests of t: a write made
// with a context that carries a lease (portrait.WithLease) succeeds while
// the lease is current and changes nothing, failing with ErrLeaseLost,
// once it is not. open and closing work as for Run.
func RunFencing(t *testing.T, open func(t *testing.T) FenceStore) {
	runStores(t, open, []subtest[FenceStore]{
		{"CurrentLeaseWrites", testFenceCurrent},
		{"LostLeaseRefused", testFenceLost},
		{"ExpiredLeaseRefused", testFenceExpired},
	})
}

// fencedWrites are the writes a lease fences, and what they write to.
type fencedWrites struct {
	s       FenceStore
	id      portrait.InstanceID
	receipt []int64 // three notifications to delete
	job     portrait.Job
}

func newFencedWrites(t *testing.T, s FenceStore, id portrait.InstanceID) *fencedWrites {
	t.Helper()
	w := &fencedWrites{s: s, id: id}
	w.receipt = enqueue(t, s, notification(id, "1"), notification(id, "2"), notification(id, "3"))
	w.job = jobByID(t, s, addJob(t, s, portrait.Job{Instance: id, Kind: "avatarInfo", Data: []byte(`{}`), DueAt: baseTime, CreatedAt: baseTime}))
	put(t, s, id, "kept", []byte("before"))
	return w
}

func (w *fencedWrites) calls() []struct {
	name string
	fn   func(ctx context.Context) error
} {
	s, id := w.s, w.id
	return []struct {
		name string
		fn   func(ctx context.Context) error
	}{
		{"Enqueue", func(ctx context.Context) error {
			_, err := s.Enqueue(ctx, []portrait.Notification{notification(id, "fenced")})
			return err
		}},
		{"AddJob", func(ctx context.Context) error {
			_, err := s.AddJob(ctx, portrait.Job{Instance: id, Kind: "avatarChanged", Key: "k", DueAt: baseTime, CreatedAt: baseTime})
			return err
		}},
		{"Delete", func(ctx context.Context) error { _, err := s.Delete(ctx, id, w.receipt[0]); return err }},
		{"DeleteMany", func(ctx context.Context) error {
			_, err := s.DeleteMany(ctx, id, w.receipt[1:])
			return err
		}},
		{"Put", func(ctx context.Context) error { return s.Put(ctx, id, "fenced", []byte("x")) }},
		{"DeleteKey", func(ctx context.Context) error { return s.DeleteKey(ctx, id, "kept") }},
		{"FinishJob", func(ctx context.Context) error {
			n := notification(id, "result")
			_, err := s.FinishJob(ctx, w.job, &n)
			return err
		}},
	}
}

// wantUnchanged checks that none of the fenced writes took effect.
func (w *fencedWrites) wantUnchanged(t *testing.T) {
	t.Helper()
	s, id := w.s, w.id
	wantDepths(t, s, map[portrait.InstanceID]int64{id: 3})
	if jobs := dueJobs(t, s, farFuture, 10); len(jobs) != 1 || jobs[0].ID != w.job.ID {
		t.Errorf("jobs after refused writes: %v, want job %d alone", jobs, w.job.ID)
	}
	wantValue(t, s, id, "kept", []byte("before"))
	_, err := s.Get(t.Context(), id, "fenced")
	wantNotFound(t, "Get of a key a refused Put wrote", err)
}

func testFenceCurrent(t *testing.T, s FenceStore) {
	ids := createN(t, s, 1)
	w := newFencedWrites(t, s, ids[0])
	lease := acquire(t, s, ids[0], "node-1", time.Hour)
	ctx := portrait.WithLease(t.Context(), lease)
	if got, ok := portrait.LeaseFrom(ctx); !ok || got != lease {
		t.Fatalf("LeaseFrom(WithLease(l)) = %+v, %v; want %+v", got, ok, lease)
	}
	for _, c := range w.calls() {
		if err := c.fn(ctx); err != nil {
			t.Errorf("%s under the current lease: %v", c.name, err)
		}
	}
	// Every write took effect: 3 deleted, the result and "fenced" added.
	wantDepths(t, s, map[portrait.InstanceID]int64{ids[0]: 2})
	wantValue(t, s, ids[0], "fenced", []byte("x"))
	if jobs := dueJobs(t, s, farFuture, 10); len(jobs) != 1 || jobs[0].Kind != "avatarChanged" {
		t.Errorf("jobs after the fenced writes = %v, want the added avatarChanged job alone", jobs)
	}
}

// testFenceLost: a node whose lease passed to another node, and that has
// not noticed, cannot write; the new owner can.
func testFenceLost(t *testing.T, s FenceStore) {
	ids := createN(t, s, 2)
	w := newFencedWrites(t, s, ids[0])
	old := acquire(t, s, ids[0], "node-1", time.Hour)
	if err := s.Release(t.Context(), old.Instance, old.Node, old.Fence); err != nil {
		t.Fatal(err)
	}
	current := acquire(t, s, ids[0], "node-2", time.Hour)
	stale := portrait.WithLease(t.Context(), old)
	for _, c := range w.calls() {
		if err := c.fn(stale); !errors.Is(err, portrait.ErrLeaseLost) {
			t.Errorf("%s under a lost lease: %v, want an error wrapping ErrLeaseLost", c.name, err)
		}
	}
	w.wantUnchanged(t)
	// Reads are not fenced.
	if _, err := s.Head(stale, ids[0]); err != nil {
		t.Errorf("Head under a lost lease: %v", err)
	}
	// Nor are writes without a lease, nor those of another instance's
	// current lease holder.
	if err := s.Put(t.Context(), ids[0], "unfenced", []byte("y")); err != nil {
		t.Errorf("Put without a lease: %v", err)
	}
	other := acquire(t, s, ids[1], "node-1", time.Hour)
	if _, err := s.Enqueue(portrait.WithLease(t.Context(), other), []portrait.Notification{notification(ids[1], "x")}); err != nil {
		t.Errorf("Enqueue under node-1's lease of %d: %v", ids[1], err)
	}
	// The new owner writes.
	if err := s.Put(portrait.WithLease(t.Context(), current), ids[0], "owner", []byte("z")); err != nil {
		t.Errorf("Put under the current lease: %v", err)
	}
}

// testFenceExpired: a lease that ran out fences like a lost one, even
// before another node takes it.
func testFenceExpired(t *testing.T, s FenceStore) {
	ids := createN(t, s, 1)
	w := newFencedWrites(t, s, ids[0])
	lease := acquire(t, s, ids[0], "node-1", 100*time.Millisecond)
	waitExpired(t, s, lease)
	ctx := portrait.WithLease(t.Context(), lease)
	for _, c := range w.calls() {
		if err := c.fn(ctx); !errors.Is(err, portrait.ErrLeaseLost) {
			t.Errorf("%s under an expired lease: %v, want an error wrapping ErrLeaseLost", c.name, err)
		}
	}
	w.wantUnchanged(t)
}
