// Package cluster runs one node of a portrait cluster: several servers on
// one PostgreSQL database, each instance owned by one node at a time.
//
// A Node keeps its heartbeat, renews its leases, takes the leases of the
// instances that fall to it and hands over those that no longer do. Which
// node an instance falls to is decided by rendezvous hashing over the live
// nodes, so every node computes the same share from the same view, a new
// node takes about 1/n of the instances from each of the others, and a
// node that leaves spreads its instances evenly over the rest. Only the
// owner opens an instance's session (through the Owner it is given); the
// other nodes forward requests for it (Forward).
//
// A node acts for an instance only while its lease is valid by its own
// clock, counted conservatively from before the renewal that granted it:
// a node that was paused past its lease's end stops acting before the
// renewal that would tell it so, and its stale writes are refused by the
// store anyway (portrait.WithLease).
package cluster

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/tick"
)

// Owner opens and closes the sessions of the instances a node gains and
// loses; instance.Registry is one.
type Owner interface {
	// IDs lists every instance of the cluster.
	IDs(ctx context.Context) ([]portrait.InstanceID, error)
	// Own opens the session of the instance l is the lease of, acting
	// under it.
	Own(ctx context.Context, l portrait.Lease)
	// Disown closes the session of an instance this node no longer owns.
	Disown(id portrait.InstanceID)
}

// UploadSlack is what a server's MaxBody allows above its upload limit:
// the boundaries and part headers of a multipart body around the file.
const UploadSlack = 1 << 20

// Options configure a Node.
type Options struct {
	// ID names the node; stable across restarts.
	ID string
	// Addr is the address (host:port) other nodes forward requests to.
	Addr string
	// LeaseTTL is how long a lease lasts unless renewed: the bound on how
	// long an instance of a node that died stays unserved. 0 means 10 s.
	LeaseTTL time.Duration
	// Secret authenticates node-to-node calls; every node of a cluster
	// must have the same.
	Secret []byte
	// MaxBody bounds the request bodies a node forwards (it holds them to
	// retry); 0 means 64 MiB. A server sets it to its upload limit plus
	// UploadSlack.
	MaxBody int64
	// ForwardWait bounds how long a forwarded request waits for its
	// instance to have a reachable owner; 0 means LeaseTTL plus 5 s.
	ForwardWait time.Duration
	// ForwardTimeout bounds the wait for the reply of the node a request
	// was forwarded to; 0 means 2 minutes.
	ForwardTimeout time.Duration
	// OnGain is told the instances this node has just gained, after their
	// sessions opened (the avatar cache drops what it knew of them).
	OnGain func(ids map[portrait.InstanceID]bool)
	// Logger receives the node's messages; nil means slog.Default().
	Logger *slog.Logger
}

// held is a lease this node holds and until when, by this node's
// monotonic clock, it may act under it.
type held struct {
	lease portrait.Lease
	until time.Time
	// open: the session has been opened (Owner.Own returned); until then
	// requests wait instead of being served here.
	open bool
}

// Node is this server's membership in its cluster.
type Node struct {
	leases portrait.Leases
	owner  Owner
	opts   Options
	log    *slog.Logger
	tick   time.Duration
	fwd    *forwarder

	mu       sync.RWMutex
	held     map[portrait.InstanceID]held
	owners   map[portrait.InstanceID]string // current unexpired owners, as last read
	addrs    map[string]string              // node id → address, of live nodes
	started  bool                           // Start has taken the node's first share
	stopping bool
	readAt   time.Time // when owners and addrs were last read

	refreshMu sync.Mutex // one read of the lease table at a time
	tickMu    sync.Mutex // one round at a time
}

// New returns a Node on leases for owner. Start it with Start.
func New(leases portrait.Leases, owner Owner, opts Options) *Node {
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = 10 * time.Second
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 64 << 20
	}
	if opts.ForwardTimeout <= 0 {
		opts.ForwardTimeout = 2 * time.Minute
	}
	if opts.ForwardWait <= 0 {
		opts.ForwardWait = opts.LeaseTTL + 5*time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	n := &Node{
		leases: leases, owner: owner, opts: opts, log: log,
		// A round every tenth of the lease: renewals have nine chances
		// before a lease lapses, and a dead node's instances are taken
		// within a tenth of the lease after they became free.
		tick:   max(opts.LeaseTTL/10, 50*time.Millisecond),
		held:   map[portrait.InstanceID]held{},
		owners: map[portrait.InstanceID]string{},
		addrs:  map[string]string{},
	}
	n.fwd = newForwarder(n)
	return n
}

