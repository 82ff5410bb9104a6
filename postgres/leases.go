package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-dev/portrait"
)

var _ portrait.Leases = (*DB)(nil)

// Every statement here reads the time from now(), the database's clock at
// the start of its transaction (each is a transaction of its own). A
// statement that waited for a lock sees an earlier now() than the moment
// it acts, which errs on the safe side for Acquire and Renew: another
// node's lease looks unexpired a little longer, and a renewed one expires
// a little sooner. A fenced write and an Acquire that takes the lease over
// are ordered by the lease row's lock (portrait_fence holds it shared until
// the write commits), not by the clock: the new owner's lease begins after
// the old owner's last write.

// micros is d in microseconds, the precision of timestamptz; ttl and
// within are passed to PostgreSQL as $n * interval '1 microsecond'.
func micros(d time.Duration) int64 { return d.Microseconds() }

// checkTTL refuses a lease duration that is not positive.
func checkTTL(ttl time.Duration) error {
	if ttl < time.Microsecond {
		return fmt.Errorf("lease duration %v is not positive", ttl)
	}
	return nil
}

// Now returns the database's clock.
func (db *DB) Now(ctx context.Context) (time.Time, error) {
	if err := checkCtx(ctx, "now"); err != nil {
		return time.Time{}, err
	}
	var now time.Time
	if err := db.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("postgres: now: %w", err)
	}
	return utc(now), nil
}

