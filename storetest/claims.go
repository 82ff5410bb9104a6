package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
)

// ClaimStore is a store that keeps the queue and the leases of a cluster,
// and lets its nodes claim jobs.
type ClaimStore interface {
	QueueStore
	portrait.Leases
	portrait.JobClaims
}

// RunClaims runs the job-claim suite as subtests of t: the behaviour every
// portrait.JobClaims implementation must show, on top of its queue and
// leases. open and closing work as for Run.
func RunClaims(t *testing.T, open func(t *testing.T) ClaimStore) {
	runStores(t, open, []subtest[ClaimStore]{
		{"OwnedInstancesOnly", testClaimOwned},
		{"ClaimedOnce", testClaimOnce},
		{"ClaimExpires", testClaimExpires},
		{"FinishEndsClaim", testClaimFinish},
		{"RemoveNodeEndsClaims", testClaimRemoveNode},
		{"Fair", testClaimFair},
		{"ConcurrentClaimers", testClaimConcurrent},
		{"Invalid", testClaimInvalid},
	})
}

func claim(t *testing.T, s portrait.JobClaims, node string, now time.Time, limit int, ttl time.Duration) []portrait.Job {
	t.Helper()
	jobs, err := s.ClaimJobs(t.Context(), node, now, limit, ttl)
	if err != nil {
		t.Fatalf("ClaimJobs(%s, %d): %v", node, limit, err)
	}
	return jobs
}

// jobIDs returns the ids of jobs, sorted.
func jobIDs(jobs []portrait.Job) []int64 {
	var ids []int64
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	slices.Sort(ids)
	return ids
}

func wantJobIDs(t *testing.T, what string, got []portrait.Job, want ...portrait.Job) {
	t.Helper()
	if g, w := jobIDs(got), jobIDs(want); !slices.Equal(g, w) {
		t.Errorf("%s: jobs %v, want %v", what, g, w)
	}
}

// jobAt adds a keyless job of instance id due at sec seconds after
// baseTime.
func jobAt(t *testing.T, s portrait.Queue, id portrait.InstanceID, sec int) portrait.Job {
	t.Helper()
	j := portrait.Job{Instance: id, Kind: "avatarInfo", Data: fmt.Appendf(nil, `{"due":%d}`, sec),
		DueAt: baseTime.Add(time.Duration(sec) * time.Second), CreatedAt: baseTime}
	j.ID = addJob(t, s, j)
	return j
}

func testClaimOwned(t *testing.T, s ClaimStore) {
	ids := createN(t, s, 3)
	a, b, c := ids[0], ids[1], ids[2]
	ja, jb, jc := jobAt(t, s, a, 1), jobAt(t, s, b, 2), jobAt(t, s, c, 3)
	later := jobAt(t, s, a, 100)
	acquire(t, s, a, "node-1", time.Hour)
	acquire(t, s, b, "node-2", time.Hour)
	short := acquire(t, s, c, "node-1", 100*time.Millisecond)
	waitExpired(t, s, short)
	now := baseTime.Add(10 * time.Second)
	// node-1 gets the due jobs of the instance it owns, not those of
	// node-2's instance, of its lapsed lease's instance, nor jobs not due.
	got := claim(t, s, "node-1", now, 10, time.Minute)
	wantJobs(t, "node-1's claim", got, []portrait.Job{ja})
	wantJobIDs(t, "node-2's claim", claim(t, s, "node-2", now, 10, time.Minute), jb)
	wantJobIDs(t, "a node without leases", claim(t, s, "node-3", now, 10, time.Minute))
	// Claiming does not change the jobs as DueJobs sees them.
	wantJobIDs(t, "DueJobs after the claims", dueJobs(t, s, farFuture, 10), ja, jb, jc, later)
}

func testClaimOnce(t *testing.T, s ClaimStore) {
	ids := createN(t, s, 1)
	a := ids[0]
	j1, j2 := jobAt(t, s, a, 1), jobAt(t, s, a, 2)
	acquire(t, s, a, "node-1", time.Hour)
	now := baseTime.Add(time.Minute)
	wantJobs(t, "first claim", claim(t, s, "node-1", now, 1, time.Minute), []portrait.Job{j1})
	wantJobs(t, "second claim", claim(t, s, "node-1", now, 10, time.Minute), []portrait.Job{j2})
	wantJobIDs(t, "claim while both are claimed", claim(t, s, "node-1", now, 10, time.Minute))
	// A new owner does not take the jobs while the claims last.
	lease := acquire(t, s, a, "node-1", time.Hour)
	if err := s.Release(t.Context(), a, "node-1", lease.Fence); err != nil {
		t.Fatal(err)
	}
	acquire(t, s, a, "node-2", time.Hour)
	wantJobIDs(t, "the new owner's claim while the old claims last", claim(t, s, "node-2", now, 10, time.Minute))
	// A job added meanwhile is free.
	j3 := jobAt(t, s, a, 3)
	wantJobIDs(t, "the new owner's claim of a new job", claim(t, s, "node-2", now, 10, time.Minute), j3)
}

