package storetest_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/storetest"
)

// TestMemStore runs the suite against a minimal in-memory store, which shows
// that the suite asks for nothing beyond the portrait.Store contract.
func TestMemStore(t *testing.T) {
	storetest.Run(t, func(*testing.T) portrait.Store { return newMemStore() })
}

// TestMemQueue runs the queue suite against the in-memory store.
func TestMemQueue(t *testing.T) {
	storetest.RunQueue(t, func(*testing.T) storetest.QueueStore { return newMemStore() })
}

type memStore struct {
	mu    sync.Mutex
	insts map[portrait.InstanceID]portrait.Instance
	kv    map[portrait.InstanceID]map[string][]byte
	gen   int64

	queues      map[portrait.InstanceID][]portrait.Notification
	lastReceipt int64
	jobs        map[int64]portrait.Job
	lastJob     int64

	// The cluster: the clock is time.Now, the store's own.
	nodes     map[string]portrait.Node
	leases    map[portrait.InstanceID]portrait.Lease
	lastFence int64
	claims    map[int64]memClaim // by job id
}

type memClaim struct {
	node  string
	until time.Time
}

func newMemStore() *memStore {
	return &memStore{
		insts:  map[portrait.InstanceID]portrait.Instance{},
		kv:     map[portrait.InstanceID]map[string][]byte{},
		queues: map[portrait.InstanceID][]portrait.Notification{},
		jobs:   map[int64]portrait.Job{},
		nodes:  map[string]portrait.Node{},
		leases: map[portrait.InstanceID]portrait.Lease{},
		claims: map[int64]memClaim{},
	}
}

func clone(inst portrait.Instance) portrait.Instance {
	inst.TokenHash = bytes.Clone(inst.TokenHash)
	inst.Settings.Extra = maps.Clone(inst.Settings.Extra)
	// Microseconds, as PostgreSQL keeps them.
	inst.CreatedAt = inst.CreatedAt.UTC().Truncate(time.Microsecond)
	return inst
}

func (m *memStore) lock(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	return m.mu.Unlock, nil
}

func (m *memStore) CreateInstance(ctx context.Context, inst portrait.Instance) error {
	unlock, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := m.insts[inst.ID]; ok {
		return fmt.Errorf("instance %d already exists", inst.ID)
	}
	m.insts[inst.ID] = clone(inst)
	m.kv[inst.ID] = map[string][]byte{}
	m.gen++
	return nil
}

func (m *memStore) Instance(ctx context.Context, id portrait.InstanceID) (portrait.Instance, error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return portrait.Instance{}, err
	}
	defer unlock()
	inst, ok := m.insts[id]
	if !ok {
		return portrait.Instance{}, portrait.ErrNotFound
	}
	return clone(inst), nil
}

func (m *memStore) Instances(ctx context.Context) ([]portrait.Instance, error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []portrait.Instance
	for _, id := range slices.Sorted(maps.Keys(m.insts)) {
		out = append(out, clone(m.insts[id]))
	}
	return out, nil
}

func (m *memStore) change(ctx context.Context, id portrait.InstanceID, fn func(*portrait.Instance)) error {
	unlock, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	inst, ok := m.insts[id]
	if !ok {
		return portrait.ErrNotFound
	}
	fn(&inst)
	m.insts[id] = clone(inst)
	m.gen++
	return nil
}

func (m *memStore) DeleteInstance(ctx context.Context, id portrait.InstanceID) error {
	unlock, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := m.insts[id]; !ok {
		return portrait.ErrNotFound
	}
	delete(m.insts, id)
	delete(m.kv, id)
	delete(m.queues, id)
	delete(m.leases, id)
	for jid, j := range m.jobs {
		if j.Instance == id {
			delete(m.jobs, jid)
			delete(m.claims, jid)
		}
	}
	m.gen++
	return nil
}

func (m *memStore) SetTokenHash(ctx context.Context, id portrait.InstanceID, hash []byte) error {
	return m.change(ctx, id, func(inst *portrait.Instance) { inst.TokenHash = hash })
}

func (m *memStore) SetSettings(ctx context.Context, id portrait.InstanceID, s portrait.Settings) error {
	return m.change(ctx, id, func(inst *portrait.Instance) { inst.Settings = s })
}

func (m *memStore) Generation(ctx context.Context) (int64, error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	return m.gen, nil
}

