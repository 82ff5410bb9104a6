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
	// the first job of a merge.
	Deadline  time.Time
	CreatedAt time.Time
}

// Queue is the durable notification queue, one FIFO per instance, and the
// jobs that feed it. Every method that returns without error has committed
// its change durably: it survives a crash of the process at any later
// moment.
type Queue interface {
	// Enqueue appends notifications (for one or several instances) in one
	// transaction and returns their receipt ids, in order. Receipt ids grow:
	// within an instance, a later notification has a larger id.
	Enqueue(ctx context.Context, ns []Notification) ([]int64, error)
	// Head returns the oldest notification of an instance, or ErrNotFound.
	Head(ctx context.Context, id InstanceID) (Notification, error)
	// Delete removes one notification of an instance. It reports false when
	// there is no such notification (already deleted, or never was).
	Delete(ctx context.Context, id InstanceID, receiptID int64) (bool, error)
	// Depths returns the number of queued notifications per instance, for
	// instances that have any.
	Depths(ctx context.Context) (map[InstanceID]int64, error)

	// AddJob stores a job, or merges it into the stored job with the same
	// instance, kind and key, and returns the stored job's id.
	AddJob(ctx context.Context, j Job) (int64, error)
	// DueJobs returns up to limit jobs due at or before now, oldest DueAt
	// first.
	DueJobs(ctx context.Context, now time.Time, limit int) ([]Job, error)
	// FinishJob deletes a job and, when n is not nil, enqueues n, in one
	// transaction. It returns n's receipt id (0 when n is nil). Finishing a
	// job that no longer exists is not an error, and enqueues nothing.
	FinishJob(ctx context.Context, jobID int64, n *Notification) (int64, error)
}
