package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-dev/portrait"
)

var _ portrait.Queue = (*DB)(nil)

// Receipt ids must become visible in order within an instance: a webhook
// sender that has seen id n pages on with Peek(after n) and would never see
// an id below n committed later. A sequence alone does not give that: two
// transactions may take 10 and 11 and commit 11 first. So every
// transaction that adds notifications first locks the rows of their
// instances (FOR NO KEY UPDATE: it does not block the foreign-key checks
// of other writers, only other enqueuers of the same instance, and
// changes to the instance itself), in id order so that batches for
// several instances cannot deadlock, and only then takes ids from the
// sequence. The ids of an instance are then taken and committed by one
// transaction at a time.

// lockInstances locks the rows of the instances ids (sorted, without
// duplicates) until the end of the transaction.
const lockInstances = `SELECT id FROM instances WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`

// insertNotifications adds rows, one per element of the arrays, and
// returns their receipt ids. The ids are taken in the order of the arrays:
// PostgreSQL evaluates the volatile nextval after sorting by ordinality.
const insertNotifications = `INSERT INTO notifications (id, instance_id, body, created_at)
	SELECT nextval(pg_get_serial_sequence('notifications', 'id')), u.instance_id, u.body, u.created_at
	FROM unnest($1::bigint[], $2::bytea[], $3::timestamptz[]) WITH ORDINALITY AS u(instance_id, body, created_at, n)
	ORDER BY u.n
	RETURNING id`

// notificationRows are notifications as columns, ready for
// insertNotifications, and the instances to lock first.
type notificationRows struct {
	instances []int64
	bodies    [][]byte
	created   []time.Time
	lock      []int64 // sorted, without duplicates
}

func newNotificationRows(ns []portrait.Notification) notificationRows {
	r := notificationRows{
		instances: make([]int64, len(ns)),
		bodies:    make([][]byte, len(ns)),
		created:   make([]time.Time, len(ns)),
	}
	for i, n := range ns {
		r.instances[i] = int64(n.Instance)
		r.bodies[i] = nonNil(n.Body)
		r.created[i] = n.CreatedAt
	}
	r.lock = slices.Compact(slices.Sorted(slices.Values(r.instances)))
	return r
}

// queue adds the statements that store the rows to b, fenced by leases
// (sorted by instance); once b has run, ids holds the receipt ids, in the
// order of the rows. A missing instance fails the batch with an error
// wrapping portrait.ErrNotFound.
func (r notificationRows) queue(leases []portrait.Lease, b *pgx.Batch, ids *[]int64) {
	b.Queue(lockInstances, r.lock).Query(func(rows pgx.Rows) error {
		locked, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		if len(locked) != len(r.lock) {
			for _, id := range r.lock {
				if !slices.Contains(locked, id) {
					return fmt.Errorf("instance %d: %w", id, portrait.ErrNotFound)
				}
			}
		}
		return nil
	})
	for _, l := range leases {
		queueLease(b, l)
	}
	b.Queue(insertNotifications, r.instances, r.bodies, r.created).Query(func(rows pgx.Rows) error {
		got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		// Ids grow in the order of the rows; RETURNING is not promised
		// to keep that order, sorting restores it.
		slices.Sort(got)
		*ids = got
		return nil
	})
	b.Queue(notifyQueue, r.lock)
}

// runBatch sends the batch that build queues and waits for its outcome. A
// batch outside a transaction runs as one implicit transaction: all of it
// commits, or nothing does. A batch that PostgreSQL aborted to break a
// deadlock is built and sent again, from scratch: pgx records in a Batch
// the prepared statements of the connection it was sent on, so a Batch is
// never sent twice (it would fail on another connection). A
// foreign-key violation (an instance deleted meanwhile) is reported as
// portrait.ErrNotFound, a refused fence as portrait.ErrLeaseLost.
func (db *DB) runBatch(ctx context.Context, build func(b *pgx.Batch)) error {
	err := retry(ctx, func() error {
		b := &pgx.Batch{}
		build(b)
		return db.pool.SendBatch(ctx, b).Close()
	})
	switch sqlState(err) {
	case codeForeignKey:
		return fmt.Errorf("%w: %w", portrait.ErrNotFound, err)
	case codeLeaseLost:
		return leaseLost(err)
	}
	return err
}