// Heartbeat records that node n is alive now, with its address,
// registering it if it is new. n.Heartbeat is ignored: the database's
// clock is used.
func (db *DB) Heartbeat(ctx context.Context, n portrait.Node) error {
	if err := checkCtx(ctx, "heartbeat of node "+n.ID); err != nil {
		return err
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO nodes (id, addr, heartbeat) VALUES ($1, $2, now())
		ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, heartbeat = excluded.heartbeat`, n.ID, n.Addr)
	if err != nil {
		return fmt.Errorf("postgres: heartbeat of node %s: %w", n.ID, err)
	}
	return nil
}

// Nodes returns the nodes whose last heartbeat is less than within old,
// ordered by ID.
func (db *DB) Nodes(ctx context.Context, within time.Duration) ([]portrait.Node, error) {
	if err := checkCtx(ctx, "nodes"); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT id, addr, heartbeat FROM nodes
		WHERE heartbeat > now() - $1 * interval '1 microsecond' ORDER BY id`, micros(within))
	if err != nil {
		return nil, fmt.Errorf("postgres: nodes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (portrait.Node, error) {
		var n portrait.Node
		err := row.Scan(&n.ID, &n.Addr, &n.Heartbeat)
		n.Heartbeat = utc(n.Heartbeat)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: nodes: %w", err)
	}
	return out, nil
}

// RemoveNode forgets a node and releases all of its leases and job
// claims, in one transaction. An unknown node is not an error.
func (db *DB) RemoveNode(ctx context.Context, id string) error {
	if err := checkCtx(ctx, "remove node "+id); err != nil {
		return err
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM leases WHERE node = $1`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE jobs SET claimed_by = NULL, claim_until = NULL WHERE claimed_by = $1`, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM nodes WHERE id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: remove node %s: %w", id, err)
	}
	return nil
}

// leaseColumns are the columns scanLease reads, in its order.
const leaseColumns = `instance_id, node, fence, expires_at`

func scanLease(row pgx.CollectableRow) (portrait.Lease, error) {
	var (
		l  portrait.Lease
		id int64
	)
	err := row.Scan(&id, &l.Node, &l.Fence, &l.Expires)
	l.Instance = portrait.InstanceID(id)
	l.Expires = utc(l.Expires)
	return l, err
}

// Acquire takes the lease of an instance for node, for ttl from now: when
// it is free, expired, or node's own. It is one statement: nodes racing
// for a free lease all insert, PostgreSQL lets one of them in, and the
// others then find that lease held. A new owner, or node again after its
// lease expired, gets the next value of the fence sequence; node's
// unexpired lease keeps its fence.
func (db *DB) Acquire(ctx context.Context, id portrait.InstanceID, node string, ttl time.Duration) (portrait.Lease, error) {
	// AcquireMany's statement for one instance (it runs it again after a
	// deadlock, and leaves out an instance deleted meanwhile).
	got, err := db.AcquireMany(ctx, []portrait.InstanceID{id}, node, ttl)
	if err != nil {
		return portrait.Lease{}, err
	}
	if len(got) == 1 {
		return got[0], nil
	}
	// Nothing inserted or updated: the instance is missing, or another
	// node holds its lease.
	var holder portrait.Lease
	err = db.pool.QueryRow(ctx, `SELECT node, fence, expires_at FROM leases WHERE instance_id = $1`, int64(id)).
		Scan(&holder.Node, &holder.Fence, &holder.Expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		err = fmt.Errorf("instance %d: %w", id, portrait.ErrNotFound)
	case err == nil:
		err = fmt.Errorf("%w: node %s until %v", portrait.ErrLeaseHeld, holder.Node, utc(holder.Expires))
	}
	return portrait.Lease{}, fmt.Errorf("postgres: acquire the lease of instance %d for node %s: %w", id, node, err)
}

// AcquireMany takes, in one statement, the leases of ids that Acquire
// would take, and returns them, ordered by instance; the others (held by
// another node, or missing) are left out. Rows are taken in instance
// order, so that concurrent calls cannot deadlock; a deadlock with
// anything else is broken by PostgreSQL and the statement run again.
func (db *DB) AcquireMany(ctx context.Context, ids []portrait.InstanceID, node string, ttl time.Duration) ([]portrait.Lease, error) {
	what := fmt.Sprintf("acquire %d leases for node %s", len(ids), node)
	if err := checkCtx(ctx, what); err != nil {
		return nil, err
	}
	if err := checkTTL(ttl); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	raw := make([]int64, len(ids))
	for i, id := range ids {
		raw[i] = int64(id)
	}
	for attempt := 1; ; attempt++ {
		rows, err := db.pool.Query(ctx, `WITH taken AS (
				INSERT INTO leases (instance_id, node, fence, expires_at)
				SELECT id, $2, nextval('lease_fences'), now() + $3 * interval '1 microsecond'
				FROM instances WHERE id = ANY($1) ORDER BY id
				`+takeLease+`
			) SELECT `+leaseColumns+` FROM taken ORDER BY instance_id`, raw, node, micros(ttl))
		var out []portrait.Lease
		if err == nil {
			out, err = pgx.CollectRows(rows, scanLease)
		}
		if err == nil {
			if out == nil {
				out = []portrait.Lease{}
			}
			return out, nil
		}
		if sqlState(err) == codeForeignKey && attempt < maxAttempts {
			continue // an instance deleted meanwhile: the next attempt leaves it out
		}
		if attempt == maxAttempts || !retryable(err) {
			return nil, fmt.Errorf("postgres: %s: %w", what, err)
		}
	}
}

// takeLease ends the INSERT of a lease by Acquire and AcquireMany: a lease
// held by the same node is extended (keeping its fence while unexpired),
// an expired one is taken over with the new fence, and one another node
// holds is left alone (no row returned).
const takeLease = `ON CONFLICT (instance_id) DO UPDATE SET
		node = excluded.node,
		fence = CASE WHEN leases.node = excluded.node AND leases.expires_at > now()
			THEN leases.fence ELSE excluded.fence END,
		expires_at = excluded.expires_at
	WHERE leases.node = excluded.node OR leases.expires_at <= now()
	RETURNING ` + leaseColumns

// Renew extends every unexpired lease of node to ttl from now and returns
// them, ordered by instance.
func (db *DB) Renew(ctx context.Context, node string, ttl time.Duration) ([]portrait.Lease, error) {
	what := "renew the leases of node " + node
	if err := checkCtx(ctx, what); err != nil {
		return nil, err
	}
	if err := checkTTL(ttl); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	// The rows are locked in instance order, as fenced writes share-lock
	// them, so that a renewal and a write fenced by several leases cannot
	// deadlock; a deadlock with anything else is broken by PostgreSQL and
	// the statement run again.
	var out []portrait.Lease
	err := retry(ctx, func() (err error) {
		out, err = db.renewOnce(ctx, node, ttl)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return out, nil
}

// renewOnce runs Renew's statement once.
func (db *DB) renewOnce(ctx context.Context, node string, ttl time.Duration) ([]portrait.Lease, error) {
	rows, err := db.pool.Query(ctx, `WITH mine AS (
			SELECT instance_id FROM leases WHERE node = $1 AND expires_at > now()
			ORDER BY instance_id FOR UPDATE
		), renewed AS (
			UPDATE leases SET expires_at = now() + $2 * interval '1 microsecond'
			FROM mine WHERE leases.instance_id = mine.instance_id AND leases.node = $1 AND leases.expires_at > now()
			RETURNING `+qualified("leases", leaseColumns)+`
		) SELECT `+leaseColumns+` FROM renewed ORDER BY instance_id`, node, micros(ttl))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanLease)
}

// qualified prefixes each of the comma-separated columns with table.
func qualified(table, columns string) string {
	parts := strings.Split(columns, ", ")
	for i, p := range parts {
		parts[i] = table + "." + p
	}
	return strings.Join(parts, ", ")
}

// Release gives up node's lease of an instance if node still holds it
// with fence; otherwise it changes nothing.
func (db *DB) Release(ctx context.Context, id portrait.InstanceID, node string, fence int64) error {
	what := fmt.Sprintf("release the lease of instance %d by node %s", id, node)
	if err := checkCtx(ctx, what); err != nil {
		return err
	}
	_, err := db.pool.Exec(ctx, `DELETE FROM leases WHERE instance_id = $1 AND node = $2 AND fence = $3`, int64(id), node, fence)
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	return nil
}

// Leases returns every lease, expired ones included, ordered by instance.
func (db *DB) Leases(ctx context.Context) ([]portrait.Lease, error) {
	if err := checkCtx(ctx, "leases"); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT `+leaseColumns+` FROM leases ORDER BY instance_id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: leases: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanLease)
	if err != nil {
		return nil, fmt.Errorf("postgres: leases: %w", err)
	}
	return out, nil
}

// leaseHeld is true when the lease ($1 instance, $2 node, $3 fence) is
// current and unexpired. FOR SHARE makes a transaction that checks it
// hold off Acquire, Release and RemoveNode of that lease until it ends.
const leaseHeld = `SELECT EXISTS (SELECT 1 FROM leases
	WHERE instance_id = $1 AND node = $2 AND fence = $3 AND expires_at > now() FOR SHARE)`

// CheckLease returns nil when l is its instance's current, unexpired
// lease, and an error wrapping portrait.ErrLeaseLost otherwise.
func (db *DB) CheckLease(ctx context.Context, l portrait.Lease) error {
	what := fmt.Sprintf("check the lease of instance %d by node %s, fence %d", l.Instance, l.Node, l.Fence)
	if err := checkCtx(ctx, what); err != nil {
		return err
	}
	var held bool
	if err := db.pool.QueryRow(ctx, leaseHeld, int64(l.Instance), l.Node, l.Fence).Scan(&held); err != nil {
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	if !held {
		return fmt.Errorf("postgres: %s: %w", what, portrait.ErrLeaseLost)
	}
	return nil
}
