package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/pgtest"
	"github.com/portrait-dev/portrait/storetest"
)

// openTemp opens a new, empty database of its own. The caller closes it.
func openTemp(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), pgtest.DB(t))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// mustOpen opens the database at dsn and closes it at the end of the test.
func mustOpen(t *testing.T, dsn string) *DB {
	t.Helper()
	db, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) portrait.Store { return openTemp(t) })
}

func TestQueue(t *testing.T) {
	storetest.RunQueue(t, func(t *testing.T) storetest.QueueStore { return openTemp(t) })
}

// appliedVersions returns the versions recorded in schema_migrations.
func appliedVersions(t *testing.T, db *DB) []int {
	t.Helper()
	rows, err := db.pool.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func wantAllMigrations(t *testing.T, db *DB) {
	t.Helper()
	got := appliedVersions(t, db)
	if len(got) != len(migrations) {
		t.Fatalf("applied migrations %v, want 1…%d", got, len(migrations))
	}
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("applied migrations %v, want 1…%d", got, len(migrations))
		}
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	dsn := pgtest.DB(t)
	first := mustOpen(t, dsn)
	wantAllMigrations(t, first)
	if err := first.CreateInstance(t.Context(), instance(1101000001)); err != nil {
		t.Fatal(err)
	}
	// Opening again applies nothing and keeps the data.
	second := mustOpen(t, dsn)
	wantAllMigrations(t, second)
	if _, err := second.Instance(t.Context(), 1101000001); err != nil {
		t.Errorf("instance after opening again: %v", err)
	}
}

