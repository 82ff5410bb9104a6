package storetest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
)

// QueueStore is a store that also keeps the notification queue, as the
// SQLite store does.
type QueueStore interface {
	portrait.Store
	portrait.Queue
}

// RunQueue runs the queue suite as subtests of t: the behaviour every
// portrait.Queue implementation must show, on top of the instances of its
// portrait.Store. It is separate from Run so that a store can pass Run
// before it implements the queue; a store that implements both runs both.
// open and closing work as for Run.
//
// Besides what the portrait.Queue doc comments say, the suite requires:
//   - Enqueue stores Body byte for byte and CreatedAt at microsecond
//     precision, returned in UTC; Head, Delete and Depths treat an unknown
//     instance as one with an empty queue (ErrNotFound, false, absent);
//   - receipt ids and job ids are never reused, even after the largest one
//     is deleted, so that a stale receipt id or job id can never delete a
//     newer notification or job;
//   - a zero Job.Deadline means the job has none, so merging may postpone
//     it without bound; a job is never due after a non-zero Deadline, a new
//     job included;
//   - FinishJob with a notification for an unknown instance fails with
//     ErrNotFound and keeps the job;
//   - a new job's Version is 0 (AddJob ignores j.Version), and each merge
//     into it, even one that changes nothing, adds one; nothing else
//     changes it;
//   - FinishJob finds the job by j.ID alone: a job that is gone is not
//     finished, whatever j.Version; one whose Version differs is kept as
//     it is stored (merged data and due time) and n is enqueued;
//   - DueJobs is fair across instances: it ranks each instance's due jobs
//     by due time, then id, and returns them by rank, then due time, then
//     id, so that one instance's backlog never keeps another instance's
//     oldest due job out of a batch; it returns none for a limit that is
//     not positive;
//   - Peek returns an empty slice, not an error, when there is nothing to
//     return, for an unknown instance and for a limit that is not positive
//     too;
//   - DeleteMany ignores receipt ids the instance does not have and counts
//     a receipt id given twice once; with no receipt ids it returns 0;
//     other callers see all of its deletions or none of them;
//   - a call whose context is canceled before it starts fails with the
//     context's error and changes nothing.
func RunQueue(t *testing.T, open func(t *testing.T) QueueStore) {
	runStores(t, open, []subtest[QueueStore]{
		{"FIFO", testQueueFIFO},
		{"RoundTrip", testQueueRoundTrip},
		{"CallerSlicesNotRetained", testQueueCallerSlices},
		{"ReceiptIDsNotReused", testQueueReceiptIDs},
		{"Delete", testQueueDelete},
		{"Peek", testQueuePeek},
		{"DeleteMany", testQueueDeleteMany},
		{"DeleteManyAtomic", testQueueDeleteManyAtomic},
		{"UnknownInstance", testQueueUnknownInstance},
		{"BatchAtomic", testQueueBatch},
		{"DeleteInstanceCascades", testQueueCascade},
		{"Depths", testQueueDepths},
		{"Trim", testQueueTrim},
		{"JobsDueOrder", testJobsDueOrder},
		{"JobsFairAcrossInstances", testJobsFair},
		{"JobsMerge", testJobsMerge},
		{"JobsNoDeadline", testJobsNoDeadline},
		{"JobVersions", testJobVersions},
		{"FinishJob", testFinishJob},
		{"FinishJobMerged", testFinishJobMerged},
		{"JobIDsNotReused", testJobIDs},
		{"ConcurrentProducers", testQueueConcurrent},
		{"ContextCanceled", testQueueContextCanceled},
	})
}

// notification returns a notification for instance id whose body is a
// small JSON envelope carrying text.
func notification(id portrait.InstanceID, text string) portrait.Notification {
	return portrait.Notification{
		Instance:  id,
		Body:      fmt.Appendf(nil, `{"typeWebhook":"test","instanceData":{"idInstance":%d},"text":%q}`, id, text),
		CreatedAt: baseTime,
	}
}

func enqueue(t *testing.T, q portrait.Queue, ns ...portrait.Notification) []int64 {
	t.Helper()
	ids, err := q.Enqueue(t.Context(), ns)
	if err != nil {
		t.Fatalf("Enqueue of %d notifications: %v", len(ns), err)
	}
	if len(ids) != len(ns) {
		t.Fatalf("Enqueue of %d notifications returned %d receipt ids", len(ns), len(ids))
	}
	return ids
}

func head(t *testing.T, q portrait.Queue, id portrait.InstanceID) portrait.Notification {
	t.Helper()
	n, err := q.Head(t.Context(), id)
	if err != nil {
		t.Fatalf("Head(%d): %v", id, err)
	}
	return n
}

// diffNotification describes how got differs from want, whose ReceiptID
// must be set, or returns "".
func diffNotification(got, want portrait.Notification) string {
	var d []string
	if got.ReceiptID != want.ReceiptID {
		d = append(d, fmt.Sprintf("ReceiptID %d, want %d", got.ReceiptID, want.ReceiptID))
	}
	if got.Instance != want.Instance {
		d = append(d, fmt.Sprintf("Instance %d, want %d", got.Instance, want.Instance))
	}
	if !bytes.Equal(got.Body, want.Body) {
		d = append(d, fmt.Sprintf("Body %s, want %s", abbrev(got.Body), abbrev(want.Body)))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		d = append(d, fmt.Sprintf("CreatedAt %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	if got.CreatedAt.Location() != time.UTC {
		d = append(d, fmt.Sprintf("CreatedAt in %v, want UTC", got.CreatedAt.Location()))
	}
	return strings.Join(d, "; ")
}

// wantHead checks that the oldest notification of want.Instance is want.
func wantHead(t *testing.T, q portrait.Queue, want portrait.Notification) {
	t.Helper()
	if d := diffNotification(head(t, q, want.Instance), want); d != "" {
		t.Errorf("Head(%d): %s", want.Instance, d)
	}
}

func wantEmpty(t *testing.T, q portrait.Queue, id portrait.InstanceID) {
	t.Helper()
	n, err := q.Head(t.Context(), id)
	if !errors.Is(err, portrait.ErrNotFound) {
		t.Errorf("Head(%d) = receipt %d, %v; want an error wrapping portrait.ErrNotFound", id, n.ReceiptID, err)
	}
}

func del(t *testing.T, q portrait.Queue, id portrait.InstanceID, receipt int64, want bool) {
	t.Helper()
	got, err := q.Delete(t.Context(), id, receipt)
	if err != nil {
		t.Fatalf("Delete(%d, %d): %v", id, receipt, err)
	}
	if got != want {
		t.Errorf("Delete(%d, %d) = %v, want %v", id, receipt, got, want)
	}
}

// drain deletes every notification of an instance, oldest first, and
// returns them.
func drain(t *testing.T, q portrait.Queue, id portrait.InstanceID) []portrait.Notification {
	t.Helper()
	var out []portrait.Notification
	for {
		n, err := q.Head(t.Context(), id)
		if errors.Is(err, portrait.ErrNotFound) {
			return out
		}
		if err != nil {
			t.Fatalf("Head(%d): %v", id, err)
		}
		del(t, q, id, n.ReceiptID, true)
		out = append(out, n)
	}
}

func depths(t *testing.T, q portrait.Queue) map[portrait.InstanceID]int64 {
	t.Helper()
	d, err := q.Depths(t.Context())
	if err != nil {
		t.Fatalf("Depths: %v", err)
	}
	return d
}

func wantDepths(t *testing.T, q portrait.Queue, want map[portrait.InstanceID]int64) {
	t.Helper()
	got := depths(t, q)
	if len(got) != len(want) {
		t.Errorf("Depths = %v, want %v", got, want)
		return
	}
	for id, n := range want {
		if got[id] != n {
			t.Errorf("Depths = %v, want %v", got, want)
			return
		}
	}
	// Depth agrees, also for instances without notifications.
	for _, id := range []portrait.InstanceID{1101000001, 1101000002, 1101000003, 1101999999} {
		n, err := q.Depth(t.Context(), id)
		if err != nil || n != want[id] {
			t.Errorf("Depth(%d) = %d, %v; want %d", id, n, err, want[id])
		}
	}
}

func wantIncreasing(t *testing.T, what string, ids []int64) {
	t.Helper()
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Errorf("%s: receipt ids %v do not increase", what, ids)
			return
		}
	}
}

