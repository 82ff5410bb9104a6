package whatsapp

import (
	"sync"

	"github.com/portrait-dev/portrait"
)

// outbox delivers a session's events to its sink, in order, from its own
// goroutine: whatsmeow's event goroutines and the session's locks never wait
// for the sink, and pushing never blocks.
type outbox struct {
	sink portrait.EventSink

	mu     sync.Mutex
	items  []func(portrait.EventSink)
	closed bool

	wake chan struct{} // capacity 1: "items may be waiting"
	stop chan struct{} // closed by close
	done chan struct{} // closed when run returns
}

func newOutbox(sink portrait.EventSink) *outbox {
	o := &outbox{
		sink: sink,
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go o.run()
	return o
}

// push queues fn, which runs on the outbox's goroutine with the sink.
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

func (o *outbox) next() (fn func(portrait.EventSink), closed bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, true
	}
	if len(o.items) == 0 {
		return nil, false
	}
	fn = o.items[0]
	o.items[0] = nil
	o.items = o.items[1:]
	if len(o.items) == 0 {
		o.items = nil
	}
	return fn, false
}

func (o *outbox) run() {
	defer close(o.done)
	for {
		fn, closed := o.next()
		if closed {
			return
		}
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

// close drops what was not delivered yet and waits until the sink is no
// longer being called. It must not be called from the sink.
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
