package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/portrait-dev/portrait"
)

var _ portrait.JobClaims = (*DB)(nil)

// ClaimJobs claims for node, until ttl from now (SQLite's clock), up to
// limit due jobs of the instances whose unexpired lease node holds, that
// no unexpired claim holds; picked and returned fairly, as DueJobs does
// (a claimed job still counts in its instance's rank).
// now decides which jobs are due, as for DueJobs. It is one write
// transaction, so concurrent claimers take turns and never get the same
// job.
func (db *DB) ClaimJobs(ctx context.Context, node string, now time.Time, limit int, ttl time.Duration) ([]portrait.Job, error) {
	what := "claim jobs for node " + node
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if err := checkTTL(ttl); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if limit <= 0 {
		return []portrait.Job{}, nil
	}
	var out []portrait.Job
	err := db.write(ctx, func(tx *sql.Tx) error {
		out = nil
		t, err := nowMicros(ctx, tx)
		if err != nil {
			return err
		}
		// Ranked among all the due jobs of node's instances, claimed ones
		// included: an instance with a job still running yields to those
		// with none. ?1 node, ?2 due, ?3 limit, ?4 the clock.
		rows, err := tx.QueryContext(ctx, `SELECT id, rank FROM (
				SELECT j.id, j.due_at, j.claim_until,
					row_number() OVER (PARTITION BY j.instance_id ORDER BY j.due_at, j.id) AS rank
				FROM jobs j JOIN leases l ON l.instance_id = j.instance_id
				WHERE l.node = ?1 AND l.expires_at > ?4 AND j.due_at <= ?2
			)
			WHERE claim_until IS NULL OR claim_until <= ?4
			ORDER BY rank, due_at, id
			LIMIT ?3`, node, micros(now), limit, t)
		if err != nil {
			return err
		}
		rank := map[int64]int64{}
		var ids []int64
		for rows.Next() {
			var id, r int64
			if err := rows.Scan(&id, &r); err != nil {
				rows.Close()
				return err
			}
			rank[id] = r
			ids = append(ids, id)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		list, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, `UPDATE jobs SET claimed_by = ?, claim_until = ?
			WHERE id IN (SELECT value FROM json_each(?))
			RETURNING id, instance_id, kind, key, data, due_at, deadline, created_at, version`,
			node, t+ttl.Microseconds(), string(list))
		if err != nil {
			return err
		}
		if out, err = scanJobs(rows); err != nil {
			return err
		}
		slices.SortFunc(out, func(a, b portrait.Job) int {
			return cmp.Or(cmp.Compare(rank[a.ID], rank[b.ID]), a.DueAt.Compare(b.DueAt), cmp.Compare(a.ID, b.ID))
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if out == nil {
		out = []portrait.Job{}
	}
	return out, nil
}