func testQueueFIFO(t *testing.T, s QueueStore) {
	a, b := newInstance(1101000001), newInstance(1101000002)
	create(t, s, a)
	create(t, s, b)
	wantEmpty(t, s, a.ID)

	var want []portrait.Notification
	add := func(ns ...portrait.Notification) {
		t.Helper()
		for i, id := range enqueue(t, s, ns...) {
			ns[i].ReceiptID = id
			if ns[i].Instance == a.ID {
				want = append(want, ns[i])
			}
		}
	}
	add(notification(a.ID, "a1"))
	add(notification(a.ID, "a2"))
	add(notification(b.ID, "b1"))
	add(notification(a.ID, "a3"), notification(b.ID, "b2"), notification(a.ID, "a4"))
	add(notification(a.ID, "a5"))

	wantHead(t, s, want[0])
	// Head does not remove.
	wantHead(t, s, want[0])
	got := drain(t, s, a.ID)
	if len(got) != len(want) {
		t.Fatalf("instance %d held %d notifications, want %d", a.ID, len(got), len(want))
	}
	var ids []int64
	for i := range got {
		if d := diffNotification(got[i], want[i]); d != "" {
			t.Errorf("notification %d of instance %d: %s", i, a.ID, d)
		}
		ids = append(ids, got[i].ReceiptID)
	}
	wantIncreasing(t, "instance's queue", ids)
	wantEmpty(t, s, a.ID)
	// The other queue is untouched.
	if got := drain(t, s, b.ID); len(got) != 2 {
		t.Errorf("instance %d held %d notifications, want 2", b.ID, len(got))
	}
}

func testQueueRoundTrip(t *testing.T, s QueueStore) {
	a := newInstance(1101000001)
	create(t, s, a)
	big := bytes.Repeat([]byte(`{"k":"0123456789abcdef"},`), 1<<12)
	big = append(append([]byte(`{"list":[`), big[:len(big)-1]...), "]}"...)
	for i, n := range []portrait.Notification{
		notification(a.ID, "plain"),
		{Instance: a.ID, Body: []byte(`{"text":"ü 🙂 \"quoted\" \\ \u0000","n":1.50,"z":null}`), CreatedAt: baseTime},
		{Instance: a.ID, Body: big, CreatedAt: baseTime},
		{Instance: a.ID, Body: []byte(`{}`),
			CreatedAt: time.Date(2031, 12, 31, 23, 59, 59, 999999000, time.FixedZone("UTC+5:30", 5*3600+1800))},
		{Instance: a.ID, Body: []byte(`{"zero":"time"}`)},
		// A caller-set receipt id is ignored.
		{Instance: a.ID, Body: []byte(`{"receipt":"ignored"}`), ReceiptID: 1 << 40, CreatedAt: baseTime},
	} {
		ids := enqueue(t, s, n)
		want := n
		want.ReceiptID = ids[0]
		got := head(t, s, a.ID)
		if d := diffNotification(got, want); d != "" {
			t.Errorf("notification %d: %s", i, d)
		}
		del(t, s, a.ID, ids[0], true)
	}
}

func testQueueCallerSlices(t *testing.T, s QueueStore) {
	a := newInstance(1101000001)
	create(t, s, a)
	n := notification(a.ID, "original")
	want := n
	want.Body = bytes.Clone(n.Body)
	ns := []portrait.Notification{n}
	want.ReceiptID = enqueue(t, s, ns...)[0]
	n.Body[0] = 'X'
	wantHead(t, s, want)
	got := head(t, s, a.ID)
	got.Body[0] = 'Y'
	wantHead(t, s, want)
	peeked := peek(t, s, a.ID, 0, 10)
	peeked[0].Body[0] = 'Z'
	wantHead(t, s, want)

	job := portrait.Job{Instance: a.ID, Kind: "avatarInfo", Data: []byte(`{"chatId":"1@c.us"}`),
		DueAt: baseTime, CreatedAt: baseTime}
	if _, err := s.AddJob(t.Context(), job); err != nil {
		t.Fatalf("AddJob: %v", err)
	}
	job.Data[0] = 'X'
	jobs := dueJobs(t, s, baseTime, 10)
	if len(jobs) != 1 || string(jobs[0].Data) != `{"chatId":"1@c.us"}` {
		t.Fatalf("DueJobs after changing the added job's data: %v", jobs)
	}
	jobs[0].Data[0] = 'Y'
	if jobs := dueJobs(t, s, baseTime, 10); string(jobs[0].Data) != `{"chatId":"1@c.us"}` {
		t.Errorf("DueJobs after changing a returned job's data: %s", jobs[0].Data)
	}
}

func testQueueReceiptIDs(t *testing.T, s QueueStore) {
	a, b := newInstance(1101000001), newInstance(1101000002)
	create(t, s, a)
	create(t, s, b)
	ids := enqueue(t, s, notification(a.ID, "1"), notification(a.ID, "2"), notification(a.ID, "3"))
	wantIncreasing(t, "one Enqueue", ids)
	last := ids[2]
	// Deleting the newest notification, then all of them, does not make
	// its id available again.
	del(t, s, a.ID, last, true)
	next := enqueue(t, s, notification(a.ID, "4"))[0]
	if next <= last {
		t.Errorf("receipt id %d after deleting %d, want a larger one", next, last)
	}
	drain(t, s, a.ID)
	again := enqueue(t, s, notification(a.ID, "5"))[0]
	if again <= next {
		t.Errorf("receipt id %d after emptying the queue whose newest id was %d, want a larger one", again, next)
	}
	// Nor does another instance's notification take it.
	other := enqueue(t, s, notification(b.ID, "b"))[0]
	if other == again || other == next || other == last {
		t.Errorf("instance %d got receipt id %d, already given to instance %d", b.ID, other, a.ID)
	}
}

func testQueueDelete(t *testing.T, s QueueStore) {
	ctx := t.Context()
	const missing = portrait.InstanceID(1101000009)
	a, b := newInstance(1101000001), newInstance(1101000002)
	create(t, s, a)
	create(t, s, b)
	ns := []portrait.Notification{notification(a.ID, "a1"), notification(a.ID, "a2"), notification(a.ID, "a3"), notification(b.ID, "b1")}
	for i, id := range enqueue(t, s, ns...) {
		ns[i].ReceiptID = id
	}
	a1, a2, a3, b1 := ns[0], ns[1], ns[2], ns[3]

	// Deleting a notification other than the oldest leaves the head.
	del(t, s, a.ID, a2.ReceiptID, true)
	wantHead(t, s, a1)
	del(t, s, a.ID, a2.ReceiptID, false)
	// Another instance's receipt id deletes nothing.
	del(t, s, a.ID, b1.ReceiptID, false)
	del(t, s, b.ID, a1.ReceiptID, false)
	wantHead(t, s, b1)
	wantHead(t, s, a1)
	// Nor do ids never given, or a missing instance.
	del(t, s, a.ID, b1.ReceiptID+1000, false)
	del(t, s, a.ID, 0, false)
	del(t, s, a.ID, -1, false)
	del(t, s, missing, a1.ReceiptID, false)
	if _, err := s.Head(ctx, missing); !errors.Is(err, portrait.ErrNotFound) {
		t.Errorf("Head of a missing instance: %v, want an error wrapping portrait.ErrNotFound", err)
	}

	del(t, s, a.ID, a1.ReceiptID, true)
	wantHead(t, s, a3)
	del(t, s, a.ID, a3.ReceiptID, true)
	wantEmpty(t, s, a.ID)
	del(t, s, a.ID, a3.ReceiptID, false)
	wantDepths(t, s, map[portrait.InstanceID]int64{b.ID: 1})
}

func peek(t *testing.T, q portrait.Queue, id portrait.InstanceID, after int64, limit int) []portrait.Notification {
	t.Helper()
	ns, err := q.Peek(t.Context(), id, after, limit)
	if err != nil {
		t.Fatalf("Peek(%d, %d, %d): %v", id, after, limit, err)
	}
	if ns == nil {
		t.Errorf("Peek(%d, %d, %d) returned a nil slice, want an empty one", id, after, limit)
	}
	return ns
}

func wantNotifications(t *testing.T, what string, got, want []portrait.Notification) {
	t.Helper()
	if len(got) != len(want) {
		var ids []int64
		for _, n := range got {
			ids = append(ids, n.ReceiptID)
		}
		t.Errorf("%s: %d notifications %v, want %d", what, len(got), ids, len(want))
		return
	}
	for i := range got {
		if d := diffNotification(got[i], want[i]); d != "" {
			t.Errorf("%s: notification %d: %s", what, i, d)
		}
	}
}