// TestConcurrentOpen opens one new database from several goroutines at
// once (as several nodes starting together do): each migration is applied
// once, and every handle works.
func TestConcurrentOpen(t *testing.T) {
	dsn := pgtest.DB(t)
	const n = 4
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = Open(t.Context(), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { dbs[i].Close() })
	}
	wantAllMigrations(t, dbs[0])
	for i, db := range dbs {
		if err := db.CreateInstance(t.Context(), instance(portrait.InstanceID(1101000000+i))); err != nil {
			t.Errorf("handle %d: %v", i, err)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dsn := pgtest.DB(t)
	db := mustOpen(t, dsn)
	if _, err := db.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	other, err := Open(t.Context(), dsn)
	if err == nil {
		other.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a database with a newer schema: %v, want it to say so", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dsn := pgtest.DB(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("nobody", "s3cret-password")
	u.Path = "/no_such_database"
	for _, bad := range []string{"postgres://x:s3cret-password@[::1", u.String()} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		db, err := Open(ctx, bad)
		cancel()
		if err == nil {
			db.Close()
			t.Errorf("Open succeeded")
			continue
		}
		if strings.Contains(err.Error(), "s3cret-password") {
			t.Errorf("Open's error shows the password: %v", err)
		}
	}
}

// TestTwoHandles: a change through one handle (another process) is seen
// through the other, Generation included.
func TestTwoHandles(t *testing.T) {
	dsn := pgtest.DB(t)
	a, b := mustOpen(t, dsn), mustOpen(t, dsn)
	ctx := t.Context()
	g, err := b.Generation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreateInstance(ctx, instance(1101000001)); err != nil {
		t.Fatal(err)
	}
	if g2, err := b.Generation(ctx); err != nil || g2 == g {
		t.Errorf("Generation through the other handle = %d, %v; want a change from %d", g2, err, g)
	}
	if _, err := b.Instance(ctx, 1101000001); err != nil {
		t.Errorf("Instance through the other handle: %v", err)
	}
}

// TestEnqueueWaitsForEarlierIDs checks the per-instance order of receipt
// ids: while another transaction holds an uncommitted notification of an
// instance, an Enqueue to the same instance waits for it (so a reader never
// sees the later id first and skips the earlier one when it pages with
// Peek's after), while an Enqueue to another instance does not.
func TestEnqueueWaitsForEarlierIDs(t *testing.T) {
	dsn := pgtest.DB(t)
	db, other := mustOpen(t, dsn), mustOpen(t, dsn)
	ctx := t.Context()
	a, b := instance(1101000001), instance(1101000002)
	for _, inst := range []portrait.Instance{a, b} {
		if err := db.CreateInstance(ctx, inst); err != nil {
			t.Fatal(err)
		}
	}
	note := func(id portrait.InstanceID, text string) portrait.Notification {
		return portrait.Notification{Instance: id, Body: []byte(`{"text":"` + text + `"}`), CreatedAt: time.Now()}
	}
	for _, finish := range []bool{false, true} {
		// A transaction of "another process" that has taken a receipt
		// id for a and not committed yet.
		tx, err := other.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Ended before the pool is closed (which waits for it), also when
		// the test fails.
		t.Cleanup(func() { tx.Rollback(context.Background()) })
		rows := newNotificationRows([]portrait.Notification{note(a.ID, "first")})
		if _, err := queryIDs(ctx, tx, lockInstances, rows.lock); err != nil {
			t.Fatal(err)
		}
		first, err := queryIDs(ctx, tx, insertNotifications, rows.instances, rows.bodies, rows.created)
		if err != nil {
			t.Fatal(err)
		}

		// Another instance is not held up.
		if _, err := db.Enqueue(ctx, []portrait.Notification{note(b.ID, "b")}); err != nil {
			t.Fatal(err)
		}
		type result struct {
			id  int64
			err error
		}
		done := make(chan result, 1)
		go func() {
			n := note(a.ID, "second")
			if finish {
				id, err := db.AddJob(ctx, portrait.Job{Instance: a.ID, Kind: "avatarInfo", DueAt: time.Now(), CreatedAt: time.Now()})
				if err != nil {
					done <- result{0, err}
					return
				}
				r, err := db.FinishJob(ctx, portrait.Job{ID: id, Instance: a.ID}, &n)
				done <- result{r, err}
				return
			}
			ids, err := db.Enqueue(ctx, []portrait.Notification{n})
			if err != nil {
				done <- result{0, err}
				return
			}
			done <- result{ids[0], nil}
		}()
		select {
		case r := <-done:
			t.Fatalf("second notification (through FinishJob: %v) committed with id %d, %v while an earlier one was not", finish, r.id, r.err)
		case <-time.After(300 * time.Millisecond):
		}
		if got, err := db.Peek(ctx, a.ID, 0, 10); err != nil || len(got) != 0 {
			t.Fatalf("Peek while neither is committed = %v, %v; want nothing", got, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.id <= first[0] {
			t.Errorf("second notification got id %d, not after the first's %d", r.id, first[0])
		}
		got, err := db.DeleteMany(ctx, a.ID, []int64{first[0], r.id})
		if err != nil || got != 2 {
			t.Fatalf("DeleteMany = %d, %v; want 2", got, err)
		}
	}
}

// TestWhatsmeowStore runs whatsmeow's device store on SQL(), as the
// whatsapp engine does: its migrations, a device written and read back.
func TestWhatsmeowStore(t *testing.T) {
	db := mustOpen(t, pgtest.DB(t))
	ctx := t.Context()
	c := sqlstore.NewWithDB(db.SQL(), db.Dialect(), nil)
	if err := c.Upgrade(ctx); err != nil {
		t.Fatalf("whatsmeow's migrations: %v", err)
	}
	dev := c.NewDevice()
	jid := types.NewADJID("79001234567", 0, 8)
	dev.ID = &jid
	dev.PushName = "portrait"
	dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte("details"), AccountSignature: make([]byte, 64),
		AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64)}
	if err := c.PutDevice(ctx, dev); err != nil {
		t.Fatalf("PutDevice: %v", err)
	}
	got, err := c.GetDevice(ctx, jid)
	if err != nil || got == nil {
		t.Fatalf("GetDevice = %v, %v", got, err)
	}
	if got.PushName != "portrait" || got.ID.String() != jid.String() {
		t.Errorf("device read back: %s %q, want %s %q", got.ID, got.PushName, jid, "portrait")
	}
	// portrait's own tables are beside whatsmeow's, untouched.
	if err := db.CreateInstance(ctx, instance(1101000001)); err != nil {
		t.Fatal(err)
	}
}

func instance(id portrait.InstanceID) portrait.Instance {
	return portrait.Instance{
		ID:        id,
		Type:      portrait.TypeWhatsApp,
		Engine:    "sandbox",
		TokenHash: []byte("0123456789abcdef0123456789abcdef"),
		Settings:  portrait.DefaultSettings(),
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC),
	}
}

