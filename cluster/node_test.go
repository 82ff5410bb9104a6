package cluster

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/sqlite"
)

// TestPreferredSpreadsAndMovesLittle: instances spread evenly over the
// nodes, and a node that joins takes instances only for itself.
func TestPreferredSpreadsAndMovesLittle(t *testing.T) {
	const n = 3000
	three := []string{"host-a:/d", "host-b:/d", "host-c:/d"}
	four := append(slices.Clone(three), "host-d:/d")
	count := map[string]int{}
	for i := range n {
		id := portrait.InstanceID(1101000000 + i) // consecutive ids too
		before, after := preferred(three, id), preferred(four, id)
		count[before]++
		if before != after && after != "host-d:/d" {
			t.Fatalf("instance %d moved from %s to %s when host-d joined", id, before, after)
		}
	}
	for _, nd := range three {
		if c := count[nd]; c < n/3*85/100 || c > n/3*115/100 {
			t.Errorf("node %s prefers %d of %d instances; want about a third", nd, c, n)
		}
	}
	if preferred(nil, 1) != "" {
		t.Error("no nodes, yet a preferred one")
	}
}

// owner is an Owner that records which sessions are open.
type owner struct {
	mu   sync.Mutex
	ids  []portrait.InstanceID
	open map[portrait.InstanceID]portrait.Lease
}

func (o *owner) IDs(context.Context) ([]portrait.InstanceID, error) { return o.ids, nil }

func (o *owner) Own(_ context.Context, l portrait.Lease) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.open[l.Instance] = l
}

func (o *owner) Disown(id portrait.InstanceID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.open, id)
}

func (o *owner) opened() map[portrait.InstanceID]portrait.Lease {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[portrait.InstanceID]portrait.Lease{}
	for k, v := range o.open {
		out[k] = v
	}
	return out
}

func newStore(t testing.TB, n int) (*sqlite.DB, []portrait.InstanceID) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var ids []portrait.InstanceID
	for i := range n {
		inst := portrait.Instance{ID: portrait.InstanceID(1101000000 + i), Type: portrait.TypeWhatsApp, Engine: "sandbox",
			TokenHash: []byte("h"), Settings: portrait.DefaultSettings(), CreatedAt: time.Now()}
		if err := db.CreateInstance(t.Context(), inst); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, inst.ID)
	}
	return db, ids
}

