package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/avatar"
	"github.com/portrait-dev/portrait/blobdir"
	"github.com/portrait-dev/portrait/cluster"
	"github.com/portrait-dev/portrait/instance"
	"github.com/portrait-dev/portrait/internal/pgtest"
	"github.com/portrait-dev/portrait/notify"
	"github.com/portrait-dev/portrait/postgres"
	"github.com/portrait-dev/portrait/sandbox"
	"github.com/portrait-dev/portrait/sqlite"
)

// rig is a Hub on a real store (SQLite or PostgreSQL) with n sandbox
// instances whose webhooks point at a local receiver that answers 200.
type rig struct {
	hub       *notify.Hub
	reg       *instance.Registry
	ids       []portrait.InstanceID
	delivered atomic.Int64
	bodies    chan []byte
	stop      func()
}

// rigStore is what the rig needs of a store.
type rigStore interface {
	portrait.Store
	portrait.Queue
}

// stores are the stores the rig runs on; node runs the hub as a cluster
// node does (its instances owned through leases, every write fenced, jobs
// claimed).
var stores = []struct {
	name string
	open func(tb testing.TB) (rigStore, portrait.Blobs)
	node bool
}{
	{"sqlite", func(tb testing.TB) (rigStore, portrait.Blobs) {
		dir := tb.TempDir()
		db, err := sqlite.Open(context.Background(), filepath.Join(dir, "p.db"))
		if err != nil {
			tb.Fatal(err)
		}
		blobs, err := blobdir.Open(filepath.Join(dir, "pictures"))
		if err != nil {
			tb.Fatal(err)
		}
		return db, blobs
	}, false},
	{"postgres", openPostgres, false},
	{"postgres-node", openPostgres, true},
}

// openPostgres opens a fresh PostgreSQL database for a benchmark.
func openPostgres(tb testing.TB) (rigStore, portrait.Blobs) {
	db, err := postgres.Open(context.Background(), pgtest.DB(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return db, db.Blobs()
}

func newRig(tb testing.TB, n int, record, node bool, open func(testing.TB) (rigStore, portrait.Blobs)) *rig {
	tb.Helper()
	ctx := context.Background()
	db, blobs := open(tb)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	avatars := avatar.New(blobs, db, avatar.Options{PublicURL: "http://x", CacheTTL: time.Minute, MaxDecoders: 1, Secret: []byte("k")}, avatar.Metrics{})
	r := &rig{bodies: make(chan []byte, 100000)}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		if record {
			r.bodies <- b
		}
		r.delivered.Add(1)
	}))
	sb := sandbox.New(db, nil, sandbox.Options{})
	var nd *cluster.Node
	regOpts := instance.Options{Logger: log}
	hubOpts := notify.Options{
		Debounce: 50 * time.Millisecond, DebounceMax: time.Second, Retention: time.Hour,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond, Timeout: 5 * time.Second,
		Concurrency: 256, AllowPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}
	if node {
		acting := func(ctx context.Context, id portrait.InstanceID) (context.Context, bool) { return nd.Acting(ctx, id) }
		regOpts.Acting, hubOpts.Acting = acting, acting
		hubOpts.Jobs = func(ctx context.Context, now time.Time, limit int) ([]portrait.Job, error) {
			return db.(portrait.JobClaims).ClaimJobs(ctx, nd.ID(), now, limit, nd.LeaseTTL())
		}
	}
	reg := instance.New(db, map[string]portrait.Engine{sb.Name(): sb}, regOpts)
	if node {
		nd = cluster.New(db.(portrait.Leases), reg, cluster.Options{ID: "bench-node", Addr: "127.0.0.1:1", Secret: []byte("s"), Logger: log})
	}
	hub := notify.New(db, avatars, reg, hubOpts, log, notify.Metrics{})
	for i := 0; i < n; i++ {
		inst, _, err := instance.New(db, map[string]portrait.Engine{sb.Name(): sb}, instance.Options{Lazy: true}).Create(ctx, portrait.TypeWhatsApp, sandbox.Name)
		if err != nil {
			tb.Fatal(err)
		}
		st := portrait.DefaultSettings()
		st.WebhookURL = recv.URL
		st.StateWebhook = true
		if err := db.SetSettings(ctx, inst.ID(), st); err != nil {
			tb.Fatal(err)
		}
		r.ids = append(r.ids, inst.ID())
	}
	if err := reg.Start(ctx, hub); err != nil {
		tb.Fatal(err)
	}
	hctx, cancel := context.WithCancel(ctx)
	if nd != nil {
		if err := nd.Start(ctx); err != nil {
			tb.Fatal(err)
		}
		go nd.Run(hctx)
	}
	done := make(chan struct{})
	go func() { hub.Run(hctx); close(done) }()
	// The sessions report their first state as they open; let those
	// notifications go by before measuring.
	time.Sleep(300 * time.Millisecond)
	for len(r.bodies) > 0 {
		<-r.bodies
	}
	r.delivered.Store(0)
	r.hub, r.reg = hub, reg
	r.stop = func() {
		cancel()
		<-done
		if nd != nil {
			nd.Stop(context.Background())
		}
		reg.Close()
		recv.Close()
		db.Close()
	}
	return r
}

