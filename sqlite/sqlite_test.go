package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/migration"
	"github.com/portrait-dev/portrait/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) portrait.Store {
		return openTemp(t)
	})
}

// openTemp opens a new database in a temporary directory. The caller closes
// it.
func openTemp(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "portrait.db"))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func mustOpen(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func instance(id portrait.InstanceID) portrait.Instance {
	s := portrait.DefaultSettings()
	s.Extra = map[string]string{"incomingWebhook": `"yes"`}
	return portrait.Instance{
		ID:        id,
		Type:      portrait.TypeWhatsApp,
		Engine:    "sandbox",
		TokenHash: []byte("0123456789abcdef0123456789abcdef"),
		Settings:  s,
		CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC),
	}
}

func TestPragmas(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "p.db"))
	ctx := t.Context()
	// Hold several connections at once so that the pool opens new ones;
	// each must have the pragmas.
	var conns []*sql.Conn
	for range 4 {
		c, err := db.SQL().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"synchronous":  "2", // FULL
			"foreign_keys": "1",
			"busy_timeout": strconv.FormatInt(BusyTimeout.Milliseconds(), 10),
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("conn %d: PRAGMA %s: %v", i, pragma, err)
			}
			if got != want {
				t.Errorf("conn %d: %s = %s, want %s", i, pragma, got, want)
			}
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

func TestFileCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "portrait.db")
	mustOpen(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("database file mode %v, want 0600", m)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if m := di.Mode().Perm(); m != 0o700 {
		t.Errorf("directory mode %v, want 0700", m)
	}
}

func TestPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a b?c#d%20e&f=g", "x?y.db")
	db := mustOpen(t, path)
	if err := db.CreateInstance(t.Context(), instance(1101000001)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %s: %v", path, err)
	}
	db = mustOpen(t, path)
	if _, err := db.Instance(t.Context(), 1101000001); err != nil {
		t.Fatal(err)
	}
}

func TestOpenEmptyPath(t *testing.T) {
	if _, err := Open(t.Context(), ""); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portrait.db")
	ctx := t.Context()
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	inst := instance(1101000001)
	// Nanoseconds and a zone other than UTC survive, as the same instant
	// in UTC.
	inst.CreatedAt = time.Date(2024, 2, 29, 23, 59, 59, 987654321, time.FixedZone("EST", -5*3600))
	if err := db.CreateInstance(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if err := db.Put(ctx, inst.ID, "world", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	g, err := db.Generation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = mustOpen(t, path)
	got, err := db.Instance(ctx, inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(inst.CreatedAt) || got.CreatedAt.Location() != time.UTC ||
		got.CreatedAt.Nanosecond() != 987654321 {
		t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, inst.CreatedAt.UTC())
	}
	if got.Engine != inst.Engine || string(got.TokenHash) != string(inst.TokenHash) ||
		got.Settings.Extra["incomingWebhook"] != `"yes"` {
		t.Errorf("Instance after reopening = %+v, want %+v", got, inst)
	}
	v, err := db.Get(ctx, inst.ID, "world")
	if err != nil || string(v) != "kept" {
		t.Errorf("Get after reopening = %q, %v; want \"kept\"", v, err)
	}
	if g2, err := db.Generation(ctx); err != nil || g2 != g {
		t.Errorf("Generation after reopening = %d, %v; want %d", g2, err, g)
	}
}

func TestZeroCreatedAt(t *testing.T) {
	db := openTemp(t)
	defer db.Close()
	inst := instance(1101000001)
	inst.CreatedAt = time.Time{}
	if err := db.CreateInstance(t.Context(), inst); err != nil {
		t.Fatal(err)
	}
	got, err := db.Instance(t.Context(), inst.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.IsZero() {
		t.Errorf("CreatedAt = %v, want the zero time", got.CreatedAt)
	}
}

// appliedVersions returns the rows of schema_migrations.
func appliedVersions(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portrait.db")
	for range 3 {
		db, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		if got := appliedVersions(t, db.SQL()); len(got) != len(migrations) {
			t.Errorf("schema_migrations has %v, want versions 1..%d", got, len(migrations))
		}
		if err := migrate(t.Context(), db.SQL(), migrations); err != nil {
			t.Errorf("migrate again: %v", err)
		}
		// The generation row is not inserted twice.
		var n int
		if err := db.SQL().QueryRowContext(t.Context(), `SELECT count(*) FROM generation`).Scan(&n); err != nil || n != 1 {
			t.Errorf("generation has %d rows (%v), want 1", n, err)
		}
		db.Close()
	}
}

// withExtra returns the embedded migrations plus the given files.
func withExtra(t *testing.T, files map[string]string) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	for _, m := range migrations {
		fsys[m.Name] = &fstest.MapFile{Data: []byte(m.SQL)}
	}
	for name, text := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	return fsys
}

func TestMigrationAdded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portrait.db")
	db := mustOpen(t, path)
	ctx := t.Context()
	if err := db.CreateInstance(ctx, instance(1101000001)); err != nil {
		t.Fatal(err)
	}
	next := fmt.Sprintf("%04d_contacts.sql", len(migrations)+1)
	ms, err := migration.Load(withExtra(t, map[string]string{next: `
		-- Contacts of an instance.
		CREATE TABLE contacts (
			id          INTEGER PRIMARY KEY,
			instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
			name        TEXT    NOT NULL
		);
		CREATE INDEX contacts_instance ON contacts (instance_id, id);
	`}))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := migrate(ctx, db.SQL(), ms); err != nil {
			t.Fatalf("migrate with %s: %v", next, err)
		}
	}
	if got := appliedVersions(t, db.SQL()); len(got) != len(ms) || got[len(got)-1] != len(ms) {
		t.Errorf("schema_migrations has %v, want versions 1..%d", got, len(ms))
	}
	if _, err := db.SQL().ExecContext(ctx, `INSERT INTO contacts (instance_id, name) VALUES (1101000001, 'x')`); err != nil {
		t.Fatalf("new table: %v", err)
	}
	if _, err := db.Instance(ctx, 1101000001); err != nil {
		t.Fatalf("old data after migrating: %v", err)
	}

	// An older program refuses the newer schema.
	db.Close()
	_, err = Open(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema: %v, want an error saying it is newer", err)
	}
}

