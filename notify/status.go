package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
)

// Attempt is one webhook delivery attempt, as the console shows an
// instance's last one. The Hub remembers each instance's last attempt in
// memory only: a restart forgets it.
type Attempt struct {
	// At is when the attempt started.
	At time.Time
	// ReceiptID is the notification tried.
	ReceiptID int64
	// Number counts the attempts at that notification, from 1.
	Number int
	// Outcome is "delivered" (the receiver answered 200), "failed" or
	// "dropped" (older than the retention window, not tried).
	Outcome string
	// Err says why it failed; "" when delivered.
	Err string
	// Took is how long the request took.
	Took time.Duration
	// RetryAt is when the notification is tried again after a failure.
	RetryAt time.Time
}

// Status is an instance's notification queue as the console shows it.
type Status struct {
	// Depth is the number of notifications waiting.
	Depth int64
	// Head is the oldest one; nil when the queue is empty.
	Head *portrait.Notification
	// LastAttempt is the last webhook delivery attempt since the server
	// started; nil when there was none.
	LastAttempt *Attempt
}

// attemptLog holds the last delivery attempt of each instance.
type attemptLog struct {
	mu   sync.Mutex
	last map[portrait.InstanceID]Attempt
}

func (l *attemptLog) record(id portrait.InstanceID, a Attempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[portrait.InstanceID]Attempt{}
	}
	l.last[id] = a
}

func (l *attemptLog) get(id portrait.InstanceID) (Attempt, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.last[id]
	return a, ok
}

// Status reports the notification queue of instance id: its depth, its
// head and the last webhook delivery attempt. It only reads.
func (h *Hub) Status(ctx context.Context, id portrait.InstanceID) (Status, error) {
	var st Status
	depth, err := h.queue.Depth(ctx, id)
	if err != nil {
		return st, fmt.Errorf("notify: reading the queue depth: %w", err)
	}
	st.Depth = depth
	head, err := h.queue.Head(ctx, id)
	switch {
	case err == nil:
		st.Head = &head
	case !errors.Is(err, portrait.ErrNotFound):
		return st, fmt.Errorf("notify: reading the queue's head: %w", err)
	}
	if a, ok := h.attempts.get(id); ok {
		st.LastAttempt = &a
	}
	return st, nil
}

// TestNotification is the body of a test notification for l: the envelope
// every notification has (typeWebhook, instanceData, timestamp) with
// typeWebhook "testNotification" and {"message": message} as its own field.
// It is not queued; the console posts it to try a webhook.
func (h *Hub) TestNotification(l portrait.Handle, message string) ([]byte, error) {
	return h.envelope(l, "testNotification", "testNotification", struct {
		Message string `json:"message"`
	}{message})
}
