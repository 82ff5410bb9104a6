package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
)

// LeaseStore is a store that also keeps the nodes and leases of a
// cluster.
type LeaseStore interface {
	portrait.Store
	portrait.Leases
}

// RunLeases runs the lease suite as subtests of t: the behaviour every
// portrait.Leases implementation must show, on top of the instances of its
// portrait.Store. open and closing work as for Run.
//
// Besides what the portrait.Leases doc comments say, the suite requires:
//   - Acquire, Renew and Heartbeat take their times from Now's clock, at
//     least to the millisecond, and a lease whose Expires is not after
//     Now is expired;
//   - deleting an instance removes its lease;
//   - a duration that is not positive is refused;
//   - a call whose context is done before it starts fails with the
//     context's error and changes nothing.
func RunLeases(t *testing.T, open func(t *testing.T) LeaseStore) {
	runStores(t, open, []subtest[LeaseStore]{
		{"AcquireAndHold", testLeaseAcquire},
		{"Race", testLeaseRace},
		{"ExpiryHandsOver", testLeaseExpiry},
		{"OwnerAgainAfterExpiry", testLeaseOwnerAgain},
		{"Renew", testLeaseRenew},
		{"Release", testLeaseRelease},
		{"InstanceDeleted", testLeaseInstanceDeleted},
		{"Nodes", testLeaseNodes},
		{"RemoveNode", testLeaseRemoveNode},
		{"AcquireMany", testLeaseAcquireMany},
		{"InvalidDurations", testLeaseInvalid},
		{"ContextCanceled", testLeaseContextCanceled},
	})
}

// slack bounds how far apart two readings of the database's clock taken
// around one call may be, on a slow machine.
const slack = 5 * time.Second

func dbNow(t *testing.T, s portrait.Leases) time.Time {
	t.Helper()
	now, err := s.Now(t.Context())
	if err != nil {
		t.Fatalf("Now: %v", err)
	}
	return now
}

func acquire(t *testing.T, s portrait.Leases, id portrait.InstanceID, node string, ttl time.Duration) portrait.Lease {
	t.Helper()
	before := dbNow(t, s)
	l, err := s.Acquire(t.Context(), id, node, ttl)
	if err != nil {
		t.Fatalf("Acquire(%d, %s): %v", id, node, err)
	}
	after := dbNow(t, s)
	if l.Instance != id || l.Node != node || l.Fence <= 0 {
		t.Errorf("Acquire(%d, %s) = %+v", id, node, l)
	}
	wantExpiry(t, "Acquire", l, before, after, ttl)
	return l
}

// wantExpiry checks that l expires ttl after a moment between before and
// after (the database's clock, to the millisecond).
func wantExpiry(t *testing.T, what string, l portrait.Lease, before, after time.Time, ttl time.Duration) {
	t.Helper()
	lo, hi := before.Add(ttl).Add(-time.Millisecond), after.Add(ttl).Add(time.Millisecond)
	if l.Expires.Before(lo) || l.Expires.After(hi) {
		t.Errorf("%s: lease of %d expires at %v, want between %v and %v", what, l.Instance, l.Expires, lo, hi)
	}
	if l.Expires.Location() != time.UTC {
		t.Errorf("%s: Expires in %v, want UTC", what, l.Expires.Location())
	}
}

func wantHeld(t *testing.T, s portrait.Leases, id portrait.InstanceID, node string) {
	t.Helper()
	_, err := s.Acquire(t.Context(), id, node, time.Minute)
	if !errors.Is(err, portrait.ErrLeaseHeld) {
		t.Errorf("Acquire(%d, %s) of a lease another node holds: %v, want an error wrapping ErrLeaseHeld", id, node, err)
	}
}

func wantCurrent(t *testing.T, s portrait.Leases, l portrait.Lease) {
	t.Helper()
	if err := s.CheckLease(t.Context(), l); err != nil {
		t.Errorf("CheckLease(%d, %s, fence %d): %v, want nil", l.Instance, l.Node, l.Fence, err)
	}
}

func wantLost(t *testing.T, s portrait.Leases, l portrait.Lease) {
	t.Helper()
	if err := s.CheckLease(t.Context(), l); !errors.Is(err, portrait.ErrLeaseLost) {
		t.Errorf("CheckLease(%d, %s, fence %d): %v, want an error wrapping ErrLeaseLost", l.Instance, l.Node, l.Fence, err)
	}
}

