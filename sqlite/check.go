package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// CheckWrite commits a write that changes nothing, so that a server's
// readiness probe fails while the database cannot be written (a full disk,
// a read-only file system).
func (db *DB) CheckWrite(ctx context.Context) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE generation SET value = value WHERE id = 1`)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: write check: %w", err)
	}
	return nil
}
