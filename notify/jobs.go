package notify

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/portrait-dev/portrait"
)

// The job kinds.
const (
	kindInfo    = "avatarInfo"    // a getAvatarAsync lookup
	kindChanged = "avatarChanged" // a picture change waiting out its burst
)

// lookupJob is the data of an avatarInfo job.
type lookupJob struct {
	Chat string `json:"chatId"`
}

// changeJob is the data of an avatarChanged job: the last change of the
// burst.
type changeJob struct {
	Chat      string               `json:"chatId"`
	Kind      portrait.SubjectKind `json:"kind"`
	Author    string               `json:"author,omitempty"`
	Removed   bool                 `json:"removed"`
	PictureID string               `json:"pictureId,omitempty"`
	At        int64                `json:"at"`
}

// AvatarInfo is the avatarInfo field of an avatarInfo notification.
type AvatarInfo struct {
	ChatID    string `json:"chatId"`
	URLAvatar string `json:"urlAvatar"`
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
}

// AvatarChanged is the avatarChanged field of an avatarChanged
// notification.
type AvatarChanged struct {
	ChatID    string               `json:"chatId"`
	Kind      portrait.SubjectKind `json:"kind"`
	Author    string               `json:"author,omitempty"`
	Removed   bool                 `json:"removed"`
	URLAvatar string               `json:"urlAvatar"`
	Available bool                 `json:"available"`
	Reason    string               `json:"reason,omitempty"`
	ChangedAt int64                `json:"changedAt"`
}

// jobPoll is how often due jobs are looked for when nothing wakes the
// runner; it bounds how late a debounced notification can be.
const jobPoll = 200 * time.Millisecond

// runJobs works off due jobs: one at a time per instance, in due order, so
// that an instance's notifications keep the order of what caused them;
// instances in parallel.
func (h *Hub) runJobs(ctx context.Context) {
	t := time.NewTicker(jobPoll)
	defer t.Stop()
	for {
		h.dispatchJobs(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.jobWake:
		}
	}
}

func (h *Hub) dispatchJobs(ctx context.Context) {
	take := h.queue.DueJobs
	if h.opts.Jobs != nil {
		take = h.opts.Jobs
	}
	jobs, err := take(ctx, h.opts.Now(), 256)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("reading due jobs", "err", err)
		}
		return
	}
	// Group by instance, keeping due order.
	per := map[portrait.InstanceID][]portrait.Job{}
	var order []portrait.InstanceID
	for _, j := range jobs {
		if _, ok := per[j.Instance]; !ok {
			order = append(order, j.Instance)
		}
		per[j.Instance] = append(per[j.Instance], j)
	}
	for _, id := range order {
		h.mu.Lock()
		if h.busy[id] || h.stopping {
			h.mu.Unlock()
			continue
		}
		h.busy[id] = true
		h.mu.Unlock()
		list := per[id]
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			defer func() {
				h.mu.Lock()
				delete(h.busy, id)
				h.mu.Unlock()
				h.wakeJobs()
			}()
			for _, j := range list {
				if ctx.Err() != nil {
					return
				}
				if err := h.runJob(ctx, j); err != nil {
					if ctx.Err() == nil {
						h.log.Warn("job failed; it will be retried", "idInstance", int64(id), "kind", j.Kind, "err", err)
					}
					return // keep the instance's order: later jobs wait for this one
				}
			}
		}()
	}
}

// runJob does one job and commits its notification with the job's removal.
func (h *Hub) runJob(ctx context.Context, j portrait.Job) error {
	ctx, ok := h.opts.Acting(ctx, j.Instance)
	if !ok {
		return nil // another node owns the instance now; it runs the job once this claim lapses
	}
	l, err := h.instances.Get(ctx, j.Instance)
	if errors.Is(err, portrait.ErrUnknownInstance) || (err == nil && l.Err() != nil) {
		_, err := h.queue.FinishJob(ctx, j, nil) // the instance is gone or cannot be served
		return err
	}
	if err != nil {
		return err
	}
	var typ string
	var body []byte
	switch j.Kind {
	case kindInfo:
		typ = kindInfo
		var d lookupJob
		if json.Unmarshal(j.Data, &d) != nil {
			_, err := h.queue.FinishJob(ctx, j, nil)
			return err
		}
		body, err = h.envelope(l, kindInfo, "avatarInfo", h.lookup(ctx, l, d.Chat))
	case kindChanged:
		typ = kindChanged
		var d changeJob
		if json.Unmarshal(j.Data, &d) != nil {
			_, err := h.queue.FinishJob(ctx, j, nil)
			return err
		}
		if !l.Settings().AvatarChangedWebhook {
			_, err := h.queue.FinishJob(ctx, j, nil)
			return err
		}
		ch := AvatarChanged{ChatID: d.Chat, Kind: d.Kind, Author: d.Author, Removed: d.Removed, Available: true, ChangedAt: d.At}
		if !d.Removed {
			info := h.lookup(ctx, l, d.Chat)
			ch.URLAvatar, ch.Available, ch.Reason = info.URLAvatar, info.Available, info.Reason
		}
		body, err = h.envelope(l, kindChanged, "avatarChanged", ch)
	default:
		_, err := h.queue.FinishJob(ctx, j, nil)
		return err
	}
	if err != nil {
		return err
	}
	if _, err := h.queue.FinishJob(ctx, j, &portrait.Notification{Instance: j.Instance, Body: body, CreatedAt: h.opts.Now()}); err != nil {
		return err
	}
	if h.metrics.Enqueued != nil {
		h.metrics.Enqueued(typ)
	}
	h.signal(j.Instance)
	return nil
}

// expected reports whether err is an outcome of a lookup that its reason
// says all about, and so needs no log line.
func expected(err error) bool {
	for _, e := range []error{portrait.ErrUpstreamTimeout, portrait.ErrUpstreamRateLimit, portrait.ErrStarting,
		portrait.ErrNotAuthorized, context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// lookup runs one avatar lookup for a notification; failures become a
// reason instead of an error.
func (h *Hub) lookup(ctx context.Context, l portrait.Handle, chat string) AvatarInfo {
	info := AvatarInfo{ChatID: chat}
	c, err := portrait.ParseChatID(l.Type(), chat)
	if err == nil {
		err = l.Ready()
	}
	if err != nil {
		info.Reason = h.opts.Reason(err)
		return info
	}
	av, err := h.avatars.Get(ctx, l, c)
	if err != nil {
		info.Reason = h.opts.Reason(err)
		if !expected(err) {
			h.log.Warn("picture lookup for a notification failed", "idInstance", int64(l.ID()), "chatId", chat, "err", err)
		}
		return info
	}
	info.URLAvatar, info.Available = av.URL, av.Available
	return info
}