// ID is the node's id.
func (n *Node) ID() string { return n.opts.ID }

// LeaseTTL is the length of the node's leases.
func (n *Node) LeaseTTL() time.Duration { return n.opts.LeaseTTL }

// Start registers the node and takes its share of the instances, opening
// their sessions, before it returns; Run keeps it going.
func (n *Node) Start(ctx context.Context) error {
	// Leases and claims left under this node's id by its previous run
	// (killed, or restarted within a lease) are given up first: taken
	// again below, they get new fences.
	if err := n.leases.RemoveNode(ctx, n.opts.ID); err != nil {
		return fmt.Errorf("cluster: clearing node %s's previous run: %w", n.opts.ID, err)
	}
	if err := n.leases.Heartbeat(ctx, portrait.Node{ID: n.opts.ID, Addr: n.opts.Addr}); err != nil {
		return fmt.Errorf("cluster: registering node %s: %w", n.opts.ID, err)
	}
	if err := n.round(ctx); err != nil {
		return fmt.Errorf("cluster: taking this node's instances: %w", err)
	}
	n.mu.Lock()
	n.started = true
	n.mu.Unlock()
	return nil
}

// Run keeps the heartbeat, the leases and the share of the instances
// until ctx ends.
func (n *Node) Run(ctx context.Context) {
	tick.Every(ctx, n.tick, func(ctx context.Context) {
		if err := n.round(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("cluster round failed; retrying", "node", n.opts.ID, "err", err)
		}
	})
}

// Stop hands every instance of this node over: it stops taking leases,
// closes the sessions, and then releases the leases and job claims at once
// by leaving the cluster, so that the other nodes take the instances at
// their next round. Call it once nothing else acts for the instances (the
// HTTP server and the notification hub have stopped).
func (n *Node) Stop(ctx context.Context) {
	n.tickMu.Lock()
	defer n.tickMu.Unlock()
	n.mu.Lock()
	n.stopping = true
	ids := make([]portrait.InstanceID, 0, len(n.held))
	for id := range n.held {
		ids = append(ids, id)
	}
	n.held = map[portrait.InstanceID]held{}
	n.mu.Unlock()
	for _, id := range ids {
		n.owner.Disown(id)
	}
	if err := n.leases.RemoveNode(ctx, n.opts.ID); err != nil {
		n.log.Warn("leaving the cluster; the other nodes take this node's instances when its leases lapse", "node", n.opts.ID, "err", err)
	}
}

// Acting returns ctx carrying this node's lease of id, and true, while the
// node may act for id; false when it does not own id (or its lease may
// have lapsed).
func (n *Node) Acting(ctx context.Context, id portrait.InstanceID) (context.Context, bool) {
	n.mu.RLock()
	h, ok := n.held[id]
	n.mu.RUnlock()
	if !ok || !time.Now().Before(h.until) {
		return ctx, false
	}
	return portrait.WithLease(ctx, h.lease), true
}

// Owns reports whether this node serves id now: it acts for id and has
// opened its session.
func (n *Node) Owns(id portrait.InstanceID) bool {
	n.mu.RLock()
	h, ok := n.held[id]
	n.mu.RUnlock()
	return ok && h.open && time.Now().Before(h.until)
}

// round is one beat: heartbeat, renewal, then the share of the instances.
func (n *Node) round(ctx context.Context) error {
	n.tickMu.Lock()
	defer n.tickMu.Unlock()
	n.mu.RLock()
	stopping := n.stopping
	n.mu.RUnlock()
	if stopping {
		return nil
	}
	start := time.Now()
	if err := n.leases.Heartbeat(ctx, portrait.Node{ID: n.opts.ID, Addr: n.opts.Addr}); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if err := n.renew(ctx, start); err != nil {
		return err
	}
	view, err := n.read(ctx)
	if err != nil {
		return err
	}
	ids, err := n.owner.IDs(ctx)
	if err != nil {
		return fmt.Errorf("listing the instances: %w", err)
	}
	return n.balance(ctx, ids, view)
}

