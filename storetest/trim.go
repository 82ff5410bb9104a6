package storetest

import (
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
)

// testQueueTrim: Trim drops notifications older than the window and each
// instance's oldest beyond the cap, in every queue, and says how many.
func testQueueTrim(t *testing.T, s QueueStore) {
	a, b := newInstance(1101000001), newInstance(1101000002)
	create(t, s, a)
	create(t, s, b)
	now := time.Now().UTC().Truncate(time.Microsecond)
	at := func(id portrait.InstanceID, body string, age time.Duration) portrait.Notification {
		n := notification(id, body)
		n.CreatedAt = now.Add(-age)
		return n
	}
	ids := enqueue(t, s,
		at(a.ID, "a-old", 3*time.Hour), at(a.ID, "a1", time.Minute), at(a.ID, "a2", time.Minute), at(a.ID, "a3", time.Minute),
		at(b.ID, "b-old", 2*time.Hour), at(b.ID, "b1", time.Minute))
	byAge, byCap, err := s.Trim(t.Context(), now.Add(-time.Hour), 2)
	if err != nil {
		t.Fatal(err)
	}
	if byAge != 2 || byCap != 1 {
		t.Errorf("Trim dropped %d for age and %d for the cap, want 2 and 1", byAge, byCap)
	}
	wantDepths(t, s, map[portrait.InstanceID]int64{a.ID: 2, b.ID: 1})
	// a keeps its newest two, in order; the oldest ones went.
	got := peek(t, s, a.ID, 0, 10)
	if len(got) != 2 || got[0].ReceiptID != ids[2] || got[1].ReceiptID != ids[3] {
		t.Errorf("a's queue after Trim: %v, want receipts %d and %d", receipts(got), ids[2], ids[3])
	}
	// No cap: only age counts.
	if byAge, byCap, err := s.Trim(t.Context(), now.Add(-time.Hour), 0); err != nil || byAge != 0 || byCap != 0 {
		t.Errorf("second Trim: %d, %d, %v; want nothing dropped", byAge, byCap, err)
	}
}

func receipts(ns []portrait.Notification) []int64 {
	out := make([]int64, len(ns))
	for i, n := range ns {
		out[i] = n.ReceiptID
	}
	return out
}
