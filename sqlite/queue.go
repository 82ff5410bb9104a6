package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/portrait-dev/portrait"
)

var _ portrait.Queue = (*DB)(nil)

// The queue's writes (Enqueue, Delete, DeleteMany, AddJob, FinishJob) go
// through the group-commit writer (writer.go): concurrent calls share one
// transaction and one fsync, each in a savepoint of its own so that one
// call's failure does not undo the others. Each returns only after its
// transaction has committed. Its reads (Head, Peek, Depths, DueJobs) run
// on the pool.
//
// A queue write whose ctx ends before its batch starts is not run and
// returns an error wrapping ctx.Err(). One whose ctx ends while its batch
// runs returns such an error too, but its change may or may not have been
// committed: a caller that must know reads the queue back.

// statements are the queue's prepared statements. They are prepared on
// the pool: the writer uses them through its transactions, on its own
// connection, and the reads on whichever connection is free.
type statements struct {
	savepoint, release, rollbackTo *sql.Stmt

	enqueue, head, peek, delete, depths   *sql.Stmt
	addJob, dueJobs, finishJob, jobExists *sql.Stmt
	unclaimJob                            *sql.Stmt
}

// prepare prepares the queue's statements.
func prepare(ctx context.Context, pool *sql.DB) (*statements, error) {
	q := &statements{}
	for _, s := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&q.savepoint, `SAVEPOINT op`},
		{&q.release, `RELEASE op`},
		{&q.rollbackTo, `ROLLBACK TO op`},
		// Selecting from instances makes a missing instance insert no
		// row, which tells it apart from other failures.
		{&q.enqueue, `INSERT INTO notifications (instance_id, body, created_at)
			SELECT id, ?, ? FROM instances WHERE id = ?`},
		{&q.head, `SELECT id, body, created_at FROM notifications
			WHERE instance_id = ? ORDER BY id LIMIT 1`},
		{&q.peek, `SELECT id, body, created_at FROM notifications
			WHERE instance_id = ? AND id > ? ORDER BY id LIMIT ?`},
		{&q.delete, `DELETE FROM notifications WHERE id = ? AND instance_id = ?`},
		{&q.depths, `SELECT instance_id, count(*) FROM notifications GROUP BY instance_id`},
		// ?1 instance, ?2 kind, ?3 key, ?4 data, ?5 due, ?6 deadline (NULL
		// for none), ?7 created. A new job is never due after its
		// deadline; a merged one keeps its deadline and created_at, takes
		// the new data and the new due time, capped by the kept deadline,
		// and its version goes up by one.
		{&q.addJob, `INSERT INTO jobs (instance_id, kind, key, data, due_at, deadline, created_at)
			SELECT id, ?2, ?3, ?4, CASE WHEN ?6 IS NULL THEN ?5 ELSE min(?5, ?6) END, ?6, ?7
			FROM instances WHERE id = ?1
			ON CONFLICT (instance_id, kind, key) WHERE key <> '' DO UPDATE SET
				data = excluded.data,
				due_at = CASE WHEN jobs.deadline IS NULL THEN ?5 ELSE min(?5, jobs.deadline) END,
				version = jobs.version + 1
			RETURNING id`},
		// Fair across instances: each instance's due jobs ranked by due
		// time, then id; returned by rank, then due time, then id.
		{&q.dueJobs, `SELECT id, instance_id, kind, key, data, due_at, deadline, created_at, version
			FROM (
				SELECT *, row_number() OVER (PARTITION BY instance_id ORDER BY due_at, id) AS rank
				FROM jobs WHERE due_at <= ?1
			)
			WHERE rank <= ?2
			ORDER BY rank, due_at, id
			LIMIT ?2`},
		{&q.finishJob, `DELETE FROM jobs WHERE id = ? AND version = ?`},
		{&q.jobExists, `SELECT EXISTS (SELECT 1 FROM jobs WHERE id = ?)`},
		{&q.unclaimJob, `UPDATE jobs SET claimed_by = NULL, claim_until = NULL WHERE id = ?`},
	} {
		st, err := pool.PrepareContext(ctx, s.query)
		if err != nil {
			q.close()
			return nil, fmt.Errorf("prepare %q: %w", s.query, err)
		}
		*s.stmt = st
	}
	return q, nil
}

