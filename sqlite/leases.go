package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/portrait-dev/portrait"
)

var _ portrait.Leases = (*DB)(nil)

// Lease times come from SQLite's clock (the machine's, shared by every
// process using the file), to the millisecond. Each write reads it once,
// inside its BEGIN IMMEDIATE transaction, and uses that reading for every
// comparison and expiry in it: the transaction holds the write lock, so
// nothing changes between the reading and the write.

// sqlNow is SQLite's clock in microseconds since the Unix epoch, whole
// milliseconds (unixepoch's 'subsec' precision).
const sqlNow = `SELECT CAST(round(unixepoch('subsec') * 1000) AS INTEGER) * 1000`

// nowMicros reads SQLite's clock in q (the pool, or a transaction).
func nowMicros(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) (int64, error) {
	var us int64
	if err := q.QueryRowContext(ctx, sqlNow).Scan(&us); err != nil {
		return 0, fmt.Errorf("read the clock: %w", err)
	}
	return us, nil
}

// checkTTL refuses a lease duration that is not positive, or shorter than
// the clock's millisecond.
func checkTTL(ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("lease duration %v is shorter than a millisecond", ttl)
	}
	return nil
}

// Now returns SQLite's clock.
func (db *DB) Now(ctx context.Context) (time.Time, error) {
	us, err := nowMicros(ctx, db.db)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: now: %w", err)
	}
	return fromMicros(us), nil
}

// Heartbeat records that node n is alive now, with its address,
// registering it if it is new. n.Heartbeat is ignored.
func (db *DB) Heartbeat(ctx context.Context, n portrait.Node) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		t, err := nowMicros(ctx, tx)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO nodes (id, addr, heartbeat) VALUES (?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, heartbeat = excluded.heartbeat`, n.ID, n.Addr, t)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: heartbeat of node %s: %w", n.ID, err)
	}
	return nil
}

// Nodes returns the nodes whose last heartbeat is less than within old,
// ordered by ID.
func (db *DB) Nodes(ctx context.Context, within time.Duration) ([]portrait.Node, error) {
	t, err := nowMicros(ctx, db.db)
	if err != nil {
		return nil, fmt.Errorf("sqlite: nodes: %w", err)
	}
	rows, err := db.db.QueryContext(ctx, `SELECT id, addr, heartbeat FROM nodes WHERE heartbeat > ? ORDER BY id`,
		t-within.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("sqlite: nodes: %w", err)
	}
	defer rows.Close()
	var out []portrait.Node
	for rows.Next() {
		var (
			n  portrait.Node
			hb int64
		)
		if err := rows.Scan(&n.ID, &n.Addr, &hb); err != nil {
			return nil, fmt.Errorf("sqlite: nodes: %w", err)
		}
		n.Heartbeat = fromMicros(hb)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: nodes: %w", err)
	}
	return out, nil
}

// RemoveNode forgets a node and releases all of its leases and job
// claims, in one transaction. An unknown node is not an error.
func (db *DB) RemoveNode(ctx context.Context, id string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE node = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = ?`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM nodes WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: remove node %s: %w", id, err)
	}
	return nil
}