func deleteMany(t *testing.T, q portrait.Queue, id portrait.InstanceID, receipts []int64, want int) {
	t.Helper()
	got, err := q.DeleteMany(t.Context(), id, receipts)
	if err != nil {
		t.Fatalf("DeleteMany(%d, %v): %v", id, receipts, err)
	}
	if got != want {
		t.Errorf("DeleteMany(%d, %v) = %d, want %d", id, receipts, got, want)
	}
}

func testQueuePeek(t *testing.T, s QueueStore) {
	const missing = portrait.InstanceID(1101000009)
	a, b, c := newInstance(1101000001), newInstance(1101000002), newInstance(1101000003)
	create(t, s, a)
	create(t, s, b)
	create(t, s, c)
	ns := []portrait.Notification{notification(a.ID, "a1"), notification(b.ID, "b1"), notification(a.ID, "a2"),
		notification(a.ID, "a3"), notification(b.ID, "b2")}
	ns = append(ns, portrait.Notification{Instance: a.ID, Body: []byte(`{"text":"ü \"x\" \u0000"}`),
		CreatedAt: time.Date(2031, 12, 31, 23, 59, 59, 999999000, time.FixedZone("UTC+5:30", 5*3600+1800))})
	ns = append(ns, notification(a.ID, "a5"))
	var as, bs []portrait.Notification
	for i, id := range enqueue(t, s, ns...) {
		ns[i].ReceiptID = id
		if ns[i].Instance == a.ID {
			as = append(as, ns[i])
		} else {
			bs = append(bs, ns[i])
		}
	}

	wantNotifications(t, "Peek of all", peek(t, s, a.ID, 0, 100), as)
	wantNotifications(t, "Peek of exactly all", peek(t, s, a.ID, 0, len(as)), as)
	wantNotifications(t, "Peek with limit 2", peek(t, s, a.ID, 0, 2), as[:2])
	wantNotifications(t, "Peek with limit 1", peek(t, s, a.ID, -1, 1), as[:1])
	wantNotifications(t, "Peek after the first", peek(t, s, a.ID, as[0].ReceiptID, 2), as[1:3])
	// after need not be a receipt id of the instance.
	wantNotifications(t, "Peek after another instance's receipt id", peek(t, s, a.ID, bs[0].ReceiptID, 10), as[1:])
	wantNotifications(t, "Peek after the next to last", peek(t, s, a.ID, as[len(as)-2].ReceiptID, 10), as[len(as)-1:])
	wantNotifications(t, "Peek after the last", peek(t, s, a.ID, as[len(as)-1].ReceiptID, 10), nil)
	wantNotifications(t, "Peek of another instance", peek(t, s, b.ID, 0, 10), bs)

	// Paging through the queue.
	var paged []portrait.Notification
	for after := int64(0); ; {
		page := peek(t, s, a.ID, after, 2)
		if len(page) == 0 {
			break
		}
		if len(page) > 2 || page[0].ReceiptID <= after {
			t.Fatalf("Peek(%d, %d, 2) returned receipt ids from %d, %d of them", a.ID, after, page[0].ReceiptID, len(page))
		}
		paged = append(paged, page...)
		after = page[len(page)-1].ReceiptID
	}
	wantNotifications(t, "Peek page by page", paged, as)

	// None is not an error.
	wantNotifications(t, "Peek of an empty queue", peek(t, s, c.ID, 0, 10), nil)
	wantNotifications(t, "Peek of a missing instance", peek(t, s, missing, 0, 10), nil)
	for _, limit := range []int{0, -1} {
		wantNotifications(t, fmt.Sprintf("Peek with limit %d", limit), peek(t, s, a.ID, 0, limit), nil)
	}

	// Peek does not remove, and does not show deleted notifications.
	wantDepths(t, s, map[portrait.InstanceID]int64{a.ID: int64(len(as)), b.ID: int64(len(bs))})
	del(t, s, a.ID, as[1].ReceiptID, true)
	del(t, s, a.ID, as[0].ReceiptID, true)
	wantNotifications(t, "Peek after deleting the first two", peek(t, s, a.ID, 0, 2), as[2:4])
	wantNotifications(t, "Peek after a deleted receipt id", peek(t, s, a.ID, as[1].ReceiptID, 10), as[2:])
	wantHead(t, s, as[2])
}

func testQueueDeleteMany(t *testing.T, s QueueStore) {
	const missing = portrait.InstanceID(1101000009)
	a, b := newInstance(1101000001), newInstance(1101000002)
	create(t, s, a)
	create(t, s, b)
	ns := []portrait.Notification{notification(a.ID, "a1"), notification(a.ID, "a2"), notification(b.ID, "b1"),
		notification(a.ID, "a3"), notification(a.ID, "a4"), notification(b.ID, "b2"), notification(a.ID, "a5")}
	for i, id := range enqueue(t, s, ns...) {
		ns[i].ReceiptID = id
	}
	a1, a2, b1, a3, a4, b2, a5 := ns[0], ns[1], ns[2], ns[3], ns[4], ns[5], ns[6]

	deleteMany(t, s, a.ID, nil, 0)
	deleteMany(t, s, a.ID, []int64{}, 0)
	// Another instance's receipt id is not deleted, nor counted.
	deleteMany(t, s, a.ID, []int64{a3.ReceiptID, b1.ReceiptID, a1.ReceiptID}, 2)
	wantNotifications(t, "instance's queue after DeleteMany", peek(t, s, a.ID, 0, 10), []portrait.Notification{a2, a4, a5})
	wantNotifications(t, "other instance's queue after DeleteMany", peek(t, s, b.ID, 0, 10), []portrait.Notification{b1, b2})
	// Nor are receipt ids already deleted, never given, or given twice.
	deleteMany(t, s, a.ID, []int64{a1.ReceiptID, 0, -1, b2.ReceiptID + 1000, a4.ReceiptID, a4.ReceiptID}, 1)
	wantNotifications(t, "instance's queue after the second DeleteMany", peek(t, s, a.ID, 0, 10), []portrait.Notification{a2, a5})
	// Nothing for a missing instance, or for the wrong one.
	deleteMany(t, s, missing, []int64{a2.ReceiptID, b1.ReceiptID}, 0)
	deleteMany(t, s, b.ID, []int64{a2.ReceiptID, a5.ReceiptID}, 0)
	wantDepths(t, s, map[portrait.InstanceID]int64{a.ID: 2, b.ID: 2})
	// In any order.
	deleteMany(t, s, a.ID, []int64{a5.ReceiptID, a2.ReceiptID}, 2)
	wantEmpty(t, s, a.ID)
	deleteMany(t, s, a.ID, []int64{a5.ReceiptID, a2.ReceiptID}, 0)
	wantDepths(t, s, map[portrait.InstanceID]int64{b.ID: 2})
	// Receipt ids are not given again after it.
	if next := enqueue(t, s, notification(a.ID, "next"))[0]; next <= a5.ReceiptID {
		t.Errorf("receipt id %d after DeleteMany of %d, want a larger one", next, a5.ReceiptID)
	}

	// Many at once, more than SQL placeholder limits allow.
	const many = 1500
	batch := make([]portrait.Notification, many)
	for i := range batch {
		batch[i] = notification(b.ID, fmt.Sprint(i))
	}
	ids := enqueue(t, s, batch...)
	// Every other one, then the rest with b's old ones.
	var half, rest []int64
	for i, id := range ids {
		if i%2 == 0 {
			half = append(half, id)
		} else {
			rest = append(rest, id)
		}
	}
	deleteMany(t, s, b.ID, half, many/2)
	wantDepths(t, s, map[portrait.InstanceID]int64{a.ID: 1, b.ID: 2 + many/2})
	deleteMany(t, s, b.ID, append(rest, b1.ReceiptID, b2.ReceiptID), many/2+2)
	wantEmpty(t, s, b.ID)
	wantDepths(t, s, map[portrait.InstanceID]int64{a.ID: 1})
}

