// Package notify turns what happens to instances into GREEN-API
// notifications and gets them to their receivers: it builds the envelopes
// (avatarInfo, avatarChanged, stateInstanceChanged), commits them to the
// durable per-instance queue before anything that caused them is
// acknowledged, runs the pending jobs (getAvatarAsync lookups and debounced
// picture changes), delivers the queue to webhooks in order with retries,
// and serves receiveNotification's long polling.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/avatar"
	"github.com/portrait-dev/portrait/internal/tick"
)

// Options configure the Hub.
type Options struct {
	// Debounce is how long a chat's picture must stay unchanged before its
	// avatarChanged notification is made: a burst of changes inside the
	// window becomes one notification.
	Debounce time.Duration
	// DebounceMax bounds how long a continuing burst can postpone it.
	DebounceMax time.Duration
	// Retention is how long a notification is kept: a webhook retries it
	// that long, a polled queue keeps it that long for its reader. Older
	// ones are dropped.
	Retention time.Duration
	// MaxQueue caps each instance's queue: past it the oldest
	// notifications are dropped. 0 means no cap.
	MaxQueue int
	// TrimEvery is how often the queues are trimmed to Retention and
	// MaxQueue; 0 means every minute.
	TrimEvery time.Duration
	// BackoffMin and BackoffMax bound the wait between delivery attempts;
	// the wait doubles from BackoffMin up to BackoffMax.
	BackoffMin, BackoffMax time.Duration
	// Timeout bounds one webhook request.
	Timeout time.Duration
	// Concurrency bounds the webhook requests in flight across instances.
	Concurrency int
	// AllowPrivate lists the address ranges webhooks may reach although
	// they are loopback, private or link-local.
	AllowPrivate []netip.Prefix
	// Reason words an error of a lookup (or of the instance's readiness)
	// as the reason field of avatarInfo and avatarChanged; nil means the
	// error's own text. The HTTP layer provides GREEN-API's wording.
	Reason func(error) string
	// Acting, when set (cluster mode), says whether this node acts for an
	// instance, and gives the context to act with (carrying its lease, so
	// that the store refuses the writes of a node that lost it). Only
	// instances it acts for get their events committed, their webhooks
	// sent and their jobs run. nil: this server acts for every instance.
	Acting func(ctx context.Context, id portrait.InstanceID) (context.Context, bool)
	// Jobs, when set, takes the due jobs to run (cluster mode: claims the
	// jobs of the instances this node owns); nil means Queue.DueJobs.
	Jobs func(ctx context.Context, now time.Time, limit int) ([]portrait.Job, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Metrics receives the Hub's measurements; any field may be nil.
type Metrics struct {
	Enqueued  func(typeWebhook string)
	Delivered func(outcome string, attemptSeconds, sinceCommitSeconds float64)
	// Dropped counts notifications trimmed from the queues, by reason
	// ("retention" or "cap").
	Dropped func(reason string, n int64)
}

// Hub is the notification centre of a server.
type Hub struct {
	queue     portrait.Queue
	avatars   *avatar.Service
	instances portrait.Instances
	opts      Options
	log       *slog.Logger
	metrics   Metrics
	client    *webhookClient
	attempts  attemptLog // each instance's last delivery attempt, for Status

	mu       sync.Mutex
	signals  map[portrait.InstanceID]chan struct{}
	jobWake  chan struct{}
	busy     map[portrait.InstanceID]bool
	senders  map[portrait.InstanceID]*sender
	sem      chan struct{}
	wg       sync.WaitGroup
	stopping bool
}

// New returns a Hub over queue for instances. The Hub is the instances'
// portrait.Events: pass it to their Start.
func New(queue portrait.Queue, avatars *avatar.Service, instances portrait.Instances, opts Options, log *slog.Logger, m Metrics) *Hub {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Acting == nil {
		opts.Acting = func(ctx context.Context, _ portrait.InstanceID) (context.Context, bool) { return ctx, true }
	}
	if opts.Reason == nil {
		opts.Reason = func(err error) string { return err.Error() }
	}
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	if opts.TrimEvery <= 0 {
		opts.TrimEvery = time.Minute
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = time.Second
	}
	if opts.BackoffMax < opts.BackoffMin {
		opts.BackoffMax = opts.BackoffMin
	}
	return &Hub{
		queue: queue, avatars: avatars, instances: instances, opts: opts, log: log, metrics: m,
		client:  newWebhookClient(opts.Timeout, opts.AllowPrivate),
		signals: map[portrait.InstanceID]chan struct{}{},
		jobWake: make(chan struct{}, 1),
		busy:    map[portrait.InstanceID]bool{},
		senders: map[portrait.InstanceID]*sender{},
		sem:     make(chan struct{}, opts.Concurrency),
	}
}

// Run runs the job runner and the webhook senders until ctx ends, then
// waits for them.
func (h *Hub) Run(ctx context.Context) {
	h.wg.Add(3)
	go func() { defer h.wg.Done(); h.runJobs(ctx) }()
	go func() { defer h.wg.Done(); h.runSenders(ctx) }()
	go func() { defer h.wg.Done(); h.runTrim(ctx) }()
	<-ctx.Done()
	h.mu.Lock()
	h.stopping = true
	h.mu.Unlock()
	h.wg.Wait()
}

// runTrim drops, every TrimEvery, the notifications older than the
// retention window and those past each queue's cap: also from the queues
// of instances without a webhook that nobody polls.
func (h *Hub) runTrim(ctx context.Context) {
	if h.opts.Retention <= 0 && h.opts.MaxQueue <= 0 {
		return
	}
	tick.Every(ctx, h.opts.TrimEvery, h.trim)
}

// trim drops once what runTrim drops.
func (h *Hub) trim(ctx context.Context) {
	olderThan := time.Time{}
	if h.opts.Retention > 0 {
		olderThan = h.opts.Now().Add(-h.opts.Retention)
	}
	byAge, byCap, err := h.queue.Trim(ctx, olderThan, h.opts.MaxQueue)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("trimming the notification queues", "err", err)
		}
		return
	}
	if byAge+byCap > 0 {
		h.log.Warn("notifications dropped: not taken within the retention window, or past a queue's cap",
			"forAge", byAge, "forCap", byCap, "retention", h.opts.Retention, "maxQueue", h.opts.MaxQueue)
	}
	if h.metrics.Dropped != nil {
		if byAge > 0 {
			h.metrics.Dropped("retention", byAge)
		}
		if byCap > 0 {
			h.metrics.Dropped("cap", byCap)
		}
	}
}