func TestMigrationAtomic(t *testing.T) {
	db := mustOpen(t, filepath.Join(t.TempDir(), "portrait.db"))
	ctx := t.Context()
	next := fmt.Sprintf("%04d_broken.sql", len(migrations)+1)
	ms, err := migration.Load(withExtra(t, map[string]string{next: `
		CREATE TABLE half (id INTEGER PRIMARY KEY);
		INSERT INTO no_such_table VALUES (1);
	`}))
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, db.SQL(), ms); err == nil {
		t.Fatal("broken migration succeeded")
	}
	if got := appliedVersions(t, db.SQL()); len(got) != len(migrations) {
		t.Errorf("schema_migrations has %v after a failed migration, want versions 1..%d", got, len(migrations))
	}
	var n int
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'half'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the failed migration's first statement was kept (%d, %v)", n, err)
	}
}

// TestEmbeddedMigrations: the migrations are embedded in the program.
// (migration.Load's checks are tested in its package.)
func TestEmbeddedMigrations(t *testing.T) {
	if _, err := fs.Stat(migrationFiles, "migrations/0001_init.sql"); err != nil {
		t.Errorf("embedded migrations: %v", err)
	}
}

// TestSecondHandle opens the file twice, as the server and the CLI do.
func TestSecondHandle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portrait.db")
	server := mustOpen(t, path)
	cli := mustOpen(t, path)
	ctx := t.Context()

	g0, err := server.Generation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inst := instance(1101000001)
	if err := cli.CreateInstance(ctx, inst); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Instance(ctx, inst.ID); err != nil {
		t.Fatalf("server does not see the CLI's instance: %v", err)
	}
	g1, err := server.Generation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g1 == g0 {
		t.Errorf("server's Generation stayed %d after the CLI created an instance", g0)
	}
	if err := cli.SetTokenHash(ctx, inst.ID, []byte("rotated")); err != nil {
		t.Fatal(err)
	}
	got, err := server.Instance(ctx, inst.ID)
	if err != nil || string(got.TokenHash) != "rotated" {
		t.Errorf("server sees token hash %q (%v), want the CLI's", got.TokenHash, err)
	}
	if g2, err := server.Generation(ctx); err != nil || g2 == g1 {
		t.Errorf("server's Generation %d (%v) after the CLI rotated the token, was %d", g2, err, g1)
	}
	// And the other way round, for the key/value space.
	if err := server.Put(ctx, inst.ID, "world", []byte("w")); err != nil {
		t.Fatal(err)
	}
	if v, err := cli.Get(ctx, inst.ID, "world"); err != nil || string(v) != "w" {
		t.Errorf("CLI Get = %q, %v", v, err)
	}
	if err := cli.DeleteInstance(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Get(ctx, inst.ID, "world"); !errors.Is(err, portrait.ErrNotFound) {
		t.Errorf("server Get after the CLI deleted the instance: %v", err)
	}
}

