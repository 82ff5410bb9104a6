package notify

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/outbound"
)

// webhookClient posts notifications through an outbound.Guard: every
// connection, redirects included, is checked against the address it really
// goes to.
type webhookClient struct {
	http *http.Client
}

func newWebhookClient(timeout time.Duration, allow []netip.Prefix) *webhookClient {
	return &webhookClient{http: outbound.NewGuard(allow, "PORTRAIT_WEBHOOK_ALLOW").Client(timeout, 5)}
}

// post delivers one notification. Only HTTP 200 counts as delivered.
func (c *webhookClient) post(ctx context.Context, url, token string, body []byte) error {
	req, err := NewWebhookRequest(ctx, url, token, body)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return outbound.RedactError(err) // the URL's query may hold a secret
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook: receiver answered %s", resp.Status)
	}
	return nil
}

// sender delivers one instance's queue to its webhook, head first.
type sender struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// senderCheck is how often the set of instances with a webhook is checked.
const senderCheck = 500 * time.Millisecond

// runSenders keeps one sender per instance that has a webhookUrl.
func (h *Hub) runSenders(ctx context.Context) {
	t := time.NewTicker(senderCheck)
	defer t.Stop()
	for {
		h.reconcileSenders(ctx)
		select {
		case <-ctx.Done():
			h.mu.Lock()
			senders := h.senders
			h.senders = map[portrait.InstanceID]*sender{}
			h.mu.Unlock()
			for _, s := range senders {
				s.cancel()
				<-s.done
			}
			return
		case <-t.C:
		}
	}
}

func (h *Hub) reconcileSenders(ctx context.Context) {
	all, err := h.instances.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("listing instances for the webhook senders", "err", err)
		}
		return
	}
	want := map[portrait.InstanceID]bool{}
	for _, l := range all {
		if _, acting := h.opts.Acting(ctx, l.ID()); acting && l.Settings().WebhookURL != "" {
			want[l.ID()] = true
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, s := range h.senders {
		if !want[id] {
			s.cancel()
			delete(h.senders, id)
		}
	}
	for id := range want {
		if s, ok := h.senders[id]; ok {
			select {
			case <-s.done: // it stopped by itself (the node lost the instance a moment): start another
			default:
				continue
			}
		}
		sctx, cancel := context.WithCancel(ctx)
		s := &sender{cancel: cancel, done: make(chan struct{})}
		h.senders[id] = s
		go func() {
			defer close(s.done)
			h.send(sctx, id)
		}()
	}
}

// batchSize is how many notifications a sender reads at once; their
// deletions after delivery are committed together.
const batchSize = 64

// send is one instance's delivery loop. It reads the oldest notifications
// a batch at a time and posts them in order; the head is retried until it
// is delivered or too old, and later notifications wait for it. Delivered
// notifications are deleted once per batch: a crash in between means they
// are delivered again, never that one is lost.
func (h *Hub) send(ctx context.Context, id portrait.InstanceID) {
	var after int64       // every receipt up to this one is delivered or dropped
	var delivered []int64 // to delete
	flush := func() {
		if len(delivered) == 0 {
			return
		}
		// Not fenced: removing what this sender delivered is right even
		// from a node that has just lost the instance (the next owner may
		// deliver them again; none is lost).
		if _, err := h.queue.DeleteMany(context.WithoutCancel(ctx), id, delivered); err != nil {
			// Kept, to be deleted with the next batch; a restart before
			// then delivers them again.
			h.log.Warn("deleting delivered notifications failed; retrying with the next batch", "idInstance", int64(id), "err", err)
			return
		}
		delivered = delivered[:0]
	}
	defer flush()
	attempt := 0
	for ctx.Err() == nil {
		woken := h.wait(id)
		if l, err := h.instances.Get(ctx, id); err != nil || l.Settings().WebhookURL == "" {
			return
		}
		if _, acting := h.opts.Acting(ctx, id); !acting {
			return // another node sends them now
		}
		batch, err := h.queue.Peek(ctx, id, after, batchSize)
		if err != nil {
			h.sleep(ctx, time.Second)
			continue
		}
		if len(batch) == 0 {
			flush()
			select {
			case <-woken:
			case <-time.After(senderCheck):
			case <-ctx.Done():
			}
			continue
		}
		for _, n := range batch {
			if age := h.opts.Now().Sub(n.CreatedAt); age > h.opts.Retention {
				h.log.Warn("notification dropped: not delivered within the retention window",
					"idInstance", int64(id), "receiptId", n.ReceiptID, "age", age.Round(time.Second))
				h.delivered("dropped", 0, age)
				h.attempts.record(id, Attempt{At: h.opts.Now(), ReceiptID: n.ReceiptID, Number: attempt + 1, Outcome: "dropped",
					Err: "not delivered within the retention window"})
				delivered, after, attempt = append(delivered, n.ReceiptID), n.ReceiptID, 0
				continue
			}
			l, gerr := h.instances.Get(ctx, id)
			if gerr != nil {
				return
			}
			st := l.Settings()
			if st.WebhookURL == "" {
				return
			}
			start, at := time.Now(), h.opts.Now()
			err := h.deliver(ctx, st.WebhookURL, st.WebhookURLToken, n.Body)
			took := time.Since(start)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				h.delivered("delivered", took, h.opts.Now().Sub(n.CreatedAt))
				h.attempts.record(id, Attempt{At: at, ReceiptID: n.ReceiptID, Number: attempt + 1, Outcome: "delivered", Took: took})
				delivered, after, attempt = append(delivered, n.ReceiptID), n.ReceiptID, 0
				continue
			}
			h.delivered("failed", took, 0)
			flush()
			wait := h.backoff(attempt)
			h.attempts.record(id, Attempt{At: at, ReceiptID: n.ReceiptID, Number: attempt + 1, Outcome: "failed", Err: err.Error(),
				Took: took, RetryAt: h.opts.Now().Add(wait)})
			attempt++
			level := slog.LevelInfo
			if attempt == 1 {
				level = slog.LevelWarn // the first failure of a notification; the retries are quieter
			}
			h.log.Log(ctx, level, "webhook delivery failed; retrying", "idInstance", int64(id), "receiptId", n.ReceiptID,
				"attempt", attempt, "retryIn", wait, "err", err)
			h.sleep(ctx, wait)
			break // read again from the head
		}
		flush()
	}
}

// deliver posts under the concurrency bound.
func (h *Hub) deliver(ctx context.Context, url, token string, body []byte) error {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-h.sem }()
	return h.client.post(ctx, url, token, body)
}

func (h *Hub) backoff(attempt int) time.Duration {
	d := h.opts.BackoffMin
	for i := 0; i < attempt && d < h.opts.BackoffMax; i++ {
		d *= 2
	}
	if d > h.opts.BackoffMax {
		d = h.opts.BackoffMax
	}
	return d
}

func (h *Hub) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (h *Hub) delivered(outcome string, attempt, sinceCommit time.Duration) {
	if h.metrics.Delivered != nil {
		h.metrics.Delivered(outcome, attempt.Seconds(), sinceCommit.Seconds())
	}
}

// NewWebhookRequest is the POST of a notification body to a webhook, with
// the headers every notification is sent with: JSON, portrait's user agent
// and, when token is not empty, "Authorization: Bearer <token>"
// (webhookUrlToken).
func NewWebhookRequest(ctx context.Context, url, token string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "portrait-webhook")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}
