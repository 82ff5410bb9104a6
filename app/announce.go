package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/postgres"
)

// announcer tells the other nodes of a cluster that this node's answers for
// some chats changed, so that they drop the answers they learned from it.
// Changes are collected and sent together by one goroutine: the avatar
// service tells them from its lookups and must not wait for the database.
type announcer struct {
	db   *postgres.DB
	node string
	log  *slog.Logger

	mu      sync.Mutex
	pending []postgres.CacheChange
	wake    chan struct{}
}

func newAnnouncer(db *postgres.DB, node string, log *slog.Logger) *announcer {
	return &announcer{db: db, node: node, log: log, wake: make(chan struct{}, 1)}
}

// Changed queues the change of the answer for chat of id ("" for every
// chat; id 0 for every instance).
func (a *announcer) Changed(id portrait.InstanceID, chat string) {
	a.mu.Lock()
	a.pending = append(a.pending, postgres.CacheChange{Instance: id, Chat: chat})
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// announceBatch bounds the changes sent in one statement.
const announceBatch = 500

// Run sends the queued changes until ctx ends. A batch that fails is
// retried: a node that missed a change would answer from a stale copy
// until the cache's time to live ends.
func (a *announcer) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		}
		for {
			a.mu.Lock()
			n := min(len(a.pending), announceBatch)
			batch := a.pending[:n:n]
			a.pending = a.pending[n:]
			a.mu.Unlock()
			if n == 0 {
				break
			}
			for {
				err := a.db.AnnounceCache(ctx, a.node, batch)
				if err == nil || ctx.Err() != nil {
					break
				}
				a.log.Warn("announcing changed pictures to the other nodes; retrying", "changes", len(batch), "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
		}
	}
}
