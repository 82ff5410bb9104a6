package sqlite

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
)

// benchInstances is how many instances the benchmarks spread their
// notifications over.
const benchInstances = 100

// openBench opens a new database with benchInstances instances.
func openBench(b *testing.B) (*DB, []portrait.InstanceID) {
	b.Helper()
	db, err := Open(b.Context(), filepath.Join(b.TempDir(), "portrait.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	ids := make([]portrait.InstanceID, benchInstances)
	for i := range ids {
		ids[i] = portrait.InstanceID(1101000000 + i)
		if err := db.CreateInstance(b.Context(), instance(ids[i])); err != nil {
			b.Fatal(err)
		}
	}
	return db, ids
}

// BenchmarkEnqueue enqueues one notification of about 300 bytes per call,
// from one producer and from 100 concurrent ones (each to its own
// instance), and reports notifications per second. Every call is durable
// (synchronous=FULL) when it returns.
func BenchmarkEnqueue(b *testing.B) {
	for _, producers := range []int{1, 100} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			db, ids := openBench(b)
			ctx := b.Context()
			batches := db.w.batches.Load()
			var next atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Pointer[error]
			b.ResetTimer()
			for p := range producers {
				wg.Go(func() {
					id := ids[p%len(ids)]
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						n := portrait.Notification{Instance: id, Body: body(id, int(i)), CreatedAt: time.Now()}
						if _, err := db.Enqueue(ctx, []portrait.Notification{n}); err != nil {
							failed.CompareAndSwap(nil, &err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			if err := failed.Load(); err != nil {
				b.Fatal(*err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notifications/s")
			b.ReportMetric(float64(b.N)/float64(db.w.batches.Load()-batches), "ops/tx")
		})
	}
}

// fill enqueues n notifications of about 300 bytes, spread evenly over
// ids, in large Enqueue calls, and returns how many each instance got.
func fill(b *testing.B, db *DB, ids []portrait.InstanceID, n int) []int {
	b.Helper()
	per := make([]int, len(ids))
	var ns []portrait.Notification
	for i := range n {
		k := i % len(ids)
		per[k]++
		ns = append(ns, portrait.Notification{Instance: ids[k], Body: body(ids[k], i), CreatedAt: time.Now()})
		if len(ns) == 1000 || i == n-1 {
			if _, err := db.Enqueue(b.Context(), ns); err != nil {
				b.Fatal(err)
			}
			ns = ns[:0]
		}
	}
	return per
}

// connsOpened returns how many connections the pool of db has opened so
// far: those open now and those it closed.
func connsOpened(db *DB) int64 {
	s := db.db.Stats()
	return int64(s.OpenConnections) + s.MaxIdleClosed + s.MaxIdleTimeClosed + s.MaxLifetimeClosed
}

// deliveryBench runs deliver for each of the instances of db, at once,
// after filling their queues with b.N notifications in all. deliver
// delivers the count notifications of its instance and returns the number
// of reads (Head or Peek) it made. It reports deliveries per second, the
// writer's operations per transaction, and the share of the reads for
// which the pool opened a connection.
func deliveryBench(b *testing.B, deliver func(db *DB, id portrait.InstanceID, count int) (reads int64, err error)) {
	db, ids := openBench(b)
	per := fill(b, db, ids, b.N)
	batches, opened := db.w.batches.Load(), connsOpened(db)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	var reads atomic.Int64
	b.ResetTimer()
	for k, id := range ids {
		wg.Go(func() {
			r, err := deliver(db, id, per[k])
			reads.Add(r)
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	if tx := db.w.batches.Load() - batches; tx > 0 {
		b.ReportMetric(float64(b.N)/float64(tx), "deliveries/tx")
	}
	if r := reads.Load(); r > 0 {
		b.ReportMetric(100*float64(connsOpened(db)-opened)/float64(r), "%reads-new-conn")
	}
}

// BenchmarkDelivery is the delivery cycle one notification at a time: 100
// deliverers, one per instance, each taking the oldest notification of its
// instance (Head) and deleting it (Delete), as webhook delivery does once
// the webhook has answered. It reports deliveries per second.
func BenchmarkDelivery(b *testing.B) {
	deliveryBench(b, func(db *DB, id portrait.InstanceID, count int) (int64, error) {
		ctx := b.Context()
		for i := range count {
			n, err := db.Head(ctx, id)
			if err != nil {
				return int64(i + 1), fmt.Errorf("head of %d: %w", id, err)
			}
			ok, err := db.Delete(ctx, id, n.ReceiptID)
			if err == nil && !ok {
				err = errors.New("not deleted")
			}
			if err != nil {
				return int64(i + 1), fmt.Errorf("delete %d of %d: %w", n.ReceiptID, id, err)
			}
		}
		return int64(count), nil
	})
}

// deliveryBatch is how many notifications BenchmarkDeliveryBatched's
// deliverers take at a time.
const deliveryBatch = 64

// BenchmarkDeliveryBatched is the delivery cycle in batches: 100
// deliverers, one per instance, each taking up to 64 of its instance's
// oldest notifications after the last it took (Peek) and deleting them
// in one DeleteMany. It reports deliveries per second, comparable with
// BenchmarkDelivery's.
func BenchmarkDeliveryBatched(b *testing.B) {
	deliveryBench(b, func(db *DB, id portrait.InstanceID, count int) (int64, error) {
		ctx := b.Context()
		var (
			after    int64
			reads    int64
			receipts = make([]int64, 0, deliveryBatch)
		)
		for left := count; left > 0; {
			ns, err := db.Peek(ctx, id, after, deliveryBatch)
			reads++
			if err != nil {
				return reads, fmt.Errorf("peek at %d after %d: %w", id, after, err)
			}
			if len(ns) == 0 || len(ns) > left {
				return reads, fmt.Errorf("peek at %d after %d: %d notifications, %d left", id, after, len(ns), left)
			}
			receipts = receipts[:0]
			for _, n := range ns {
				receipts = append(receipts, n.ReceiptID)
			}
			deleted, err := db.DeleteMany(ctx, id, receipts)
			if err == nil && deleted != len(receipts) {
				err = fmt.Errorf("%d deleted", deleted)
			}
			if err != nil {
				return reads, fmt.Errorf("delete %d notifications of %d: %w", len(receipts), id, err)
			}
			after = receipts[len(receipts)-1]
			left -= len(ns)
		}
		return reads, nil
	})
}
