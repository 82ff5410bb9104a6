// Package outbox delivers an engine session's events to its sink in order,
// from a goroutine of its own: the engine's goroutines (a protocol's read
// loop, a library's event handlers) and the session's locks never wait for
// the sink, and pushing never blocks. Every engine uses one per session.
package outbox

import (
	"sync"

	"github.com/portrait-dev/portrait"
)

// Outbox is one session's queue of events.
type Outbox struct {
	sink portrait.EventSink

	mu     sync.Mutex
	items  []func(portrait.EventSink)
	closed bool

	wake chan struct{} // capacity 1: "items may be waiting"
	stop chan struct{} // closed by Close
	done chan struct{} // closed when run returns
}

// New returns an Outbox delivering to sink, and starts its goroutine.
func New(sink portrait.EventSink) *Outbox {
	o := &Outbox{sink: sink, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go o.run()
	return o
}

// Sink is the sink the Outbox delivers to.
func (o *Outbox) Sink() portrait.EventSink { return o.sink }

// Push queues fn, which runs on the Outbox's goroutine with the sink.
// After Close it does nothing.
func (o *Outbox) Push(fn func(portrait.EventSink)) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.items = append(o.items, fn)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *Outbox) run() {
	defer close(o.done)
	for {
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return
		}
		var fn func(portrait.EventSink)
		if len(o.items) > 0 {
			fn = o.items[0]
			o.items[0] = nil
			o.items = o.items[1:]
		}
		o.mu.Unlock()
		if fn == nil {
			select {
			case <-o.wake:
				continue
			case <-o.stop:
				return
			}
		}
		fn(o.sink)
	}
}

// Close drops what was not delivered and waits until the sink is no longer
// called. It must not be called from the sink.
func (o *Outbox) Close() {
	o.mu.Lock()
	already := o.closed
	o.closed = true
	o.items = nil
	o.mu.Unlock()
	if !already {
		close(o.stop)
	}
	<-o.done
}