// testQueueDeleteManyAtomic checks that readers see all of a DeleteMany's
// deletions or none of them.
func testQueueDeleteManyAtomic(t *testing.T, s QueueStore) {
	const rounds, size = 20, 40
	a := newInstance(1101000001)
	create(t, s, a)
	ctx := t.Context()
	for round := range rounds {
		ns := make([]portrait.Notification, size)
		for i := range ns {
			ns[i] = notification(a.ID, fmt.Sprintf("%d/%d", round, i))
		}
		ids := enqueue(t, s, ns...)
		done := make(chan struct{})
		var seen sync.Map // sizes seen
		var readers sync.WaitGroup
		for range 2 {
			readers.Go(func() {
				for {
					got, err := s.Peek(ctx, a.ID, 0, 2*size)
					if err != nil {
						t.Errorf("Peek: %v", err)
						return
					}
					seen.Store(len(got), true)
					d, err := s.Depths(ctx)
					if err != nil {
						t.Errorf("Depths: %v", err)
						return
					}
					seen.Store(int(d[a.ID]), true)
					select {
					case <-done:
						return
					default:
					}
				}
			})
		}
		// Deleted from the middle outwards, so that no single order of
		// one-by-one deletes looks like a FIFO being drained.
		order := slices.Clone(ids)
		slices.SortFunc(order, func(x, y int64) int {
			mid := ids[size/2]
			return cmpAbs(x-mid, y-mid)
		})
		deleteMany(t, s, a.ID, order, size)
		close(done)
		readers.Wait()
		seen.Range(func(k, _ any) bool {
			if n := k.(int); n != 0 && n != size {
				t.Errorf("round %d: a reader saw %d of %d notifications while DeleteMany removed them all", round, n, size)
			}
			return true
		})
		wantEmpty(t, s, a.ID)
	}
}

// cmpAbs compares the absolute values of x and y.
func cmpAbs(x, y int64) int {
	if x < 0 {
		x = -x
	}
	if y < 0 {
		y = -y
	}
	return cmp.Compare(x, y)
}

func testQueueUnknownInstance(t *testing.T, s QueueStore) {
	ctx := t.Context()
	const missing = portrait.InstanceID(1101000009)
	a := newInstance(1101000001)
	create(t, s, a)
	for _, ns := range [][]portrait.Notification{
		{notification(missing, "x")},
		{notification(a.ID, "first"), notification(missing, "x")},
		{notification(missing, "x"), notification(a.ID, "after")},
		{notification(a.ID, "1"), notification(a.ID, "2"), notification(missing, "x"), notification(a.ID, "3")},
	} {
		ids, err := s.Enqueue(ctx, ns)
		wantNotFound(t, fmt.Sprintf("Enqueue of %d notifications, one to a missing instance", len(ns)), err)
		if len(ids) != 0 {
			t.Errorf("failed Enqueue returned receipt ids %v", ids)
		}
	}
	// None of those stored anything.
	wantEmpty(t, s, a.ID)
	wantEmpty(t, s, missing)
	wantDepths(t, s, map[portrait.InstanceID]int64{})
	_, err := s.AddJob(ctx, portrait.Job{Instance: missing, Kind: "avatarInfo", DueAt: baseTime, CreatedAt: baseTime})
	wantNotFound(t, "AddJob to a missing instance", err)
	if jobs := dueJobs(t, s, baseTime.Add(time.Hour), 10); len(jobs) != 0 {
		t.Errorf("DueJobs after a failed AddJob = %v, want none", jobs)
	}
	// The store still works.
	n := notification(a.ID, "works")
	n.ReceiptID = enqueue(t, s, n)[0]
	wantHead(t, s, n)
}

func testQueueBatch(t *testing.T, s QueueStore) {
	insts := []portrait.InstanceID{1101000001, 1101000002, 1101000003}
	for _, id := range insts {
		create(t, s, newInstance(id))
	}
	if ids, err := s.Enqueue(t.Context(), nil); err != nil || len(ids) != 0 {
		t.Errorf("Enqueue of nothing = %v, %v; want no ids and no error", ids, err)
	}
	var ns []portrait.Notification
	for i := range 10 {
		ns = append(ns, notification(insts[i%3], fmt.Sprint(i)))
	}
	ids := enqueue(t, s, ns...)
	seen := map[int64]bool{}
	for i, id := range ids {
		if seen[id] {
			t.Errorf("receipt id %d returned twice: %v", id, ids)
		}
		seen[id] = true
		ns[i].ReceiptID = id
	}
	wantDepths(t, s, map[portrait.InstanceID]int64{insts[0]: 4, insts[1]: 3, insts[2]: 3})
	for k, id := range insts {
		got := drain(t, s, id)
		var want []portrait.Notification
		for i := k; i < len(ns); i += 3 {
			want = append(want, ns[i])
		}
		if len(got) != len(want) {
			t.Fatalf("instance %d held %d notifications, want %d", id, len(got), len(want))
		}
		for i := range got {
			if d := diffNotification(got[i], want[i]); d != "" {
				t.Errorf("instance %d, notification %d: %s", id, i, d)
			}
		}
	}
}

func testQueueCascade(t *testing.T, s QueueStore) {
	ctx := t.Context()
	a, b := newInstance(1101000001), newInstance(1101000002)
	create(t, s, a)
	create(t, s, b)
	enqueue(t, s, notification(a.ID, "a1"), notification(a.ID, "a2"), notification(b.ID, "b1"))
	jobA := addJob(t, s, portrait.Job{Instance: a.ID, Kind: "avatarChanged", Key: "1@c.us", DueAt: baseTime, CreatedAt: baseTime})
	jobB := addJob(t, s, portrait.Job{Instance: b.ID, Kind: "avatarChanged", Key: "1@c.us", DueAt: baseTime, CreatedAt: baseTime})

	if err := s.DeleteInstance(ctx, a.ID); err != nil {
		t.Fatalf("DeleteInstance: %v", err)
	}
	wantEmpty(t, s, a.ID)
	wantDepths(t, s, map[portrait.InstanceID]int64{b.ID: 1})
	if jobs := dueJobs(t, s, baseTime, 10); len(jobs) != 1 || jobs[0].ID != jobB {
		t.Errorf("DueJobs after deleting instance %d = %v, want only job %d", a.ID, jobs, jobB)
	}

	// A new instance with the same id starts with nothing, and the deleted
	// instance's job cannot be finished into it.
	create(t, s, a)
	wantEmpty(t, s, a.ID)
	n := notification(a.ID, "from the old job")
	if r, err := s.FinishJob(ctx, portrait.Job{ID: jobA, Instance: a.ID, Kind: "avatarChanged", Key: "1@c.us"}, &n); err != nil || r != 0 {
		t.Errorf("FinishJob of a job of a deleted instance = %d, %v; want 0, nil", r, err)
	}
	wantEmpty(t, s, a.ID)
	// Merging starts afresh too.
	if id := addJob(t, s, portrait.Job{Instance: a.ID, Kind: "avatarChanged", Key: "1@c.us", DueAt: baseTime, CreatedAt: baseTime}); id == jobA {
		t.Errorf("AddJob after recreating the instance merged into the deleted instance's job %d", id)
	}
}

func testQueueDepths(t *testing.T, s QueueStore) {
	if d := depths(t, s); len(d) != 0 {
		t.Errorf("Depths of an empty store = %v, want none", d)
	}
	a, b, c := newInstance(1101000001), newInstance(1101000002), newInstance(1101000003)
	create(t, s, a)
	create(t, s, b)
	create(t, s, c)
	wantDepths(t, s, map[portrait.InstanceID]int64{})
	ids := enqueue(t, s, notification(a.ID, "1"), notification(b.ID, "1"), notification(a.ID, "2"), notification(a.ID, "3"))
	wantDepths(t, s, map[portrait.InstanceID]int64{a.ID: 3, b.ID: 1})
	del(t, s, b.ID, ids[1], true)
	del(t, s, a.ID, ids[2], true)
	wantDepths(t, s, map[portrait.InstanceID]int64{a.ID: 2})
	del(t, s, a.ID, ids[2], false)
	wantDepths(t, s, map[portrait.InstanceID]int64{a.ID: 2})
}

func addJob(t *testing.T, q portrait.Queue, j portrait.Job) int64 {
	t.Helper()
	id, err := q.AddJob(t.Context(), j)
	if err != nil {
		t.Fatalf("AddJob(%s %q of %d): %v", j.Kind, j.Key, j.Instance, err)
	}
	return id
}

func dueJobs(t *testing.T, q portrait.Queue, now time.Time, limit int) []portrait.Job {
	t.Helper()
	jobs, err := q.DueJobs(t.Context(), now, limit)
	if err != nil {
		t.Fatalf("DueJobs(%v, %d): %v", now, limit, err)
	}
	return jobs
}

