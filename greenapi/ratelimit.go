package greenapi

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
)

// bucket is a token bucket: capacity burst, refilled at rate per second.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, now time.Time) *bucket {
	burst := math.Max(1, math.Ceil(rate))
	return &bucket{rate: rate, burst: burst, tokens: burst, last: now}
}

// take consumes one token if there is one. It returns whether it did, the
// whole tokens left, and how long until the next token when it did not.
func (b *bucket) take(now time.Time) (ok bool, remaining int, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if el := now.Sub(b.last); el > 0 {
		b.tokens = math.Min(b.burst, b.tokens+el.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, int(b.tokens), 0
	}
	return false, 0, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// limiter holds one bucket per instance and method.
type limiter struct {
	rates   map[string]float64 // canonical method → rps; absent or ≤ 0 = unlimited
	buckets sync.Map           // limiterKey → *bucket
}

type limiterKey struct {
	id     portrait.InstanceID
	method string
}

// allow applies method's limit for instance id. It sets the upstream headers
// on h and returns false with the wait when the request is over the limit.
func (l *limiter) allow(id portrait.InstanceID, method string, now time.Time, setHeader func(k, v string)) (bool, time.Duration) {
	rate := l.rates[method]
	if rate <= 0 {
		return true, 0
	}
	k := limiterKey{id, method}
	v, ok := l.buckets.Load(k)
	if !ok {
		v, _ = l.buckets.LoadOrStore(k, newBucket(rate, now))
	}
	allowed, remaining, wait := v.(*bucket).take(now)
	setHeader("X-RateLimit-Remaining", strconv.Itoa(remaining))
	setHeader("X-RateLimit-Replenish-Rate", strconv.FormatFloat(rate, 'f', -1, 64))
	return allowed, wait
}

// forget drops the buckets of an instance.
func (l *limiter) forget(id portrait.InstanceID) {
	l.buckets.Range(func(k, _ any) bool {
		if k.(limiterKey).id == id {
			l.buckets.Delete(k)
		}
		return true
	})
}
