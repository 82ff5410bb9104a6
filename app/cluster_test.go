package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/client"
	"github.com/portrait-dev/portrait/internal/pgtest"
	"github.com/portrait-dev/portrait/internal/servertest"
	"github.com/portrait-dev/portrait/postgres"
	"github.com/portrait-dev/portrait/sandbox"
)

// clusterNode is one portrait process of the cluster test.
type clusterNode struct {
	name   string
	dir    string // its data directory: its node id ends with it
	record string // its sandbox record
	args   []string
	bin    string
	proc   *child
}

func (n *clusterNode) start(t *testing.T) {
	t.Helper()
	n.proc = startChild(t, n.bin, n.args...)
}

func (n *clusterNode) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := n.proc.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to node %s: %v", sig, n.name, err)
	}
}

// owns reports whether node id (host:data directory) is n's.
func (n *clusterNode) owns(l portrait.Lease) bool { return strings.HasSuffix(l.Node, ":"+n.dir) }

// TestCluster runs three portrait processes on one PostgreSQL database
// with 100 sandbox instances: every method answers through every node;
// SIGKILL of a node → its instances answer elsewhere within the lease
// bound and every acknowledged getAvatarAsync is delivered; SIGSTOP of a
// node past its leases, then SIGCONT → it acts for none of its former
// instances; SIGTERM → hand-over without a failed request. The sandbox's
// records of all nodes then prove that no instance was ever acted for by
// two nodes at once.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three portrait processes; skipped with -short")
	}
	ctx := context.Background()
	dsn := pgtest.DB(t)
	bin := buildPortrait(t)
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // after the failure report below

	recv := newCountingReceiver(t)
	const adminToken = "cluster-admin-token-for-the-test"
	nodes := make([]*clusterNode, 3)
	for i, name := range []string{"a", "b", "c"} {
		dir := filepath.Join(t.TempDir(), "node-"+name)
		n := &clusterNode{name: name, dir: dir, record: filepath.Join(t.TempDir(), "record-"+name+".jsonl"), bin: bin}
		n.args = append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dir, "--database", dsn,
			"--admin-token", adminToken, "--whatsapp-version", servertest.TestWhatsAppVersion,
			"--sandbox-record", n.record, "--webhook-allow", "127.0.0.0/8",
			"--webhook-backoff-min", "50ms", "--webhook-backoff-max", "200ms"}, fastArgs...)
		nodes[i] = n
	}
	// All three start at once on the empty database: one of them makes
	// the two first instances.
	for _, n := range nodes {
		n.proc = spawnChild(t, n.bin, n.args...)
	}
	// On failure, anywhere below: the cluster's view and every node's log.
	t.Cleanup(func() {
		if t.Failed() {
			all, _ := db.Leases(ctx)
			ns, _ := db.Nodes(ctx, time.Hour)
			now, _ := db.Now(ctx)
			t.Logf("now %v\nnodes %+v\nleases %+v", now, ns, all)
			for _, n := range nodes {
				t.Logf("node %s log:\n%s", n.name, n.proc.out)
			}
		}
	})
	var wa creds
	for _, n := range nodes {
		n.proc.waitListening(t)
		if strings.Contains(n.proc.out.String(), "first start") {
			if wa.ID != 0 {
				t.Errorf("node %s made first instances too", n.name)
			}
			wa, _ = parseWelcome(n.proc.out.String())
		}
	}
	if made, err := db.Instances(ctx); err != nil || len(made) != 2 || wa.ID == 0 {
		t.Fatalf("three nodes starting at once made %d instances (%v), want the two first ones", len(made), err)
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	admin := &server{Server: &servertest.Server{URL: a.proc.URL}, Admin: adminToken}

	// 100 instances, made on node a, their webhooks set through node b.
	insts := []creds{wa}
	for len(insts) < 100 {
		code, body := admin.admin(t, "POST", "/admin/instances", map[string]string{"typeInstance": "whatsapp"})
		var made struct {
			IDInstance       int64  `json:"idInstance"`
			APITokenInstance string `json:"apiTokenInstance"`
		}
		if code != 201 || json.Unmarshal(body, &made) != nil {
			t.Fatalf("create: %d %s", code, body)
		}
		insts = append(insts, creds{ID: made.IDInstance, Token: made.APITokenInstance})
	}
	for _, in := range insts {
		setWebhook(t, newClient(b.proc.URL, in.ID, in.Token), recv.URL, "")
	}
	waitServed(t, a.proc.URL, insts, 30*time.Second)
	// Every instance (the first MAX one too) has its owner, and every node
	// its share: instances made on node a before it saw the others join
	// are handed over at its next round.
	var leases []portrait.Lease
	eventuallyWithin(t, 10*time.Second, func() error {
		all, err := db.Instances(ctx)
		if leases = leasesOf(t, db); err == nil && len(leases) != len(all) {
			err = fmt.Errorf("%d of %d instances have an owner", len(leases), len(all))
		}
		for _, n := range nodes {
			if owned := countOwned(leases, n); err == nil && owned < 15 {
				err = fmt.Errorf("node %s owns %d of %d instances", n.name, owned, len(leases))
			}
		}
		return err
	})
	var counted float64
	for _, n := range nodes {
		if owned := countOwned(leases, n); owned < 15 {
			t.Errorf("node %s owns %d of %d instances; want its share", n.name, owned, len(leases))
		}
		counted += n.metricSum(t, "portrait_instances{")
	}
	if counted != float64(len(leases)) {
		t.Errorf("the nodes' portrait_instances add up to %v, want the cluster's %d", counted, len(leases))
	}

	t.Run("EveryMethodThroughEveryNode", func(t *testing.T) {
		// An instance of each node, called through each node.
		for _, owner := range nodes {
			in := instanceOf(t, insts, leases, owner)
			for _, via := range nodes {
				checkMethods(t, via, in)
			}
		}
		// The instance list through any node has every instance's state,
		// from the node that serves it.
		for _, via := range nodes {
			viaNode := &server{Server: &servertest.Server{URL: via.proc.URL}, Admin: adminToken}
			code, body := viaNode.admin(t, "GET", "/admin/instances", nil)
			var list []struct {
				IDInstance    int64  `json:"idInstance"`
				StateInstance string `json:"stateInstance"`
			}
			if code != 200 || json.Unmarshal(body, &list) != nil || len(list) != len(leases) {
				t.Fatalf("instance list through node %s: %d, %d entries, want %d", via.name, code, len(list), len(leases))
			}
			for _, in := range list {
				if in.StateInstance != "authorized" {
					t.Errorf("instance list through node %s: instance %d is %q", via.name, in.IDInstance, in.StateInstance)
				}
			}
		}
		// The admin API forwards too: a sandbox change made through one
		// node is seen through another.
		in := instanceOf(t, insts, leases, c)
		viaB := &server{Server: &servertest.Server{URL: b.proc.URL}, Admin: adminToken}
		if code, body := viaB.admin(t, "GET", fmt.Sprintf("/admin/instances/%d", in.ID), nil); code != 200 || !strings.Contains(string(body), `"authorized"`) {
			t.Errorf("admin instance through another node: %d %s", code, body)
		}
	})

	t.Run("LongPollWakesAcrossNodes", func(t *testing.T) {
		// An instance without a webhook, polled through every node: a
		// notification committed by its owner ends the long polls at
		// once, wherever they wait.
		code, body := admin.admin(t, "POST", "/admin/instances", map[string]string{"typeInstance": "whatsapp"})
		var in creds
		var made struct {
			IDInstance       int64  `json:"idInstance"`
			APITokenInstance string `json:"apiTokenInstance"`
		}
		if code != 201 || json.Unmarshal(body, &made) != nil {
			t.Fatalf("create: %d %s", code, body)
		}
		in = creds{ID: made.IDInstance, Token: made.APITokenInstance}
		waitServed(t, a.proc.URL, []creds{in}, 10*time.Second)
		for _, via := range nodes {
			polled := make(chan time.Duration, 1)
			go func() {
				start := time.Now()
				n, err := newClient(via.proc.URL, in.ID, in.Token).ReceiveNotification(ctx, 20*time.Second)
				if err != nil || n == nil {
					t.Errorf("receiveNotification through node %s: %+v, %v", via.name, n, err)
				}
				polled <- time.Since(start)
			}()
			time.Sleep(300 * time.Millisecond) // the poll waits
			asked := time.Now()
			other := nodes[(slices.Index(nodes, via)+1)%3]
			if err := newClient(other.proc.URL, in.ID, in.Token).GetAvatarAsync(ctx, "11001230002@c.us"); err != nil {
				t.Fatal(err)
			}
			took := <-polled
			if waited := time.Since(asked); waited > 5*time.Second {
				t.Errorf("a long poll through node %s ended %v after getAvatarAsync through node %s (poll %v)", via.name, waited, other.name, took)
			}
			n, err := newClient(via.proc.URL, in.ID, in.Token).ReceiveNotification(ctx, 5*time.Second)
			if err != nil || n == nil {
				t.Fatalf("receiveNotification again: %+v, %v", n, err)
			}
			if ok, err := newClient(via.proc.URL, in.ID, in.Token).DeleteNotification(ctx, n.ReceiptID); err != nil || !ok {
				t.Fatalf("deleteNotification through node %s: %v, %v", via.name, ok, err)
			}
		}
	})

	t.Run("PictureChangeReachesEveryNode", func(t *testing.T) {
		// Nodes b and c answer getAvatar for node a's instance from what
		// they learned from a; a picture change a sees drops it on every
		// node at once (the cache lives far longer than this test).
		in := instanceOf(t, insts, leases, a)
		const chat = "11001230001@c.us"
		before := map[string]string{}
		for _, via := range nodes {
			av, err := newClient(via.proc.URL, in.ID, in.Token).GetAvatar(ctx, chat)
			if err != nil || av.URLAvatar == "" {
				t.Fatalf("getAvatar through node %s: %+v, %v", via.name, av, err)
			}
			before[via.name] = avatarPath(av.URLAvatar)
		}
		hits := b.metricSum(t, `portrait_avatar_cache_requests_total{result="hit"}`)
		if av, err := newClient(b.proc.URL, in.ID, in.Token).GetAvatar(ctx, chat); err != nil || avatarPath(av.URLAvatar) != before["a"] {
			t.Fatalf("warm getAvatar through node b: %+v, %v; want %s", av, err, before["a"])
		}
		if b.metricSum(t, `portrait_avatar_cache_requests_total{result="hit"}`) <= hits {
			t.Error("node b forwarded a getAvatar it had learned the answer to")
		}
		viaC := &server{Server: &servertest.Server{URL: c.proc.URL}, Admin: adminToken}
		if code, body := viaC.admin(t, "POST", fmt.Sprintf("/admin/instances/%d/sandbox/chats/%s", in.ID, chat),
			map[string]any{"picture": encodePNG(t, testImage(300, 200, true))}); code != 200 {
			t.Fatalf("sandbox change through node c: %d %s", code, body)
		}
		for _, via := range nodes {
			eventuallyWithin(t, 3*time.Second, func() error {
				av, err := newClient(via.proc.URL, in.ID, in.Token).GetAvatar(ctx, chat)
				if err == nil && (av.URLAvatar == "" || avatarPath(av.URLAvatar) == before["a"]) {
					err = fmt.Errorf("node %s still answers the old picture %s", via.name, before["a"])
				}
				return err
			})
		}
	})

	// SIGKILL: every getAvatarAsync acknowledged before or during the kill
	// is delivered, and the dead node's instances are served elsewhere
	// within the lease bound.
	var acked sync.Map // chatId → true
	var seq atomic.Int64
	stop := load(4, func(w, _ int) {
		via := []*clusterNode{a, b}[w%2]
		k := seq.Add(1)
		in := insts[k%int64(len(insts))]
		chat := fmt.Sprintf("79%09d@c.us", k)
		if newClient(via.proc.URL, in.ID, in.Token).GetAvatarAsync(ctx, chat) == nil {
			acked.Store(chat, true)
		}
	})
	time.Sleep(time.Second)
	cOwned := ownedBy(leases, c)
	c.signal(t, syscall.SIGKILL)
	c.proc.cmd.Wait()
	killed := time.Now()
	waitServed(t, a.proc.URL, pick(insts, cOwned), 15*time.Second)
	failover := time.Since(killed)
	t.Logf("SIGKILL: node c's %d instances answered through node a after %v", len(cOwned), failover.Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	stop()
	var want []string
	acked.Range(func(k, _ any) bool { want = append(want, k.(string)); return true })
	if len(want) < 100 {
		t.Fatalf("only %d getAvatarAsync requests acknowledged", len(want))
	}
	eventuallyWithin(t, 60*time.Second, func() error {
		if missing := recv.missing(want); len(missing) > 0 {
			return fmt.Errorf("%d of %d acknowledged getAvatarAsync requests never notified, e.g. %v", len(missing), len(want), missing[:min(5, len(missing))])
		}
		return nil
	})
	t.Logf("SIGKILL: all %d acknowledged getAvatarAsync requests delivered", len(want))

	// Node c comes back and takes its share again.
	c.start(t)
	eventuallyWithin(t, 20*time.Second, func() error {
		if n := countOwned(leasesOf(t, db), c); n < 15 {
			return fmt.Errorf("node c owns %d instances after its restart", n)
		}
		return nil
	})
	waitServed(t, b.proc.URL, insts, 20*time.Second)

	// SIGSTOP past the leases, then SIGCONT: node c acts for none of its
	// former instances (checked on the records below).
	// Lookups of chats never looked up before (each reaches the
	// messenger) keep arriving for node c's instances through the other
	// nodes: some are in flight at node c when it is paused.
	cOwned = ownedBy(leasesOf(t, db), c)
	cInsts := pick(insts, cOwned)
	stop = load(4, func(w, k int) {
		via := []*clusterNode{a, b}[w%2]
		in := cInsts[k%len(cInsts)]
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		newClient(via.proc.URL, in.ID, in.Token).GetAvatar(lctx, fmt.Sprintf("78%09d@c.us", seq.Add(1)))
	})
	time.Sleep(300 * time.Millisecond)
	c.signal(t, syscall.SIGSTOP)
	stopped := time.Now()
	eventuallyWithin(t, 20*time.Second, func() error {
		for _, l := range leasesOf(t, db) {
			if c.owns(l) && l.Expires.After(time.Now()) {
				return fmt.Errorf("node c still holds the lease of %d", l.Instance)
			}
		}
		return nil
	})
	waitServed(t, a.proc.URL, pick(insts, cOwned), 15*time.Second)
	t.Logf("SIGSTOP: node c's %d instances answered through node a after %v", len(cOwned), time.Since(stopped).Round(time.Millisecond))
	c.signal(t, syscall.SIGCONT)
	continued := time.Now()
	time.Sleep(3 * time.Second)
	stop()

	// SIGTERM: node b hands its instances over while requests for them
	// keep arriving at nodes a and c; none fails.
	bOwned := ownedBy(leasesOf(t, db), b)
	bInsts := pick(insts, bOwned)
	var failed, served atomic.Int64
	var firstFailure atomic.Value
	stop = load(4, func(w, k int) {
		via := []*clusterNode{a, c}[w%2]
		in := bInsts[k%len(bInsts)]
		if _, err := newClient(via.proc.URL, in.ID, in.Token).GetAvatar(ctx, "11001230001@c.us"); err != nil {
			failed.Add(1)
			firstFailure.CompareAndSwap(nil, err.Error())
		} else {
			served.Add(1)
		}
	})
	time.Sleep(500 * time.Millisecond)
	b.signal(t, syscall.SIGTERM)
	if err := b.proc.cmd.Wait(); err != nil {
		t.Errorf("node b after SIGTERM: %v\n%s", err, b.proc.out)
	}
	time.Sleep(2 * time.Second)
	stop()
	if failed.Load() > 0 {
		t.Errorf("SIGTERM: %d of %d requests failed during the hand-over, e.g. %v", failed.Load(), failed.Load()+served.Load(), firstFailure.Load())
	}
	for _, l := range leasesOf(t, db) {
		if b.owns(l) {
			t.Errorf("node b still holds the lease of %d after SIGTERM", l.Instance)
		}
	}
	t.Logf("SIGTERM: %d requests for node b's %d instances served during the hand-over", served.Load(), len(bOwned))

	checkRecords(t, nodes, continued, b)
}

// checkMethods calls every GREEN-API method for in through node via.
func checkMethods(t *testing.T, via *clusterNode, in creds) {
	t.Helper()
	ctx := context.Background()
	cl := newClient(via.proc.URL, in.ID, in.Token)
	what := fmt.Sprintf("instance %d through node %s", in.ID, via.name)
	if st, err := cl.GetStateInstance(ctx); err != nil || st != "authorized" {
		t.Errorf("getStateInstance of %s: %q, %v", what, st, err)
	}
	if av, err := cl.GetAvatar(ctx, "11001230001@c.us"); err != nil || av.URLAvatar == "" {
		t.Errorf("getAvatar of %s: %+v, %v", what, av, err)
	} else {
		checkJPEG(t, av.URLAvatar, 640)
		// The picture is at its URL on every node.
		checkJPEG(t, via.proc.URL+avatarPath(av.URLAvatar), 640)
	}
	if got, err := cl.GetAvatars(ctx, []string{"11001230001@c.us", "11001230002@c.us"}, nil); err != nil || len(got) != 2 {
		t.Errorf("getAvatars of %s: %+v, %v", what, got, err)
	}
	if _, err := cl.GetSettings(ctx); err != nil {
		t.Errorf("getSettings of %s: %v", what, err)
	}
	if ws, err := cl.GetWaSettings(ctx); err != nil || ws.StateInstance != "authorized" {
		t.Errorf("getWaSettings of %s: %+v, %v", what, ws, err)
	}
	if _, err := cl.GetAccountSettings(ctx); err != nil {
		t.Errorf("getAccountSettings of %s: %v", what, err)
	}
	if qr, err := cl.QR(ctx); err != nil || qr.Type != "alreadyLogged" {
		t.Errorf("qr of %s: %+v, %v", what, qr, err)
	}
	if r, err := cl.SetProfilePicture(ctx, "me.png", bytes.NewReader(encodePNG(t, testImage(300, 300, false)))); err != nil || !r.SetProfilePicture {
		t.Errorf("setProfilePicture of %s: %+v, %v", what, r, err)
	}
	if r, err := cl.SetGroupPicture(ctx, "120363000000000001@g.us", "g.png", bytes.NewReader(encodePNG(t, testImage(300, 300, false)))); err != nil || !r.SetGroupPicture {
		t.Errorf("setGroupPicture of %s: %+v, %v", what, r, err)
	}
	if r, err := cl.RemoveGroupPicture(ctx, "120363000000000001@g.us"); err != nil || !r.OK {
		t.Errorf("removeGroupPicture of %s: %+v, %v", what, r, err)
	}
	if r, err := cl.RemoveProfilePicture(ctx); err != nil || !r.OK {
		t.Errorf("removeProfilePicture of %s: %+v, %v", what, r, err)
	}
	if err := cl.GetAvatarAsync(ctx, "11001230002@c.us"); err != nil {
		t.Errorf("getAvatarAsync of %s: %v", what, err)
	}
	// A linked account gets no pairing code; the answer is the owner's,
	// not a node's failure.
	if _, err := cl.GetAuthorizationCode(ctx, 11001234567); err != nil {
		if e, ok := err.(*client.Error); !ok || e.StatusCode >= 500 {
			t.Errorf("getAuthorizationCode of %s: %v", what, err)
		}
	}
	if ok, err := cl.Reboot(ctx); err != nil || !ok {
		t.Errorf("reboot of %s: %v, %v", what, ok, err)
	}
	eventuallyWithin(t, 10*time.Second, func() error {
		st, err := cl.GetStateInstance(ctx)
		if err == nil && st != "authorized" {
			err = fmt.Errorf("state %q after reboot", st)
		}
		return err
	})
	// The webhook is set, so the queue is not for polling: every node
	// says so.
	if _, err := cl.ReceiveNotification(ctx, time.Second); err == nil || !strings.Contains(err.Error(), "sent to its webhookUrl") {
		t.Errorf("receiveNotification of %s with a webhook set: %v", what, err)
	}
	if _, err := cl.DeleteNotification(ctx, 1); err != nil {
		t.Errorf("deleteNotification of %s: %v", what, err)
	}
}

// countingReceiver is a webhook receiver that remembers the chat ids of
// the avatarInfo notifications it got.
type countingReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string]bool
}