// close closes the statements that are prepared.
func (q *statements) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{q.savepoint, q.release, q.rollbackTo,
		q.enqueue, q.head, q.peek, q.delete, q.depths,
		q.addJob, q.dueJobs, q.finishJob, q.jobExists, q.unclaimJob} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close statements: %w", err)
	}
	return nil
}

// notificationRow is a notification as Enqueue stores it.
type notificationRow struct {
	instance int64
	body     []byte
	created  int64
}

// newNotificationRow copies n for storing: the writer may use it after
// the caller has returned (when its ctx ends) and changed n.Body.
func newNotificationRow(n *portrait.Notification) notificationRow {
	return notificationRow{instance: int64(n.Instance), body: bytes.Clone(nonNil(n.Body)), created: micros(n.CreatedAt)}
}

// insert stores the notification in the batch's transaction and returns
// its receipt id, or an error wrapping portrait.ErrNotFound if its
// instance does not exist.
func (r notificationRow) insert(ctx context.Context, b *batch) (int64, error) {
	res, err := b.stmt(ctx, b.db.q.enqueue).ExecContext(ctx, r.body, r.created, r.instance)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("instance %d: %w", r.instance, portrait.ErrNotFound)
	}
	return res.LastInsertId()
}

// Enqueue appends notifications, for one or several instances, in one
// transaction and returns their receipt ids, in order. ns[i].ReceiptID is
// ignored; Body and CreatedAt are stored as given (CreatedAt at
// microsecond precision). If an instance does not exist, it returns an
// error wrapping portrait.ErrNotFound and stores none of ns. Receipt ids
// are never reused, so they grow with every call, across instances too.
func (db *DB) Enqueue(ctx context.Context, ns []portrait.Notification) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: enqueue: %w", err)
	}
	if len(ns) == 0 {
		return []int64{}, nil
	}
	rows := make([]notificationRow, len(ns))
	for i := range ns {
		rows[i] = newNotificationRow(&ns[i])
	}
	ids := make([]int64, len(rows))
	err := db.submit(ctx, func(ctx context.Context, b *batch) error {
		for i, r := range rows {
			id, err := r.insert(ctx, b)
			if err != nil {
				return err
			}
			ids[i] = id
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: enqueue: %w", err)
	}
	return ids, nil
}

// Head returns the oldest notification of an instance, or an error
// wrapping portrait.ErrNotFound if its queue is empty or the instance does
// not exist.
func (db *DB) Head(ctx context.Context, id portrait.InstanceID) (portrait.Notification, error) {
	n := portrait.Notification{Instance: id}
	var created int64
	err := db.q.head.QueryRowContext(ctx, int64(id)).Scan(&n.ReceiptID, &n.Body, &created)
	if errors.Is(err, sql.ErrNoRows) {
		err = portrait.ErrNotFound
	}
	if err != nil {
		return portrait.Notification{}, fmt.Errorf("sqlite: head of instance %d: %w", id, err)
	}
	n.Body = nonNil(n.Body)
	n.CreatedAt = fromMicros(created)
	return n, nil
}

// Peek returns up to limit of an instance's oldest notifications whose
// receipt id is greater than after, oldest first. It returns none, and no
// error, when there are none (the instance does not exist, say) or limit
// is not positive. Peek reads; it does not wait for the writer.
func (db *DB) Peek(ctx context.Context, id portrait.InstanceID, after int64, limit int) ([]portrait.Notification, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: peek at instance %d: %w", id, err)
	}
	if limit <= 0 {
		return []portrait.Notification{}, nil
	}
	rows, err := db.q.peek.QueryContext(ctx, int64(id), after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: peek at instance %d: %w", id, err)
	}
	defer rows.Close()
	out := []portrait.Notification{}
	for rows.Next() {
		n := portrait.Notification{Instance: id}
		var created int64
		if err := rows.Scan(&n.ReceiptID, &n.Body, &created); err != nil {
			return nil, fmt.Errorf("sqlite: peek at instance %d: %w", id, err)
		}
		n.Body = nonNil(n.Body)
		n.CreatedAt = fromMicros(created)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: peek at instance %d: %w", id, err)
	}
	return out, nil
}

