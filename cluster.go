package portrait

import (
	"context"
	"errors"
	"time"
)

// Cluster mode: several portrait processes (nodes) share one database, and
// each instance is owned by one node at a time through a lease. Only the
// owner opens the instance's engine session, runs its jobs and its webhook
// sender. The types here are the storage side of that: who is alive, who
// owns what until when, and a fencing number that lets the store refuse
// the writes of an owner that lost its lease without noticing.
//
// Every time in them is the database's clock, never a node's: a node whose
// clock runs fast or slow cannot make a lease look expired early, nor keep
// one alive late. A node compares Lease.Expires and Node.Heartbeat with
// Leases.Now, not with time.Now.

// Node is one portrait process of a cluster.
type Node struct {
	// ID names the node; it is stable across restarts (a host name, say).
	ID string
	// Addr is the internal address other nodes forward requests to.
	Addr string
	// Heartbeat is the database's time of the node's last heartbeat.
	Heartbeat time.Time
}

// Lease is a node's ownership of an instance, until Expires.
type Lease struct {
	Instance InstanceID
	Node     string
	// Fence grows every time the lease passes to another node, and when its
	// owner takes it again after it expired; it stays the same while the
	// owner renews it in time. Fences grow across instances too, so a fence
	// is never given twice, even to an instance deleted and created again.
	// A write that carries a fence older than the lease's is a stale
	// owner's, and is refused (Leases.CheckLease).
	Fence int64
	// Expires is the database's time at which the lease lapses unless
	// renewed before.
	Expires time.Time
}

// Errors of Leases.
var (
	// ErrLeaseHeld: the instance's lease belongs to another node and has
	// not expired.
	ErrLeaseHeld = errors.New("lease held by another node")
	// ErrLeaseLost: the lease a caller acts under is no longer its own (it
	// expired, was released, or passed to another node), so it must stop
	// acting for the instance.
	ErrLeaseLost = errors.New("lease lost")
)

// Leases keeps the nodes of a cluster and the leases of instances. Every
// method is atomic in the database, so nodes racing for one lease cannot
// both win. A store that implements it passes storetest.RunLeases.
type Leases interface {
	// Now returns the database's clock.
	Now(ctx context.Context) (time.Time, error)

	// Heartbeat records that node n is alive now, with its address,
	// registering it if it is new.
	Heartbeat(ctx context.Context, n Node) error
	// Nodes returns the nodes whose last heartbeat is less than within
	// old, ordered by ID.
	Nodes(ctx context.Context, within time.Duration) ([]Node, error)
	// RemoveNode forgets a node and releases all of its leases and job
	// claims at once (a node that stops cleanly hands its instances over
	// this way, after it stopped acting for them). An unknown node is not
	// an error.
	RemoveNode(ctx context.Context, id string) error

	// Acquire takes the lease of an instance for node, for ttl from now.
	// It succeeds when the lease is free, expired, or already node's; a
	// lease that changes owner, or that node takes again after it
	// expired, gets a new, larger Fence, while node's unexpired lease is
	// extended and keeps its Fence. It fails with an error wrapping
	// ErrLeaseHeld when another node holds the lease, and with one wrapping
	// ErrNotFound when the instance does not exist.
	Acquire(ctx context.Context, id InstanceID, node string, ttl time.Duration) (Lease, error)
	// AcquireMany takes, in one transaction, the leases of ids that
	// Acquire would take, and returns them, ordered by instance; ids held
	// by another node, or missing, are left out. A node taking many
	// instances at once (at start) takes them this way.
	AcquireMany(ctx context.Context, ids []InstanceID, node string, ttl time.Duration) ([]Lease, error)
	// Renew extends every unexpired lease of node to ttl from now, and
	// returns them, ordered by instance. A lease node held that is not
	// returned is lost: node must stop acting for that instance.
	Renew(ctx context.Context, node string, ttl time.Duration) ([]Lease, error)
	// Release gives up node's lease of an instance, if node still holds
	// it with fence, so that another node can take it at once. Releasing
	// a lease one does not hold (any more) is not an error and changes
	// nothing.
	Release(ctx context.Context, id InstanceID, node string, fence int64) error
	// Leases returns every lease, expired ones included, ordered by
	// instance.
	Leases(ctx context.Context) ([]Lease, error)
	// CheckLease returns nil when l is an instance's current lease: held
	// by l.Node with l.Fence, and not expired. Otherwise it returns an
	// error wrapping ErrLeaseLost. An owner checks before it acts (a node
	// that wakes up after a pause notices that way), and a store that can
	// do so checks in the same transaction as the write it guards.
	CheckLease(ctx context.Context, l Lease) error
}

// JobClaims lets the nodes of a cluster take due jobs from one store
// without two of them running the same job. A node runs the jobs of the
// instances it owns: it claims them, runs them, and ends each with
// Queue.FinishJob.
type JobClaims interface {
	// ClaimJobs claims for node, until ttl from now (the database's
	// clock), up to limit jobs due at or before now that belong to
	// instances whose unexpired lease node holds and that no claim holds
	// (a claim whose time ran out, because its node died, counts as
	// none). It picks them as Queue.DueJobs does, fairly across
	// instances, and returns them in that order; a job still claimed
	// counts in its instance's rank, so instances with a job running
	// yield to instances with none.
	//
	// A claim ends with FinishJob: the job is deleted, or, when it was
	// merged into while it ran, kept without a claim, to be claimed
	// again. Concurrent ClaimJobs calls never return the same job while
	// its claim lasts. A limit that is not positive claims nothing.
	ClaimJobs(ctx context.Context, node string, now time.Time, limit int, ttl time.Duration) ([]Job, error)
}

// leaseKey is the context key of WithLease.
type leaseKey struct{}

// WithLease returns a copy of ctx that carries l, the lease under which
// the caller acts. A store that implements Leases fences the writes made
// with such a context: Queue's Enqueue, AddJob, FinishJob, Delete and
// DeleteMany, and KV's Put and DeleteKey fail with an error wrapping
// ErrLeaseLost, and change nothing, unless l is still the current,
// unexpired lease of its instance, checked in the same transaction as the
// write (so a lease cannot change hands between the check and the write).
// The owner of an instance passes it to everything it does for that
// instance: a node that lost the lease without noticing (it was paused,
// or cut off) cannot write for the instance any more. Reads are not
// fenced.
func WithLease(ctx context.Context, l Lease) context.Context {
	return context.WithValue(ctx, leaseKey{}, l)
}

// LeaseFrom returns the lease ctx carries (see WithLease), if any.
func LeaseFrom(ctx context.Context) (Lease, bool) {
	l, ok := ctx.Value(leaseKey{}).(Lease)
	return l, ok
}
