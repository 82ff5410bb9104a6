package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portrait-dev/portrait"
)

// Until cluster mode (instances owned by one node at a time through
// leases) is in place, one server serves a PostgreSQL database: two would
// both open every instance, run every job and send every webhook. A server
// on PostgreSQL registers itself as a node with a heartbeat and refuses to
// start while another node's heartbeat is fresh.

// The node heartbeat's timing: a node whose last heartbeat is older than
// nodeStale has stopped (or was killed) and no longer counts.
const (
	nodeBeat  = 5 * time.Second
	nodeStale = 3 * nodeBeat
)

// node is this server's registration in its database.
type node struct {
	leases portrait.Leases
	self   portrait.Node
	log    *slog.Logger
}

// registerNode refuses to serve a database another live server serves,
// and registers this one. A server is known by its host and data
// directory, so that the same server restarted after a crash takes its
// place at once. Its Run keeps the heartbeat; Close removes it.
func registerNode(ctx context.Context, leases portrait.Leases, dataDir, addr string, log *slog.Logger) (*node, error) {
	host, _ := os.Hostname()
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		dir = dataDir
	}
	n := &node{leases: leases, log: log, self: portrait.Node{ID: strings.TrimSpace(host) + ":" + dir, Addr: addr}}
	others, err := leases.Nodes(ctx, nodeStale)
	if err != nil {
		return nil, fmt.Errorf("portrait: reading the servers of the database: %w", err)
	}
	for _, o := range others {
		if o.ID != n.self.ID {
			return nil, fmt.Errorf("portrait: another server (%s, at %s) is serving this database; running several servers on one database needs cluster mode, which is not available yet: stop the other one, or give this one its own database (if the other was killed, its claim lapses %s after its last heartbeat)", o.ID, o.Addr, nodeStale)
		}
	}
	if err := leases.Heartbeat(ctx, n.self); err != nil {
		return nil, fmt.Errorf("portrait: registering this server: %w", err)
	}
	return n, nil
}

// Run beats the heartbeat until ctx ends.
func (n *node) Run(ctx context.Context) {
	t := time.NewTicker(nodeBeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := n.leases.Heartbeat(ctx, n.self); err != nil && ctx.Err() == nil {
				n.log.Warn("server heartbeat failed", "err", err)
			}
		}
	}
}

// Close removes the registration, so that another server may start at once.
func (n *node) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.leases.RemoveNode(ctx, n.self.ID); err != nil {
		n.log.Warn("removing this server's registration", "err", err)
	}
}
