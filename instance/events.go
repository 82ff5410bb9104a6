package instance

import (
	"sync"

	"github.com/portrait-dev/portrait"
)

// gate is the sink the Registry gives engines. An engine may report its
// first events while Open is still running, before the Registry has
// published the instance; the receiver (the notification hub) looks
// instances up in the Registry, so such events are held here and handed on,
// in order, once the instance is published. Events of published instances
// pass straight through.
type gate struct {
	sink portrait.EventSink

	mu      sync.Mutex
	open    map[portrait.InstanceID]bool     // published instances
	held    map[portrait.InstanceID][]func() // events waiting for publication
	passing map[portrait.InstanceID]bool     // held events being handed on
	gone    map[portrait.InstanceID]bool     // removed instances: their late events are dropped
}

func newGate(sink portrait.EventSink) *gate {
	return &gate{sink: sink, open: map[portrait.InstanceID]bool{}, held: map[portrait.InstanceID][]func(){},
		passing: map[portrait.InstanceID]bool{}, gone: map[portrait.InstanceID]bool{}}
}

// StateChanged implements portrait.EventSink.
func (g *gate) StateChanged(id portrait.InstanceID, st portrait.State) {
	g.pass(id, func() { g.sink.StateChanged(id, st) })
}

// PictureChanged implements portrait.EventSink.
func (g *gate) PictureChanged(id portrait.InstanceID, c portrait.PictureChange) {
	g.pass(id, func() { g.sink.PictureChanged(id, c) })
}

func (g *gate) pass(id portrait.InstanceID, ev func()) {
	g.mu.Lock()
	if g.gone[id] {
		g.mu.Unlock()
		return
	}
	if !g.open[id] || g.passing[id] {
		g.held[id] = append(g.held[id], ev)
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	ev()
}

// publish opens the gate for id and hands on what it held, in order, also
// events that arrive meanwhile.
func (g *gate) publish(id portrait.InstanceID) {
	g.mu.Lock()
	g.open[id] = true
	delete(g.gone, id)
	if len(g.held[id]) == 0 {
		g.mu.Unlock()
		return
	}
	g.passing[id] = true
	for {
		evs := g.held[id]
		delete(g.held, id)
		if len(evs) == 0 {
			delete(g.passing, id)
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		for _, ev := range evs {
			ev()
		}
		g.mu.Lock()
	}
}

// forget closes the gate for a removed instance and drops what it held.
func (g *gate) forget(id portrait.InstanceID) {
	g.mu.Lock()
	delete(g.open, id)
	delete(g.held, id)
	g.gone[id] = true
	g.mu.Unlock()
}