// diffJob describes how got differs from want, or returns "".
func diffJob(got, want portrait.Job) string {
	var d []string
	if got.ID != want.ID {
		d = append(d, fmt.Sprintf("ID %d, want %d", got.ID, want.ID))
	}
	if got.Instance != want.Instance {
		d = append(d, fmt.Sprintf("Instance %d, want %d", got.Instance, want.Instance))
	}
	if got.Kind != want.Kind {
		d = append(d, fmt.Sprintf("Kind %q, want %q", got.Kind, want.Kind))
	}
	if got.Key != want.Key {
		d = append(d, fmt.Sprintf("Key %q, want %q", got.Key, want.Key))
	}
	if !bytes.Equal(got.Data, want.Data) {
		d = append(d, fmt.Sprintf("Data %s, want %s", abbrev(got.Data), abbrev(want.Data)))
	}
	if got.Version != want.Version {
		d = append(d, fmt.Sprintf("Version %d, want %d", got.Version, want.Version))
	}
	for _, tm := range []struct {
		name      string
		got, want time.Time
	}{{"DueAt", got.DueAt, want.DueAt}, {"Deadline", got.Deadline, want.Deadline}, {"CreatedAt", got.CreatedAt, want.CreatedAt}} {
		if !tm.got.Equal(tm.want) {
			d = append(d, fmt.Sprintf("%s %v, want %v", tm.name, tm.got, tm.want))
		}
		if tm.got.Location() != time.UTC {
			d = append(d, fmt.Sprintf("%s in %v, want UTC", tm.name, tm.got.Location()))
		}
	}
	return strings.Join(d, "; ")
}

func wantJobs(t *testing.T, what string, got, want []portrait.Job) {
	t.Helper()
	if len(got) != len(want) {
		var ids []int64
		for _, j := range got {
			ids = append(ids, j.ID)
		}
		t.Errorf("%s: %d jobs %v, want %d", what, len(got), ids, len(want))
		return
	}
	for i := range got {
		if d := diffJob(got[i], want[i]); d != "" {
			t.Errorf("%s: job %d: %s", what, i, d)
		}
	}
}

func testJobsDueOrder(t *testing.T, s QueueStore) {
	ctx := t.Context()
	a, b := newInstance(1101000001), newInstance(1101000002)
	create(t, s, a)
	create(t, s, b)
	at := func(sec int) time.Time { return baseTime.Add(time.Duration(sec) * time.Second) }
	jobs := []portrait.Job{
		{Instance: a.ID, Kind: "avatarInfo", Data: []byte(`{"chatId":"1@c.us"}`), DueAt: at(20), CreatedAt: at(0)},
		{Instance: b.ID, Kind: "avatarChanged", Key: "2@c.us", Data: []byte(`{"chatId":"2@c.us"}`), DueAt: at(10), Deadline: at(60), CreatedAt: at(1)},
		{Instance: a.ID, Kind: "avatarInfo", Data: []byte(`{}`), DueAt: at(30), CreatedAt: at(2)},
		// Due at the same time as the second job, added later.
		{Instance: a.ID, Kind: "avatarInfo", DueAt: at(10).In(time.FixedZone("X", 3600)), CreatedAt: at(3)},
		// Empty keys never merge.
		{Instance: a.ID, Kind: "avatarInfo", Data: []byte(`{"chatId":"1@c.us"}`), DueAt: at(20), CreatedAt: at(4)},
		// Due long ago.
		{Instance: b.ID, Kind: "avatarInfo", Data: []byte(`{"old":true}`), DueAt: at(-86400 * 365), CreatedAt: at(5)},
	}
	seen := map[int64]bool{}
	for i := range jobs {
		jobs[i].ID = addJob(t, s, jobs[i])
		if seen[jobs[i].ID] {
			t.Fatalf("AddJob returned id %d twice", jobs[i].ID)
		}
		seen[jobs[i].ID] = true
		if jobs[i].Data == nil {
			jobs[i].Data = []byte{}
		}
	}
	// Each instance's oldest due job first (b's from last year, then a's
	// due at 10s), then each one's second, and so on; within an instance
	// by due time, then id.
	wantJobs(t, "DueJobs before any is due", dueJobs(t, s, at(-86400*366), 10), nil)
	wantJobs(t, "DueJobs of the oldest", dueJobs(t, s, at(-86400*365), 10), jobs[5:6])
	wantJobs(t, "DueJobs at 10s", dueJobs(t, s, at(10), 10), []portrait.Job{jobs[5], jobs[3], jobs[1]})
	wantJobs(t, "DueJobs at 25s", dueJobs(t, s, at(25), 10), []portrait.Job{jobs[5], jobs[3], jobs[1], jobs[0], jobs[4]})
	wantJobs(t, "DueJobs at 25s, limit 2", dueJobs(t, s, at(25), 2), []portrait.Job{jobs[5], jobs[3]})
	wantJobs(t, "DueJobs at 1h", dueJobs(t, s, at(3600), 100), []portrait.Job{jobs[5], jobs[3], jobs[1], jobs[0], jobs[4], jobs[2]})
	for _, limit := range []int{0, -1} {
		got, err := s.DueJobs(ctx, at(3600), limit)
		if err != nil || len(got) != 0 {
			t.Errorf("DueJobs with limit %d = %d jobs, %v; want none", limit, len(got), err)
		}
	}
	// DueJobs does not remove.
	wantJobs(t, "DueJobs again", dueJobs(t, s, at(10), 10), []portrait.Job{jobs[5], jobs[3], jobs[1]})
}

// testJobsFair checks that one instance's backlog does not delay another
// instance's jobs: with 300 jobs of one instance due before the other
// instances' jobs, a batch of 256 still holds every instance's oldest job,
// and the instances take turns.
func testJobsFair(t *testing.T, s QueueStore) {
	const backlog = 300
	a, b, c, d := newInstance(1101000001), newInstance(1101000002), newInstance(1101000003), newInstance(1101000004)
	for _, inst := range []portrait.Instance{a, b, c, d} {
		create(t, s, inst)
	}
	at := func(sec int) time.Time { return baseTime.Add(time.Duration(sec) * time.Second) }
	add := func(id portrait.InstanceID, due int) portrait.Job {
		t.Helper()
		j := portrait.Job{Instance: id, Kind: "avatarInfo", Data: fmt.Appendf(nil, `{"due":%d}`, due), DueAt: at(due), CreatedAt: at(0)}
		j.ID = addJob(t, s, j)
		return j
	}
	// b's jobs are added first but due last, to tell due order from id
	// order; c's two are due at the same time; d's is not due yet.
	b2 := add(b.ID, 1002)
	b1 := add(b.ID, 1001)
	var as []portrait.Job
	for i := range backlog {
		as = append(as, add(a.ID, i))
	}
	c1 := add(c.ID, 500)
	c2 := add(c.ID, 500)
	add(d.ID, 5000)
	now := at(2000)

	// The batch the notifier takes: every instance's oldest due job is in
	// it, b's and c's second ones too.
	batch := dueJobs(t, s, now, 256)
	if len(batch) != 256 {
		t.Fatalf("DueJobs(256) = %d jobs, want 256", len(batch))
	}
	got := map[int64]bool{}
	for _, j := range batch {
		got[j.ID] = true
	}
	for _, j := range []portrait.Job{b1, b2, c1, c2, as[0]} {
		if !got[j.ID] {
			t.Errorf("DueJobs(256) left out job %d of instance %d (due %v) behind instance %d's backlog",
				j.ID, j.Instance, j.DueAt, a.ID)
		}
	}
	// The instances take turns: rank by rank, and within a rank by due
	// time, then id.
	wantJobs(t, "DueJobs, limit 8", dueJobs(t, s, now, 8),
		[]portrait.Job{as[0], c1, b1, as[1], c2, b2, as[2], as[3]})
	wantJobs(t, "DueJobs, limit 1", dueJobs(t, s, now, 1), as[:1])
	// Each instance's jobs stay in due order, whatever the limit.
	for _, limit := range []int{3, 100, 256, 1000} {
		last := map[portrait.InstanceID]portrait.Job{}
		for _, j := range dueJobs(t, s, now, limit) {
			if j.Instance == d.ID {
				t.Errorf("DueJobs(%d) returned job %d, due %v, after now", limit, j.ID, j.DueAt)
			}
			if p, ok := last[j.Instance]; ok && (j.DueAt.Before(p.DueAt) || j.DueAt.Equal(p.DueAt) && j.ID < p.ID) {
				t.Errorf("DueJobs(%d): instance %d's job %d (due %v) after its job %d (due %v)",
					limit, j.Instance, j.ID, j.DueAt, p.ID, p.DueAt)
			}
			last[j.Instance] = j
		}
	}
	all := dueJobs(t, s, now, 1000)
	if len(all) != backlog+4 {
		t.Errorf("DueJobs(1000) = %d jobs, want %d", len(all), backlog+4)
	}
	// Once the other instances' jobs are finished, the backlog follows in
	// due order.
	for _, j := range []portrait.Job{b1, b2, c1, c2} {
		finishJob(t, s, j, nil)
	}
	wantJobs(t, "DueJobs of the backlog alone", dueJobs(t, s, now, 5), as[:5])
}

