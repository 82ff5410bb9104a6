package sandbox

import (
	"context"
	"time"

	"github.com/portrait-dev/portrait"
)

// Record is one entry of the sandbox's record of its sessions: a session
// opened or closed, or a call that acted for an instance on the simulated
// messenger. In cluster mode Node and Fence name the lease the session or
// the call acted under, so that a test can prove no two nodes ever acted
// for an instance at once; on a server of its own they are empty.
type Record struct {
	At       time.Time           `json:"at"`
	Event    string              `json:"event"` // RecordOpen, RecordClose or RecordAct
	Instance portrait.InstanceID `json:"idInstance"`
	Node     string              `json:"node,omitempty"`
	Fence    int64               `json:"fence,omitempty"`
}

// The events of a Record.
const (
	RecordOpen  = "open"
	RecordClose = "close"
	RecordAct   = "act" // Picture or SetPicture reached the messenger
)

// record reports an event to Options.Record, if set, with the lease ctx
// carries.
func (e *Engine) record(ctx context.Context, event string, id portrait.InstanceID) {
	if e.opts.Record == nil {
		return
	}
	r := Record{At: time.Now().UTC(), Event: event, Instance: id}
	if l, ok := portrait.LeaseFrom(ctx); ok {
		r.Node, r.Fence = l.Node, l.Fence
	}
	e.opts.Record(r)
}

// leaseOf returns the lease ctx carries; zero when none.
func leaseOf(ctx context.Context) portrait.Lease {
	l, _ := portrait.LeaseFrom(ctx)
	return l
}
