package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
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
var migrations = mustLoadMigrations()

// migration is one schema change.
type migration struct {
	version int
	name    string // the file name
	sql     string
}

func mustLoadMigrations() []migration {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err)
	}
	ms, err := loadMigrations(sub)
	if err != nil {
		panic(err)
	}
	return ms
}

// loadMigrations reads the *.sql files at the root of fsys, ordered by
// version, and checks that the versions run 1, 2, 3… without gaps.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	ms := make([]migration, 0, len(names))
	for _, name := range names {
		num, _, ok := strings.Cut(strings.TrimSuffix(path.Base(name), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name is not NNNN_description.sql", name)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d", m.name, m.version, i+1)
		}
	}
	return ms, nil
}

// migrate applies the migrations the database lacks, each in its own
// transaction together with the record of its version in schema_migrations.
// It is safe to run from several processes at once: the transactions are
// BEGIN IMMEDIATE, and each one checks the version again once it holds the
// write lock. It refuses a database whose schema is newer than ms.
func migrate(ctx context.Context, pool *sql.DB, ms []migration) error {
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
			if v >= m.version {
				return nil // applied before, or by another process meanwhile
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx,
				`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, time.Now().UTC().Format(time.RFC3339Nano))
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: %s: %w", m.name, err)
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