// TestNodesShareAndHandOver: a second node takes its share from the
// first without an instance ever open on both; Stop hands its instances
// back at once; a session is opened under the lease that Acting gives.
func TestNodesShareAndHandOver(t *testing.T) {
	ctx := t.Context()
	db, ids := newStore(t, 60)
	o1 := &owner{ids: ids, open: map[portrait.InstanceID]portrait.Lease{}}
	o2 := &owner{ids: ids, open: map[portrait.InstanceID]portrait.Lease{}}
	n1 := New(db, o1, Options{ID: "node-1", Addr: "127.0.0.1:1", LeaseTTL: time.Minute, Secret: []byte("s")})
	n2 := New(db, o2, Options{ID: "node-2", Addr: "127.0.0.1:2", LeaseTTL: time.Minute, Secret: []byte("s")})
	if err := n1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(o1.opened()); got != len(ids) {
		t.Fatalf("a node alone opened %d of %d instances", got, len(ids))
	}
	for _, l := range o1.opened() {
		lctx, ok := n1.Acting(ctx, l.Instance)
		carried, _ := portrait.LeaseFrom(lctx)
		if !ok || carried != n1.held[l.Instance].lease || carried.Fence != l.Fence {
			t.Fatalf("Acting(%d) = %+v, %v; want the lease the session was opened under, %+v", l.Instance, carried, ok, l)
		}
	}
	overlap := func() {
		t.Helper()
		a, b := o1.opened(), o2.opened()
		for id := range a {
			if _, both := b[id]; both {
				t.Fatalf("instance %d open on both nodes", id)
			}
		}
	}
	if err := n2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 { // node-1 releases at its round, node-2 takes at its next
		for _, n := range []*Node{n1, n2} {
			if err := n.round(ctx); err != nil {
				t.Fatal(err)
			}
			overlap()
		}
	}
	c1, c2 := len(o1.opened()), len(o2.opened())
	if c1+c2 != len(ids) || c1 < 15 || c2 < 15 {
		t.Fatalf("after the second node joined: %d + %d open of %d", c1, c2, len(ids))
	}
	for id := range o2.opened() {
		if n1.Owns(id) || !n2.Owns(id) {
			t.Fatalf("instance %d: node-1 owns %v, node-2 owns %v", id, n1.Owns(id), n2.Owns(id))
		}
	}
	n2.Stop(ctx)
	if len(o2.opened()) != 0 || len(n2.Held()) != 0 {
		t.Fatalf("node-2 after Stop: %d sessions open, %d leases", len(o2.opened()), len(n2.Held()))
	}
	if err := n1.round(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(o1.opened()); got != len(ids) {
		t.Fatalf("after node-2 stopped, node-1 opened %d of %d at its next round", got, len(ids))
	}
}

// TestLostLeaseClosesSession: a lease another node took (after it lapsed)
// is closed at the next round, and a node does not act past its lease by
// its own clock even before that round.
func TestLostLeaseClosesSession(t *testing.T) {
	ctx := t.Context()
	db, ids := newStore(t, 1)
	o := &owner{ids: ids, open: map[portrait.InstanceID]portrait.Lease{}}
	n := New(db, o, Options{ID: "node-1", Addr: "127.0.0.1:1", LeaseTTL: 500 * time.Millisecond, Secret: []byte("s")})
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !n.Owns(ids[0]) {
		t.Fatal("a node alone does not own the instance")
	}
	time.Sleep(600 * time.Millisecond) // no rounds: as if paused
	if n.Owns(ids[0]) {
		t.Fatal("a node acts past its lease by its own clock")
	}
	if _, err := db.Acquire(ctx, ids[0], "node-2", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := n.round(ctx); err != nil {
		t.Fatal(err)
	}
	if len(o.opened()) != 0 {
		t.Fatal("the session of a lost lease stayed open")
	}
}

// TestForwardRefusals: a request that claims to come from a node without
// the secret is refused; one forwarded by a node to a node that does not
// own the instance is misdirected (never forwarded again); the owner
// serves its instance itself.
func TestForwardRefusals(t *testing.T) {
	ctx := t.Context()
	db, ids := newStore(t, 1)
	o := &owner{ids: ids, open: map[portrait.InstanceID]portrait.Lease{}}
	owner := New(db, o, Options{ID: "node-1", Addr: "127.0.0.1:1", LeaseTTL: time.Minute, Secret: []byte("secret")})
	other := New(db, &owner2, Options{ID: "node-2", Addr: "127.0.0.1:2", LeaseTTL: time.Minute, Secret: []byte("secret")})
	if err := owner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	req := func(h ...string) *http.Request {
		r := httptest.NewRequest("GET", "/waInstance1101000000/getStateInstance/x", nil)
		for i := 0; i+1 < len(h); i += 2 {
			r.Header.Set(h[i], h[i+1])
		}
		return r
	}
	if done, err := owner.Forward(httptest.NewRecorder(), req(), ids[0], false); done || err != nil {
		t.Errorf("the owner: Forward = %v, %v; want to serve it itself", done, err)
	}
	forged := req(HeaderSecret, "00", HeaderForwardedBy, "node-1")
	if _, err := other.Forward(httptest.NewRecorder(), forged, ids[0], false); !errors.Is(err, ErrBadSecret) {
		t.Errorf("a forged node-to-node call: %v", err)
	}
	if fwd, _ := other.Trusted(forged); fwd {
		t.Error("a forged proof is trusted")
	}
	const path = "/waInstance1101000000/getStateInstance/x"
	proper := req(HeaderSecret, owner.fwd.sign("GET", path, time.Now(), "node-1", true, nil), HeaderForwardedBy, "node-1", HeaderAdmin, "1")
	if fwd, admin := other.Trusted(proper); !fwd || !admin {
		t.Errorf("Trusted(a proper forwarded admin call) = %v, %v", fwd, admin)
	}
	// The MAC binds the call: another time, path, admin flag or body is
	// not trusted.
	for name, r := range map[string]*http.Request{
		"too old":        req(HeaderSecret, owner.fwd.sign("GET", path, time.Now().Add(-time.Minute), "node-1", true, nil), HeaderForwardedBy, "node-1", HeaderAdmin, "1"),
		"another path":   req(HeaderSecret, owner.fwd.sign("GET", "/admin/instances", time.Now(), "node-1", true, nil), HeaderForwardedBy, "node-1", HeaderAdmin, "1"),
		"admin added":    req(HeaderSecret, owner.fwd.sign("GET", path, time.Now(), "node-1", false, nil), HeaderForwardedBy, "node-1", HeaderAdmin, "1"),
		"another body":   req(HeaderSecret, owner.fwd.sign("GET", path, time.Now(), "node-1", true, []byte("{}")), HeaderForwardedBy, "node-1", HeaderAdmin, "1"),
		"another sender": req(HeaderSecret, owner.fwd.sign("GET", path, time.Now(), "node-1", true, nil), HeaderForwardedBy, "node-3", HeaderAdmin, "1"),
	} {
		if fwd, _ := other.Trusted(r); fwd {
			t.Errorf("%s: trusted", name)
		}
	}
	if _, err := other.Forward(httptest.NewRecorder(), proper, ids[0], false); !errors.Is(err, ErrMisdirected) {
		t.Errorf("a forwarded call at a node that does not own the instance: %v", err)
	}
	if fwd, _ := New(db, &owner2, Options{ID: "x", Secret: []byte("another")}).Trusted(proper); fwd {
		t.Error("a proof of another cluster's secret is trusted")
	}
}

// owner2 is an Owner with no instances.
var owner2 = owner{open: map[portrait.InstanceID]portrait.Lease{}}

// TestForwardWaitsForOwner: a request for an instance without a live
// owner waits for one, and gives up with ErrNoOwner after ForwardWait.
func TestForwardWaitsForOwner(t *testing.T) {
	db, ids := newStore(t, 1)
	n := New(db, &owner2, Options{ID: "node-2", Addr: "127.0.0.1:2", LeaseTTL: time.Minute, ForwardWait: 300 * time.Millisecond, Secret: []byte("s")})
	start := time.Now()
	r := httptest.NewRequest("POST", "/waInstance1101000000/getAvatar/x", nil)
	if _, err := n.Forward(httptest.NewRecorder(), r, ids[0], false); !errors.Is(err, ErrNoOwner) {
		t.Fatalf("Forward without an owner: %v", err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("gave up after %v, before ForwardWait", waited)
	}
}

// TestTake: a node takes an instance created on it at once, but not
// before its Start (which clears what an earlier run left under its id).
func TestTake(t *testing.T) {
	ctx := t.Context()
	db, ids := newStore(t, 2)
	o := &owner{ids: ids[:1], open: map[portrait.InstanceID]portrait.Lease{}}
	n := New(db, o, Options{ID: "node-1", Addr: "127.0.0.1:1", LeaseTTL: time.Minute, Secret: []byte("s")})
	n.Take(ctx, ids[0])
	if len(o.opened()) != 0 || len(n.Held()) != 0 {
		t.Fatalf("Take before Start opened %d sessions, holds %d leases", len(o.opened()), len(n.Held()))
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	o.ids = ids
	o.mu.Unlock()
	n.Take(ctx, ids[1])
	if _, ok := o.opened()[ids[1]]; !ok || !n.Owns(ids[1]) {
		t.Fatalf("Take after Start: opened %v, owns %v", o.opened(), n.Owns(ids[1]))
	}
}
