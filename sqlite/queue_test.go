package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/storetest"
)

func TestQueue(t *testing.T) {
	storetest.RunQueue(t, func(t *testing.T) storetest.QueueStore {
		return openTemp(t)
	})
}

// body returns a notification body of about 300 bytes, the size of an
// avatarInfo notification.
func body(id portrait.InstanceID, seq int) []byte {
	return fmt.Appendf(nil, `{"typeWebhook":"avatarInfo","instanceData":{"idInstance":%d,"wid":"11001234567@c.us","typeInstance":"whatsapp"},"timestamp":1736000000,"idMessage":"AVATAR-%08d","chatId":"79001234567@c.us","existsWhatsapp":true,"urlAvatar":"https://portrait.example.com/avatars/0123456789abcdef0123456789abcdef.jpg","available":true}`, id, seq)
}

// TestGroupCommit checks that concurrent writes share transactions.
func TestGroupCommit(t *testing.T) {
	db := openTemp(t)
	defer db.Close()
	ctx := t.Context()
	const id = portrait.InstanceID(1101000001)
	if err := db.CreateInstance(ctx, instance(id)); err != nil {
		t.Fatal(err)
	}
	const producers, each = 100, 5
	before := db.w.batches.Load()
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				if _, err := db.Enqueue(ctx, []portrait.Notification{{Instance: id, Body: body(id, p*each+i)}}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	batches := db.w.batches.Load() - before
	t.Logf("%d writes in %d transactions", producers*each, batches)
	if batches >= producers*each/4 {
		t.Errorf("%d concurrent writes took %d transactions, want far fewer", producers*each, batches)
	}
}

// TestBatchIsolation checks that a failing operation in a batch fails
// alone: the others of its transaction are committed.
func TestBatchIsolation(t *testing.T) {
	db := openTemp(t)
	defer db.Close()
	ctx := t.Context()
	const a, missing = portrait.InstanceID(1101000001), portrait.InstanceID(1101000009)
	if err := db.CreateInstance(ctx, instance(a)); err != nil {
		t.Fatal(err)
	}
	// Hold the writer's lock so that the operations below queue up and
	// run as one batch.
	db.wsem <- struct{}{}
	submitted := db.w.submitted.Load()
	type result struct {
		ids []int64
		err error
	}
	results := make([]chan result, 9)
	for i := range results {
		results[i] = make(chan result, 1)
		inst := a
		if i%3 == 1 {
			inst = missing
		}
		go func() {
			ids, err := db.Enqueue(ctx, []portrait.Notification{{Instance: a, Body: body(a, i)}, {Instance: inst, Body: body(inst, i)}})
			results[i] <- result{ids, err}
		}()
	}
	waitSubmitted(t, db, submitted+int64(len(results)))
	before := db.w.batches.Load()
	<-db.wsem
	var kept int64
	for i, ch := range results {
		r := <-ch
		if i%3 == 1 {
			if !errors.Is(r.err, portrait.ErrNotFound) {
				t.Errorf("Enqueue %d to a missing instance: %v, want ErrNotFound", i, r.err)
			}
			continue
		}
		if r.err != nil || len(r.ids) != 2 {
			t.Errorf("Enqueue %d = %v, %v", i, r.ids, r.err)
		}
		kept += 2
	}
	if b := db.w.batches.Load() - before; b > 2 {
		t.Errorf("the nine writes took %d transactions, want one or two", b)
	}
	depths, err := db.Depths(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if depths[a] != kept || len(depths) != 1 {
		t.Errorf("Depths = %v, want %d for %d only", depths, kept, a)
	}
}

// TestBatchFailure checks that when the batch's transaction breaks, every
// operation of the batch fails, nothing of it is kept, and the writer goes
// on with a new connection.
func TestBatchFailure(t *testing.T) {
	db := openTemp(t)
	defer db.Close()
	ctx := t.Context()
	const a = portrait.InstanceID(1101000001)
	if err := db.CreateInstance(ctx, instance(a)); err != nil {
		t.Fatal(err)
	}
	db.wsem <- struct{}{}
	submitted := db.w.submitted.Load()
	errs := make(chan error, 3)
	enq := func() {
		_, err := db.Enqueue(ctx, []portrait.Notification{{Instance: a, Body: body(a, 0)}})
		errs <- err
	}
	go enq()
	waitSubmitted(t, db, submitted+1)
	go func() {
		// Ends the transaction under the writer's feet, as SQLite does
		// on some I/O errors.
		errs <- db.submit(ctx, func(ctx context.Context, b *batch) error {
			_, err := b.tx.ExecContext(ctx, "ROLLBACK")
			return err
		})
	}()
	waitSubmitted(t, db, submitted+2)
	go enq()
	waitSubmitted(t, db, submitted+3)
	<-db.wsem
	for range 3 {
		if err := <-errs; err == nil {
			t.Error("an operation of the broken batch succeeded")
		} else {
			t.Log(err)
		}
	}
	if d, err := db.Depths(ctx); err != nil || len(d) != 0 {
		t.Errorf("Depths after the broken batch = %v, %v; want none", d, err)
	}
	ids, err := db.Enqueue(ctx, []portrait.Notification{{Instance: a, Body: body(a, 1)}})
	if err != nil {
		t.Fatalf("Enqueue after the broken batch: %v", err)
	}
	if n, err := db.Head(ctx, a); err != nil || n.ReceiptID != ids[0] {
		t.Errorf("Head = %d, %v; want %d", n.ReceiptID, err, ids[0])
	}
}

// waitSubmitted waits until n operations have been submitted to the
// writer of db since it was opened.
func waitSubmitted(t *testing.T, db *DB, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for db.w.submitted.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d operations submitted, want %d", db.w.submitted.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCloseDrains checks that Close runs the writes queued before it, and
// that writes after it fail.
func TestCloseDrains(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portrait.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const a = portrait.InstanceID(1101000001)
	if err := db.CreateInstance(ctx, instance(a)); err != nil {
		t.Fatal(err)
	}
	db.wsem <- struct{}{} // hold the writer until Close has begun
	submitted := db.w.submitted.Load()
	const n = 20
	var wg sync.WaitGroup
	ids := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			var r []int64
			r, errs[i] = db.Enqueue(ctx, []portrait.Notification{{Instance: a, Body: body(a, i)}})
			if errs[i] == nil {
				ids[i] = r[0]
			}
		})
	}
	waitSubmitted(t, db, submitted+n)
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	time.Sleep(20 * time.Millisecond)
	<-db.wsem
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i, err := range errs {
		if err != nil {
			t.Errorf("Enqueue %d before Close: %v", i, err)
		} else if ids[i] == 0 || seen[ids[i]] {
			t.Errorf("Enqueue %d before Close returned receipt id %d", i, ids[i])
		}
		seen[ids[i]] = true
	}
	if _, err := db.Enqueue(ctx, []portrait.Notification{{Instance: a, Body: body(a, n)}}); err == nil {
		t.Errorf("Enqueue after Close succeeded")
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	db = mustOpen(t, path)
	depths, err := db.Depths(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if depths[a] != n {
		t.Errorf("after reopening, %d notifications, want %d", depths[a], n)
	}
}

// TestCanceledWhileQueued checks that a write whose context ends while it
// waits for the writer returns at once with the context's error, and is
// not run if its batch had not started.
func TestCanceledWhileQueued(t *testing.T) {
	db := openTemp(t)
	defer db.Close()
	const a = portrait.InstanceID(1101000001)
	if err := db.CreateInstance(t.Context(), instance(a)); err != nil {
		t.Fatal(err)
	}
	db.wsem <- struct{}{}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := db.Enqueue(ctx, []portrait.Notification{{Instance: a, Body: body(a, 0)}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Enqueue while the writer is held: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Enqueue returned %v after its deadline", d)
	}
	<-db.wsem
	// A write after it goes through, and the expired one was not run.
	if _, err := db.Enqueue(t.Context(), []portrait.Notification{{Instance: a, Body: body(a, 1)}}); err != nil {
		t.Fatal(err)
	}
	if d, err := db.Depths(t.Context()); err != nil || d[a] != 1 {
		t.Errorf("Depths = %v, %v; want 1 notification", d, err)
	}
}

// TestQueueAndStoreWriters mixes queue writes with the store's own writes
// (instances, key/value) and with a second handle on the file, as the CLI
// has: none may fail with SQLITE_BUSY.
func TestQueueAndStoreWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portrait.db")
	db := mustOpen(t, path)
	cli := mustOpen(t, path)
	ctx := t.Context()
	const a = portrait.InstanceID(1101000001)
	if err := db.CreateInstance(ctx, instance(a)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for p := range 20 {
		wg.Go(func() {
			for i := range 10 {
				if _, err := db.Enqueue(ctx, []portrait.Notification{{Instance: a, Body: body(a, i)}}); err != nil {
					errs <- fmt.Errorf("enqueue: %w", err)
				}
				if _, err := cli.Enqueue(ctx, []portrait.Notification{{Instance: a, Body: body(a, i)}}); err != nil {
					errs <- fmt.Errorf("enqueue through the second handle: %w", err)
				}
				if err := db.Put(ctx, a, "k"+strconv.Itoa(p), []byte("v")); err != nil {
					errs <- fmt.Errorf("put: %w", err)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			if err := cli.SetTokenHash(ctx, a, []byte(strconv.Itoa(i))); err != nil {
				errs <- fmt.Errorf("set token hash: %w", err)
			}
		}
	})
	for _, err := range hammer(ctx, db, 1200000000, 4, 30) {
		errs <- err
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d, err := db.Depths(ctx); err != nil || d[a] != 400 {
		t.Errorf("Depths = %v, %v; want 400", d, err)
	}
}

// crashEnv names the database the crash helper process enqueues to.
const crashEnv = "PORTRAIT_SQLITE_TEST_CRASH_DB"

// crashInstance is the instance the crash helper enqueues to.
const crashInstance = portrait.InstanceID(1101000001)

// enqueueUntilKilled is the crash helper process: it enqueues from several
// goroutines until it is killed, printing each receipt id once Enqueue has
// returned it.
func enqueueUntilKilled(t *testing.T, path string) {
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	// Stop on our own if the parent never kills us.
	stop := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				ids, err := db.Enqueue(t.Context(), []portrait.Notification{{
					Instance: crashInstance, Body: body(crashInstance, g*1_000_000+i), CreatedAt: time.Now(),
				}})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %d\n", ids[0], g*1_000_000+i)
				err = out.Flush() // one write(2) per receipt: nothing waits in a buffer when killed
				mu.Unlock()
				if err != nil {
					os.Exit(4)
				}
			}
		})
	}
	wg.Wait()
}

// TestCrashDurability kills a process that is enqueueing with SIGKILL and
// checks that every receipt id it printed, that is every Enqueue that had
// returned, is in the database.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	path := filepath.Join(t.TempDir(), "portrait.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateInstance(t.Context(), instance(crashInstance)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const want = 400
	printed := map[int64]int{} // receipt id → sequence number in its body
	lines := bufio.NewScanner(stdout)
	for len(printed) < want && lines.Scan() {
		var id int64
		var seq int
		if _, err := fmt.Sscanf(lines.Text(), "%d %d", &id, &seq); err != nil {
			continue // the testing package's own output
		}
		printed[id] = seq
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Read what was printed before the kill landed: it was committed too.
	for lines.Scan() {
		var id int64
		var seq int
		if _, err := fmt.Sscanf(lines.Text(), "%d %d", &id, &seq); err == nil {
			printed[id] = seq
		}
	}
	err = cmd.Wait()
	if len(printed) < want {
		t.Fatalf("helper printed %d receipt ids, want %d (%v)\n%s", len(printed), want, err, stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, not by SIGKILL\n%s", err, stderr.String())
	}

	db = mustOpen(t, path)
	var ok string
	if err := db.SQL().QueryRowContext(t.Context(), `PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Errorf("integrity_check after the crash: %q, %v", ok, err)
	}
	var maxID int64
	for id, seq := range printed {
		var b []byte
		err := db.SQL().QueryRowContext(t.Context(), `SELECT body FROM notifications WHERE id = ? AND instance_id = ?`,
			id, int64(crashInstance)).Scan(&b)
		if err != nil {
			t.Errorf("receipt id %d, acknowledged before the crash: %v", id, err)
			continue
		}
		if string(b) != string(body(crashInstance, seq)) {
			t.Errorf("receipt id %d: body %s, want %s", id, b, body(crashInstance, seq))
		}
		maxID = max(maxID, id)
	}
	depths, err := db.Depths(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d receipt ids printed before SIGKILL, %d notifications in the database", len(printed), depths[crashInstance])
	// The queue goes on after the crash, with new receipt ids.
	ids, err := db.Enqueue(t.Context(), []portrait.Notification{{Instance: crashInstance, Body: body(crashInstance, -1)}})
	if err != nil {
		t.Fatal(err)
	}
	if ids[0] <= maxID {
		t.Errorf("receipt id %d after the crash, want more than %d", ids[0], maxID)
	}
}

// TestJobVersionMigration upgrades a database made before job versions
// (migrations 1 and 2) that holds a job: the job starts at version 0, and
// merging and finishing work on it as on a new one.
func TestJobVersionMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "portrait.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	pool, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, pool, migrations[:2]); err != nil {
		t.Fatal(err)
	}
	const a = portrait.InstanceID(1101000001)
	base := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	for _, q := range []struct {
		query string
		args  []any
	}{
		{`INSERT INTO instances (id, type, engine, token_hash, settings, created_at) VALUES (?, 'whatsapp', 'sandbox', x'00', '{}', ?)`,
			[]any{int64(a), base.Format(time.RFC3339Nano)}},
		{`INSERT INTO jobs (instance_id, kind, key, data, due_at, deadline, created_at) VALUES (?, 'avatarChanged', '1@c.us', '{"v":1}', ?, NULL, ?)`,
			[]any{int64(a), micros(base), micros(base)}},
	} {
		if _, err := pool.ExecContext(ctx, q.query, q.args...); err != nil {
			pool.Close()
			t.Fatalf("%s: %v", q.query, err)
		}
	}
	if err := pool.Close(); err != nil {
		t.Fatal(err)
	}

	db := mustOpen(t, path)
	jobs, err := db.DueJobs(ctx, base, 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("DueJobs after the upgrade = %v, %v; want the old job", jobs, err)
	}
	old := jobs[0]
	if old.Version != 0 || string(old.Data) != `{"v":1}` {
		t.Errorf("old job after the upgrade: version %d, data %s; want 0, {\"v\":1}", old.Version, old.Data)
	}
	if _, err := db.AddJob(ctx, portrait.Job{Instance: a, Kind: "avatarChanged", Key: "1@c.us", Data: []byte(`{"v":2}`), DueAt: base, CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	if r, err := db.FinishJob(ctx, old, nil); err != nil || r != 0 {
		t.Fatalf("FinishJob of the old version = %d, %v", r, err)
	}
	jobs, err = db.DueJobs(ctx, base, 10)
	if err != nil || len(jobs) != 1 || jobs[0].Version != 1 || string(jobs[0].Data) != `{"v":2}` {
		t.Fatalf("DueJobs after a merge and a stale FinishJob = %+v, %v; want the job at version 1", jobs, err)
	}
	if _, err := db.FinishJob(ctx, jobs[0], nil); err != nil {
		t.Fatal(err)
	}
	if jobs, err := db.DueJobs(ctx, base, 10); err != nil || len(jobs) != 0 {
		t.Errorf("DueJobs after finishing the current version = %v, %v; want none", jobs, err)
	}
}
