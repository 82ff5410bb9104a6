package greenapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portrait-dev/portrait"
)

// Notifier is what the HTTP layer needs of the notification hub.
type Notifier interface {
	// LookupAsync commits a getAvatarAsync lookup; its avatarInfo
	// notification follows.
	LookupAsync(ctx context.Context, l portrait.Handle, chat portrait.ChatID) error
	// Receive returns the oldest notification, waiting up to timeout; nil
	// when none arrived.
	Receive(ctx context.Context, l portrait.Handle, timeout time.Duration) (*portrait.Notification, error)
	// Delete removes a notification; false when there was none.
	Delete(ctx context.Context, l portrait.Handle, receiptID int64) (bool, error)
	// PictureChanged reports a change made through the API, as an engine
	// reports one made elsewhere.
	PictureChanged(l portrait.Handle, c portrait.PictureChange)
}

// getAvatarAsync: validates like getAvatar, answers 200 with an empty body
// once the lookup is committed; the result arrives as an avatarInfo
// notification.
func (s *Server) getAvatarAsync(q *request) *apiError {
	chat, e := readChat(q)
	if e != nil {
		if e.status == http.StatusBadRequest {
			// The method's documented error id.
			e.message = strings.Replace(e.message, "Details: ", "Details: "+msgBadRequestData+": ", 1)
		}
		return e
	}
	if err := s.Notify.LookupAsync(q.ctx(), q.h, chat); err != nil {
		s.Log.Error("getAvatarAsync not accepted", "idInstance", int64(q.h.ID()), "err", err)
		return newError(http.StatusInternalServerError, "Internal Server Error: the lookup could not be stored; try again")
	}
	q.w.Header().Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusOK)
	return nil
}

// Long-polling bounds of receiveNotification, in seconds.
const (
	minReceiveTimeout     = 5
	maxReceiveTimeout     = 60
	defaultReceiveTimeout = 5
)

// pollingOnly answers 400 while a webhook is set: notifications then go
// there, and polling would compete with it.
func pollingOnly(l portrait.Handle) *apiError {
	if l.Settings().WebhookURL != "" {
		return newError(http.StatusBadRequest, "Notifications of this instance are sent to its webhookUrl, so they cannot be received by polling; clear webhookUrl with setSettings ({\"webhookUrl\": \"\"}) to use receiveNotification")
	}
	return nil
}

// receiveNotification: GET ?receiveTimeout=5..60 → {"receiptId", "body"} or
// null, returning as soon as a notification arrives.
func (s *Server) receiveNotification(q *request) *apiError {
	if e := pollingOnly(q.h); e != nil {
		return e
	}
	timeout := defaultReceiveTimeout
	if v := q.r.URL.Query().Get("receiveTimeout"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < minReceiveTimeout || n > maxReceiveTimeout {
			return validation("'receiveTimeout' must be a whole number of seconds from %d to %d", minReceiveTimeout, maxReceiveTimeout)
		}
		timeout = n
	}
	n, err := s.Notify.Receive(q.ctx(), q.h, time.Duration(timeout)*time.Second)
	if err != nil {
		if q.ctx().Err() != nil {
			return nil
		}
		return newError(http.StatusInternalServerError, "Internal Server Error: the queue could not be read")
	}
	if n == nil {
		writeRaw(q.w, http.StatusOK, []byte("null"))
		return nil
	}
	writeJSON(q.w, http.StatusOK, notificationReply{n.ReceiptID, n.Body})
	return nil
}

// deleteNotification: DELETE …/{receiptId} → {"result": true, "reason": ""}.
func (s *Server) deleteNotification(q *request) *apiError {
	id, err := strconv.ParseInt(q.call.extra, 10, 64)
	if err != nil || id < 0 {
		return validation("Parameter receiptId must be a Number")
	}
	ok, err := s.Notify.Delete(q.ctx(), q.h, id)
	if err != nil {
		return newError(http.StatusInternalServerError, "Internal Server Error: the notification could not be deleted")
	}
	reply := deleteNotificationReply{Result: ok}
	if !ok {
		reply.Reason = "notification not found: it was already deleted or never existed"
	}
	writeJSON(q.w, http.StatusOK, reply)
	return nil
}
