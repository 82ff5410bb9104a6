package portrait

import (
	"context"
	"time"
)

// Notification is a notification stored in an instance's queue: the JSON
// envelope GREEN-API clients receive (typeWebhook, instanceData, timestamp
// and the type's own fields).
type Notification struct {
	ReceiptID int64 // the queue position; receiveNotification's receiptId
	Instance  InstanceID
	Body      []byte // the JSON envelope
	CreatedAt time.Time
}

// Job is pending work that will end in a notification: an accepted
// getAvatarAsync lookup, or a picture change waiting out its debounce
// window. Jobs are stored so that work acknowledged before a crash is done
// after it.
type Job struct {
	ID       int64
	Instance InstanceID
	// Kind names the work, e.g. "avatarInfo" or "avatarChanged".
	Kind string
	// Key merges jobs: adding a job whose instance, kind and non-empty key
	// match a stored job updates that job instead (a burst of changes to one
	// chat becomes one job).
	Key string
	// Data is the job's own JSON.
	Data []byte
	// DueAt is when the job should run. When a job is merged, its DueAt
	// becomes the new job's DueAt, but never later than its Deadline.
	DueAt time.Time
	// Deadline bounds how far merging may postpone the job; it is kept from
	// the first job of a merge. Zero means no bound. A job is never due
	// after its own non-zero Deadline.
	Deadline  time.Time
	CreatedAt time.Time
	// Version counts the merges into the stored job; DueJobs returns it so
	// that FinishJob can tell whether the job changed while it ran.
	Version int64
}

// Queue is the durable notification queue, one FIFO per instance, and the
// jobs that feed it. Every method that returns without error has committed
// its change durably: it survives a crash of the process at any later
// moment. A method whose context ends while it waits returns the context's
// error, and its change may or may not have been committed. Receipt and job
// ids are never reused. Bodies and job data are stored byte for byte. One
// process runs the jobs of a store (DueJobs does not claim them).
type Queue interface {
	// Enqueue appends notifications (for one or several instances) in one
	// transaction and returns their receipt ids, in order. Receipt ids grow:
	// within an instance, a later notification has a larger id, and ids
	// become visible to readers in that order (a reader that has seen id n
	// never later sees a new id below n: webhook senders page with Peek's
	// after on this).
	Enqueue(ctx context.Context, ns []Notification) ([]int64, error)
	// Head returns the oldest notification of an instance, or ErrNotFound
	// (also for an unknown instance).
	Head(ctx context.Context, id InstanceID) (Notification, error)
	// Peek returns up to limit of an instance's oldest notifications whose
	// receipt id is greater than after, oldest first; none is not an error.
	Peek(ctx context.Context, id InstanceID, after int64, limit int) ([]Notification, error)
	// Delete removes one notification of an instance. It reports false when
	// there is no such notification (already deleted, never was, or another
	// instance's).
	Delete(ctx context.Context, id InstanceID, receiptID int64) (bool, error)
	// DeleteMany removes notifications of an instance in one transaction and
	// returns how many there were.
	DeleteMany(ctx context.Context, id InstanceID, receiptIDs []int64) (int, error)
	// Depths returns the number of queued notifications per instance, for
	// instances that have any.
	Depths(ctx context.Context) (map[InstanceID]int64, error)
	// Depth returns the number of queued notifications of one instance
	// (0 for an unknown one).
	Depth(ctx context.Context, id InstanceID) (int64, error)
	// Trim drops notifications nobody took in time: those created before
	// olderThan, and, when keep > 0, each instance's oldest beyond its
	// newest keep. It returns how many it dropped for age and for the
	// cap.
	Trim(ctx context.Context, olderThan time.Time, keep int) (byAge, byCap int64, err error)

	// AddJob stores a job, or merges it into the stored job with the same
	// instance, kind and key, and returns the stored job's id.
	AddJob(ctx context.Context, j Job) (int64, error)
	// DueJobs returns up to limit jobs due at or before now, fairly across
	// instances, so that one instance's backlog never delays another's
	// jobs: each instance's due jobs are ranked by DueAt (then ID), and
	// jobs come by rank, then DueAt, then ID. Every instance with a due job
	// has its oldest one in the batch before any instance has its second;
	// an instance's jobs come in due order.
	DueJobs(ctx context.Context, now time.Time, limit int) ([]Job, error)
	// FinishJob ends a job returned by DueJobs and, when n is not nil,
	// enqueues n, in one transaction. When the stored job still has j's
	// Version it is deleted; when it was merged into meanwhile it is kept
	// (to run again with the newer data) and n is still enqueued. It returns
	// n's receipt id (0 when n is nil). Finishing a job that no longer exists
	// is not an error and enqueues nothing. A notification for an unknown
	// instance fails and keeps the job.
	FinishJob(ctx context.Context, j Job, n *Notification) (int64, error)
}
