package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portrait-dev/portrait/internal/migration"
)

// migrationFiles holds the schema migrations. Each file is named
// NNNN_description.sql, where NNNN is its version; versions start at 1 and
// have no gaps. A migration runs inside one transaction (PostgreSQL's DDL
// is transactional), so it must not contain statements PostgreSQL refuses
// there (CREATE INDEX CONCURRENTLY, VACUUM, …). Never edit a migration that
// has been released: add a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations are the parsed embedded migrations.
var migrations = migration.MustLoad(migrationFiles, "migrations")

// migrationLock is the key of the transaction-level advisory lock that
// keeps processes migrating the same database apart ("portrait" in ASCII).
const migrationLock int64 = 0x706f727472616974

// migrate applies the migrations the database lacks, all in one
// transaction together with the records of their versions in
// schema_migrations: a failed migration leaves the schema as it was. It is
// safe to run from several processes at once: each takes an advisory lock
// first and then reads the version. It refuses a database whose schema is
// newer than ms.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []migration.Migration) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`)
		if err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var v int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if v > len(ms) {
			return fmt.Errorf("database schema version %d is newer than this program's %d", v, len(ms))
		}
		for _, m := range ms[v:] {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("%s: record version: %w", m.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
