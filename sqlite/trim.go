package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Trim implements portrait.Queue.Trim.
func (db *DB) Trim(ctx context.Context, olderThan time.Time, keep int) (byAge, byCap int64, err error) {
	err = db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM notifications WHERE created_at < ?`, micros(olderThan))
		if err != nil {
			return err
		}
		if byAge, err = res.RowsAffected(); err != nil {
			return err
		}
		if keep <= 0 {
			return nil
		}
		// Per instance, over the (instance_id, id) index: the newest id
		// beyond the cap, and everything up to it. An instance whose queue
		// is within the cap has no such id and costs one index probe.
		res, err = tx.ExecContext(ctx, `DELETE FROM notifications WHERE id IN (
			WITH cut AS MATERIALIZED (
				SELECT i.id AS instance_id,
					(SELECT id FROM notifications WHERE instance_id = i.id ORDER BY id DESC LIMIT 1 OFFSET ?1) AS id
				FROM instances i
			)
			SELECT n.id FROM cut JOIN notifications n ON n.instance_id = cut.instance_id AND n.id <= cut.id)`, keep)
		if err != nil {
			return err
		}
		byCap, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: trimming the queues: %w", err)
	}
	return byAge, byCap, nil
}
