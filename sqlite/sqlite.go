// Package sqlite implements portrait.Store on a single SQLite database file,
// using the pure-Go driver modernc.org/sqlite.
//
// The database runs in WAL mode with synchronous=FULL, so every committed
// transaction survives a crash of the process or of the machine. Every write
// is one BEGIN IMMEDIATE transaction and every connection waits up to
// BusyTimeout for a lock, so several goroutines and several processes (the
// server and the CLI) can write to the same file at the same time.
//
// DB also implements portrait.Queue. Its writes are many, small and
// concurrent, so they are group-committed: one writer goroutine runs all
// the queue writes waiting at the time in one transaction, with one fsync,
// and answers each caller only once that transaction has committed.
//
// The schema is created and upgraded by numbered migrations embedded in the
// package; Open applies the ones the file lacks.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	// The driver registers itself as "sqlite".
	_ "modernc.org/sqlite"
)

// BusyTimeout is how long a connection waits for a lock held by another
// connection or process before a statement fails with SQLITE_BUSY.
const BusyTimeout = 10 * time.Second

// DB is a portrait.Store and a portrait.Queue kept in one SQLite file. It
// is safe for concurrent use.
type DB struct {
	db   *sql.DB
	path string
	// wsem serialises this process's write transactions, so that they
	// queue in order instead of polling for SQLite's write lock; other
	// processes are still kept apart by the lock and the busy timeout.
	// The queue's group-commit writer takes it for each of its batches.
	wsem chan struct{}
	// w is the group-commit writer of the queue's writes (writer.go).
	w writer
	// q holds the queue's prepared statements.
	q *statements
}

// Open opens the database at path, creating the file and its parent
// directory (mode 0700) if they are missing, and brings its schema up to
// date. The file is created with mode 0600: it holds token hashes and, later,
// messenger device keys.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := createFile(abs); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	pool, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// A new connection costs about 0.3 ms (open, pragmas, schema,
	// re-preparing the queue's statements), thirty reads' worth, and
	// database/sql closes any beyond the idle limit when returned: with
	// 100 concurrent Head+Delete deliverers (BenchmarkDelivery), 8 idle
	// connections made 8-10% of the reads open one; 32 bring that to 1-2%
	// (64: none, no faster) and delivery from about 14k to 19k a second
	// (medians of six interleaved runs on 2 cores). Batched delivery
	// (Peek+DeleteMany) does not notice: about 48k a second at 8, 32 or
	// 64. Each idle connection keeps its page cache: about 100 KB after
	// queue reads, up to about 4 MB after scanning a large table (Depths
	// of a long queue).
	pool.SetMaxIdleConns(32)
	db := &DB{db: pool, path: abs, wsem: make(chan struct{}, 1)}
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := migrate(ctx, pool, migrations); err != nil {
		pool.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if db.q, err = prepare(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.startWriter()
	return db, nil
}

// createFile creates the empty database file abs with mode 0600 unless it
// exists, and syncs its directory so that the new entry survives a crash.
// SQLite gives its -wal and -shm files the mode of the database file.
func createFile(abs string) error {
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(abs))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// dsn returns the driver's data source name for the database file at the
// absolute path abs. The path is written as a file: URI so that characters
// such as '?' and '#' in it are escaped. The _pragma parameters are applied
// by the driver to every connection it opens, and _txlock makes every
// read-write transaction BEGIN IMMEDIATE: it takes the write lock at once,
// waiting under the busy timeout, instead of failing with SQLITE_BUSY when a
// read turns into a write while another connection writes.
func dsn(abs string) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows path such as C:/x becomes /C:/x
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(BusyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	return "file://" + (&url.URL{Path: p}).EscapedPath() + "?" + q.Encode()
}

// Dialect is the name of this database's SQL dialect for go.mau.fi/util's
// dbutil (whatsmeow's sqlstore).
const Dialect = "sqlite"

// Dialect returns Dialect, the name under which whatsmeow's sqlstore knows
// this database.
func (db *DB) Dialect() string { return Dialect }

// SQL returns the connection pool, for packages that keep their own tables in
// the same file. Every connection has the pragmas Open sets; read-write
// transactions begun on it are BEGIN IMMEDIATE.
func (db *DB) SQL() *sql.DB { return db.db }

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Close runs the queue writes already submitted, then closes the
// connection pool. Queue writes submitted after Close fail.
func (db *DB) Close() error {
	errs := []error{db.stopWriter(), db.q.close(), db.db.Close()}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close %s: %w", db.path, err)
	}
	return nil
}

// write runs fn in one read-write (BEGIN IMMEDIATE) transaction and commits
// it, or rolls it back if fn fails. Write transactions of this DB run one
// at a time.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	select {
	case db.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-db.wsem }()
	return inTx(ctx, db.db, fn)
}

// inTx runs fn in one read-write transaction of pool.
func inTx(ctx context.Context, pool *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("rollback: %w", rerr))
		}
		return err
	}
	return tx.Commit()
}
