package postgres

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/pgtest"
)

// The benchmarks mirror sqlite's (bench_test.go there), so that the two
// stores can be compared side by side on one machine. PostgreSQL runs as
// the server named by PORTRAIT_TEST_POSTGRES is configured (scripts/test's
// throwaway server does not fsync).

// benchInstances is how many instances the benchmarks spread their
// notifications over.
const benchInstances = 100

// body returns a notification body of about 300 bytes.
func body(id portrait.InstanceID, seq int) []byte {
	return fmt.Appendf(nil, `{"typeWebhook":"avatarInfo","instanceData":{"idInstance":%d,"wid":"11001234567@c.us","typeInstance":"whatsapp"},"timestamp":%d,"chatId":"11001230001@c.us","urlAvatar":"http://127.0.0.1:7700/avatars/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.jpg","available":true,"seq":%d}`,
		id, time.Now().Unix(), seq)
}

// openBench opens a new database with benchInstances instances.
func openBench(b *testing.B) (*DB, []portrait.InstanceID) {
	b.Helper()
	db, err := Open(b.Context(), pgtest.DB(b))
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
// instance), and reports notifications per second.
func BenchmarkEnqueue(b *testing.B) {
	for _, producers := range []int{1, 100} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			db, ids := openBench(b)
			ctx := b.Context()
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
		})
	}
}

// fill enqueues n notifications spread evenly over ids, in large Enqueue
// calls, and returns how many each instance got.
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

// deliveryBench runs deliver for each instance at once, after filling
// their queues with b.N notifications in all, and reports deliveries per
// second.
func deliveryBench(b *testing.B, deliver func(db *DB, id portrait.InstanceID, count int) error) {
	db, ids := openBench(b)
	per := fill(b, db, ids, b.N)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	b.ResetTimer()
	for k, id := range ids {
		wg.Go(func() {
			if err := deliver(db, id, per[k]); err != nil {
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
}

// BenchmarkDelivery: 100 deliverers, one per instance, each taking the
// oldest notification of its instance (Head) and deleting it (Delete).
func BenchmarkDelivery(b *testing.B) {
	deliveryBench(b, func(db *DB, id portrait.InstanceID, count int) error {
		ctx := b.Context()
		for range count {
			n, err := db.Head(ctx, id)
			if err != nil {
				return fmt.Errorf("head of %d: %w", id, err)
			}
			ok, err := db.Delete(ctx, id, n.ReceiptID)
			if err == nil && !ok {
				err = errors.New("not deleted")
			}
			if err != nil {
				return fmt.Errorf("delete %d of %d: %w", n.ReceiptID, id, err)
			}
		}
		return nil
	})
}

// BenchmarkDeliveryBatched: 100 deliverers, one per instance, each taking
// up to 64 of its instance's oldest notifications after the last it took
// (Peek) and deleting them in one DeleteMany.
func BenchmarkDeliveryBatched(b *testing.B) {
	deliveryBench(b, func(db *DB, id portrait.InstanceID, count int) error {
		ctx := b.Context()
		var after int64
		receipts := make([]int64, 0, 64)
		for left := count; left > 0; {
			ns, err := db.Peek(ctx, id, after, 64)
			if err != nil {
				return fmt.Errorf("peek at %d after %d: %w", id, after, err)
			}
			if len(ns) == 0 || len(ns) > left {
				return fmt.Errorf("peek at %d after %d: %d notifications, %d left", id, after, len(ns), left)
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
				return fmt.Errorf("delete %d notifications of %d: %w", len(receipts), id, err)
			}
			after = receipts[len(receipts)-1]
			left -= len(ns)
		}
		return nil
	})
}

// BenchmarkJobs is getAvatarAsync's path in a cluster: 100 instances owned
// by one node, b.N jobs added, then claimed by 8 workers and finished with
// their notification. It reports jobs per second of the claim and finish
// phase.
func BenchmarkJobs(b *testing.B) {
	db, ids := openBench(b)
	ctx := b.Context()
	for _, id := range ids {
		if _, err := db.Acquire(ctx, id, "node-1", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	for i := range b.N {
		id := ids[i%len(ids)]
		if _, err := db.AddJob(ctx, portrait.Job{Instance: id, Kind: "avatarInfo", Data: []byte(`{"chatId":"11001230001@c.us"}`),
			DueAt: time.Now(), CreatedAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	var done atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 8 {
		wg.Go(func() {
			for done.Load() < int64(b.N) && failed.Load() == nil {
				jobs, err := db.ClaimJobs(ctx, "node-1", time.Now().Add(time.Second), 32, time.Minute)
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				for _, j := range jobs {
					n := portrait.Notification{Instance: j.Instance, Body: body(j.Instance, int(j.ID)), CreatedAt: time.Now()}
					if _, err := db.FinishJob(ctx, j, &n); err != nil {
						failed.CompareAndSwap(nil, &err)
						return
					}
					done.Add(1)
				}
				if len(jobs) == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}