// Take takes a new instance at once when it falls to this node, instead
// of at the next round, and opens its session: an instance created here is
// served when its creation returns.
func (n *Node) Take(ctx context.Context, id portrait.InstanceID) {
	n.tickMu.Lock()
	defer n.tickMu.Unlock()
	n.mu.RLock()
	nodes := make([]string, 0, len(n.addrs)+1)
	for nd := range n.addrs {
		nodes = append(nodes, nd)
	}
	stopping, started := n.stopping, n.started
	n.mu.RUnlock()
	if stopping || !started {
		// Before Start (the first instances are made before it) the
		// node takes nothing: Start first clears what its previous run
		// left, and would take the lease from under the open session.
		return
	}
	if !slices.Contains(nodes, n.opts.ID) {
		nodes = append(nodes, n.opts.ID)
	}
	slices.Sort(nodes)
	if preferred(nodes, id) != n.opts.ID {
		return // its node takes it at its next round
	}
	start := time.Now()
	l, err := n.leases.Acquire(ctx, id, n.opts.ID, n.opts.LeaseTTL)
	if err != nil {
		return // taken at the next round, by whichever node it falls to
	}
	n.gain(ctx, []portrait.Lease{l}, start)
}

// validFor is how long after a renewal began a node acts under its
// leases: a tenth less than the lease, for clocks that run at slightly
// different rates and for the time the renewal took to reach the
// database.
func (n *Node) validFor() time.Duration { return n.opts.LeaseTTL - n.opts.LeaseTTL/10 }

// renew extends this node's leases; those not extended are lost, and
// their sessions closed.
func (n *Node) renew(ctx context.Context, start time.Time) error {
	renewed, err := n.leases.Renew(ctx, n.opts.ID, n.opts.LeaseTTL)
	if err != nil {
		return fmt.Errorf("renewing leases: %w", err)
	}
	kept := make(map[portrait.InstanceID]portrait.Lease, len(renewed))
	for _, l := range renewed {
		kept[l.Instance] = l
	}
	var lost []portrait.InstanceID
	n.mu.Lock()
	for id, h := range n.held {
		l, ok := kept[id]
		if !ok || l.Fence != h.lease.Fence {
			lost = append(lost, id)
			delete(n.held, id)
			continue
		}
		n.held[id] = held{lease: l, until: start.Add(n.validFor()), open: h.open}
	}
	n.mu.Unlock()
	for _, id := range lost {
		n.log.Warn("lost the lease of an instance; closing its session", "node", n.opts.ID, "idInstance", int64(id))
		n.owner.Disown(id)
	}
	// A lease the store kept for this node that it does not know of (it
	// restarted within its lease's time) is released: taking it again
	// below gives it a new fence.
	for id, l := range kept {
		n.mu.RLock()
		_, known := n.held[id]
		n.mu.RUnlock()
		if !known {
			if err := n.leases.Release(ctx, id, n.opts.ID, l.Fence); err != nil {
				return fmt.Errorf("releasing a lease of an earlier run: %w", err)
			}
		}
	}
	return nil
}

// view is the cluster as read from the store: live nodes and current
// owners.
type view struct {
	nodes  []string                       // live node ids, sorted
	owners map[portrait.InstanceID]string // unexpired leases' nodes
}

// read reads the live nodes and the current owners, and keeps them for
// forwarding.
func (n *Node) read(ctx context.Context) (view, error) {
	now, err := n.leases.Now(ctx)
	if err != nil {
		return view{}, fmt.Errorf("reading the database's clock: %w", err)
	}
	// A node whose heartbeat is older than a lease holds no lease either.
	nodes, err := n.leases.Nodes(ctx, n.opts.LeaseTTL)
	if err != nil {
		return view{}, fmt.Errorf("reading the nodes: %w", err)
	}
	all, err := n.leases.Leases(ctx)
	if err != nil {
		return view{}, fmt.Errorf("reading the leases: %w", err)
	}
	v := view{owners: make(map[portrait.InstanceID]string, len(all))}
	addrs := make(map[string]string, len(nodes))
	for _, nd := range nodes {
		v.nodes = append(v.nodes, nd.ID)
		addrs[nd.ID] = nd.Addr
	}
	slices.Sort(v.nodes)
	for _, l := range all {
		if l.Expires.After(now) {
			v.owners[l.Instance] = l.Node
		}
	}
	n.mu.Lock()
	n.owners, n.addrs, n.readAt = v.owners, addrs, time.Now()
	n.mu.Unlock()
	return v, nil
}

