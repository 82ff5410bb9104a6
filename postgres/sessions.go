package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/portrait-dev/portrait"
)

// The console's sessions (adminauth.SessionStore), so that a sign-in on
// one node of a cluster is one on every node. Times are the database's.

// StartSession keeps a new session, begun now. Sessions ended long ago
// are swept at the same time.
func (db *DB) StartSession(ctx context.Context, key [sha256.Size]byte) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE used_at < now() - interval '1 day'`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO console_sessions (key, started_at, used_at) VALUES ($1, now(), now())`, key[:])
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: start a console session: %w", err)
	}
	return nil
}

// UseSession reports whether the session is live — used within idle and
// begun within max — and records the use; an ended one is forgotten.
func (db *DB) UseSession(ctx context.Context, key [sha256.Size]byte, idle, max time.Duration) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE console_sessions SET used_at = now()
		WHERE key = $1 AND used_at > now() - $2 * interval '1 microsecond' AND started_at > now() - $3 * interval '1 microsecond'`,
		key[:], micros(idle), micros(max))
	if err != nil {
		return false, fmt.Errorf("postgres: use a console session: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	if err := db.EndSession(ctx, key); err != nil {
		return false, err
	}
	return false, nil
}

// EndSession forgets a session.
func (db *DB) EndSession(ctx context.Context, key [sha256.Size]byte) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM console_sessions WHERE key = $1`, key[:]); err != nil {
		return fmt.Errorf("postgres: end a console session: %w", err)
	}
	return nil
}

// EndSessions forgets every session.
func (db *DB) EndSessions(ctx context.Context) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM console_sessions`); err != nil {
		return fmt.Errorf("postgres: end the console sessions: %w", err)
	}
	return nil
}

// AdminTokenHash returns the SHA-256 of the admin token the nodes share;
// an error wrapping portrait.ErrNotFound when none was made yet.
func (db *DB) AdminTokenHash(ctx context.Context) ([sha256.Size]byte, error) {
	var hash [sha256.Size]byte
	var b []byte
	err := db.pool.QueryRow(ctx, `SELECT hash FROM admin_token WHERE id = 1`).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		err = portrait.ErrNotFound
	}
	if err == nil && len(b) != sha256.Size {
		err = fmt.Errorf("a hash of %d bytes", len(b))
	}
	if err != nil {
		return hash, fmt.Errorf("postgres: admin token: %w", err)
	}
	copy(hash[:], b)
	return hash, nil
}

// SetAdminTokenHash keeps hash as the admin token's SHA-256. With replace
// false it changes nothing when there is one already, and reports
// whether it kept hash (nodes starting at once make one token); with
// replace true it replaces the old one and ends every console session,
// in one transaction.
func (db *DB) SetAdminTokenHash(ctx context.Context, hash [sha256.Size]byte, replace bool) (bool, error) {
	kept := false
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		stmt := `INSERT INTO admin_token (id, hash) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`
		if replace {
			stmt = `INSERT INTO admin_token (id, hash) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET hash = excluded.hash`
		}
		tag, err := tx.Exec(ctx, stmt, hash[:])
		if err != nil {
			return err
		}
		kept = tag.RowsAffected() == 1
		if replace {
			_, err = tx.Exec(ctx, `DELETE FROM console_sessions`)
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: keep the admin token: %w", err)
	}
	return kept, nil
}
