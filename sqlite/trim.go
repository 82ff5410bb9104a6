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
		res, err = tx.ExecContext(ctx, `DELETE FROM notifications WHERE id IN (
			SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY instance_id ORDER BY id DESC) AS n FROM notifications)
			WHERE n > ?)`, keep)
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