// Delete removes one notification of an instance. It reports false when
// the instance has no notification with that receipt id: it was deleted
// already, never existed, or belongs to another instance.
func (db *DB) Delete(ctx context.Context, id portrait.InstanceID, receiptID int64) (bool, error) {
	var deleted bool
	err := db.submit(ctx, func(ctx context.Context, b *batch) error {
		res, err := b.stmt(ctx, b.db.q.delete).ExecContext(ctx, receiptID, int64(id))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		deleted = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: delete notification %d of instance %d: %w", receiptID, id, err)
	}
	return deleted, nil
}

// DeleteMany removes notifications of an instance, in one transaction,
// and returns how many there were. Receipt ids the instance does not have
// (deleted already, never given, or another instance's) are ignored; one
// given twice is counted once. It returns 0 at once for no receipt ids.
func (db *DB) DeleteMany(ctx context.Context, id portrait.InstanceID, receiptIDs []int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("sqlite: delete notifications of instance %d: %w", id, err)
	}
	if len(receiptIDs) == 0 {
		return 0, nil
	}
	// A copy: the writer may run fn after we return, if ctx ends.
	receipts := slices.Clone(receiptIDs)
	var deleted int
	err := db.submit(ctx, func(ctx context.Context, b *batch) error {
		// One statement per receipt id: a single DELETE … IN (json_each)
		// measured no faster (the row deletions cost the time, about
		// 4 µs each). The savepoint makes the call all or nothing.
		st := b.stmt(ctx, b.db.q.delete)
		for _, r := range receipts {
			res, err := st.ExecContext(ctx, r, int64(id))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			deleted += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete %d notifications of instance %d: %w", len(receiptIDs), id, err)
	}
	return deleted, nil
}

// Depth returns the number of queued notifications of instance id (0 for
// an unknown one), counted over its index.
func (db *DB) Depth(ctx context.Context, id portrait.InstanceID) (int64, error) {
	var n int64
	if err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM notifications WHERE instance_id = ?`, int64(id)).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: queue depth of instance %d: %w", id, err)
	}
	return n, nil
}

// Depths returns the number of queued notifications of every instance
// that has any. The map is empty, not nil, when no queue has any.
func (db *DB) Depths(ctx context.Context) (map[portrait.InstanceID]int64, error) {
	rows, err := db.q.depths.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: queue depths: %w", err)
	}
	defer rows.Close()
	out := map[portrait.InstanceID]int64{}
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("sqlite: queue depths: %w", err)
		}
		out[portrait.InstanceID(id)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: queue depths: %w", err)
	}
	return out, nil
}

// AddJob stores a job, or merges it into the stored job with the same
// instance, kind and non-empty key, and returns the stored job's id. j.ID
// is ignored.
//
// A merged job takes j.Data and j.DueAt, but is never due after the
// stored job's Deadline; it keeps its Deadline and CreatedAt, and its
// Version goes up by one (a new job's is 0; j.Version is ignored). A zero
// Deadline means none: the job's due time is not capped. A new job whose
// DueAt is after its (non-zero) Deadline is due at its Deadline. Times are
// kept at microsecond precision. AddJob returns an error wrapping
// portrait.ErrNotFound if the instance does not exist.
func (db *DB) AddJob(ctx context.Context, j portrait.Job) (int64, error) {
	var deadline any // NULL for none
	if !j.Deadline.IsZero() {
		deadline = micros(j.Deadline)
	}
	data := bytes.Clone(nonNil(j.Data))
	var id int64
	err := db.submit(ctx, func(ctx context.Context, b *batch) error {
		err := b.stmt(ctx, b.db.q.addJob).QueryRowContext(ctx,
			int64(j.Instance), j.Kind, j.Key, data, micros(j.DueAt), deadline, micros(j.CreatedAt)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("instance %d: %w", j.Instance, portrait.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: add %s job of instance %d: %w", j.Kind, j.Instance, err)
	}
	return id, nil
}

// DueJobs returns up to limit jobs due at or before now, fairly across
// instances: it ranks each instance's due jobs by due time (then the order
// they were added) and returns them by rank, then due time, then id. So
// every instance with a due job has its oldest one in the batch before any
// instance has its second, and an instance's jobs come in due order. It
// returns none when limit is not positive.
func (db *DB) DueJobs(ctx context.Context, now time.Time, limit int) ([]portrait.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: due jobs: %w", err)
	}
	if limit <= 0 {
		return []portrait.Job{}, nil
	}
	rows, err := db.q.dueJobs.QueryContext(ctx, micros(now), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: due jobs: %w", err)
	}
	out, err := scanJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: due jobs: %w", err)
	}
	return out, nil
}

// scanJobs reads rows of id, instance_id, kind, key, data, due_at,
// deadline, created_at, version, and closes them.
func scanJobs(rows *sql.Rows) ([]portrait.Job, error) {
	defer rows.Close()
	out := []portrait.Job{}
	for rows.Next() {
		var (
			j                  portrait.Job
			inst, due, created int64
			deadline           sql.NullInt64
		)
		if err := rows.Scan(&j.ID, &inst, &j.Kind, &j.Key, &j.Data, &due, &deadline, &created, &j.Version); err != nil {
			return nil, err
		}
		j.Instance = portrait.InstanceID(inst)
		j.Data = nonNil(j.Data)
		j.DueAt = fromMicros(due)
		if deadline.Valid {
			j.Deadline = fromMicros(deadline.Int64)
		}
		j.CreatedAt = fromMicros(created)
		out = append(out, j)
	}
	return out, rows.Err()
}

// FinishJob ends a job that DueJobs (or ClaimJobs) returned and, when n is
// not nil, enqueues n, in one transaction, and returns n's receipt id (0
// when n is nil). The stored job is deleted if its version is still
// j.Version; if AddJob merged into it meanwhile it is kept, with the
// merged data and due time and without a claim, to run again, and n is
// enqueued all the same. Finishing a job that
// no longer exists (looked up by j.ID alone) is not an error: it enqueues
// nothing and returns 0. If n's instance does not exist, FinishJob returns
// an error wrapping portrait.ErrNotFound and keeps the job.
func (db *DB) FinishJob(ctx context.Context, j portrait.Job, n *portrait.Notification) (int64, error) {
	var row *notificationRow
	if n != nil {
		r := newNotificationRow(n)
		row = &r
	}
	var receipt int64
	err := db.submit(ctx, func(ctx context.Context, b *batch) error {
		// The common case, a job not merged into while it ran, takes one
		// statement; only when it deletes nothing do we ask whether the
		// job is there at all.
		res, err := b.stmt(ctx, b.db.q.finishJob).ExecContext(ctx, j.ID, j.Version)
		if err != nil {
			return err
		}
		deleted, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if deleted == 0 {
			var exists bool
			if err := b.stmt(ctx, b.db.q.jobExists).QueryRowContext(ctx, j.ID).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return nil
			}
			// Merged into while it ran: kept, to run again, unclaimed.
			if _, err := b.stmt(ctx, b.db.q.unclaimJob).ExecContext(ctx, j.ID); err != nil {
				return err
			}
		}
		if row == nil {
			return nil
		}
		// If this fails, the savepoint is rolled back: the job is kept.
		receipt, err = row.insert(ctx, b)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: finish job %d: %w", j.ID, err)
	}
	return receipt, nil
}

// micros returns t as microseconds since the Unix epoch, the queue's
// stored form of times. Every time.Time from year 1 to 9999, the zero time
// included, fits.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros is the inverse of micros, in UTC.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
