package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"time"

	"github.com/portrait-dev/portrait/internal/migration"
)

// migrationFiles holds the schema migrations. Each file is named
// NNNN_description.sql, where NNNN is its version; versions start at 1 and
// have no gaps. A migration runs inside one transaction, so it must not
// contain statements SQLite refuses there (VACUUM, PRAGMA foreign_keys, …).
// Never edit a migration that has been released: add a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations are the parsed embedded migrations.
var migrations = migration.MustLoad(migrationFiles, "migrations")

// migrate applies the migrations the database lacks, each in its own
// transaction together with the record of its version in schema_migrations.
// It is safe to run from several processes at once: the transactions are
// BEGIN IMMEDIATE, and each one checks the version again once it holds the
// write lock. It refuses a database whose schema is newer than ms.
func migrate(ctx context.Context, pool *sql.DB, ms []migration.Migration) error {
	err := inTx(ctx, pool, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at TEXT    NOT NULL
		)`)
		if err != nil {
			return err
		}
		v, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if v > len(ms) {
			return fmt.Errorf("database schema version %d is newer than this program's %d", v, len(ms))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range ms {
		err := inTx(ctx, pool, func(tx *sql.Tx) error {
			v, err := schemaVersion(ctx, tx)
			if err != nil {
				return err
			}
			if v >= m.Version {
				return nil // applied before, or by another process meanwhile
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx,
				`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, time.Now().UTC().Format(time.RFC3339Nano))
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
	}
	return nil
}

// schemaVersion returns the highest applied migration version, 0 for none.
func schemaVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	var v int
	err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
