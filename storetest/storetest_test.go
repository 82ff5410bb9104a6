package storetest_test

import (
	"bytes"
	"context"
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

type memStore struct {
	mu    sync.Mutex
	insts map[portrait.InstanceID]portrait.Instance
	kv    map[portrait.InstanceID]map[string][]byte
	gen   int64
}

func newMemStore() *memStore {
	return &memStore{insts: map[portrait.InstanceID]portrait.Instance{}, kv: map[portrait.InstanceID]map[string][]byte{}}
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
	unlock, err := m.lock(ctx)
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

func (m *memStore) Close() error { return nil }
