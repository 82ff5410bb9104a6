package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/portrait-dev/portrait"
)

var _ portrait.JobClaims = (*DB)(nil)

// ClaimJobs claims for node, until ttl from now (SQLite's clock), up to
// limit due jobs of the instances whose unexpired lease node holds, that
// no unexpired claim holds; picked and returned fairly, as DueJobs does.
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
		t, err := nowMicros(ctx, tx)
		if err != nil {
			return err
		}
		// ?1 node, ?2 due, ?3 limit, ?4 the clock, ?5 claim until.
		rows, err := tx.QueryContext(ctx, `UPDATE jobs SET claimed_by = ?1, claim_until = ?5
			WHERE id IN (
				SELECT id FROM (
					SELECT j.id, j.due_at,
						row_number() OVER (PARTITION BY j.instance_id ORDER BY j.due_at, j.id) AS rank
					FROM jobs j JOIN leases l ON l.instance_id = j.instance_id
					WHERE l.node = ?1 AND l.expires_at > ?4 AND j.due_at <= ?2
						AND (j.claim_until IS NULL OR j.claim_until <= ?4)
				)
				WHERE rank <= ?3
				ORDER BY rank, due_at, id
				LIMIT ?3
			)
			RETURNING id, instance_id, kind, key, data, due_at, deadline, created_at, version`,
			node, micros(now), limit, t, t+ttl.Microseconds())
		if err != nil {
			return err
		}
		out, err = scanJobs(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return fairOrder(out), nil
}

// fairOrder sorts jobs as DueJobs returns them: ranked within their
// instance by due time, then id; by rank, then due time, then id.
func fairOrder(jobs []portrait.Job) []portrait.Job {
	byDue := func(a, b portrait.Job) int { return cmp.Or(a.DueAt.Compare(b.DueAt), cmp.Compare(a.ID, b.ID)) }
	slices.SortFunc(jobs, byDue)
	rank := make(map[int64]int, len(jobs))
	seen := map[portrait.InstanceID]int{}
	for _, j := range jobs {
		rank[j.ID] = seen[j.Instance]
		seen[j.Instance]++
	}
	slices.SortStableFunc(jobs, func(a, b portrait.Job) int { return cmp.Compare(rank[a.ID], rank[b.ID]) })
	return jobs
}