// preferred is the live node an instance falls to: the one with the
// highest score of (node, instance).
func preferred(nodes []string, id portrait.InstanceID) string {
	var best string
	var bestScore uint64
	for _, nd := range nodes {
		h := fnv.New64a()
		h.Write([]byte(nd))
		// FNV alone would let the node's name decide for runs of
		// consecutive ids: the mix spreads every bit over the score.
		if s := mix64(h.Sum64() ^ mix64(uint64(id))); best == "" || s > bestScore {
			best, bestScore = nd, s
		}
	}
	return best
}

// mix64 is SplitMix64's finaliser: every input bit affects every output
// bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// openWorkers bounds the sessions a node opens at once.
const openWorkers = 8

// balance takes the free leases of the instances that fall to this node
// and hands over the instances it holds that fall to another live node.
func (n *Node) balance(ctx context.Context, ids []portrait.InstanceID, v view) error {
	if !slices.Contains(v.nodes, n.opts.ID) {
		v.nodes = append(v.nodes, n.opts.ID) // our heartbeat is in; an old read may miss it
		slices.Sort(v.nodes)
	}
	var take, give []portrait.InstanceID
	n.mu.RLock()
	for _, id := range ids {
		_, mine := n.held[id]
		want := preferred(v.nodes, id) == n.opts.ID
		owner, taken := v.owners[id]
		switch {
		case want && !mine && (!taken || owner == n.opts.ID):
			take = append(take, id)
		case !want && mine:
			give = append(give, id)
		}
	}
	n.mu.RUnlock()

	for _, id := range give {
		n.handOver(ctx, id)
	}
	if len(take) == 0 {
		return nil
	}
	start := time.Now()
	// Leases another node was quicker to take, and instances deleted
	// meanwhile, are left out.
	gained, err := n.leases.AcquireMany(ctx, take, n.opts.ID, n.opts.LeaseTTL)
	if err != nil {
		return fmt.Errorf("taking %d instances: %w", len(take), err)
	}
	if len(gained) > 0 {
		n.gain(ctx, gained, start)
	}
	return nil
}

// gain opens the sessions of the instances whose leases were just taken.
func (n *Node) gain(ctx context.Context, gained []portrait.Lease, start time.Time) {
	n.mu.Lock()
	for _, l := range gained {
		n.held[l.Instance] = held{lease: l, until: start.Add(n.validFor())}
		n.owners[l.Instance] = n.opts.ID
	}
	n.mu.Unlock()
	ids := make(map[portrait.InstanceID]bool, len(gained))
	for _, l := range gained {
		ids[l.Instance] = true
	}
	if n.opts.OnGain != nil {
		n.opts.OnGain(ids)
	}
	next := make(chan portrait.Lease)
	var wg sync.WaitGroup
	for w := 0; w < min(openWorkers, len(gained)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range next {
				n.owner.Own(ctx, l)
				n.mu.Lock()
				if h, ok := n.held[l.Instance]; ok && h.lease.Fence == l.Fence {
					h.open = true
					n.held[l.Instance] = h
				}
				n.mu.Unlock()
			}
		}()
	}
	for _, l := range gained {
		next <- l
	}
	close(next)
	wg.Wait()
	n.log.Info("took instances", "node", n.opts.ID, "count", len(gained))
}

// handOver closes an instance's session and releases its lease, so that
// the node it now falls to takes it at its next round.
func (n *Node) handOver(ctx context.Context, id portrait.InstanceID) {
	n.mu.Lock()
	h, ok := n.held[id]
	delete(n.held, id)
	n.mu.Unlock()
	if !ok {
		return
	}
	n.owner.Disown(id)
	if err := n.leases.Release(ctx, id, n.opts.ID, h.lease.Fence); err != nil {
		n.log.Warn("releasing a lease; the instance is taken when it lapses", "idInstance", int64(id), "err", err)
	}
}

// Held returns the leases this node acts under, ordered by instance.
func (n *Node) Held() []portrait.Lease {
	n.mu.RLock()
	out := make([]portrait.Lease, 0, len(n.held))
	for _, h := range n.held {
		out = append(out, h.lease)
	}
	n.mu.RUnlock()
	slices.SortFunc(out, func(a, b portrait.Lease) int { return cmp.Compare(a.Instance, b.Instance) })
	return out
}