// Wake is told that notifications or jobs of id were committed by another
// process sharing the store: long polls of id return them at once, and the
// job runner looks for due jobs. id zero wakes every poll.
func (h *Hub) Wake(id portrait.InstanceID) {
	if id == 0 {
		h.mu.Lock()
		ids := make([]portrait.InstanceID, 0, len(h.signals))
		for i := range h.signals {
			ids = append(ids, i)
		}
		h.mu.Unlock()
		for _, i := range ids {
			h.signal(i)
		}
	} else {
		h.signal(id)
	}
	h.wakeJobs()
}

// signal wakes everyone waiting for a notification of id.
func (h *Hub) signal(id portrait.InstanceID) {
	h.mu.Lock()
	if ch, ok := h.signals[id]; ok {
		close(ch)
		delete(h.signals, id)
	}
	h.mu.Unlock()
}

// wait returns a channel closed at the next notification of id.
func (h *Hub) wait(id portrait.InstanceID) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.signals[id]
	if !ok {
		ch = make(chan struct{})
		h.signals[id] = ch
	}
	return ch
}

func (h *Hub) wakeJobs() {
	select {
	case h.jobWake <- struct{}{}:
	default:
	}
}

// instanceData is the envelope's instanceData.
type instanceData struct {
	IDInstance   int64                 `json:"idInstance"`
	Wid          string                `json:"wid"`
	TypeInstance portrait.InstanceType `json:"typeInstance"`
}

// envelope builds a notification body: typeWebhook, instanceData,
// timestamp, then the type's own field.
func (h *Hub) envelope(l portrait.Handle, typ string, field string, value any) ([]byte, error) {
	head, err := json.Marshal(struct {
		TypeWebhook  string       `json:"typeWebhook"`
		InstanceData instanceData `json:"instanceData"`
		Timestamp    int64        `json:"timestamp"`
	}{typ, instanceData{int64(l.ID()), l.Account().Wid, l.Type()}, h.opts.Now().Unix()})
	if err != nil {
		return nil, err
	}
	v, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	out := append(head[:len(head)-1], `,"`...)
	out = append(out, field...)
	out = append(out, `":`...)
	out = append(out, v...)
	return append(out, '}'), nil
}