// Enqueue appends notifications, for one or several instances, in one
// transaction and returns their receipt ids, in order. ns[i].ReceiptID is
// ignored; Body is stored byte for byte and CreatedAt at microsecond
// precision. If an instance does not exist, it returns an error wrapping
// portrait.ErrNotFound and stores none of ns. Receipt ids are never
// reused, and within an instance they become visible in order.
func (db *DB) Enqueue(ctx context.Context, ns []portrait.Notification) ([]int64, error) {
	if err := checkCtx(ctx, "enqueue"); err != nil {
		return nil, err
	}
	if len(ns) == 0 {
		return []int64{}, nil
	}
	req := &enqueueReq{ns: ns, done: make(chan struct{})}
	if l, ok := portrait.LeaseFrom(ctx); ok {
		req.lease = &l
	}
	g := &db.enqueues
	g.mu.Lock()
	g.pending = append(g.pending, req)
	lead := g.leaders < maxCommitters
	if lead {
		g.leaders++
	}
	g.mu.Unlock()
	if lead {
		db.commitPending()
	}
	<-req.done
	if req.err != nil {
		return nil, fmt.Errorf("postgres: enqueue: %w", req.err)
	}
	return req.ids, nil
}

// Group commit: concurrent Enqueue calls share transactions. A call puts
// its notifications in the pending list; when fewer than maxCommitters
// calls are committing, it commits too, taking whatever is pending (up to
// maxGroup calls) into one transaction, again and again until nothing is;
// the others wait for their outcome. Every call still returns only after
// its own notifications are committed, and many producers share a commit
// (and its fsync) instead of paying one each.
const (
	maxCommitters = 2
	maxGroup      = 256
)

// enqueueCommits is the pending list of group commit.
type enqueueCommits struct {
	mu      sync.Mutex
	pending []*enqueueReq
	leaders int
}

// enqueueReq is one Enqueue call waiting for its commit.
type enqueueReq struct {
	ns    []portrait.Notification
	lease *portrait.Lease // the lease its context carries, if any
	ids   []int64
	err   error
	done  chan struct{}
}

// commitPending commits the pending calls, a group at a time, until none
// is left.
func (db *DB) commitPending() {
	g := &db.enqueues
	for {
		g.mu.Lock()
		n := min(len(g.pending), maxGroup)
		group := slices.Clone(g.pending[:n])
		g.pending = g.pending[n:]
		if n == 0 {
			g.leaders--
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		db.commitGroup(group)
		for _, req := range group {
			close(req.done)
		}
	}
}

// commitTimeout bounds one group's commit; the callers' contexts do not
// (a commit serves several of them).
const commitTimeout = 30 * time.Second

// commitGroup stores the notifications of the calls of group in one
// transaction, fenced by every lease they carry. When that fails (an
// instance missing, a lease lost), each call is committed alone, so that
// each gets its own outcome.
func (db *DB) commitGroup(group []*enqueueReq) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	if len(group) > 1 {
		var all []portrait.Notification
		var leases []portrait.Lease
		for _, req := range group {
			all = append(all, req.ns...)
			if req.lease != nil && !slices.Contains(leases, *req.lease) {
				leases = append(leases, *req.lease)
			}
		}
		slices.SortFunc(leases, func(a, b portrait.Lease) int { return cmp.Compare(a.Instance, b.Instance) })
		ids, err := db.insertRows(ctx, all, leases)
		if err == nil {
			for _, req := range group {
				req.ids, ids = ids[:len(req.ns)], ids[len(req.ns):]
			}
			return
		}
	}
	for _, req := range group {
		var leases []portrait.Lease
		if req.lease != nil {
			leases = []portrait.Lease{*req.lease}
		}
		req.ids, req.err = db.insertRows(ctx, req.ns, leases)
	}
}

// insertRows stores ns in one transaction, fenced by leases, and returns
// their receipt ids, in order.
func (db *DB) insertRows(ctx context.Context, ns []portrait.Notification, leases []portrait.Lease) ([]int64, error) {
	rows := newNotificationRows(ns)
	var ids []int64
	if err := db.runBatch(ctx, func(b *pgx.Batch) { rows.queue(leases, b, &ids) }); err != nil {
		return nil, err
	}
	if len(ids) != len(ns) {
		return nil, fmt.Errorf("%d receipt ids for %d notifications", len(ids), len(ns))
	}
	return ids, nil
}

// scanNotifications reads rows of id, body, created_at of instance id.
func scanNotifications(rows pgx.Rows, id portrait.InstanceID) ([]portrait.Notification, error) {
	out := []portrait.Notification{}
	for rows.Next() {
		n := portrait.Notification{Instance: id}
		if err := rows.Scan(&n.ReceiptID, &n.Body, &n.CreatedAt); err != nil {
			return nil, err
		}
		n.Body = nonNil(n.Body)
		n.CreatedAt = utc(n.CreatedAt)
		out = append(out, n)
	}
	return out, rows.Err()
}

// Head returns the oldest notification of an instance, or an error
// wrapping portrait.ErrNotFound if its queue is empty or the instance does
// not exist.
func (db *DB) Head(ctx context.Context, id portrait.InstanceID) (portrait.Notification, error) {
	ns, err := db.Peek(ctx, id, -1<<63, 1)
	if err == nil && len(ns) == 0 {
		err = fmt.Errorf("postgres: head of instance %d: %w", id, portrait.ErrNotFound)
	}
	if err != nil {
		return portrait.Notification{}, err
	}
	return ns[0], nil
}

