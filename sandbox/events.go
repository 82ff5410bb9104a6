package sandbox

import (
	"sync"

	"github.com/portrait-dev/portrait"
)

// event is one report to a session's sink: a state change or a picture change.
type event struct {
	state  portrait.State
	change *portrait.PictureChange
	done   chan struct{} // closed once the sink has returned (or the queue is closed); may be nil
}

// queue delivers a session's events to its sink, in order, from its own
// goroutine, so that the sink never runs while the engine holds a lock and
// pushing an event never blocks.
type queue struct {
	id   portrait.InstanceID
	sink portrait.EventSink

	mu     sync.Mutex
	items  []event
	closed bool

	wake chan struct{} // capacity 1: "items may be waiting"
	stop chan struct{} // closed by close
	done chan struct{} // closed when run returns
}

func newQueue(id portrait.InstanceID, sink portrait.EventSink) *queue {
	q := &queue{
		id:   id,
		sink: sink,
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go q.run()
	return q
}

// push appends ev to the queue. It never blocks on the sink.
func (q *queue) push(ev event) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.items = append(q.items, ev)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next takes the first waiting event; ok is false when there is none or the
// queue is closed.
func (q *queue) next() (ev event, ok, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return event{}, false, true
	}
	if len(q.items) == 0 {
		return event{}, false, false
	}
	ev = q.items[0]
	q.items[0] = event{}
	q.items = q.items[1:]
	if len(q.items) == 0 {
		q.items = nil
	}
	return ev, true, false
}

func (q *queue) run() {
	defer close(q.done)
	for {
		ev, ok, closed := q.next()
		if closed {
			return
		}
		if !ok {
			select {
			case <-q.wake:
				continue
			case <-q.stop:
				return
			}
		}
		if ev.change != nil {
			q.sink.PictureChanged(q.id, *ev.change)
		} else {
			q.sink.StateChanged(q.id, ev.state)
		}
		if ev.done != nil {
			close(ev.done)
		}
	}
}

// close drops the events not delivered yet and waits until the sink is no
// longer being called. It must not be called from a sink method.
func (q *queue) close() {
	q.mu.Lock()
	already := q.closed
	q.closed = true
	for _, ev := range q.items {
		if ev.done != nil {
			close(ev.done)
		}
	}
	q.items = nil
	q.mu.Unlock()
	if !already {
		close(q.stop)
	}
	<-q.done
}

// discard is the sink of sessions opened without one.
type discard struct{}

func (discard) StateChanged(portrait.InstanceID, portrait.State)           {}
func (discard) PictureChanged(portrait.InstanceID, portrait.PictureChange) {}
