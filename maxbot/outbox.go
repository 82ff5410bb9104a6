package maxbot

import (
	"sync"

	"github.com/portrait-dev/portrait"
)

// outbox delivers a session's events to its sink in order, from its own
// goroutine: the session's goroutines and locks never wait for the
// sink, and pushing never blocks.
type outbox struct {
	sink portrait.EventSink

	mu     sync.Mutex
	items  []func(portrait.EventSink)
	closed bool

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

func newOutbox(sink portrait.EventSink) *outbox {
	o := &outbox{sink: sink, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go o.run()
	return o
}

func (o *outbox) push(fn func(portrait.EventSink)) {
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

func (o *outbox) run() {
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

// close drops what was not delivered and waits until the sink is no longer
// called. It must not be called from the sink.
func (o *outbox) close() {
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
