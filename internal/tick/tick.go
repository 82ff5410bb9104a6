// Package tick runs periodic work in the background loops of the server.
package tick

import (
	"context"
	"time"
)

// Every calls f every interval until ctx ends, and never after; the first
// call is one interval after Every starts.
func Every(ctx context.Context, interval time.Duration, f func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ctx.Err() != nil {
			return // both were ready
		}
		f(ctx)
	}
}
