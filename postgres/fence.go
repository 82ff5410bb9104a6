package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/portrait-dev/portrait"
)

// Fenced writes (portrait.WithLease): a write made with a context that
// carries a lease runs in one transaction with a call of portrait_fence
// (migration 0004), which fails the transaction with codeLeaseLost unless
// the lease is current, and otherwise share-locks it until the commit.
// Where a write locks its instance's row, the check comes after that lock,
// as in every other transaction that takes both.

// queueFence adds the fence check of the lease ctx carries, if any, to b.
func queueFence(ctx context.Context, b *pgx.Batch) {
	if l, ok := portrait.LeaseFrom(ctx); ok {
		queueLease(b, l)
	}
}

// queueLease adds the fence check of lease l to b.
func queueLease(b *pgx.Batch, l portrait.Lease) {
	b.Queue(`SELECT portrait_fence($1, $2, $3)`, int64(l.Instance), l.Node, l.Fence)
}

// execWrite runs one statement that writes, fenced by the lease ctx
// carries, if any, and returns its command tag.
func (db *DB) execWrite(ctx context.Context, stmt string, args ...any) (pgconn.CommandTag, error) {
	if _, ok := portrait.LeaseFrom(ctx); !ok {
		return db.pool.Exec(ctx, stmt, args...)
	}
	var tag pgconn.CommandTag
	err := db.runBatch(ctx, func(b *pgx.Batch) {
		queueFence(ctx, b)
		b.Queue(stmt, args...).Exec(func(ct pgconn.CommandTag) error {
			tag = ct
			return nil
		})
	})
	return tag, err
}

// leaseLost wraps err with portrait.ErrLeaseLost when it is
// portrait_fence's refusal.
func leaseLost(err error) error {
	if sqlState(err) == codeLeaseLost {
		return fmt.Errorf("%w: %w", portrait.ErrLeaseLost, err)
	}
	return err
}