func testClaimExpires(t *testing.T, s ClaimStore) {
	ids := createN(t, s, 1)
	a := ids[0]
	j := jobAt(t, s, a, 1)
	acquire(t, s, a, "node-1", time.Hour)
	now := baseTime.Add(time.Minute)
	const ttl = 2 * time.Second // still running at the next call on a busy machine
	got := claim(t, s, "node-1", now, 10, ttl)
	after := dbNow(t, s)
	wantJobIDs(t, "claim", got, j)
	// Its node died: once the claim runs out, the job can be claimed
	// again.
	wantJobIDs(t, "claim while the first lasts", claim(t, s, "node-1", now, 10, time.Minute))
	waitExpired(t, s, portrait.Lease{Instance: a, Expires: after.Add(ttl)})
	wantJobIDs(t, "claim after the first ran out", claim(t, s, "node-1", now, 10, time.Minute), j)
}

// testClaimRemoveNode: a node that stops cleanly hands its claimed jobs
// over with its leases, at once.
func testClaimRemoveNode(t *testing.T, s ClaimStore) {
	ids := createN(t, s, 1)
	a := ids[0]
	j := jobAt(t, s, a, 1)
	acquire(t, s, a, "node-1", time.Hour)
	now := baseTime.Add(time.Minute)
	wantJobIDs(t, "node-1's claim", claim(t, s, "node-1", now, 10, time.Hour), j)
	if err := s.RemoveNode(t.Context(), "node-1"); err != nil {
		t.Fatal(err)
	}
	acquire(t, s, a, "node-2", time.Hour)
	wantJobIDs(t, "the next owner's claim after RemoveNode", claim(t, s, "node-2", now, 10, time.Hour), j)
}

func testClaimFinish(t *testing.T, s ClaimStore) {
	ids := createN(t, s, 1)
	a := ids[0]
	acquire(t, s, a, "node-1", time.Hour)
	now := baseTime.Add(time.Hour)
	plain := jobAt(t, s, a, 1)
	merged := portrait.Job{Instance: a, Kind: "avatarChanged", Key: "1@c.us", Data: []byte(`{"v":1}`), DueAt: baseTime, CreatedAt: baseTime}
	merged.ID = addJob(t, s, merged)
	got := claim(t, s, "node-1", now, 10, time.Hour)
	wantJobIDs(t, "claim", got, plain, merged)
	// While merged runs, a newer change merges into it.
	addJob(t, s, portrait.Job{Instance: a, Kind: "avatarChanged", Key: "1@c.us", Data: []byte(`{"v":2}`), DueAt: baseTime, CreatedAt: baseTime})
	for _, j := range got {
		n := notification(a, fmt.Sprintf("job %d", j.ID))
		if r := finishJob(t, s, j, &n); r == 0 {
			t.Errorf("FinishJob of claimed job %d enqueued nothing", j.ID)
		}
	}
	// The finished job is gone; the merged one is kept without its claim,
	// with its new data, and is claimed again at once.
	again := claim(t, s, "node-1", now, 10, time.Hour)
	if len(again) != 1 || again[0].ID != merged.ID || string(again[0].Data) != `{"v":2}` || again[0].Version != 1 {
		t.Fatalf("claim after FinishJob = %+v, want job %d, merged (version 1, data {\"v\":2})", again, merged.ID)
	}
	// Without a notification too.
	addJob(t, s, portrait.Job{Instance: a, Kind: "avatarChanged", Key: "1@c.us", Data: []byte(`{"v":3}`), DueAt: baseTime, CreatedAt: baseTime})
	finishJob(t, s, again[0], nil)
	third := claim(t, s, "node-1", now, 10, time.Hour)
	if len(third) != 1 || third[0].Version != 2 {
		t.Fatalf("claim after FinishJob without a notification = %+v, want job %d at version 2", third, merged.ID)
	}
	finishJob(t, s, third[0], nil)
	wantJobIDs(t, "claim after finishing everything", claim(t, s, "node-1", now, 10, time.Hour))
	wantJobIDs(t, "DueJobs after finishing everything", dueJobs(t, s, farFuture, 10))
}

