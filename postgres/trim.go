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
		// Per instance, over the (instance_id, id) index: the newest id
		// beyond the cap, and everything up to it. An instance whose queue
		// is within the cap has no such id and costs one index probe.
		tag, err = tx.Exec(ctx, `DELETE FROM notifications n
			USING instances i
			CROSS JOIN LATERAL (
				SELECT id FROM notifications
				WHERE instance_id = i.id
				ORDER BY id DESC OFFSET $1 LIMIT 1
			) cut
			WHERE n.instance_id = i.id AND n.id <= cut.id`, keep)
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