// Peek returns up to limit of an instance's oldest notifications whose
// receipt id is greater than after, oldest first. It returns none, and no
// error, when there are none (the instance does not exist, say) or limit
// is not positive.
func (db *DB) Peek(ctx context.Context, id portrait.InstanceID, after int64, limit int) ([]portrait.Notification, error) {
	if err := checkCtx(ctx, fmt.Sprintf("peek at instance %d", id)); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return []portrait.Notification{}, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT id, body, created_at FROM notifications
		WHERE instance_id = $1 AND id > $2 ORDER BY id LIMIT $3`, int64(id), after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: peek at instance %d: %w", id, err)
	}
	defer rows.Close()
	out, err := scanNotifications(rows, id)
	if err != nil {
		return nil, fmt.Errorf("postgres: peek at instance %d: %w", id, err)
	}
	return out, nil
}

// Delete removes one notification of an instance. It reports false when
// the instance has no notification with that receipt id: it was deleted
// already, never existed, or belongs to another instance.
func (db *DB) Delete(ctx context.Context, id portrait.InstanceID, receiptID int64) (bool, error) {
	if err := checkCtx(ctx, fmt.Sprintf("delete notification %d of instance %d", receiptID, id)); err != nil {
		return false, err
	}
	tag, err := db.execWrite(ctx, `DELETE FROM notifications WHERE id = $1 AND instance_id = $2`, receiptID, int64(id))
	if err != nil {
		return false, fmt.Errorf("postgres: delete notification %d of instance %d: %w", receiptID, id, err)
	}
	return tag.RowsAffected() > 0, nil
}

// DeleteMany removes notifications of an instance, in one statement, and
// returns how many there were. Receipt ids the instance does not have
// (deleted already, never given, or another instance's) are ignored; one
// given twice is counted once.
func (db *DB) DeleteMany(ctx context.Context, id portrait.InstanceID, receiptIDs []int64) (int, error) {
	if err := checkCtx(ctx, fmt.Sprintf("delete notifications of instance %d", id)); err != nil {
		return 0, err
	}
	if len(receiptIDs) == 0 {
		return 0, nil
	}
	tag, err := db.execWrite(ctx, `DELETE FROM notifications WHERE instance_id = $1 AND id = ANY($2)`, int64(id), receiptIDs)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete %d notifications of instance %d: %w", len(receiptIDs), id, err)
	}
	return int(tag.RowsAffected()), nil
}

// Depth returns the number of queued notifications of instance id (0 for
// an unknown one), counted over its index.
func (db *DB) Depth(ctx context.Context, id portrait.InstanceID) (int64, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM notifications WHERE instance_id = $1`, int64(id)).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: queue depth of instance %d: %w", id, err)
	}
	return n, nil
}

// Depths returns the number of queued notifications of every instance
// that has any. The map is empty, not nil, when no queue has any.
func (db *DB) Depths(ctx context.Context) (map[portrait.InstanceID]int64, error) {
	if err := checkCtx(ctx, "queue depths"); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT instance_id, count(*) FROM notifications GROUP BY instance_id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: queue depths: %w", err)
	}
	defer rows.Close()
	out := map[portrait.InstanceID]int64{}
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("postgres: queue depths: %w", err)
		}
		out[portrait.InstanceID(id)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: queue depths: %w", err)
	}
	return out, nil
}