func testClaimFair(t *testing.T, s ClaimStore) {
	ids := createN(t, s, 3)
	a, b, c := ids[0], ids[1], ids[2]
	var as []portrait.Job
	for i := range 20 {
		as = append(as, jobAt(t, s, a, i))
	}
	b1, b2 := jobAt(t, s, b, 50), jobAt(t, s, b, 51)
	c1 := jobAt(t, s, c, 60)
	for _, id := range ids {
		acquire(t, s, id, "node-1", time.Hour)
	}
	now := baseTime.Add(time.Hour)
	got := claim(t, s, "node-1", now, 5, time.Hour)
	wantJobs(t, "fair claim", got, []portrait.Job{as[0], b1, c1, as[1], b2})
	wantJobs(t, "next claim", claim(t, s, "node-1", now, 3, time.Hour), as[2:5])

	// Jobs still claimed count in their instance's rank: with one of d's
	// jobs running, e's first job comes before d's second, though d's is
	// due earlier.
	more := createN2(t, s, 1101000011, 2)
	d, e := more[0], more[1]
	d1, d2 := jobAt(t, s, d, 1), jobAt(t, s, d, 2)
	e1 := jobAt(t, s, e, 30)
	for _, id := range more {
		acquire(t, s, id, "node-1", time.Hour)
	}
	for _, j := range []portrait.Job{b1, b2, c1} {
		finishJob(t, s, j, nil)
	}
	// a's next due job is as[5], due at 5 s, ranked behind a's five claimed.
	wantJobs(t, "claim of d's first", claim(t, s, "node-1", now, 1, time.Hour), []portrait.Job{d1})
	wantJobs(t, "claim with d1 running", claim(t, s, "node-1", now, 2, time.Hour), []portrait.Job{e1, d2})
}

// createN2 creates n instances with ids from first on.
func createN2(t *testing.T, s portrait.Store, first portrait.InstanceID, n int) []portrait.InstanceID {
	t.Helper()
	var ids []portrait.InstanceID
	for i := range n {
		inst := newInstance(first + portrait.InstanceID(i))
		create(t, s, inst)
		ids = append(ids, inst.ID)
	}
	return ids
}

// testClaimConcurrent lets the workers of one node claim at once: every
// job is claimed by exactly one of them.
func testClaimConcurrent(t *testing.T, s ClaimStore) {
	const instances, each, workers = 4, 25, 6
	ids := createN(t, s, instances)
	want := map[int64]bool{}
	for _, id := range ids {
		acquire(t, s, id, "node-1", time.Hour)
		for i := range each {
			want[jobAt(t, s, id, i).ID] = true
		}
	}
	now := baseTime.Add(time.Hour)
	var (
		mu     sync.Mutex
		got    = map[int64]int{}
		errs   []error
		wg     sync.WaitGroup
		starts = make(chan struct{})
	)
	for range workers {
		wg.Go(func() {
			<-starts
			for empty := 0; empty < 3; {
				jobs, err := s.ClaimJobs(t.Context(), "node-1", now, 7, time.Hour)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				for _, j := range jobs {
					got[j.ID]++
				}
				mu.Unlock()
				if len(jobs) == 0 {
					empty++
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	close(starts)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("ClaimJobs: %v", err)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("job %d claimed %d times", id, n)
		}
		if !want[id] {
			t.Errorf("job %d claimed, never added", id)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d of %d jobs claimed", len(got), len(want))
	}
}

func testClaimInvalid(t *testing.T, s ClaimStore) {
	ids := createN(t, s, 1)
	jobAt(t, s, ids[0], 1)
	acquire(t, s, ids[0], "node-1", time.Hour)
	now := baseTime.Add(time.Hour)
	for _, limit := range []int{0, -1} {
		if jobs, err := s.ClaimJobs(t.Context(), "node-1", now, limit, time.Hour); err != nil || len(jobs) != 0 {
			t.Errorf("ClaimJobs with limit %d = %d jobs, %v; want none", limit, len(jobs), err)
		}
	}
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := s.ClaimJobs(t.Context(), "node-1", now, 10, ttl); err == nil {
			t.Errorf("ClaimJobs with duration %v succeeded", ttl)
		}
	}
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.ClaimJobs(canceled, "node-1", now, 10, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("ClaimJobs with a canceled context: %v, want an error wrapping context.Canceled", err)
	}
	// None of that claimed the job.
	if got := claim(t, s, "node-1", now, 10, time.Hour); len(got) != 1 {
		t.Errorf("ClaimJobs after the refused calls = %d jobs, want 1", len(got))
	}
}