func testJobsMerge(t *testing.T, s QueueStore) {
	a, b := newInstance(1101000001), newInstance(1101000002)
	create(t, s, a)
	create(t, s, b)
	at := func(sec int) time.Time { return baseTime.Add(time.Duration(sec) * time.Second) }
	first := portrait.Job{Instance: a.ID, Kind: "avatarChanged", Key: "1@c.us", Data: []byte(`{"v":1}`),
		DueAt: at(10), Deadline: at(60), CreatedAt: at(0)}
	id := addJob(t, s, first)
	want := first
	want.ID = id
	check := func(what string) {
		t.Helper()
		wantJobs(t, what, dueJobs(t, s, at(3600), 10), []portrait.Job{want})
	}
	check("after the first AddJob")

	for _, step := range []struct {
		what  string
		data  string
		due   time.Time
		wantD time.Time
	}{
		{"a later due time", `{"v":2}`, at(20), at(20)},
		{"a due time after the deadline", `{"v":3}`, at(90), at(60)},
		{"an earlier due time", `{"v":4}`, at(5), at(5)},
		{"the deadline itself", `{"v":5}`, at(60), at(60)},
		{"empty data", ``, at(30), at(30)},
	} {
		j := portrait.Job{Instance: a.ID, Kind: first.Kind, Key: first.Key, Data: []byte(step.data),
			DueAt: step.due, Deadline: at(1000), CreatedAt: at(50)}
		if got := addJob(t, s, j); got != id {
			t.Fatalf("AddJob merging with %s returned id %d, want the stored job's %d", step.what, got, id)
		}
		want.Data, want.DueAt = []byte(step.data), step.wantD
		want.Version++
		check("after merging with " + step.what)
	}

	// Jobs that differ in instance, kind or key do not merge.
	others := []portrait.Job{
		{Instance: b.ID, Kind: first.Kind, Key: first.Key, Data: []byte(`{"other":"instance"}`), DueAt: at(100), CreatedAt: at(1)},
		{Instance: a.ID, Kind: "avatarInfo", Key: first.Key, Data: []byte(`{"other":"kind"}`), DueAt: at(101), CreatedAt: at(2)},
		{Instance: a.ID, Kind: first.Kind, Key: "2@c.us", Data: []byte(`{"other":"key"}`), DueAt: at(102), CreatedAt: at(3)},
		{Instance: a.ID, Kind: first.Kind, Key: "1@C.US", Data: []byte(`{"other":"case"}`), DueAt: at(103), CreatedAt: at(4)},
		{Instance: a.ID, Kind: first.Kind, Data: []byte(`{"no":"key"}`), DueAt: at(104), CreatedAt: at(5)},
		{Instance: a.ID, Kind: first.Kind, Data: []byte(`{"no":"key"}`), DueAt: at(105), CreatedAt: at(6)},
	}
	all := []portrait.Job{want}
	for _, j := range others {
		j.ID = addJob(t, s, j)
		if j.ID == id {
			t.Errorf("AddJob(%s %q of %d) merged into job %d (%s %q of %d)", j.Kind, j.Key, j.Instance, id, first.Kind, first.Key, first.Instance)
		}
		all = append(all, j)
	}
	wantJobs(t, "DueJobs after adding other jobs", dueJobs(t, s, at(3600), 10), all)

	// Once finished, the key starts a new job with its own deadline.
	if r, err := s.FinishJob(t.Context(), want, nil); err != nil || r != 0 {
		t.Fatalf("FinishJob(%d, nil) = %d, %v", id, r, err)
	}
	fresh := portrait.Job{Instance: a.ID, Kind: first.Kind, Key: first.Key, Data: []byte(`{"v":"fresh"}`),
		DueAt: at(200), Deadline: at(300), CreatedAt: at(150)}
	fresh.ID = addJob(t, s, fresh)
	if fresh.ID == id {
		t.Errorf("AddJob after FinishJob merged into the finished job %d", id)
	}
	fresh.DueAt = at(400)
	if got := addJob(t, s, fresh); got != fresh.ID {
		t.Errorf("AddJob merging into the new job returned %d, want %d", got, fresh.ID)
	}
	fresh.DueAt = at(300)
	fresh.Version = 1
	wantJobs(t, "DueJobs after FinishJob and AddJob", dueJobs(t, s, at(3600), 10), append(all[1:], fresh))
}

func testJobsNoDeadline(t *testing.T, s QueueStore) {
	a := newInstance(1101000001)
	create(t, s, a)
	at := func(sec int) time.Time { return baseTime.Add(time.Duration(sec) * time.Second) }
	// Without a deadline, merging postpones the job as far as it is told.
	j := portrait.Job{Instance: a.ID, Kind: "avatarChanged", Key: "1@c.us", Data: []byte(`{}`), DueAt: at(10), CreatedAt: at(0)}
	j.ID = addJob(t, s, j)
	j.DueAt = at(86400 * 365)
	if id := addJob(t, s, j); id != j.ID {
		t.Fatalf("AddJob merging returned %d, want %d", id, j.ID)
	}
	j.Version = 1
	wantJobs(t, "job without a deadline", dueJobs(t, s, at(86400*400), 10), []portrait.Job{j})

	// A new job due after its deadline is due at its deadline.
	late := portrait.Job{Instance: a.ID, Kind: "avatarChanged", Key: "2@c.us", Data: []byte(`{}`),
		DueAt: at(100), Deadline: at(50), CreatedAt: at(0)}
	late.ID = addJob(t, s, late)
	late.DueAt = at(50)
	wantJobs(t, "job added due after its deadline", dueJobs(t, s, at(50), 10), []portrait.Job{late})
}

// farFuture is a time at which every job of the suite is due.
var farFuture = time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)

// jobByID returns the job with id as DueJobs returns it, which it must.
func jobByID(t *testing.T, q portrait.Queue, id int64) portrait.Job {
	t.Helper()
	for _, j := range dueJobs(t, q, farFuture, 1000) {
		if j.ID == id {
			return j
		}
	}
	t.Fatalf("job %d is not stored", id)
	return portrait.Job{}
}

func finishJob(t *testing.T, q portrait.Queue, j portrait.Job, n *portrait.Notification) int64 {
	t.Helper()
	r, err := q.FinishJob(t.Context(), j, n)
	if err != nil {
		t.Fatalf("FinishJob(job %d, version %d): %v", j.ID, j.Version, err)
	}
	return r
}

func testJobVersions(t *testing.T, s QueueStore) {
	a, b := newInstance(1101000001), newInstance(1101000002)
	create(t, s, a)
	create(t, s, b)
	at := func(sec int) time.Time { return baseTime.Add(time.Duration(sec) * time.Second) }
	first := portrait.Job{Instance: a.ID, Kind: "avatarChanged", Key: "1@c.us", Data: []byte(`{"v":0}`),
		DueAt: at(10), Deadline: at(60), CreatedAt: at(0), Version: 42}
	id := addJob(t, s, first)
	wantVersion := func(what string, id, want int64) {
		t.Helper()
		if v := jobByID(t, s, id).Version; v != want {
			t.Errorf("%s: job %d has Version %d, want %d", what, id, v, want)
		}
	}
	wantVersion("a new job (added with Version 42)", id, 0)
	wantVersion("after reading it again", id, 0)

	// Jobs that do not merge into it leave it alone, and start at 0.
	others := map[string]portrait.Job{
		"another key":      {Instance: a.ID, Kind: first.Kind, Key: "2@c.us", DueAt: at(10), CreatedAt: at(1)},
		"another kind":     {Instance: a.ID, Kind: "avatarInfo", Key: first.Key, DueAt: at(10), CreatedAt: at(1)},
		"another instance": {Instance: b.ID, Kind: first.Kind, Key: first.Key, DueAt: at(10), CreatedAt: at(1)},
		"no key":           {Instance: a.ID, Kind: first.Kind, DueAt: at(10), CreatedAt: at(1)},
		"no key again":     {Instance: a.ID, Kind: first.Kind, DueAt: at(10), CreatedAt: at(1)},
	}
	otherIDs := map[string]int64{}
	for what, j := range others {
		otherIDs[what] = addJob(t, s, j)
		wantVersion("the job with "+what, otherIDs[what], 0)
	}
	wantVersion("after adding jobs that do not merge", id, 0)

	// Each merge adds one, whether or not it changes anything.
	for i, step := range []struct {
		what string
		data string
		due  time.Time
	}{
		{"the same job", `{"v":0}`, at(10)},
		{"a due time past the deadline", `{"v":2}`, at(90)},
		{"an earlier due time", `{"v":3}`, at(5)},
	} {
		j := first
		j.Data, j.DueAt, j.Version = []byte(step.data), step.due, 0
		addJob(t, s, j)
		wantVersion("after merging with "+step.what, id, int64(i+1))
	}
	// Merging into another job does not change this one's.
	addJob(t, s, others["another key"])
	wantVersion("after a merge into another job", otherIDs["another key"], 1)
	wantVersion("after a merge into another job", id, 3)

	// Neither does a FinishJob that keeps it.
	stale := jobByID(t, s, id)
	stale.Version = 1
	if r := finishJob(t, s, stale, nil); r != 0 {
		t.Errorf("FinishJob of a stale version returned receipt id %d, want 0", r)
	}
	wantVersion("after finishing an older version", id, 3)

	// Once finished, the key starts a new job at 0.
	finishJob(t, s, jobByID(t, s, id), nil)
	fresh := addJob(t, s, first)
	if fresh == id {
		t.Fatalf("AddJob after FinishJob merged into the finished job %d", id)
	}
	wantVersion("a new job for a finished key", fresh, 0)
}