// wantLeases checks Leases against want (instance → node and fence).
func wantLeases(t *testing.T, s portrait.Leases, want ...portrait.Lease) {
	t.Helper()
	got, err := s.Leases(t.Context())
	if err != nil {
		t.Fatalf("Leases: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("Leases = %+v, want %+v", got, want)
		return
	}
	for i := range got {
		if got[i].Instance != want[i].Instance || got[i].Node != want[i].Node || got[i].Fence != want[i].Fence {
			t.Errorf("Leases[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// waitExpired waits until the database's clock is past l.Expires.
func waitExpired(t *testing.T, s portrait.Leases, l portrait.Lease) {
	t.Helper()
	for deadline := time.Now().Add(slack + time.Minute); ; {
		if now := dbNow(t, s); now.After(l.Expires) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lease of %d, expiring at %v, did not expire", l.Instance, l.Expires)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func createN(t *testing.T, s portrait.Store, n int) []portrait.InstanceID {
	t.Helper()
	var ids []portrait.InstanceID
	for i := range n {
		inst := newInstance(portrait.InstanceID(1101000001 + i))
		create(t, s, inst)
		ids = append(ids, inst.ID)
	}
	return ids
}

func testLeaseAcquire(t *testing.T, s LeaseStore) {
	ids := createN(t, s, 2)
	a, b := ids[0], ids[1]
	wantLeases(t, s)
	la := acquire(t, s, a, "node-1", time.Minute)
	wantCurrent(t, s, la)
	wantHeld(t, s, a, "node-2")
	// The lease is free for other instances.
	lb := acquire(t, s, b, "node-2", time.Minute)
	if lb.Fence == la.Fence {
		t.Errorf("two leases got fence %d", la.Fence)
	}
	// The owner acquiring again extends its lease and keeps its fence.
	again := acquire(t, s, a, "node-1", time.Hour)
	if again.Fence != la.Fence {
		t.Errorf("the owner's second Acquire changed the fence from %d to %d", la.Fence, again.Fence)
	}
	wantCurrent(t, s, again)
	wantCurrent(t, s, la) // the same lease: node and fence
	wantLeases(t, s, again, lb)
	// A fence or node that is not the lease's is refused.
	for _, stale := range []portrait.Lease{
		{Instance: a, Node: "node-1", Fence: la.Fence - 1},
		{Instance: a, Node: "node-1", Fence: la.Fence + 1000},
		{Instance: a, Node: "node-2", Fence: la.Fence},
		{Instance: b, Node: "node-1", Fence: la.Fence},
		{Instance: 1101999999, Node: "node-1", Fence: la.Fence},
	} {
		wantLost(t, s, stale)
	}
	// An unknown instance has no lease to take.
	_, err := s.Acquire(t.Context(), 1101999999, "node-1", time.Minute)
	wantNotFound(t, "Acquire of an unknown instance", err)
	wantLeases(t, s, again, lb)
}

// testLeaseRace lets nodes race for the same leases: exactly one wins
// each, and the others are told it is held.
func testLeaseRace(t *testing.T, s LeaseStore) {
	const nodes, rounds = 8, 5
	ids := createN(t, s, rounds)
	for _, id := range ids {
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []portrait.Lease
			errs    []error
		)
		start := make(chan struct{})
		for n := range nodes {
			wg.Go(func() {
				<-start
				l, err := s.Acquire(t.Context(), id, fmt.Sprintf("node-%d", n), time.Minute)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners = append(winners, l)
				case !errors.Is(err, portrait.ErrLeaseHeld):
					errs = append(errs, err)
				}
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			t.Errorf("instance %d: Acquire failed other than with ErrLeaseHeld: %v", id, err)
		}
		if len(winners) != 1 {
			t.Fatalf("instance %d: %d nodes won the lease: %+v", id, len(winners), winners)
		}
		wantCurrent(t, s, winners[0])
		wantLeases(t, s, winners...)
		if err := s.Release(t.Context(), id, winners[0].Node, winners[0].Fence); err != nil {
			t.Fatal(err)
		}
	}
}

// testLeaseExpiry: a lease that its owner does not renew passes to
// another node with a larger fence, and the old owner's fence is refused.
func testLeaseExpiry(t *testing.T, s LeaseStore) {
	ids := createN(t, s, 1)
	a := ids[0]
	// Long enough to be still held at the next call on a busy machine.
	old := acquire(t, s, a, "node-1", 2*time.Second)
	wantHeld(t, s, a, "node-2")
	waitExpired(t, s, old)
	// Expired: the owner's fence no longer counts, and renewing is too
	// late.
	wantLost(t, s, old)
	renewed, err := s.Renew(t.Context(), "node-1", time.Minute)
	if err != nil || len(renewed) != 0 {
		t.Errorf("Renew of an expired lease = %+v, %v; want none", renewed, err)
	}
	// Another node takes it over.
	taken := acquire(t, s, a, "node-2", time.Minute)
	if taken.Fence <= old.Fence {
		t.Errorf("the new owner's fence %d is not larger than the old owner's %d", taken.Fence, old.Fence)
	}
	wantCurrent(t, s, taken)
	wantLost(t, s, old)
	wantHeld(t, s, a, "node-1")
	// The old owner, waking up, cannot release the new owner's lease.
	if err := s.Release(t.Context(), a, "node-1", old.Fence); err != nil {
		t.Errorf("Release of a lost lease: %v", err)
	}
	wantCurrent(t, s, taken)
	wantLeases(t, s, taken)
}

// testLeaseOwnerAgain: an owner that takes its lease again after it
// expired gets a new fence, so that the writes it began under the old one
// are refused.
func testLeaseOwnerAgain(t *testing.T, s LeaseStore) {
	ids := createN(t, s, 1)
	old := acquire(t, s, ids[0], "node-1", 100*time.Millisecond)
	waitExpired(t, s, old)
	again := acquire(t, s, ids[0], "node-1", time.Minute)
	if again.Fence <= old.Fence {
		t.Errorf("fence %d after the lease expired, want more than %d", again.Fence, old.Fence)
	}
	wantLost(t, s, old)
	wantCurrent(t, s, again)
}

func testLeaseRenew(t *testing.T, s LeaseStore) {
	ids := createN(t, s, 4)
	a := acquire(t, s, ids[0], "node-1", time.Minute)
	b := acquire(t, s, ids[1], "node-1", time.Minute)
	c := acquire(t, s, ids[2], "node-2", time.Minute)
	short := acquire(t, s, ids[3], "node-1", 100*time.Millisecond)
	waitExpired(t, s, short)

	before := dbNow(t, s)
	renewed, err := s.Renew(t.Context(), "node-1", time.Hour)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	after := dbNow(t, s)
	if len(renewed) != 2 || renewed[0].Instance != a.Instance || renewed[1].Instance != b.Instance {
		t.Fatalf("Renew = %+v, want the leases of %d and %d", renewed, a.Instance, b.Instance)
	}
	for i, l := range renewed {
		want := []portrait.Lease{a, b}[i]
		if l.Fence != want.Fence || l.Node != "node-1" {
			t.Errorf("renewed lease %+v, want node-1 with fence %d", l, want.Fence)
		}
		wantExpiry(t, "Renew", l, before, after, time.Hour)
		wantCurrent(t, s, l)
	}
	// Other nodes' leases are untouched, and the expired one stays lost.
	wantLost(t, s, short)
	got, err := s.Leases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range got {
		if l.Instance == c.Instance && !l.Expires.Equal(c.Expires) {
			t.Errorf("Renew of node-1 changed node-2's lease expiry from %v to %v", c.Expires, l.Expires)
		}
	}
	if r, err := s.Renew(t.Context(), "node-9", time.Minute); err != nil || len(r) != 0 {
		t.Errorf("Renew of a node without leases = %+v, %v; want none", r, err)
	}
}

func testLeaseRelease(t *testing.T, s LeaseStore) {
	ids := createN(t, s, 2)
	a := acquire(t, s, ids[0], "node-1", time.Hour)
	b := acquire(t, s, ids[1], "node-1", time.Hour)
	// A wrong fence or node releases nothing.
	for _, wrong := range []struct {
		node  string
		fence int64
	}{{"node-1", a.Fence + 1}, {"node-1", a.Fence - 1}, {"node-2", a.Fence}} {
		if err := s.Release(t.Context(), a.Instance, wrong.node, wrong.fence); err != nil {
			t.Errorf("Release(%s, fence %d): %v", wrong.node, wrong.fence, err)
		}
	}
	wantCurrent(t, s, a)
	wantHeld(t, s, a.Instance, "node-2")
	// Released, another node takes it at once, with a larger fence.
	if err := s.Release(t.Context(), a.Instance, "node-1", a.Fence); err != nil {
		t.Fatalf("Release: %v", err)
	}
	wantLost(t, s, a)
	wantLeases(t, s, b)
	taken := acquire(t, s, a.Instance, "node-2", time.Minute)
	if taken.Fence <= a.Fence {
		t.Errorf("fence %d after release, want more than %d", taken.Fence, a.Fence)
	}
	// Releasing again is not an error and leaves the new owner alone.
	if err := s.Release(t.Context(), a.Instance, "node-1", a.Fence); err != nil {
		t.Errorf("second Release: %v", err)
	}
	wantCurrent(t, s, taken)
	wantCurrent(t, s, b)
}

func testLeaseInstanceDeleted(t *testing.T, s LeaseStore) {
	ids := createN(t, s, 2)
	a := acquire(t, s, ids[0], "node-1", time.Hour)
	b := acquire(t, s, ids[1], "node-1", time.Hour)
	if err := s.DeleteInstance(t.Context(), a.Instance); err != nil {
		t.Fatal(err)
	}
	wantLost(t, s, a)
	wantLeases(t, s, b)
	// The id created again starts free, and its fences never repeat one
	// given before.
	create(t, s, newInstance(a.Instance))
	again := acquire(t, s, a.Instance, "node-2", time.Minute)
	if again.Fence <= a.Fence || again.Fence <= b.Fence {
		t.Errorf("fence %d for the instance created again, want more than %d and %d", again.Fence, a.Fence, b.Fence)
	}
	wantLost(t, s, a)
}

func testLeaseNodes(t *testing.T, s LeaseStore) {
	ctx := t.Context()
	if ns, err := s.Nodes(ctx, time.Hour); err != nil || len(ns) != 0 {
		t.Errorf("Nodes of a new store = %+v, %v; want none", ns, err)
	}
	before := dbNow(t, s)
	for _, n := range []portrait.Node{{ID: "node-b", Addr: "127.0.0.1:7002"}, {ID: "node-a", Addr: "127.0.0.1:7001"},
		{ID: "node-b", Addr: "127.0.0.1:7003", Heartbeat: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}} {
		if err := s.Heartbeat(ctx, n); err != nil {
			t.Fatalf("Heartbeat(%+v): %v", n, err)
		}
	}
	after := dbNow(t, s)
	ns, err := s.Nodes(ctx, time.Minute)
	if err != nil {
		t.Fatalf("Nodes: %v", err)
	}
	if len(ns) != 2 || ns[0].ID != "node-a" || ns[1].ID != "node-b" {
		t.Fatalf("Nodes = %+v, want node-a and node-b", ns)
	}
	if ns[0].Addr != "127.0.0.1:7001" || ns[1].Addr != "127.0.0.1:7003" {
		t.Errorf("Nodes = %+v, want each node's last address", ns)
	}
	for _, n := range ns {
		// The database's clock, not the caller's Heartbeat field.
		if n.Heartbeat.Before(before.Add(-time.Millisecond)) || n.Heartbeat.After(after.Add(time.Millisecond)) {
			t.Errorf("node %s: heartbeat at %v, want between %v and %v", n.ID, n.Heartbeat, before, after)
		}
	}
	// A node that stops sending heartbeats drops out.
	time.Sleep(2500 * time.Millisecond)
	if err := s.Heartbeat(ctx, portrait.Node{ID: "node-a", Addr: "127.0.0.1:7001"}); err != nil {
		t.Fatal(err)
	}
	ns, err = s.Nodes(ctx, 1500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].ID != "node-a" {
		t.Errorf("Nodes alive within 1.5 s = %+v, want node-a alone", ns)
	}
}

func testLeaseRemoveNode(t *testing.T, s LeaseStore) {
	ctx := t.Context()
	ids := createN(t, s, 3)
	for _, n := range []string{"node-1", "node-2"} {
		if err := s.Heartbeat(ctx, portrait.Node{ID: n, Addr: n + ":7000"}); err != nil {
			t.Fatal(err)
		}
	}
	a := acquire(t, s, ids[0], "node-1", time.Hour)
	acquire(t, s, ids[1], "node-1", time.Hour)
	c := acquire(t, s, ids[2], "node-2", time.Hour)
	if err := s.RemoveNode(ctx, "node-1"); err != nil {
		t.Fatalf("RemoveNode: %v", err)
	}
	wantLost(t, s, a)
	wantLeases(t, s, c)
	ns, err := s.Nodes(ctx, time.Hour)
	if err != nil || len(ns) != 1 || ns[0].ID != "node-2" {
		t.Errorf("Nodes after RemoveNode = %+v, %v; want node-2 alone", ns, err)
	}
	// Its instances can be taken at once.
	if l := acquire(t, s, ids[0], "node-2", time.Minute); l.Fence <= a.Fence {
		t.Errorf("fence %d after RemoveNode, want more than %d", l.Fence, a.Fence)
	}
	if err := s.RemoveNode(ctx, "node-9"); err != nil {
		t.Errorf("RemoveNode of an unknown node: %v", err)
	}
}

func testLeaseInvalid(t *testing.T, s LeaseStore) {
	ids := createN(t, s, 1)
	for _, ttl := range []time.Duration{0, -time.Second, time.Nanosecond} {
		if _, err := s.Acquire(t.Context(), ids[0], "node-1", ttl); err == nil {
			t.Errorf("Acquire with duration %v succeeded", ttl)
		}
		if _, err := s.Renew(t.Context(), "node-1", ttl); err == nil {
			t.Errorf("Renew with duration %v succeeded", ttl)
		}
	}
	wantLeases(t, s)
}

func testLeaseContextCanceled(t *testing.T, s LeaseStore) {
	ids := createN(t, s, 2)
	held := acquire(t, s, ids[0], "node-1", time.Hour)
	if err := s.Heartbeat(t.Context(), portrait.Node{ID: "node-1", Addr: "a"}); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	calls := []struct {
		name string
		fn   func(ctx context.Context) error
	}{
		{"Now", func(ctx context.Context) error { _, err := s.Now(ctx); return err }},
		{"Heartbeat", func(ctx context.Context) error { return s.Heartbeat(ctx, portrait.Node{ID: "node-2", Addr: "b"}) }},
		{"Nodes", func(ctx context.Context) error { _, err := s.Nodes(ctx, time.Hour); return err }},
		{"RemoveNode", func(ctx context.Context) error { return s.RemoveNode(ctx, "node-1") }},
		{"Acquire", func(ctx context.Context) error { _, err := s.Acquire(ctx, ids[1], "node-1", time.Hour); return err }},
		{"Renew", func(ctx context.Context) error { _, err := s.Renew(ctx, "node-1", time.Minute); return err }},
		{"Release", func(ctx context.Context) error { return s.Release(ctx, held.Instance, held.Node, held.Fence) }},
		{"Leases", func(ctx context.Context) error { _, err := s.Leases(ctx); return err }},
		{"CheckLease", func(ctx context.Context) error { return s.CheckLease(ctx, held) }},
	}
	for _, c := range calls {
		if err := c.fn(canceled); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want an error wrapping context.Canceled", c.name, err)
		}
	}
	// Nothing changed.
	wantLeases(t, s, held)
	wantCurrent(t, s, held)
	ns, err := s.Nodes(t.Context(), time.Hour)
	if err != nil || len(ns) != 1 || ns[0].ID != "node-1" {
		t.Errorf("Nodes after canceled calls = %+v, %v; want node-1 alone", ns, err)
	}
}

// testLeaseAcquireMany: AcquireMany takes what Acquire would, in one call,
// and leaves out the leases another node holds and missing instances.
func testLeaseAcquireMany(t *testing.T, s LeaseStore) {
	ctx := t.Context()
	ids := createN(t, s, 4)
	mine := acquire(t, s, ids[0], "node-1", time.Hour)
	acquire(t, s, ids[1], "node-2", time.Hour)
	short := acquire(t, s, ids[2], "node-2", 100*time.Millisecond)
	waitExpired(t, s, short)
	got, err := s.AcquireMany(ctx, []portrait.InstanceID{ids[3], ids[2], ids[1], ids[0], 1109999999}, "node-1", time.Hour)
	if err != nil {
		t.Fatalf("AcquireMany: %v", err)
	}
	var taken []portrait.InstanceID
	for _, l := range got {
		taken = append(taken, l.Instance)
		if l.Node != "node-1" {
			t.Errorf("lease %+v is not node-1's", l)
		}
		switch l.Instance {
		case ids[0]:
			if l.Fence != mine.Fence {
				t.Errorf("node-1's own unexpired lease got fence %d, want it kept (%d)", l.Fence, mine.Fence)
			}
		case ids[2]:
			if l.Fence <= short.Fence {
				t.Errorf("a lease taken over after it expired got fence %d, want more than %d", l.Fence, short.Fence)
			}
		}
	}
	if want := []portrait.InstanceID{ids[0], ids[2], ids[3]}; !slices.Equal(taken, want) {
		t.Errorf("AcquireMany took %v, want %v in order (not node-2's unexpired lease, not a missing instance)", taken, want)
	}
	if got, err := s.AcquireMany(ctx, nil, "node-1", time.Hour); err != nil || len(got) != 0 {
		t.Errorf("AcquireMany of nothing: %v, %v", got, err)
	}
	if _, err := s.AcquireMany(ctx, ids, "node-1", 0); err == nil {
		t.Error("AcquireMany with a duration of 0: no error")
	}
}