func newCountingReceiver(t *testing.T) *countingReceiver {
	r := &countingReceiver{seen: map[string]bool{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var n client.NotificationBody
		if json.Unmarshal(b, &n) == nil && n.AvatarInfo != nil {
			r.mu.Lock()
			r.seen[n.AvatarInfo.ChatID] = true
			r.mu.Unlock()
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *countingReceiver) missing(want []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, w := range want {
		if !r.seen[w] {
			out = append(out, w)
		}
	}
	return out
}

// waitServed waits until every instance of insts is authorized as seen
// through the node at url.
func waitServed(t *testing.T, url string, insts []creds, within time.Duration) {
	t.Helper()
	eventuallyWithin(t, within, func() error {
		for _, in := range insts {
			st, err := newClient(url, in.ID, in.Token).GetStateInstance(context.Background())
			if err != nil || st != "authorized" {
				return fmt.Errorf("instance %d: state %q, %v", in.ID, st, err)
			}
		}
		return nil
	})
}

func eventuallyWithin(t *testing.T, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func leasesOf(t *testing.T, db *postgres.DB) []portrait.Lease {
	t.Helper()
	ls, err := db.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	now, err := db.Now(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(ls, func(l portrait.Lease) bool { return !l.Expires.After(now) })
}

func countOwned(leases []portrait.Lease, n *clusterNode) int { return len(ownedBy(leases, n)) }

func ownedBy(leases []portrait.Lease, n *clusterNode) []portrait.InstanceID {
	var out []portrait.InstanceID
	for _, l := range leases {
		if n.owns(l) {
			out = append(out, l.Instance)
		}
	}
	return out
}

func pick(insts []creds, ids []portrait.InstanceID) []creds {
	var out []creds
	for _, in := range insts {
		if slices.Contains(ids, portrait.InstanceID(in.ID)) {
			out = append(out, in)
		}
	}
	return out
}

func instanceOf(t *testing.T, insts []creds, leases []portrait.Lease, n *clusterNode) creds {
	t.Helper()
	got := pick(insts, ownedBy(leases, n))
	if len(got) == 0 {
		t.Fatalf("node %s owns none of the test's instances", n.name)
	}
	return got[0]
}

// checkRecords reads the sandbox records of every node and checks, per
// instance, that no node acted under a lease after a newer lease of the
// instance was opened on another node; that a node that was paused (c,
// continued at resumed) made no call at all after it resumed; and that
// the node stopped with SIGTERM (term) closed each of its sessions before
// the next owner opened one.
func checkRecords(t *testing.T, nodes []*clusterNode, resumed time.Time, term *clusterNode) {
	t.Helper()
	var all []sandbox.Record
	for _, n := range nodes {
		f, err := os.Open(n.record)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var r sandbox.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("record of node %s: %v: %s", n.name, err, sc.Text())
			}
			all = append(all, r)
		}
		f.Close()
	}
	slices.SortStableFunc(all, func(x, y sandbox.Record) int { return x.At.Compare(y.At) })
	per := map[portrait.InstanceID][]sandbox.Record{}
	for _, r := range all {
		per[r.Instance] = append(per[r.Instance], r)
	}
	acts, opens := 0, 0
	for id, rs := range per {
		newest := int64(0) // the largest fence opened so far
		open := map[int64]string{}
		for _, r := range rs {
			if r.Node == "" || r.Fence == 0 {
				t.Errorf("instance %d: a record without a lease: %+v", id, r)
				continue
			}
			switch r.Event {
			case sandbox.RecordOpen:
				opens++
				if r.Fence <= newest {
					t.Errorf("instance %d: opened under fence %d after fence %d", id, r.Fence, newest)
				}
				for f, node := range open {
					if node != r.Node && strings.HasSuffix(node, ":"+term.dir) {
						t.Errorf("instance %d: opened on %s (fence %d) while still open on the node stopped with SIGTERM (fence %d)", id, r.Node, r.Fence, f)
					}
				}
				newest = r.Fence
				open[r.Fence] = r.Node
			case sandbox.RecordClose:
				delete(open, r.Fence)
			case sandbox.RecordAct:
				acts++
				if r.Fence < newest {
					t.Errorf("instance %d: node %s acted under fence %d at %v, after fence %d was opened", id, r.Node, r.Fence, r.At, newest)
				}
			}
		}
	}
	for _, r := range all {
		if r.Event == sandbox.RecordAct && strings.HasSuffix(r.Node, ":"+nodes[2].dir) && r.At.After(resumed) && r.At.Before(resumed.Add(2*time.Second)) {
			// Node c may act again only for instances it took anew.
			for _, o := range per[r.Instance] {
				if o.Event == sandbox.RecordOpen && o.Fence == r.Fence && o.At.Before(resumed) {
					t.Errorf("instance %d: node c acted after SIGCONT under a lease from before it was paused (fence %d)", r.Instance, r.Fence)
				}
			}
		}
	}
	if acts == 0 || opens < 100 {
		t.Errorf("the records hold %d calls and %d opens; the test did not exercise them", acts, opens)
	}
	t.Logf("records: %d entries, %d sessions opened, %d calls, over %d instances", len(all), opens, acts, len(per))
}

// metricSum reads the node's /metrics and adds up the samples of the
// series that start with prefix.
func (n *clusterNode) metricSum(t *testing.T, prefix string) float64 {
	t.Helper()
	code, _, body := raw(t, "GET", n.proc.URL+"/metrics", "", nil)
	if code != 200 {
		t.Fatalf("metrics of node %s: %d", n.name, code)
	}
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			var v float64
			fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v)
			sum += v
		}
	}
	return sum
}

// load runs call in n workers, each over and over (w is the worker, k
// counts its calls from w), until the returned stop is called; stop
// returns once every worker has finished its call.
func load(n int, call func(w, k int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; ; k++ {
				select {
				case <-done:
					return
				default:
				}
				call(w, k)
			}
		}()
	}
	return func() { close(done); wg.Wait() }
}
