package avatar

import "sync"

// DefaultSourceEntries is how many messenger pictures are remembered by
// the hash of their bytes (about 100 bytes each).
const DefaultSourceEntries = 100_000

// sourceMemo maps the SHA-256 of a messenger picture's bytes to the key its
// normalised version is stored under. Stored pictures are never deleted, so
// a remembered key stays good; past its bound the oldest entries are
// forgotten first.
type sourceMemo struct {
	mu    sync.Mutex
	max   int
	keys  map[[32]byte]string
	order [][32]byte // insertion order, a ring once full
	next  int
}

func (m *sourceMemo) init(max int) {
	if max <= 0 {
		max = DefaultSourceEntries
	}
	m.max = max
	m.keys = map[[32]byte]string{}
}

func (m *sourceMemo) get(sum [32]byte) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[sum]
	return k, ok
}

func (m *sourceMemo) put(sum [32]byte, key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[sum]; ok {
		return
	}
	if len(m.order) < m.max {
		m.order = append(m.order, sum)
	} else {
		delete(m.keys, m.order[m.next])
		m.order[m.next] = sum
		m.next = (m.next + 1) % m.max
	}
	m.keys[sum] = key
}
