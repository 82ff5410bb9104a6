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
	seed   maphash.Seed
	shards [64]shard
}

type shard struct {
	mu sync.RWMutex
	m  map[cacheKey]entry
}

func (c *cache) init() {
	c.seed = maphash.MakeSeed()
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

func (c *cache) put(k cacheKey, e entry) {
	s := c.shard(k)
	s.mu.Lock()
	s.m[k] = e
	s.mu.Unlock()
}