func (m *memStore) Get(ctx context.Context, id portrait.InstanceID, key string) ([]byte, error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	v, ok := m.kv[id][key]
	if !ok {
		return nil, portrait.ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (m *memStore) Put(ctx context.Context, id portrait.InstanceID, key string, value []byte) error {
	unlock, err := m.wlock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	kv, ok := m.kv[id]
	if !ok {
		return portrait.ErrNotFound
	}
	kv[key] = bytes.Clone(value)
	return nil
}

func (m *memStore) DeleteKey(ctx context.Context, id portrait.InstanceID, key string) error {
	unlock, err := m.wlock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	delete(m.kv[id], key)
	return nil
}

func (m *memStore) Close() error { return nil }

// usec truncates t to microseconds in UTC, as PostgreSQL keeps times.
func usec(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func (m *memStore) enqueueLocked(ns []portrait.Notification) ([]int64, error) {
	for _, n := range ns {
		if _, ok := m.insts[n.Instance]; !ok {
			return nil, fmt.Errorf("instance %d: %w", n.Instance, portrait.ErrNotFound)
		}
	}
	ids := make([]int64, len(ns))
	for i, n := range ns {
		m.lastReceipt++
		n.ReceiptID = m.lastReceipt
		n.Body = bytes.Clone(n.Body)
		n.CreatedAt = usec(n.CreatedAt)
		m.queues[n.Instance] = append(m.queues[n.Instance], n)
		ids[i] = n.ReceiptID
	}
	return ids, nil
}

func (m *memStore) Enqueue(ctx context.Context, ns []portrait.Notification) ([]int64, error) {
	unlock, err := m.wlock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return m.enqueueLocked(ns)
}

func (m *memStore) Head(ctx context.Context, id portrait.InstanceID) (portrait.Notification, error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return portrait.Notification{}, err
	}
	defer unlock()
	q := m.queues[id]
	if len(q) == 0 {
		return portrait.Notification{}, portrait.ErrNotFound
	}
	n := q[0]
	n.Body = bytes.Clone(n.Body)
	return n, nil
}

func (m *memStore) Peek(ctx context.Context, id portrait.InstanceID, after int64, limit int) ([]portrait.Notification, error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	out := []portrait.Notification{}
	for _, n := range m.queues[id] {
		if len(out) >= limit {
			break
		}
		if n.ReceiptID > after {
			n.Body = bytes.Clone(n.Body)
			out = append(out, n)
		}
	}
	return out, nil
}

func (m *memStore) Delete(ctx context.Context, id portrait.InstanceID, receiptID int64) (bool, error) {
	unlock, err := m.wlock(ctx)
	if err != nil {
		return false, err
	}
	defer unlock()
	q := m.queues[id]
	i := slices.IndexFunc(q, func(n portrait.Notification) bool { return n.ReceiptID == receiptID })
	if i < 0 {
		return false, nil
	}
	m.queues[id] = slices.Delete(q, i, i+1)
	return true, nil
}

func (m *memStore) DeleteMany(ctx context.Context, id portrait.InstanceID, receiptIDs []int64) (int, error) {
	unlock, err := m.wlock(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	q := m.queues[id]
	kept := slices.DeleteFunc(q, func(n portrait.Notification) bool { return slices.Contains(receiptIDs, n.ReceiptID) })
	deleted := len(q) - len(kept)
	m.queues[id] = kept
	return deleted, nil
}

func (m *memStore) Depth(ctx context.Context, id portrait.InstanceID) (int64, error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	return int64(len(m.queues[id])), nil
}

func (m *memStore) Depths(ctx context.Context) (map[portrait.InstanceID]int64, error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	out := map[portrait.InstanceID]int64{}
	for id, q := range m.queues {
		if len(q) > 0 {
			out[id] = int64(len(q))
		}
	}
	return out, nil
}

func (m *memStore) Trim(ctx context.Context, olderThan time.Time, keep int) (byAge, byCap int64, err error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer unlock()
	for id, q := range m.queues {
		kept := q[:0]
		for _, n := range q {
			if n.CreatedAt.Before(olderThan) {
				byAge++
				continue
			}
			kept = append(kept, n)
		}
		if keep > 0 && len(kept) > keep {
			byCap += int64(len(kept) - keep)
			kept = kept[len(kept)-keep:]
		}
		m.queues[id] = kept
	}
	return byAge, byCap, nil
}

func (m *memStore) AddJob(ctx context.Context, j portrait.Job) (int64, error) {
	unlock, err := m.wlock(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	if _, ok := m.insts[j.Instance]; !ok {
		return 0, fmt.Errorf("instance %d: %w", j.Instance, portrait.ErrNotFound)
	}
	capped := func(due, deadline time.Time) time.Time {
		if !deadline.IsZero() && due.After(deadline) {
			return deadline
		}
		return due
	}
	if j.Key != "" {
		for id, s := range m.jobs {
			if s.Instance == j.Instance && s.Kind == j.Kind && s.Key == j.Key {
				s.Data = bytes.Clone(j.Data)
				s.DueAt = usec(capped(j.DueAt, s.Deadline))
				s.Version++
				m.jobs[id] = s
				return id, nil
			}
		}
	}
	m.lastJob++
	j.ID = m.lastJob
	j.Version = 0
	j.Data = bytes.Clone(j.Data)
	j.DueAt = usec(capped(j.DueAt, j.Deadline))
	if !j.Deadline.IsZero() {
		j.Deadline = usec(j.Deadline)
	}
	j.CreatedAt = usec(j.CreatedAt)
	m.jobs[j.ID] = j
	return j.ID, nil
}

func (m *memStore) DueJobs(ctx context.Context, now time.Time, limit int) ([]portrait.Job, error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var due []portrait.Job
	for _, j := range m.jobs {
		if !j.DueAt.After(usec(now)) {
			j.Data = bytes.Clone(j.Data)
			due = append(due, j)
		}
	}
	return fair(due, limit), nil
}

// fair returns up to limit of jobs in DueJobs' order: each instance's
// ranked by due time, then id; by rank, then due time, then id.
func fair(jobs []portrait.Job, limit int) []portrait.Job {
	byDue := func(a, b portrait.Job) int {
		return cmp.Or(a.DueAt.Compare(b.DueAt), cmp.Compare(a.ID, b.ID))
	}
	perInstance := map[portrait.InstanceID][]portrait.Job{}
	for _, j := range jobs {
		perInstance[j.Instance] = append(perInstance[j.Instance], j)
	}
	type ranked struct {
		job  portrait.Job
		rank int
	}
	var all []ranked
	for _, jobs := range perInstance {
		slices.SortFunc(jobs, byDue)
		for i, j := range jobs {
			all = append(all, ranked{j, i})
		}
	}
	slices.SortFunc(all, func(a, b ranked) int { return cmp.Or(cmp.Compare(a.rank, b.rank), byDue(a.job, b.job)) })
	out := []portrait.Job{}
	for _, r := range all[:min(len(all), max(limit, 0))] {
		out = append(out, r.job)
	}
	return out
}

func (m *memStore) FinishJob(ctx context.Context, j portrait.Job, n *portrait.Notification) (int64, error) {
	unlock, err := m.wlock(ctx)
	if err != nil {
		return 0, err
	}
	defer unlock()
	stored, ok := m.jobs[j.ID]
	if !ok {
		return 0, nil
	}
	var receipt int64
	if n != nil {
		ids, err := m.enqueueLocked([]portrait.Notification{*n})
		if err != nil {
			return 0, err
		}
		receipt = ids[0]
	}
	if stored.Version == j.Version {
		delete(m.jobs, j.ID)
	}
	delete(m.claims, j.ID)
	return receipt, nil
}

// now is the memory store's clock, at PostgreSQL's precision.
func (m *memStore) now() time.Time { return usec(time.Now()) }

// wlock is lock for the writes a lease in ctx fences (portrait.WithLease).
func (m *memStore) wlock(ctx context.Context) (func(), error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	if l, ok := portrait.LeaseFrom(ctx); ok && !m.current(l) {
		unlock()
		return nil, fmt.Errorf("instance %d: %w", l.Instance, portrait.ErrLeaseLost)
	}
	return unlock, nil
}

// current reports whether l is its instance's unexpired lease.
func (m *memStore) current(l portrait.Lease) bool {
	cur, ok := m.leases[l.Instance]
	return ok && cur.Node == l.Node && cur.Fence == l.Fence && cur.Expires.After(m.now())
}

func (m *memStore) Now(ctx context.Context) (time.Time, error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return time.Time{}, err
	}
	defer unlock()
	return m.now(), nil
}

func (m *memStore) Heartbeat(ctx context.Context, n portrait.Node) error {
	unlock, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	n.Heartbeat = m.now()
	m.nodes[n.ID] = n
	return nil
}

func (m *memStore) Nodes(ctx context.Context, within time.Duration) ([]portrait.Node, error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []portrait.Node
	for _, id := range slices.Sorted(maps.Keys(m.nodes)) {
		if n := m.nodes[id]; n.Heartbeat.After(m.now().Add(-within)) {
			out = append(out, n)
		}
	}
	return out, nil
}

func (m *memStore) RemoveNode(ctx context.Context, id string) error {
	unlock, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	delete(m.nodes, id)
	maps.DeleteFunc(m.leases, func(_ portrait.InstanceID, l portrait.Lease) bool { return l.Node == id })
	maps.DeleteFunc(m.claims, func(_ int64, c memClaim) bool { return c.node == id })
	return nil
}

func (m *memStore) AcquireMany(ctx context.Context, ids []portrait.InstanceID, node string, ttl time.Duration) ([]portrait.Lease, error) {
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("lease duration %v", ttl)
	}
	out := []portrait.Lease{}
	for _, id := range slices.Compact(slices.Sorted(slices.Values(ids))) {
		l, err := m.Acquire(ctx, id, node, ttl)
		switch {
		case err == nil:
			out = append(out, l)
		case errors.Is(err, portrait.ErrLeaseHeld), errors.Is(err, portrait.ErrNotFound):
		default:
			return nil, err
		}
	}
	return out, nil
}

func (m *memStore) Acquire(ctx context.Context, id portrait.InstanceID, node string, ttl time.Duration) (portrait.Lease, error) {
	if ttl < time.Millisecond {
		return portrait.Lease{}, fmt.Errorf("lease duration %v", ttl)
	}
	unlock, err := m.lock(ctx)
	if err != nil {
		return portrait.Lease{}, err
	}
	defer unlock()
	if _, ok := m.insts[id]; !ok {
		return portrait.Lease{}, fmt.Errorf("instance %d: %w", id, portrait.ErrNotFound)
	}
	now := m.now()
	cur, ok := m.leases[id]
	held := ok && cur.Expires.After(now)
	if held && cur.Node != node {
		return portrait.Lease{}, fmt.Errorf("instance %d: %w", id, portrait.ErrLeaseHeld)
	}
	fence := cur.Fence
	if !held {
		m.lastFence++
		fence = m.lastFence
	}
	l := portrait.Lease{Instance: id, Node: node, Fence: fence, Expires: now.Add(ttl)}
	m.leases[id] = l
	return l, nil
}

func (m *memStore) Renew(ctx context.Context, node string, ttl time.Duration) ([]portrait.Lease, error) {
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("lease duration %v", ttl)
	}
	unlock, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	now := m.now()
	out := []portrait.Lease{}
	for _, id := range slices.Sorted(maps.Keys(m.leases)) {
		if l := m.leases[id]; l.Node == node && l.Expires.After(now) {
			l.Expires = now.Add(ttl)
			m.leases[id] = l
			out = append(out, l)
		}
	}
	return out, nil
}

func (m *memStore) Release(ctx context.Context, id portrait.InstanceID, node string, fence int64) error {
	unlock, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if l, ok := m.leases[id]; ok && l.Node == node && l.Fence == fence {
		delete(m.leases, id)
	}
	return nil
}

func (m *memStore) Leases(ctx context.Context) ([]portrait.Lease, error) {
	unlock, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	out := []portrait.Lease{}
	for _, id := range slices.Sorted(maps.Keys(m.leases)) {
		out = append(out, m.leases[id])
	}
	return out, nil
}

func (m *memStore) CheckLease(ctx context.Context, l portrait.Lease) error {
	unlock, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if !m.current(l) {
		return fmt.Errorf("instance %d: %w", l.Instance, portrait.ErrLeaseLost)
	}
	return nil
}

func (m *memStore) ClaimJobs(ctx context.Context, node string, now time.Time, limit int, ttl time.Duration) ([]portrait.Job, error) {
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("claim duration %v", ttl)
	}
	unlock, err := m.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	clock := m.now()
	// The due jobs of node's instances in DueJobs' order (claimed ones
	// count in their instance's rank), then those node may take.
	var due []portrait.Job
	for _, j := range m.jobs {
		if l, owned := m.leases[j.Instance]; owned && l.Node == node && l.Expires.After(clock) && !j.DueAt.After(usec(now)) {
			j.Data = bytes.Clone(j.Data)
			due = append(due, j)
		}
	}
	out := []portrait.Job{}
	for _, j := range fair(due, len(due)) {
		if c, claimed := m.claims[j.ID]; len(out) >= limit || claimed && c.until.After(clock) {
			continue
		}
		m.claims[j.ID] = memClaim{node: node, until: clock.Add(ttl)}
		out = append(out, j)
	}
	return out, nil
}

// TestMemLeases, TestMemClaims and TestMemFencing run the cluster suites
// against the in-memory store.
func TestMemLeases(t *testing.T) {
	storetest.RunLeases(t, func(*testing.T) storetest.LeaseStore { return newMemStore() })
}

func TestMemClaims(t *testing.T) {
	storetest.RunClaims(t, func(*testing.T) storetest.ClaimStore { return newMemStore() })
}

func TestMemFencing(t *testing.T) {
	storetest.RunFencing(t, func(*testing.T) storetest.FenceStore { return newMemStore() })
}
