package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/avatar"
	"github.com/portrait-dev/portrait/cluster"

	"github.com/portrait-dev/portrait/instance"
	"github.com/portrait-dev/portrait/notify"
	"github.com/portrait-dev/portrait/postgres"
)

// follow keeps a server up to date with what other processes sharing its
// store commit (the CLI, and later the other nodes of a cluster), until ctx
// ends. PostgreSQL announces every commit (LISTEN/NOTIFY): an instance's
// change is applied alone, committed notifications wake long polls at once,
// and new jobs wake the job runner. SQLite announces nothing: the registry
// polls the store's generation every second and re-reads the instances
// when it changed.
//
// In a cluster (nd not nil) it also drops the getAvatar answers this node
// learned from another when that node announces a change, and all of them
// after a reconnection, when announcements may have been missed.
func follow(ctx context.Context, db database, reg *instance.Registry, hub *notify.Hub, avatars *avatar.Service, nd *cluster.Node, log *slog.Logger) {
	pg, ok := db.(*postgres.DB)
	if !ok {
		reg.Watch(ctx, time.Second)
		return
	}
	err := pg.Listen(ctx, func(ev postgres.Event) {
		switch ev.Kind {
		case postgres.EventInstance:
			if err := reg.Refresh(ctx, ev.Instance); err != nil && ctx.Err() == nil {
				log.Warn("applying an instance's change", "idInstance", int64(ev.Instance), "err", err)
			}
		case postgres.EventQueue, postgres.EventJob:
			hub.Wake(ev.Instance)
		case postgres.EventCache:
			switch {
			case nd == nil || ev.Node == nd.ID():
			case ev.Instance == 0: // every instance (another node took many)
				forgetLearned(ctx, reg, avatars, nd)
			default:
				avatars.Forget(ev.Instance, ev.Chat)
			}
		case postgres.EventResync:
			// Events may have been missed while not listening.
			if nd != nil {
				forgetLearned(ctx, reg, avatars, nd)
			}
			if err := reg.Reload(ctx); err != nil && ctx.Err() == nil {
				log.Warn("re-reading the instances", "err", err)
			}
			hub.Wake(0)
		}
	})
	if err != nil && ctx.Err() == nil {
		log.Error("following the database's changes stopped", "err", err)
	}
}

// forgetLearned drops the getAvatar answers this node learned for the
// instances it does not own.
func forgetLearned(ctx context.Context, reg *instance.Registry, avatars *avatar.Service, nd *cluster.Node) {
	ids, _ := reg.IDs(ctx)
	others := map[portrait.InstanceID]bool{}
	for _, id := range ids {
		if !nd.Owns(id) {
			others[id] = true
		}
	}
	avatars.InvalidateInstances(others)
}