// Acquire takes the lease of an instance for node, for ttl from now: when
// it is free, expired, or node's own. A new owner, or node again after its
// lease expired, gets the next fence; node's unexpired lease keeps its
// fence. The transaction holds SQLite's write lock, so nodes racing for a
// lease take turns, and all but the first find it held.
func (db *DB) Acquire(ctx context.Context, id portrait.InstanceID, node string, ttl time.Duration) (portrait.Lease, error) {
	what := fmt.Sprintf("acquire the lease of instance %d for node %s", id, node)
	if err := checkTTL(ttl); err != nil {
		return portrait.Lease{}, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	var l portrait.Lease
	err := db.write(ctx, func(tx *sql.Tx) error {
		t, err := nowMicros(ctx, tx)
		if err != nil {
			return err
		}
		l, err = acquireIn(ctx, tx, t, id, node, ttl)
		return err
	})
	if err != nil {
		return portrait.Lease{}, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return l, nil
}

// AcquireMany takes, in one transaction, the leases of ids that Acquire
// would take, and returns them, ordered by instance; the others are left
// out.
func (db *DB) AcquireMany(ctx context.Context, ids []portrait.InstanceID, node string, ttl time.Duration) ([]portrait.Lease, error) {
	what := fmt.Sprintf("acquire %d leases for node %s", len(ids), node)
	if err := checkTTL(ttl); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	sorted := slices.Compact(slices.Sorted(slices.Values(ids)))
	var out []portrait.Lease
	err := db.write(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		t, err := nowMicros(ctx, tx)
		if err != nil {
			return err
		}
		for _, id := range sorted {
			l, err := acquireIn(ctx, tx, t, id, node, ttl)
			switch {
			case err == nil:
				out = append(out, l)
			case errors.Is(err, portrait.ErrLeaseHeld), errors.Is(err, portrait.ErrNotFound):
			default:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

// acquireIn is Acquire in transaction tx at time t (microseconds).
func acquireIn(ctx context.Context, tx *sql.Tx, t int64, id portrait.InstanceID, node string, ttl time.Duration) (portrait.Lease, error) {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM instances WHERE id = ?`, int64(id)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return portrait.Lease{}, fmt.Errorf("instance %d: %w", id, portrait.ErrNotFound)
	}
	if err != nil {
		return portrait.Lease{}, err
	}
	var (
		holder  string
		fence   int64
		expires int64
	)
	err = tx.QueryRowContext(ctx, `SELECT node, fence, expires_at FROM leases WHERE instance_id = ?`, int64(id)).
		Scan(&holder, &fence, &expires)
	held := err == nil && expires > t
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return portrait.Lease{}, err
	case held && holder != node:
		return portrait.Lease{}, fmt.Errorf("%w: node %s until %v", portrait.ErrLeaseHeld, holder, fromMicros(expires))
	}
	if !held {
		// A new owner, or the same one after its lease lapsed.
		if err := tx.QueryRowContext(ctx, `UPDATE lease_fences SET value = value + 1 WHERE id = 1 RETURNING value`).Scan(&fence); err != nil {
			return portrait.Lease{}, err
		}
	}
	expires = t + ttl.Microseconds()
	_, err = tx.ExecContext(ctx, `INSERT INTO leases (instance_id, node, fence, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (instance_id) DO UPDATE SET node = excluded.node, fence = excluded.fence, expires_at = excluded.expires_at`,
		int64(id), node, fence, expires)
	if err != nil {
		return portrait.Lease{}, err
	}
	return portrait.Lease{Instance: id, Node: node, Fence: fence, Expires: fromMicros(expires)}, nil
}

// Renew extends every unexpired lease of node to ttl from now and returns
// them, ordered by instance.
func (db *DB) Renew(ctx context.Context, node string, ttl time.Duration) ([]portrait.Lease, error) {
	what := "renew the leases of node " + node
	if err := checkTTL(ttl); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	var out []portrait.Lease
	err := db.write(ctx, func(tx *sql.Tx) error {
		out = nil
		t, err := nowMicros(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `UPDATE leases SET expires_at = ?1 WHERE node = ?2 AND expires_at > ?3
			RETURNING instance_id, node, fence, expires_at`, t+ttl.Microseconds(), node, t)
		if err != nil {
			return err
		}
		out, err = scanLeases(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

// scanLeases reads rows of instance_id, node, fence, expires_at, closes
// them and returns the leases ordered by instance.
func scanLeases(rows *sql.Rows) ([]portrait.Lease, error) {
	defer rows.Close()
	out := []portrait.Lease{}
	for rows.Next() {
		var (
			l           portrait.Lease
			id, expires int64
		)
		if err := rows.Scan(&id, &l.Node, &l.Fence, &expires); err != nil {
			return nil, err
		}
		l.Instance = portrait.InstanceID(id)
		l.Expires = fromMicros(expires)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b portrait.Lease) int { return cmp.Compare(a.Instance, b.Instance) })
	return out, nil
}

// Release gives up node's lease of an instance if node still holds it
// with fence; otherwise it changes nothing.
func (db *DB) Release(ctx context.Context, id portrait.InstanceID, node string, fence int64) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE instance_id = ? AND node = ? AND fence = ?`, int64(id), node, fence)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: release the lease of instance %d by node %s: %w", id, node, err)
	}
	return nil
}

// Leases returns every lease, expired ones included, ordered by instance.
func (db *DB) Leases(ctx context.Context) ([]portrait.Lease, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT instance_id, node, fence, expires_at FROM leases ORDER BY instance_id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: leases: %w", err)
	}
	out, err := scanLeases(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: leases: %w", err)
	}
	return out, nil
}

// leaseHeld is true when the lease (instance, node, fence) is its
// instance's current, unexpired lease.
const leaseHeld = `SELECT EXISTS (SELECT 1 FROM leases
	WHERE instance_id = ? AND node = ? AND fence = ? AND expires_at > (` + sqlNow + `))`

// CheckLease returns nil when l is its instance's current, unexpired
// lease, and an error wrapping portrait.ErrLeaseLost otherwise.
func (db *DB) CheckLease(ctx context.Context, l portrait.Lease) error {
	what := fmt.Sprintf("check the lease of instance %d by node %s, fence %d", l.Instance, l.Node, l.Fence)
	var held bool
	err := db.db.QueryRowContext(ctx, leaseHeld, int64(l.Instance), l.Node, l.Fence).Scan(&held)
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if !held {
		return fmt.Errorf("sqlite: %s: %w", what, portrait.ErrLeaseLost)
	}
	return nil
}

// fenceOf returns the lease ctx carries (portrait.WithLease), or nil.
// The writer's submit reads it before it queues an operation, which the
// writer runs under a context of its own.
func fenceOf(ctx context.Context) *portrait.Lease {
	if l, ok := portrait.LeaseFrom(ctx); ok {
		return &l
	}
	return nil
}

// checkFence returns an error wrapping portrait.ErrLeaseLost unless l is
// nil or its instance's current, unexpired lease. It runs in the write
// transaction it guards: that holds SQLite's write lock, so the lease
// cannot change before the write commits.
func checkFence(ctx context.Context, tx *sql.Tx, l *portrait.Lease) error {
	if l == nil {
		return nil
	}
	var held bool
	err := tx.QueryRowContext(ctx, leaseHeld, int64(l.Instance), l.Node, l.Fence).Scan(&held)
	if err != nil {
		return fmt.Errorf("check the lease of instance %d: %w", l.Instance, err)
	}
	if !held {
		return fmt.Errorf("instance %d, node %s, fence %d: %w", l.Instance, l.Node, l.Fence, portrait.ErrLeaseLost)
	}
	return nil
}