func TestBlobs(t *testing.T) {
	storetest.RunBlobs(t, func(t *testing.T) portrait.Blobs {
		db := openTemp(t)
		t.Cleanup(func() { db.Close() })
		return db.Blobs()
	})
}

// TestBlobsShared: a picture stored through one handle (node) is served
// through another.
func TestBlobsShared(t *testing.T) {
	dsn := pgtest.DB(t)
	a, b := mustOpen(t, dsn).Blobs(), mustOpen(t, dsn).Blobs()
	if err := a.Put(t.Context(), "abc.jpg", []byte("picture")); err != nil {
		t.Fatal(err)
	}
	bl, err := b.Open(t.Context(), "abc.jpg")
	if err != nil {
		t.Fatalf("Open through the other handle: %v", err)
	}
	defer bl.Close()
	if bl.Size() != int64(len("picture")) {
		t.Errorf("Size() = %d", bl.Size())
	}
}

func TestLeases(t *testing.T) {
	storetest.RunLeases(t, func(t *testing.T) storetest.LeaseStore { return openTemp(t) })
}

func TestClaims(t *testing.T) {
	storetest.RunClaims(t, func(t *testing.T) storetest.ClaimStore { return openTemp(t) })
}

func TestFencing(t *testing.T) {
	storetest.RunFencing(t, func(t *testing.T) storetest.FenceStore { return openTemp(t) })
}

// TestDeleteWhileWriting deletes and creates an instance again and again
// while others write to it, fenced and not: the lock order of the
// transactions must not let a deadlock or any error other than "not
// found" or "lease lost" reach a caller.
func TestDeleteWhileWriting(t *testing.T) {
	db := mustOpen(t, pgtest.DB(t))
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	const id = portrait.InstanceID(1101000001)
	if err := db.CreateInstance(t.Context(), instance(id)); err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		writes atomic.Int64
	)
	report := func(err error) {
		if err == nil {
			writes.Add(1)
			return
		}
		if ctx.Err() != nil || errors.Is(err, portrait.ErrNotFound) || errors.Is(err, portrait.ErrLeaseLost) {
			return
		}
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			report(db.DeleteInstance(ctx, id))
			report(db.CreateInstance(ctx, instance(id)))
		}
	})
	for w := range 6 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				wctx := ctx
				if w%2 == 1 {
					l, err := db.Acquire(ctx, id, fmt.Sprintf("node-%d", w), time.Minute)
					if err != nil && !errors.Is(err, portrait.ErrLeaseHeld) {
						report(err)
						continue
					}
					wctx = portrait.WithLease(ctx, l)
				}
				n := portrait.Notification{Instance: id, Body: []byte(`{}`), CreatedAt: time.Now()}
				switch i % 3 {
				case 0:
					_, err := db.Enqueue(wctx, []portrait.Notification{n})
					report(err)
				case 1:
					jid, err := db.AddJob(wctx, portrait.Job{Instance: id, Kind: "avatarInfo", DueAt: time.Now(), CreatedAt: time.Now()})
					report(err)
					if err == nil {
						_, err = db.FinishJob(wctx, portrait.Job{ID: jid, Instance: id}, &n)
						report(err)
					}
				default:
					report(db.Put(wctx, id, "world", []byte("x")))
				}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i == 10 {
			t.Errorf("… %d errors in all", len(errs))
			break
		}
		t.Error(err)
	}
	if writes.Load() < 10 {
		t.Errorf("only %d writes succeeded", writes.Load())
	}
}

