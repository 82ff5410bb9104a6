// Package postgres implements portrait.Store, portrait.Queue,
// portrait.Leases and portrait.JobClaims (DB) and portrait.Blobs
// (DB.Blobs) on PostgreSQL, through github.com/jackc/pgx/v5, so that
// several portrait processes (the nodes of a cluster, and the CLI) can
// share one database.
//
// Every method that changes something commits one transaction before it
// returns; with PostgreSQL's default synchronous_commit that change has
// reached the server's write-ahead log on disk. Writes made with a context
// that carries a lease (portrait.WithLease) are fenced: refused unless the
// lease is still current. Times that must agree across processes (leases,
// heartbeats, claims) are taken from the database's clock, never from the
// caller's. Every commit that matters to other processes is announced
// through LISTEN/NOTIFY (DB.Listen).
//
// The schema is created and upgraded by numbered migrations embedded in the
// package; Open applies the ones the database lacks, one process at a time.
// whatsmeow's device store can live in the same database (DB.SQL,
// Dialect).
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// Dialect is the name of this database's SQL dialect for go.mau.fi/util's
// dbutil (whatsmeow's sqlstore): it takes "pgx" or any name starting with
// "postgres" to mean PostgreSQL.
const Dialect = "pgx"

// DB is a portrait.Store, portrait.Queue, portrait.Leases and
// portrait.JobClaims in one PostgreSQL database, with the pictures of
// portrait.Blobs beside them (Blobs). It is safe for concurrent use, also
// by several processes.
type DB struct {
	pool     *pgxpool.Pool
	sql      *sql.DB
	enqueues enqueueCommits
}

// Open connects to the database named by dsn, a PostgreSQL URL
// (postgres://user:password@host:port/database?sslmode=…) or key=value
// connection string, and brings its schema up to date. The connection pool
// takes pgxpool's parameters from dsn too (pool_max_conns, …).
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors quote the connection string, and can only
		// try to hide its password: say nothing of it.
		return nil, errors.New("postgres: open: cannot parse the connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", where(cfg), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", where(cfg), err)
	}
	if err := migrate(ctx, pool, migrations); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", where(cfg), err)
	}
	return &DB{pool: pool, sql: stdlib.OpenDBFromPool(pool)}, nil
}

// where names the database of cfg for error messages, without the
// password.
func where(cfg *pgxpool.Config) string {
	return fmt.Sprintf("%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

// SQL returns a database/sql handle on the same connection pool, through
// pgx's stdlib driver, for packages that keep their own tables in the same
// database (whatsmeow's sqlstore, with Dialect). Closing it is not needed:
// Close does.
func (db *DB) SQL() *sql.DB { return db.sql }

// Dialect returns Dialect, the name under which whatsmeow's sqlstore knows
// this database.
func (db *DB) Dialect() string { return Dialect }

// Pool returns the pgx connection pool.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Close closes the database/sql handle and the connection pool, waiting for
// the connections in use to be returned.
func (db *DB) Close() error {
	err := db.sql.Close()
	db.pool.Close()
	if err != nil {
		return fmt.Errorf("postgres: close: %w", err)
	}
	return nil
}

// maxAttempts is how often inTx runs a transaction that PostgreSQL
// aborted to break a deadlock or a serialization conflict.
const maxAttempts = 5

// inTx runs fn in one transaction and commits it, or rolls it back if fn
// fails. A transaction that PostgreSQL aborted because of a deadlock or a
// serialization failure is run again, from the start (fn must not keep
// state from a failed attempt).
func (db *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return retry(ctx, func() error { return pgx.BeginFunc(ctx, db.pool, fn) })
}

// retry runs fn again, up to maxAttempts in all and a little later each
// time, while it fails because PostgreSQL aborted it to break a deadlock
// or a serialization conflict.
func retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == maxAttempts || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		}
	}
}

// PostgreSQL error codes the package acts on.
const (
	codeForeignKey    = "23503" // foreign_key_violation
	codeUnique        = "23505" // unique_violation
	codeSerialization = "40001" // serialization_failure
	codeDeadlock      = "40P01" // deadlock_detected
	codeLeaseLost     = "PT401" // portrait_fence: the lease is not current
)

// sqlState returns the SQLSTATE of a PostgreSQL error, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// retryable reports whether err is PostgreSQL aborting a transaction that
// may succeed when run again.
func retryable(err error) bool {
	c := sqlState(err)
	return c == codeSerialization || c == codeDeadlock
}

// checkCtx returns ctx's error, wrapped with what, if ctx is done: calls
// with a done context fail before they touch the database.
func checkCtx(ctx context.Context, what string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	return nil
}

// utc returns t in UTC: pgx returns timestamptz values in the local zone.
func utc(t time.Time) time.Time { return t.UTC() }

// nonNil returns b, or an empty slice if b is nil: the bytea columns are
// NOT NULL, and callers get a non-nil slice back.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Exclusive runs fn while this process holds the advisory lock named
// name, which other processes on the database take with the same name:
// nodes starting at once do one-time work (making the first instances)
// one after the other. The lock is held on a connection of its own and
// released when fn returns, or when the connection ends.
func (db *DB) Exclusive(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: lock %q: %w", name, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, "portrait:"+name); err != nil {
		return fmt.Errorf("postgres: lock %q: %w", name, err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, "portrait:"+name); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // ends the session, and the lock with it
		}
	}()
	return fn(ctx)
}