// AddJob stores a job, or merges it into the stored job with the same
// instance, kind and non-empty key, and returns the stored job's id. j.ID
// and j.Version are ignored.
//
// A merged job takes j.Data and j.DueAt, but is never due after the stored
// job's Deadline; it keeps its Deadline and CreatedAt, and its Version goes
// up by one (a new job's is 0). A zero Deadline means none. A new job whose
// DueAt is after its (non-zero) Deadline is due at its Deadline. Times are
// kept at microsecond precision. AddJob returns an error wrapping
// portrait.ErrNotFound if the instance does not exist.
func (db *DB) AddJob(ctx context.Context, j portrait.Job) (int64, error) {
	if err := checkCtx(ctx, fmt.Sprintf("add %s job of instance %d", j.Kind, j.Instance)); err != nil {
		return 0, err
	}
	var deadline *time.Time // NULL for none
	if !j.Deadline.IsZero() {
		deadline = &j.Deadline
	}
	var id int64
	err := db.runBatch(ctx, func(b *pgx.Batch) {
		queueFence(ctx, b)
		// $1 instance, $2 kind, $3 key, $4 data, $5 due, $6 deadline,
		// $7 created.
		b.Queue(`INSERT INTO jobs (instance_id, kind, key, data, due_at, deadline, created_at)
		VALUES ($1, $2, $3, $4, CASE WHEN $6::timestamptz IS NULL THEN $5 ELSE least($5, $6) END, $6, $7)
		ON CONFLICT (instance_id, kind, key) WHERE key <> '' DO UPDATE SET
			data = excluded.data,
			due_at = CASE WHEN jobs.deadline IS NULL THEN $5 ELSE least($5, jobs.deadline) END,
			version = jobs.version + 1
		RETURNING id`,
			int64(j.Instance), j.Kind, j.Key, nonNil(j.Data), j.DueAt, deadline, j.CreatedAt).Query(func(rows pgx.Rows) error {
			var err error
			id, err = pgx.CollectExactlyOneRow(rows, pgx.RowTo[int64])
			return err
		})
		b.Queue(notifyJob, int64(j.Instance))
	})
	if sqlState(err) == codeForeignKey {
		err = fmt.Errorf("instance %d: %w", j.Instance, portrait.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: add %s job of instance %d: %w", j.Kind, j.Instance, err)
	}
	return id, nil
}

// DueJobs returns up to limit jobs due at or before now, fairly across
// instances: it ranks each instance's due jobs by due time (then id) and
// returns them by rank, then due time, then id. So every instance with a
// due job has its oldest one in the batch before any instance has its
// second, and an instance's jobs come in due order. It returns none when
// limit is not positive.
func (db *DB) DueJobs(ctx context.Context, now time.Time, limit int) ([]portrait.Job, error) {
	if err := checkCtx(ctx, "due jobs"); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return []portrait.Job{}, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT id, instance_id, kind, key, data, due_at, deadline, created_at, version
		FROM (
			SELECT *, row_number() OVER (PARTITION BY instance_id ORDER BY due_at, id) AS rank
			FROM jobs WHERE due_at <= $1
		) ranked
		WHERE rank <= $2
		ORDER BY rank, due_at, id
		LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: due jobs: %w", err)
	}
	out, err := scanJobs(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: due jobs: %w", err)
	}
	return out, nil
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
	if err := checkCtx(ctx, fmt.Sprintf("finish job %d", j.ID)); err != nil {
		return 0, err
	}
	if n == nil {
		// One statement: delete the job if it has not changed, or else
		// end its claim (if it still exists), so that it runs again.
		if _, err := db.execWrite(ctx, `WITH deleted AS (DELETE FROM jobs WHERE id = $1 AND version = $2 RETURNING id)
			UPDATE jobs SET claimed_by = NULL, claim_until = NULL
			WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM deleted)`, j.ID, j.Version); err != nil {
			return 0, fmt.Errorf("postgres: finish job %d: %w", j.ID, err)
		}
		return 0, nil
	}
	// One round trip: a batch runs as one implicit transaction, and an
	// error in any statement rolls all of it back.
	var receipt int64
	err := db.runBatch(ctx, func(b *pgx.Batch) {
		// The instance's row first, as Enqueue and DeleteInstance lock
		// it before they touch the instance's jobs and notifications:
		// receipt ids stay in order, and there is no deadlock. A
		// missing instance locks nothing; the insert below then fails on
		// the foreign key, and the whole batch with it, keeping the job.
		b.Queue(lockInstances, []int64{int64(n.Instance)})
		queueFence(ctx, b)
		// The job's row next: a concurrent FinishJob of the same job
		// waits, and then finds it gone.
		b.Queue(`SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE`, j.ID)
		// The notification, only if the job is still there.
		b.Queue(`INSERT INTO notifications (id, instance_id, body, created_at)
			SELECT nextval(pg_get_serial_sequence('notifications', 'id')), $2, $3, $4
			WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1)
			RETURNING id`, j.ID, int64(n.Instance), nonNil(n.Body), n.CreatedAt).Query(func(rows pgx.Rows) error {
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			receipt = 0 // a batch run again after a deadlock runs this again
			if len(ids) == 1 {
				receipt = ids[0]
			}
			return err
		})
		b.Queue(`SELECT pg_notify('`+ChannelQueue+`', $2::bigint::text) WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1)`,
			j.ID, int64(n.Instance))
		// Deleted if unchanged; kept without its claim if merged into.
		b.Queue(`DELETE FROM jobs WHERE id = $1 AND version = $2`, j.ID, j.Version)
		b.Queue(`UPDATE jobs SET claimed_by = NULL, claim_until = NULL WHERE id = $1 AND version <> $2`, j.ID, j.Version)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: finish job %d: %w", j.ID, err)
	}
	return receipt, nil
}

// queryIDs runs a query of one bigint column in tx and returns its values.
func queryIDs(ctx context.Context, tx pgx.Tx, query string, args ...any) ([]int64, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}