func testFinishJob(t *testing.T, s QueueStore) {
	ctx := t.Context()
	const missing = portrait.InstanceID(1101000009)
	a := newInstance(1101000001)
	create(t, s, a)
	job := func(key string) portrait.Job {
		t.Helper()
		return jobByID(t, s, addJob(t, s, portrait.Job{Instance: a.ID, Kind: "avatarChanged", Key: key, Data: []byte(`{}`), DueAt: baseTime, CreatedAt: baseTime}))
	}
	wantJobIDs := func(what string, jobs ...portrait.Job) {
		t.Helper()
		var got, ids []int64
		for _, j := range dueJobs(t, s, baseTime, 100) {
			got = append(got, j.ID)
		}
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
		slices.Sort(got)
		slices.Sort(ids)
		if !slices.Equal(got, ids) {
			t.Errorf("%s: jobs %v, want %v", what, got, ids)
		}
	}

	j1, j2, j3 := job("1"), job("2"), job("3")
	if r := finishJob(t, s, j1, nil); r != 0 {
		t.Errorf("FinishJob without a notification returned receipt id %d, want 0", r)
	}
	wantJobIDs("after finishing without a notification", j2, j3)
	wantDepths(t, s, map[portrait.InstanceID]int64{})

	n := notification(a.ID, "avatar changed")
	n.ReceiptID = finishJob(t, s, j2, &n)
	if n.ReceiptID == 0 {
		t.Fatalf("FinishJob with a notification returned receipt id 0")
	}
	wantHead(t, s, n)
	wantJobIDs("after finishing with a notification", j3)

	// Finishing a job that is gone, or never was, enqueues nothing,
	// whatever its version.
	again := notification(a.ID, "again")
	gone1 := j1
	gone1.Version = 7
	for _, j := range []portrait.Job{j1, j2, gone1, {ID: j3.ID + 1000, Instance: a.ID}, {Instance: a.ID}} {
		if r := finishJob(t, s, j, &again); r != 0 {
			t.Errorf("FinishJob of missing job %d returned receipt id %d, want 0", j.ID, r)
		}
	}
	wantDepths(t, s, map[portrait.InstanceID]int64{a.ID: 1})
	wantHead(t, s, n)

	// A notification to a missing instance fails, and keeps the job.
	lost := notification(missing, "lost")
	r, err := s.FinishJob(ctx, j3, &lost)
	wantNotFound(t, "FinishJob with a notification to a missing instance", err)
	if r != 0 {
		t.Errorf("failed FinishJob returned receipt id %d", r)
	}
	wantJobIDs("after a failed FinishJob", j3)
	wantJobs(t, "the job of a failed FinishJob", []portrait.Job{jobByID(t, s, j3.ID)}, []portrait.Job{j3})
	wantDepths(t, s, map[portrait.InstanceID]int64{a.ID: 1})

	// Receipt ids of FinishJob and Enqueue share one order.
	m := notification(a.ID, "after")
	m.ReceiptID = enqueue(t, s, m)[0]
	last := notification(a.ID, "last")
	last.ReceiptID = finishJob(t, s, j3, &last)
	got := drain(t, s, a.ID)
	want := []portrait.Notification{n, m, last}
	if len(got) != len(want) {
		t.Fatalf("queue holds %d notifications, want %d", len(got), len(want))
	}
	for i := range got {
		if d := diffNotification(got[i], want[i]); d != "" {
			t.Errorf("notification %d: %s", i, d)
		}
	}
	wantJobIDs("after finishing every job")
}

// testFinishJobMerged finishes a job that AddJob merged into while it ran:
// the job stays, with the merged data, to run again, and the notification
// of the run that ended is enqueued all the same.
func testFinishJobMerged(t *testing.T, s QueueStore) {
	ctx := t.Context()
	const missing = portrait.InstanceID(1101000009)
	a := newInstance(1101000001)
	create(t, s, a)
	at := func(sec int) time.Time { return baseTime.Add(time.Duration(sec) * time.Second) }
	first := portrait.Job{Instance: a.ID, Kind: "avatarChanged", Key: "1@c.us", Data: []byte(`{"v":1}`),
		DueAt: at(10), Deadline: at(100), CreatedAt: at(0)}
	id := addJob(t, s, first)
	running := dueJobs(t, s, at(10), 10)
	if len(running) != 1 || running[0].ID != id {
		t.Fatalf("DueJobs = %v, want job %d", running, id)
	}
	ran := running[0]

	// While it runs, a newer change merges into it.
	addJob(t, s, portrait.Job{Instance: a.ID, Kind: first.Kind, Key: first.Key, Data: []byte(`{"v":2}`),
		DueAt: at(40), Deadline: at(500), CreatedAt: at(30)})
	merged := ran
	merged.Data, merged.DueAt, merged.Version = []byte(`{"v":2}`), at(40), ran.Version+1

	n := notification(a.ID, "from v1")
	n.ReceiptID = finishJob(t, s, ran, &n)
	if n.ReceiptID == 0 {
		t.Fatalf("FinishJob of a job merged into returned receipt id 0, want its notification enqueued")
	}
	wantHead(t, s, n)
	// The job is kept as merged, due again at its new due time, not before.
	wantJobs(t, "DueJobs just before the merged due time", dueJobs(t, s, at(39), 10), nil)
	wantJobs(t, "DueJobs at the merged due time", dueJobs(t, s, at(40), 10), []portrait.Job{merged})

	// Finishing the old version again (a retry) keeps it too, and so does
	// a failed FinishJob of it, which enqueues nothing.
	if r := finishJob(t, s, ran, nil); r != 0 {
		t.Errorf("FinishJob of the old version without a notification returned receipt id %d, want 0", r)
	}
	lost := notification(missing, "lost")
	_, err := s.FinishJob(ctx, ran, &lost)
	wantNotFound(t, "FinishJob of the old version with a notification to a missing instance", err)
	wantJobs(t, "DueJobs after finishing the old version again", dueJobs(t, s, farFuture, 10), []portrait.Job{merged})
	wantDepths(t, s, map[portrait.InstanceID]int64{a.ID: 1})

	// The run of the merged version finishes it.
	m := notification(a.ID, "from v2")
	m.ReceiptID = finishJob(t, s, merged, &m)
	wantJobs(t, "DueJobs after finishing the merged version", dueJobs(t, s, farFuture, 10), nil)
	got := drain(t, s, a.ID)
	want := []portrait.Notification{n, m}
	if len(got) != len(want) {
		t.Fatalf("queue holds %d notifications, want %d", len(got), len(want))
	}
	for i := range got {
		if d := diffNotification(got[i], want[i]); d != "" {
			t.Errorf("notification %d: %s", i, d)
		}
	}
}

func testJobIDs(t *testing.T, s QueueStore) {
	a := newInstance(1101000001)
	create(t, s, a)
	j := portrait.Job{Instance: a.ID, Kind: "avatarInfo", Data: []byte(`{}`), DueAt: baseTime, CreatedAt: baseTime}
	first := jobByID(t, s, addJob(t, s, j))
	if r, err := s.FinishJob(t.Context(), first, nil); err != nil || r != 0 {
		t.Fatalf("FinishJob(%d, nil) = %d, %v", first.ID, r, err)
	}
	second := addJob(t, s, j)
	if second == first.ID {
		t.Fatalf("AddJob after finishing the newest job reused its id %d", first.ID)
	}
	// A stale FinishJob of the first job leaves the second alone.
	n := notification(a.ID, "stale")
	if r, err := s.FinishJob(t.Context(), first, &n); err != nil || r != 0 {
		t.Errorf("second FinishJob(%d) = %d, %v; want 0, nil", first.ID, r, err)
	}
	if jobs := dueJobs(t, s, baseTime, 10); len(jobs) != 1 || jobs[0].ID != second {
		t.Errorf("DueJobs = %v, want job %d only", jobs, second)
	}
	wantEmpty(t, s, a.ID)
}