// TestGroupCommit: Enqueue calls that wait while others commit are
// committed together; one of them fenced by a lost lease fails alone,
// with ErrLeaseLost, and the others are stored, in order.
func TestGroupCommit(t *testing.T) {
	dsn := pgtest.DB(t)
	db, other := mustOpen(t, dsn), mustOpen(t, dsn)
	ctx := t.Context()
	a, b, c := instance(1101000001), instance(1101000002), instance(1101000003)
	for _, inst := range []portrait.Instance{a, b, c} {
		if err := db.CreateInstance(ctx, inst); err != nil {
			t.Fatal(err)
		}
	}
	la, err := db.Acquire(ctx, a.ID, "node-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lost := portrait.Lease{Instance: b.ID, Node: "node-1", Fence: 999999} // never granted
	note := func(id portrait.InstanceID, body string) []portrait.Notification {
		return []portrait.Notification{{Instance: id, Body: []byte(body), CreatedAt: time.Now()}}
	}

	// Another process holds c's row: the committers' enqueues for c wait
	// on it, and what comes meanwhile piles up.
	tx, err := other.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	if _, err := tx.Exec(ctx, `SELECT id FROM instances WHERE id = $1 FOR NO KEY UPDATE`, int64(c.ID)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range maxCommitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := db.Enqueue(ctx, note(c.ID, `{"c":1}`)); err != nil {
				t.Error(err)
			}
		}()
	}
	waitFor(t, func() bool {
		db.enqueues.mu.Lock()
		defer db.enqueues.mu.Unlock()
		return db.enqueues.leaders == maxCommitters && len(db.enqueues.pending) == 0
	})
	type result struct {
		i   int
		ids []int64
		err error
	}
	results := make(chan result, 21)
	for i := range 20 {
		go func() {
			ids, err := db.Enqueue(portrait.WithLease(ctx, la), note(a.ID, fmt.Sprintf(`{"n":%d}`, i)))
			results <- result{i, ids, err}
		}()
	}
	go func() {
		_, err := db.Enqueue(portrait.WithLease(ctx, lost), note(b.ID, `{"lost":true}`))
		results <- result{-1, nil, err}
	}()
	waitFor(t, func() bool {
		db.enqueues.mu.Lock()
		defer db.enqueues.mu.Unlock()
		return len(db.enqueues.pending) == 21
	})
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	returned := map[int64]int{} // receipt id → the call it was returned to
	for range 21 {
		r := <-results
		switch {
		case r.i < 0 && !errors.Is(r.err, portrait.ErrLeaseLost):
			t.Errorf("the enqueue under a lost lease: %v, want ErrLeaseLost", r.err)
		case r.i >= 0 && (r.err != nil || len(r.ids) != 1):
			t.Errorf("enqueue %d: %v, %v", r.i, r.ids, r.err)
		case r.i >= 0:
			returned[r.ids[0]] = r.i
		}
	}
	if ns, _ := db.Peek(ctx, b.ID, 0, 10); len(ns) != 0 {
		t.Errorf("the lost lease's notification was stored: %+v", ns)
	}
	ns, err := db.Peek(ctx, a.ID, 0, 100)
	if err != nil || len(ns) != 20 {
		t.Fatalf("instance a holds %d notifications (%v), want 20", len(ns), err)
	}
	// Every call got the receipt id of its own notification.
	for _, n := range ns {
		i, ok := returned[n.ReceiptID]
		if want := fmt.Sprintf(`{"n":%d}`, i); !ok || string(n.Body) != want {
			t.Errorf("stored %s under receipt id %d, which enqueue %d (%v) was given for %s", n.Body, n.ReceiptID, i, ok, want)
		}
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
