// Package memkv is a portrait.KV in memory, for the engines' tests.
package memkv

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/portrait-dev/portrait"
)

// KV is a portrait.KV in memory. A call whose context is done fails with
// the context's error, as a store's would.
type KV struct {
	mu sync.Mutex
	m  map[string][]byte
}

// New returns an empty KV.
func New() *KV { return &KV{m: map[string][]byte{}} }

func key(id portrait.InstanceID, k string) string { return fmt.Sprintf("%d/%s", id, k) }

// Get implements portrait.KV.
func (kv *KV) Get(ctx context.Context, id portrait.InstanceID, k string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	v, ok := kv.m[key(id, k)]
	if !ok {
		return nil, fmt.Errorf("memkv %d %s: %w", id, k, portrait.ErrNotFound)
	}
	return slices.Clone(v), nil
}

// Put implements portrait.KV.
func (kv *KV) Put(ctx context.Context, id portrait.InstanceID, k string, v []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.m[key(id, k)] = slices.Clone(v)
	return nil
}

// DeleteKey implements portrait.KV.
func (kv *KV) DeleteKey(ctx context.Context, id portrait.InstanceID, k string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	delete(kv.m, key(id, k))
	return nil
}

// Value returns what is stored under k for id; nil when nothing is.
func (kv *KV) Value(id portrait.InstanceID, k string) []byte {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return slices.Clone(kv.m[key(id, k)])
}

// Each calls fn with every entry, its key written "<id>/<key>", under the
// KV's lock (fn must not call the KV).
func (kv *KV) Each(fn func(key string, v []byte)) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	for k, v := range kv.m {
		fn(k, v)
	}
}

var _ portrait.KV = (*KV)(nil)
