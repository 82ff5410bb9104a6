package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-dev/portrait"
)

// The store tells every process sharing the database what it commits,
// through PostgreSQL's NOTIFY, sent by the transaction that makes the
// change and so delivered only if, and once, it commits. The payload is
// the instance id.
const (
	// ChannelQueue is notified when notifications of an instance are
	// committed (Enqueue, FinishJob): long polling on any node wakes.
	ChannelQueue = "portrait_queue"
	// ChannelJobs is notified when a job of an instance is added or
	// merged into (AddJob): its owner runs it without waiting for a poll.
	ChannelJobs = "portrait_jobs"
	// ChannelInstances is notified when an instance is created, changed
	// or deleted: every node picks the change up without re-reading every
	// instance.
	ChannelInstances = "portrait_instances"
	// ChannelCache is notified when a node's answer for a chat of an
	// instance changed (AnnounceCache): the other nodes drop the answers
	// they learned from it. Its payload is "<instance> <chat> <node>",
	// the chat empty for every chat of the instance (chat ids hold no
	// space; node ids may).
	ChannelCache = "portrait_cache"
)

// EventKind says what an Event reports.
type EventKind int

// The kinds of events.
const (
	// EventResync: Listen has (re)connected and listens from now on.
	// Events committed while it was not connected are lost, so the
	// receiver re-reads whatever it follows.
	EventResync EventKind = iota
	// EventQueue: notifications of Instance were committed.
	EventQueue
	// EventJob: a job of Instance was added or merged into.
	EventJob
	// EventInstance: Instance was created, changed or deleted.
	EventInstance
	// EventCache: node Node announced that its answer for Chat of
	// Instance changed ("" for every chat).
	EventCache
)

// Event is a change committed by a process sharing the database, this one
// included.
type Event struct {
	Kind     EventKind
	Instance portrait.InstanceID // zero for EventResync
	// Node and Chat are those of an EventCache.
	Node, Chat string
}

// channelKinds maps the channels to the kinds of their events.
var channelKinds = map[string]EventKind{
	ChannelQueue:     EventQueue,
	ChannelJobs:      EventJob,
	ChannelInstances: EventInstance,
	ChannelCache:     EventCache,
}

// listenRetry bounds the pause between two attempts to connect.
const (
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

// Listen calls fn with every event committed in the database, by any
// process, until ctx ends; then it returns ctx's error. It listens on a
// connection of its own, outside the pool, and connects again (with a
// growing pause, up to 5 s) when the connection fails; each time it is
// listening it first calls fn with an EventResync. Events of one
// transaction come in no particular order, those of different
// transactions in the order they committed; PostgreSQL folds identical
// events of one transaction into one. fn runs on Listen's goroutine: while
// it runs, events wait (PostgreSQL queues them), so it must not block for
// long.
func (db *DB) Listen(ctx context.Context, fn func(Event)) error {
	pause := listenRetryMin
	for {
		err := db.listenOnce(ctx, fn)
		if ctx.Err() != nil {
			return fmt.Errorf("postgres: listen: %w", ctx.Err())
		}
		if err == nil {
			pause = listenRetryMin
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres: listen: %w", ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, listenRetryMax)
	}
}

// listenOnce connects, listens and calls fn until the connection fails
// or ctx ends.
func (db *DB) listenOnce(ctx context.Context, fn func(Event)) error {
	cfg := db.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "portrait listen"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for ch := range channelKinds {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listen to %s: %w", ch, err)
		}
	}
	fn(Event{Kind: EventResync})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		kind, ok := channelKinds[n.Channel]
		if !ok {
			continue
		}
		ev := Event{Kind: kind}
		idText := n.Payload
		if kind == EventCache {
			var rest string
			idText, rest, _ = strings.Cut(n.Payload, " ")
			ev.Chat, ev.Node, _ = strings.Cut(rest, " ")
		}
		id, err := strconv.ParseInt(idText, 10, 64)
		if err != nil {
			continue // not ours: another program notifying on the channel
		}
		ev.Instance = portrait.InstanceID(id)
		fn(ev)
	}
}

// The statements that notify, each run in the transaction of the change.
const (
	// notifyQueue notifies ChannelQueue of each instance of $1 (bigint[]).
	notifyQueue = `SELECT pg_notify('` + ChannelQueue + `', id::text) FROM unnest($1::bigint[]) AS id`
	// notifyJob notifies ChannelJobs of instance $1.
	notifyJob = `SELECT pg_notify('` + ChannelJobs + `', $1::bigint::text)`
	// notifyInstance notifies ChannelInstances of instance $1.
	notifyInstance = `SELECT pg_notify('` + ChannelInstances + `', $1::bigint::text)`
)

// CacheChange names a chat of an instance whose answer changed; Chat ""
// means every chat of the instance.
type CacheChange struct {
	Instance portrait.InstanceID
	Chat     string
}

// AnnounceCache tells every process listening (Listen's EventCache) that
// node's answers for these chats changed, in one statement.
func (db *DB) AnnounceCache(ctx context.Context, node string, changes []CacheChange) error {
	if len(changes) == 0 {
		return nil
	}
	payloads := make([]string, len(changes))
	for i, c := range changes {
		payloads[i] = strconv.FormatInt(int64(c.Instance), 10) + " " + c.Chat + " " + node
	}
	if _, err := db.pool.Exec(ctx, `SELECT pg_notify('`+ChannelCache+`', p) FROM unnest($1::text[]) AS p`, payloads); err != nil {
		return fmt.Errorf("postgres: announce %d cache changes: %w", len(changes), err)
	}
	return nil
}
