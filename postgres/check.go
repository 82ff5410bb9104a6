package postgres

import (
	"context"
	"fmt"
)

// CheckWrite commits a write that changes nothing, so that a server's
// readiness probe fails while the database cannot be written.
func (db *DB) CheckWrite(ctx context.Context) error {
	if _, err := db.pool.Exec(ctx, `UPDATE generation SET value = value WHERE id = 1`); err != nil {
		return fmt.Errorf("postgres: write check: %w", err)
	}
	return nil
}
