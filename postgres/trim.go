package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Trim implements portrait.Queue.Trim.
func (db *DB) Trim(ctx context.Context, olderThan time.Time, keep int) (byAge, byCap int64, err error) {
	// In cluster mode every node trims: inTx runs a trim again when
	// PostgreSQL aborts it for a deadlock with another node's.
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		byAge, byCap = 0, 0
		tag, err := tx.Exec(ctx, `DELETE FROM notifications WHERE created_at < $1`, olderThan)
		if err != nil {
			return err
		}
		byAge = tag.RowsAffected()
		if keep <= 0 {
			return nil
		}
		tag, err = tx.Exec(ctx, `DELETE FROM notifications WHERE id IN (
			SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY instance_id ORDER BY id DESC) AS n FROM notifications) ranked
			WHERE n > $1)`, keep)
		if err != nil {
			return err
		}
		byCap = tag.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: trimming the queues: %w", err)
	}
	return byAge, byCap, nil
}
