package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-dev/portrait"
)

var _ portrait.JobClaims = (*DB)(nil)

// ClaimJobs claims for node, until ttl from now (the database's clock),
// up to limit due jobs of the instances whose unexpired lease node holds,
// that no unexpired claim holds; picked and returned fairly, as DueJobs
// does (a claimed job still counts in its instance's rank, so instances
// with a job running yield to those with none). now decides which jobs
// are due, as for DueJobs.
//
// It is one statement: the fair choice of candidates, then FOR UPDATE
// SKIP LOCKED on them (a row another claimer has locked is left to it,
// and one it claimed meanwhile is checked again and left out), then the
// claim. Concurrent claimers never get the same job; one may get fewer
// than limit while another holds candidates, and gets the rest next time.
func (db *DB) ClaimJobs(ctx context.Context, node string, now time.Time, limit int, ttl time.Duration) ([]portrait.Job, error) {
	what := "claim jobs for node " + node
	if err := checkCtx(ctx, what); err != nil {
		return nil, err
	}
	if err := checkTTL(ttl); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	if limit <= 0 {
		return []portrait.Job{}, nil
	}
	rows, err := db.pool.Query(ctx, `WITH candidates AS (
			SELECT id, rank FROM (
				SELECT j.id, j.due_at, j.claim_until,
					row_number() OVER (PARTITION BY j.instance_id ORDER BY j.due_at, j.id) AS rank
				FROM jobs j JOIN leases l ON l.instance_id = j.instance_id
				WHERE l.node = $1 AND l.expires_at > now() AND j.due_at <= $2
			) ranked
			WHERE claim_until IS NULL OR claim_until <= now()
			ORDER BY rank, due_at, id
			LIMIT $3
		), locked AS (
			SELECT id FROM jobs
			WHERE id IN (SELECT id FROM candidates) AND (claim_until IS NULL OR claim_until <= now())
			FOR UPDATE SKIP LOCKED
		)
		UPDATE jobs SET claimed_by = $1, claim_until = now() + $4 * interval '1 microsecond'
		FROM locked JOIN candidates USING (id) WHERE jobs.id = locked.id
		RETURNING jobs.id, jobs.instance_id, jobs.kind, jobs.key, jobs.data, jobs.due_at, jobs.deadline,
			jobs.created_at, jobs.version, candidates.rank`,
		node, now, limit, micros(ttl))
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	var (
		jobs []portrait.Job
		rank = map[int64]int64{}
	)
	err = scanEach(rows, func(j portrait.Job, extra int64) {
		jobs = append(jobs, j)
		rank[j.ID] = extra
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	if jobs == nil {
		jobs = []portrait.Job{}
	}
	slices.SortFunc(jobs, func(a, b portrait.Job) int {
		return cmp.Or(cmp.Compare(rank[a.ID], rank[b.ID]), a.DueAt.Compare(b.DueAt), cmp.Compare(a.ID, b.ID))
	})
	return jobs, nil
}

// scanJobs reads rows of id, instance_id, kind, key, data, due_at,
// deadline, created_at, version, and closes them.
func scanJobs(rows pgx.Rows) ([]portrait.Job, error) {
	out := []portrait.Job{}
	err := scanEach(rows, func(j portrait.Job, _ int64) { out = append(out, j) })
	return out, err
}

// scanEach reads rows of id, instance_id, kind, key, data, due_at,
// deadline, created_at, version and, if there is a tenth column, a bigint,
// calls fn with each job and that number, and closes the rows.
func scanEach(rows pgx.Rows, fn func(j portrait.Job, extra int64)) error {
	defer rows.Close()
	for rows.Next() {
		var (
			j        portrait.Job
			inst     int64
			deadline *time.Time
			extra    int64
		)
		dest := []any{&j.ID, &inst, &j.Kind, &j.Key, &j.Data, &j.DueAt, &deadline, &j.CreatedAt, &j.Version}
		if len(rows.FieldDescriptions()) > len(dest) {
			dest = append(dest, &extra)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		j.Instance = portrait.InstanceID(inst)
		j.Data = nonNil(j.Data)
		j.DueAt = utc(j.DueAt)
		if deadline != nil {
			j.Deadline = utc(*deadline)
		}
		j.CreatedAt = utc(j.CreatedAt)
		fn(j, extra)
	}
	return rows.Err()
}