// testQueueConcurrent runs producers and consumers at once. Each producer
// enqueues its notifications one at a time, to one instance, some through
// AddJob and FinishJob; a consumer per instance delivers (Head and
// Delete, or Peek and DeleteMany) while they do. Every notification must be delivered once, each
// producer's in the order it enqueued them.
func testQueueConcurrent(t *testing.T, s QueueStore) {
	const (
		instances = 5
		producers = 50
		each      = 20
	)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for i := range instances {
		create(t, s, newInstance(portrait.InstanceID(1101000000+i)))
	}
	instOf := func(p int) portrait.InstanceID { return portrait.InstanceID(1101000000 + p%instances) }

	var (
		mu       sync.Mutex
		receipts = map[int64]string{} // every receipt id given, to whom
		errs     []error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
		cancel()
	}
	var producing sync.WaitGroup
	for p := range producers {
		producing.Go(func() {
			id := instOf(p)
			var last int64
			for i := range each {
				n := notification(id, fmt.Sprintf("%d/%d", p, i))
				var r int64
				var err error
				if p%3 == 2 {
					// Through a job, as the avatar workers do.
					// A keyless job never merges, so its Version is 0.
					j := portrait.Job{Instance: id, Kind: "avatarInfo", Data: []byte(`{}`), DueAt: baseTime, CreatedAt: baseTime}
					j.ID, err = s.AddJob(ctx, j)
					if err == nil {
						r, err = s.FinishJob(ctx, j, &n)
					}
				} else {
					var ids []int64
					ids, err = s.Enqueue(ctx, []portrait.Notification{n})
					if err == nil {
						r = ids[0]
					}
				}
				if err != nil {
					fail(fmt.Errorf("producer %d, notification %d: %w", p, i, err))
					return
				}
				if r <= last {
					fail(fmt.Errorf("producer %d: receipt id %d after %d", p, r, last))
				}
				last = r
				mu.Lock()
				if who, dup := receipts[r]; dup {
					errs = append(errs, fmt.Errorf("receipt id %d given to %d/%d and to %s", r, p, i, who))
				}
				receipts[r] = fmt.Sprintf("%d/%d", p, i)
				mu.Unlock()
			}
		})
	}
	producersDone := make(chan struct{})
	go func() { producing.Wait(); close(producersDone) }()

	// Each consumer checks that it sees each of its producers' numbers in
	// order, and returns the receipt ids it delivered. Half of them take
	// one notification at a time (Head, Delete), the others a few
	// (Peek, DeleteMany).
	delivered := make([][]int64, instances)
	var consuming sync.WaitGroup
	for k := range instances {
		consuming.Go(func() {
			id := instOf(k)
			batched := k%2 == 1
			take := func() ([]portrait.Notification, error) {
				if batched {
					return s.Peek(ctx, id, 0, 4)
				}
				n, err := s.Head(ctx, id)
				if errors.Is(err, portrait.ErrNotFound) {
					return nil, nil
				}
				return []portrait.Notification{n}, err
			}
			next := map[int]int{} // producer → next number expected
			for {
				ns, err := take()
				if err != nil {
					fail(fmt.Errorf("consumer %d: %w", id, err))
					return
				}
				if len(ns) == 0 {
					select {
					case <-producersDone:
						// Check once more: the last notification may have
						// been committed after the previous look.
						if ns, err := take(); err == nil && len(ns) == 0 {
							return
						}
					case <-ctx.Done():
						return
					case <-time.After(time.Millisecond):
					}
					continue
				}
				var receipts []int64
				for _, n := range ns {
					var p, i int
					if _, err := fmt.Sscanf(string(n.Body[strings.LastIndex(string(n.Body), `"text":`):]), `"text":"%d/%d"}`, &p, &i); err != nil {
						fail(fmt.Errorf("consumer %d: body %s: %w", id, n.Body, err))
						return
					}
					if i != next[p] {
						fail(fmt.Errorf("consumer %d: got notification %d of producer %d, want %d", id, i, p, next[p]))
						return
					}
					next[p]++
					receipts = append(receipts, n.ReceiptID)
				}
				if batched {
					if got, err := s.DeleteMany(ctx, id, receipts); err != nil || got != len(receipts) {
						fail(fmt.Errorf("consumer %d: DeleteMany(%v) = %d, %v", id, receipts, got, err))
						return
					}
				} else if ok, err := s.Delete(ctx, id, receipts[0]); err != nil || !ok {
					fail(fmt.Errorf("consumer %d: Delete(%d) = %v, %v", id, receipts[0], ok, err))
					return
				}
				delivered[k] = append(delivered[k], receipts...)
			}
		})
	}
	producing.Wait()
	consuming.Wait()
	for i, err := range errs {
		if i == 10 {
			t.Errorf("… %d errors in all", len(errs))
			break
		}
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	total := 0
	for k, ids := range delivered {
		wantIncreasing(t, fmt.Sprintf("deliveries of instance %d", instOf(k)), ids)
		total += len(ids)
	}
	if total != producers*each || len(receipts) != producers*each {
		t.Errorf("delivered %d notifications with %d receipt ids, want %d", total, len(receipts), producers*each)
	}
	wantDepths(t, s, map[portrait.InstanceID]int64{})
}

func testQueueContextCanceled(t *testing.T, s QueueStore) {
	a := newInstance(1101000001)
	create(t, s, a)
	n := notification(a.ID, "before")
	n.ReceiptID = enqueue(t, s, n)[0]
	job := jobByID(t, s, addJob(t, s, portrait.Job{Instance: a.ID, Kind: "avatarChanged", Key: "k", Data: []byte(`{"v":1}`), DueAt: baseTime, CreatedAt: baseTime}))

	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel2()
	m := notification(a.ID, "canceled")
	calls := []struct {
		name string
		fn   func(ctx context.Context) error
	}{
		{"Enqueue", func(ctx context.Context) error {
			_, err := s.Enqueue(ctx, []portrait.Notification{m})
			return err
		}},
		{"Head", func(ctx context.Context) error { _, err := s.Head(ctx, a.ID); return err }},
		{"Peek", func(ctx context.Context) error { _, err := s.Peek(ctx, a.ID, 0, 10); return err }},
		{"Delete", func(ctx context.Context) error { _, err := s.Delete(ctx, a.ID, n.ReceiptID); return err }},
		{"DeleteMany", func(ctx context.Context) error {
			_, err := s.DeleteMany(ctx, a.ID, []int64{n.ReceiptID})
			return err
		}},
		{"DeleteMany of nothing", func(ctx context.Context) error { _, err := s.DeleteMany(ctx, a.ID, nil); return err }},
		{"Depths", func(ctx context.Context) error { _, err := s.Depths(ctx); return err }},
		{"AddJob", func(ctx context.Context) error {
			_, err := s.AddJob(ctx, portrait.Job{Instance: a.ID, Kind: "avatarChanged", Key: "k", Data: []byte(`{"v":2}`), DueAt: baseTime, CreatedAt: baseTime})
			return err
		}},
		{"DueJobs", func(ctx context.Context) error { _, err := s.DueJobs(ctx, baseTime, 10); return err }},
		{"FinishJob", func(ctx context.Context) error { _, err := s.FinishJob(ctx, job, &m); return err }},
	}
	for _, ctx := range []struct {
		ctx  context.Context
		want error
	}{{canceled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		for _, c := range calls {
			if err := c.fn(ctx.ctx); !errors.Is(err, ctx.want) {
				t.Errorf("%s with a done context: error %v, want one wrapping %v", c.name, err, ctx.want)
			}
		}
	}
	// Nothing changed, and the queue still works.
	wantHead(t, s, n)
	wantDepths(t, s, map[portrait.InstanceID]int64{a.ID: 1})
	jobs := dueJobs(t, s, baseTime, 10)
	wantJobs(t, "DueJobs after canceled calls", jobs, []portrait.Job{job})
	del(t, s, a.ID, n.ReceiptID, true)
	wantEmpty(t, s, a.ID)
}