// hammer writes to db from several goroutines and returns the first errors.
func hammer(ctx context.Context, db *DB, base portrait.InstanceID, workers, writes int) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	for w := range workers {
		wg.Go(func() {
			id := base + portrait.InstanceID(w)
			if err := db.CreateInstance(ctx, instance(id)); err != nil {
				fail(err)
				return
			}
			for i := range writes {
				var err error
				switch i % 3 {
				case 0:
					err = db.SetTokenHash(ctx, id, []byte(strconv.Itoa(i)))
				case 1:
					err = db.Put(ctx, id, "k"+strconv.Itoa(i%4), []byte(strconv.Itoa(i)))
				case 2:
					_, err = db.Generation(ctx)
				}
				if err != nil {
					fail(fmt.Errorf("instance %d, write %d: %w", id, i, err))
				}
			}
		})
	}
	wg.Wait()
	return errs
}

func TestTwoHandlesConcurrentWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portrait.db")
	a := mustOpen(t, path)
	b := mustOpen(t, path)
	var (
		wg         sync.WaitGroup
		errA, errB []error
	)
	wg.Go(func() { errA = hammer(t.Context(), a, 1100000000, 4, 60) })
	wg.Go(func() { errB = hammer(t.Context(), b, 1200000000, 4, 60) })
	wg.Wait()
	for _, err := range append(errA, errB...) {
		t.Error(err)
	}
	list, err := a.Instances(t.Context())
	if err != nil || len(list) != 8 {
		t.Errorf("Instances = %d, %v; want 8", len(list), err)
	}
}

func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portrait.db")
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			db, err := Open(t.Context(), path)
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			errs[i] = db.CreateInstance(t.Context(), instance(portrait.InstanceID(1300000000+i)))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("opener %d: %v", i, err)
		}
	}
	db := mustOpen(t, path)
	if got := appliedVersions(t, db.SQL()); len(got) != len(migrations) {
		t.Errorf("schema_migrations has %v, want versions 1..%d", got, len(migrations))
	}
}

// helperEnv names the database the helper process writes to.
const helperEnv = "PORTRAIT_SQLITE_TEST_HELPER_DB"

// TestHelperProcess is the other process of TestTwoProcesses and of
// TestCrashDurability; it does nothing unless started by one of them.
func TestHelperProcess(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		enqueueUntilKilled(t, path)
		return
	}
	path := os.Getenv(helperEnv)
	if path == "" {
		return
	}
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, err := range hammer(t.Context(), db, 1500000000, 4, 60) {
		t.Error(err)
	}
}

// TestTwoProcesses writes from this process and another one at once: locks
// between processes work differently from locks between connections of one
// process.
func TestTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	path := filepath.Join(t.TempDir(), "portrait.db")
	db := mustOpen(t, path)
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, err := range hammer(t.Context(), db, 1400000000, 4, 60) {
		t.Error(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("helper process: %v\n%s", err, out.String())
	}
	list, err := db.Instances(t.Context())
	if err != nil || len(list) != 8 {
		t.Errorf("Instances = %d, %v; want 8", len(list), err)
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

// TestChangedSince: the instances each generation changed, read with the
// generation; a record that no longer reaches back says so.
func TestChangedSince(t *testing.T) {
	ctx := t.Context()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ids, gen, complete, err := db.ChangedSince(ctx, 0)
	if err != nil || len(ids) != 0 || gen != 0 || !complete {
		t.Fatalf("empty store: %v %d %v %v", ids, gen, complete, err)
	}
	for _, id := range []portrait.InstanceID{1101000001, 1101000002} {
		if err := db.CreateInstance(ctx, portrait.Instance{ID: id, Type: portrait.TypeWhatsApp, Engine: "sandbox", TokenHash: []byte("h"), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SetTokenHash(ctx, 1101000001, []byte("h2")); err != nil {
		t.Fatal(err)
	}
	ids, gen, complete, err = db.ChangedSince(ctx, 2)
	if err != nil || gen != 3 || !complete || len(ids) != 1 || ids[0] != 1101000001 {
		t.Errorf("since 2: %v %d %v %v", ids, gen, complete, err)
	}
	if err := db.DeleteInstance(ctx, 1101000002); err != nil {
		t.Fatal(err)
	}
	ids, gen, complete, err = db.ChangedSince(ctx, 0)
	if err != nil || gen != 4 || !complete || len(ids) != 2 {
		t.Errorf("since 0: %v %d %v %v", ids, gen, complete, err)
	}
	if _, err := db.SQL().ExecContext(ctx, `DELETE FROM instance_changes WHERE gen <= 2`); err != nil {
		t.Fatal(err)
	}
	if _, _, complete, err := db.ChangedSince(ctx, 0); err != nil || complete {
		t.Errorf("a record that no longer reaches back: complete %v, %v", complete, err)
	}
}