// StateChanged commits a stateInstanceChanged notification when the
// instance's stateWebhook setting is on.
func (h *Hub) StateChanged(l portrait.Handle, state portrait.State) {
	id := l.ID()
	if !l.Settings().StateWebhook {
		return
	}
	ctx, ok := h.opts.Acting(context.Background(), id)
	if !ok {
		return // a session this node no longer owns, closing
	}
	body, err := h.envelope(l, "stateInstanceChanged", "stateInstance", state)
	if err == nil {
		_, err = h.enqueue(ctx, id, "stateInstanceChanged", body)
	}
	if err != nil {
		h.log.Error("stateInstanceChanged notification lost", "idInstance", int64(id), "err", err)
	}
}

// PictureChanged drops the cached picture at once and, when the
// instance's avatarChangedWebhook setting is on, commits a job that makes
// the avatarChanged notification once the chat's burst of changes is over.
func (h *Hub) PictureChanged(l portrait.Handle, c portrait.PictureChange) {
	id := l.ID()
	h.avatars.Invalidate(id, c.Chat.String())
	if !l.Settings().AvatarChangedWebhook {
		return
	}
	ctx, ok := h.opts.Acting(context.Background(), id)
	if !ok {
		return // a session this node no longer owns, closing
	}
	at := c.At
	if at.IsZero() {
		at = h.opts.Now()
	}
	data, _ := json.Marshal(changeJob{Chat: c.Chat.String(), Kind: c.Kind, Author: c.Author, Removed: c.Removed, PictureID: c.PictureID, At: at.Unix()})
	now := h.opts.Now()
	_, err := h.queue.AddJob(ctx, portrait.Job{
		Instance: id, Kind: kindChanged, Key: c.Chat.String(), Data: data,
		DueAt: now.Add(h.opts.Debounce), Deadline: now.Add(h.opts.DebounceMax), CreatedAt: now,
	})
	if err != nil {
		h.log.Error("avatarChanged notification lost", "idInstance", int64(id), "chatId", c.Chat.String(), "err", err)
		return
	}
	h.wakeJobs()
}

// LookupAsync accepts a getAvatarAsync request: the lookup is committed as
// a job before it returns, and its avatarInfo notification follows. When the
// instance's avatarInfoWebhook setting is off nothing is looked up.
func (h *Hub) LookupAsync(ctx context.Context, l portrait.Handle, chat portrait.ChatID) error {
	if !l.Settings().AvatarInfoWebhook {
		return nil
	}
	data, _ := json.Marshal(lookupJob{Chat: chat.String()})
	now := h.opts.Now()
	if _, err := h.queue.AddJob(ctx, portrait.Job{Instance: l.ID(), Kind: kindInfo, Data: data, DueAt: now, Deadline: now, CreatedAt: now}); err != nil {
		return fmt.Errorf("notify: accepting getAvatarAsync: %w", err)
	}
	h.wakeJobs()
	return nil
}

// enqueue commits one notification and wakes its readers.
func (h *Hub) enqueue(ctx context.Context, id portrait.InstanceID, typ string, body []byte) (int64, error) {
	ids, err := h.queue.Enqueue(ctx, []portrait.Notification{{Instance: id, Body: body, CreatedAt: h.opts.Now()}})
	if err != nil {
		return 0, err
	}
	if h.metrics.Enqueued != nil {
		h.metrics.Enqueued(typ)
	}
	h.signal(id)
	return ids[0], nil
}

// Receive returns the oldest notification of l, waiting up to timeout for
// one to arrive; nil when none did.
func (h *Hub) Receive(ctx context.Context, l portrait.Handle, timeout time.Duration) (*portrait.Notification, error) {
	id := l.ID()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		woken := h.wait(id) // before Head, so that nothing is missed in between
		n, err := h.queue.Head(ctx, id)
		if err == nil {
			return &n, nil
		}
		if !errors.Is(err, portrait.ErrNotFound) {
			return nil, err
		}
		select {
		case <-woken:
		case <-deadline.C:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Delete removes a notification of l; false when there was none.
func (h *Hub) Delete(ctx context.Context, l portrait.Handle, receiptID int64) (bool, error) {
	return h.queue.Delete(ctx, l.ID(), receiptID)
}