// produce commits per notifications on every instance, one producer per
// instance, each call returning after its own commit (as an engine event's
// does), and waits until the receiver has them all.
func (r *rig) produce(tb testing.TB, per int) time.Duration {
	start := time.Now()
	want := r.delivered.Load() + int64(per*len(r.ids))
	var wg sync.WaitGroup
	for _, id := range r.ids {
		h, err := r.reg.Get(context.Background(), id)
		if err != nil {
			tb.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				state := portrait.StateAuthorized
				if i%2 == 1 {
					state = portrait.StateNotAuthorized
				}
				r.hub.StateChanged(h, state)
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(2 * time.Minute)
	for r.delivered.Load() < want {
		if time.Now().After(deadline) {
			tb.Fatalf("delivered %d of %d", r.delivered.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// BenchmarkDelivery measures notifications per second from commit to a
// local receiver answering 200, for 1 and for 100 instances, on SQLite and
// on PostgreSQL (PORTRAIT_TEST_POSTGRES), there also as a cluster node
// does it (leases, fenced writes). Every notification is committed
// before its producer goes on.
//
//	go test -run '^$' -bench BenchmarkDelivery -benchtime 5x -count 5 ./notify
func BenchmarkDelivery(b *testing.B) {
	for _, st := range stores {
		for _, n := range []int{1, 100} {
			b.Run(fmt.Sprintf("store=%s/instances=%d", st.name, n), func(b *testing.B) {
				benchDelivery(b, n, st.node, st.open)
			})
		}
	}
}

func benchDelivery(b *testing.B, n int, node bool, open func(testing.TB) (rigStore, portrait.Blobs)) {
	r := newRig(b, n, false, node, open)
	defer r.stop()
	per := 2000 / n
	r.produce(b, per) // warm up: connections, caches
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		total += r.produce(b, per)
	}
	b.ReportMetric(float64(per*n*b.N)/total.Seconds(), "notifications/s")
}

// TestDeliveryOrderAcrossManyInstances is the benchmark's set-up as a
// test, on both stores: every notification of every instance arrives, each
// instance's in the order it was committed.
func TestDeliveryOrderAcrossManyInstances(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) { testDeliveryOrder(t, st.node, st.open) })
	}
}

func testDeliveryOrder(t *testing.T, node bool, open func(testing.TB) (rigStore, portrait.Blobs)) {
	r := newRig(t, 20, true, node, open)
	defer r.stop()
	r.produce(t, 30)
	close(r.bodies)
	last := map[int64]string{}
	count := map[int64]int{}
	for b := range r.bodies {
		var n struct {
			InstanceData struct {
				IDInstance int64 `json:"idInstance"`
			} `json:"instanceData"`
			StateInstance string `json:"stateInstance"`
		}
		if err := json.Unmarshal(b, &n); err != nil {
			t.Fatal(err)
		}
		id := n.InstanceData.IDInstance
		// Producers alternate authorized / notAuthorized: in order, no two
		// neighbours are equal.
		if last[id] == n.StateInstance {
			t.Fatalf("instance %d: %s twice in a row: out of order", id, n.StateInstance)
		}
		last[id] = n.StateInstance
		count[id]++
	}
	for _, id := range r.ids {
		if count[int64(id)] != 30 {
			t.Errorf("instance %d: %d notifications, want 30", id, count[int64(id)])
		}
	}
}
