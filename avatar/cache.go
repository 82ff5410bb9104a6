package avatar

import (
	"hash/maphash"
	"strconv"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
)

type cacheKey struct {
	id   portrait.InstanceID
	chat string
}

func (k cacheKey) String() string { return strconv.FormatInt(int64(k.id), 10) + "/" + k.chat }

type entry struct {
	avatar    Avatar
	pictureID string // the messenger's id of the picture; "" when there is none
	upstream  string // the messenger's URL of the picture, if it gave one
	expires   time.Time
}

// cache is a map of lookup results split into shards so that concurrent
// readers on many cores do not contend on one lock.
type cache struct {
	seed     maphash.Seed
	perShard int // entries a shard keeps at most; 0 = unbounded
	shards   [64]shard
}

type shard struct {
	mu sync.RWMutex
	m  map[cacheKey]entry
}

func (c *cache) init(maxEntries int) {
	c.seed = maphash.MakeSeed()
	if maxEntries > 0 {
		c.perShard = max(1, maxEntries/len(c.shards))
	}
	for i := range c.shards {
		c.shards[i].m = map[cacheKey]entry{}
	}
}

func (c *cache) shard(k cacheKey) *shard {
	h := maphash.String(c.seed, k.chat) ^ uint64(k.id)*0x9E3779B97F4A7C15
	return &c.shards[h%uint64(len(c.shards))]
}

func (c *cache) get(k cacheKey) (entry, bool) {
	s := c.shard(k)
	s.mu.RLock()
	e, ok := s.m[k]
	s.mu.RUnlock()
	return e, ok
}

// put stores e under k. A full shard first drops its expired entries and,
// if that is not enough, an eighth of the rest (Go's map order is random,
// so they are arbitrary ones): a bounded cache, not an LRU.
func (c *cache) put(k cacheKey, e entry) {
	s := c.shard(k)
	s.mu.Lock()
	if _, ok := s.m[k]; !ok && c.perShard > 0 && len(s.m) >= c.perShard {
		now := time.Now()
		for key, old := range s.m {
			if now.After(old.expires) {
				delete(s.m, key)
			}
		}
		for key := range s.m {
			if len(s.m) < c.perShard-c.perShard/8 {
				break
			}
			delete(s.m, key)
		}
	}
	s.m[k] = e
	s.mu.Unlock()
}

// len returns the number of entries.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}

// expireInstances marks every entry of the instances in ids expired,
// keeping what they remember of the picture, in one pass over the cache.
func (c *cache) expireInstances(ids map[portrait.InstanceID]bool) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			if ids[k.id] {
				e.expires = time.Time{}
				s.m[k] = e
			}
		}
		s.mu.Unlock()
	}
}
