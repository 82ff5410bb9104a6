package greenapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/adminauth"
	"github.com/portrait-dev/portrait/notify"
	"github.com/portrait-dev/portrait/outbound"
)

// Admin is what the admin API needs besides Deps. The console uses every
// admin route; those of this file exist for it: the engines, an instance's
// settings, a test notification, the notification queue, linking by
// pairing code, group pictures and any chat's avatar.
type Admin struct {
	// Auth decides who may use the admin API: the admin token, or a live
	// console session. Nil switches the admin API off.
	Auth *adminauth.Auth
	// Engines are the engines of this server, in the order to offer them.
	Engines []EngineInfo
	// Notifications reports an instance's notification queue and makes
	// test notifications; nil answers 404 for both.
	Notifications Notifications
	// WebhookTimeout bounds a test notification (at most
	// adminMaxTestTimeout); 0 means adminMaxTestTimeout.
	WebhookTimeout time.Duration
}

// EngineInfo describes an engine instances can be created on.
type EngineInfo struct {
	Name string `json:"name"`
	// Types are the instance types it serves.
	Types []portrait.InstanceType `json:"types"`
	// Default: instances are created on it when no engine is named.
	Default bool `json:"default,omitempty"`
	// Credential: its instances need a secret from the operator (maxbot:
	// the bot token), set with POST /admin/instances/{id}/credential.
	Credential bool `json:"credential,omitempty"`
}

// Notifications is what the admin API needs of the notifications: an
// instance's queue, and the body of a test notification shaped as every
// notification is. The notify.Hub is one.
type Notifications interface {
	Status(ctx context.Context, id portrait.InstanceID) (notify.Status, error)
	TestNotification(l portrait.Handle, message string) ([]byte, error)
}

// engine returns the EngineInfo of name; zero when there is none.
func (a *Admin) engine(name string) EngineInfo {
	for _, e := range a.Engines {
		if e.Name == name {
			return e
		}
	}
	return EngineInfo{}
}

// adminEngines lists the engines: GET /admin/engines.
func (s *Server) adminEngines(w http.ResponseWriter, r *http.Request) {
	out := s.Admin.Engines
	if out == nil {
		out = []EngineInfo{}
	}
	writeJSON(w, http.StatusOK, out)
}

// adminMethod serves a GREEN-API method of the table for the instance the
// path names, with the method's own checks (the instance type it serves,
// the engine's availability, readiness) but without the instance's token
// and rate limit: the admin is authenticated already. The console's
// settings, pairing code, group picture and log-out go through here, so
// that they validate and answer exactly as the GREEN-API methods do.
func (s *Server) adminMethod(name string) http.HandlerFunc {
	m := s.methods[strings.ToLower(name)]
	if m == nil {
		panic("greenapi: adminMethod: no method " + name)
	}
	return s.adminCall(m)
}

// adminCall serves m (of the table, or one of the admin API's own) for the
// instance the path names.
func (s *Server) adminCall(m *Method) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h, ok := s.adminInstanceOf(w, r)
		if !ok {
			return
		}
		var e *apiError
		switch {
		case !m.serves(h.Type()):
			e = newError(http.StatusNotFound, "Not Found: '%s' is not available for %s instances", m.Name, h.Type())
		case h.Err() != nil:
			e = engineError(h.Err(), "serve the instance")
		case m.Ready && h.Ready() != nil:
			e = engineError(h.Ready(), "serve the instance")
		}
		if e == nil {
			e = m.handle(s, &request{w: w, r: r, h: h, path: RedactPath(r.URL.Path)})
		}
		if e != nil {
			s.fail(w, r, e)
		}
	}
}

// adminLookupReply is the console's avatar lookup: the outcome in words and
// both stored pictures.
type adminLookupReply struct {
	ChatID string `json:"chatId"`
	// Outcome is "picture", "hidden" (privacy hides it) or "none" (no
	// picture, no account or no such group).
	Outcome    string `json:"outcome"`
	URLAvatar  string `json:"urlAvatar"`
	PreviewURL string `json:"previewUrl"`
	Available  bool   `json:"available"`
}

// adminLookupMethod is the admin API's getAvatar: the same body and checks,
// a reply with the outcome and the 96×96 preview.
var adminLookupMethod = &Method{Name: "getAvatar", Ready: true, handle: (*Server).adminLookup}

// adminLookup looks up any chat's avatar through the avatar service, as
// getAvatar does: POST {"chatId": "…"}.
func (s *Server) adminLookup(q *request) *apiError {
	chat, e := readChat(q)
	if e != nil {
		return e
	}
	av, err := s.Avatars.Get(q.ctx(), q.h, chat)
	if err != nil {
		return engineError(err, "look up the picture of "+chat.String())
	}
	reply := adminLookupReply{ChatID: chat.String(), URLAvatar: av.URL, Available: av.Available, Outcome: "none"}
	switch {
	case !av.Available:
		reply.Outcome = "hidden"
	case av.URL != "":
		reply.Outcome = "picture"
		if av.Key != "" {
			reply.PreviewURL = s.Avatars.PreviewURL(av.Key)
		}
	}
	writeJSON(q.w, http.StatusOK, reply)
	return nil
}

// adminNotificationsReply is an instance's notification queue for the console.
type adminNotificationsReply struct {
	// Delivery is "webhook" while webhookUrl is set, else "polling".
	Delivery    string             `json:"delivery"`
	Depth       int64              `json:"depth"`
	Head        *adminHeadReply    `json:"head"`
	LastAttempt *adminAttemptReply `json:"lastAttempt"`
}

type adminHeadReply struct {
	ReceiptID int64           `json:"receiptId"`
	CreatedAt time.Time       `json:"createdAt"`
	Body      json.RawMessage `json:"body"`
}

type adminAttemptReply struct {
	At        time.Time  `json:"at"`
	ReceiptID int64      `json:"receiptId"`
	Number    int        `json:"attempt"`
	Outcome   string     `json:"outcome"`
	Error     string     `json:"error,omitempty"`
	TookMs    int64      `json:"tookMs"`
	RetryAt   *time.Time `json:"retryAt,omitempty"`
}

// noNotifications answers the notification routes of a server without
// notifications.
func noNotifications() *apiError {
	return newError(http.StatusNotFound, "Not Found: this server reports no notification queues")
}

// adminNotifications reports an instance's notification queue: GET
// /admin/instances/{id}/notifications.
func (s *Server) adminNotifications(w http.ResponseWriter, r *http.Request) {
	h, ok := s.adminInstanceOf(w, r)
	if !ok {
		return
	}
	if s.Admin.Notifications == nil {
		s.fail(w, r, noNotifications())
		return
	}
	st, err := s.Admin.Notifications.Status(r.Context(), h.ID())
	if err != nil {
		s.fail(w, r, internal(err, "the notification queue could not be read"))
		return
	}
	reply := adminNotificationsReply{Delivery: "polling", Depth: st.Depth}
	if h.Settings().WebhookURL != "" {
		reply.Delivery = "webhook"
	}
	if n := st.Head; n != nil {
		body := json.RawMessage(n.Body)
		if !json.Valid(body) {
			body, _ = json.Marshal(string(n.Body))
		}
		reply.Head = &adminHeadReply{ReceiptID: n.ReceiptID, CreatedAt: n.CreatedAt.UTC(), Body: body}
	}
	if a := st.LastAttempt; a != nil {
		ar := &adminAttemptReply{At: a.At.UTC(), ReceiptID: a.ReceiptID, Number: a.Number, Outcome: a.Outcome, Error: a.Err, TookMs: a.Took.Milliseconds()}
		if !a.RetryAt.IsZero() {
			t := a.RetryAt.UTC()
			ar.RetryAt = &t
		}
		reply.LastAttempt = ar
	}
	writeJSON(w, http.StatusOK, reply)
}

// adminMaxTestTimeout bounds a test notification: a person waits for it.
const adminMaxTestTimeout = 15 * time.Second

// adminTestBodyBytes is how much of the receiver's answer a test shows.
const adminTestBodyBytes = 512

// adminWebhookTestReply is what the receiver of a test notification answered.
type adminWebhookTestReply struct {
	// Delivered: the receiver answered 200, which is what counts as
	// delivered for real notifications.
	Delivered  bool   `json:"delivered"`
	Status     int    `json:"status,omitempty"`
	StatusText string `json:"statusText,omitempty"`
	TookMs     int64  `json:"tookMs"`
	// Body is the start of the receiver's answer (at most 512 bytes).
	Body  string `json:"body"`
	Error string `json:"error,omitempty"`
}

// adminWebhookTest posts a test notification to an instance's webhook now
// and reports the receiver's answer: POST
// /admin/instances/{id}/webhook-test, with an optional body
// {"webhookUrl", "webhookUrlToken"} to try values before saving them
// (validated as setSettings validates them). The request goes through the
// same outbound guard as the notification sender's, so it reaches exactly
// what real notifications would. The queue is not touched.
func (s *Server) adminWebhookTest(w http.ResponseWriter, r *http.Request) {
	h, ok := s.adminInstanceOf(w, r)
	if !ok {
		return
	}
	if s.Admin.Notifications == nil {
		s.fail(w, r, noNotifications())
		return
	}
	body, e := readJSONBody(w, r)
	if e != nil {
		s.fail(w, r, e)
		return
	}
	st := h.Settings()
	target, token := st.WebhookURL, st.WebhookURLToken
	if len(bytes.TrimSpace(body)) > 0 {
		var in map[string]json.RawMessage
		if err := json.Unmarshal(body, &in); err != nil || in == nil {
			s.fail(w, r, validation(`the body must be empty or {"webhookUrl": "…", "webhookUrlToken": "…"}`))
			return
		}
		if raw, ok := in["webhookUrl"]; ok {
			if target, e = s.webhookURL(r.Context(), bytes.TrimSpace(raw)); e != nil {
				s.fail(w, r, e)
				return
			}
		}
		if raw, ok := in["webhookUrlToken"]; ok {
			if token, e = boundedString(bytes.TrimSpace(raw), "webhookUrlToken", maxSettingLen); e != nil {
				s.fail(w, r, e)
				return
			}
		}
	}
	if target == "" {
		s.fail(w, r, validation("the instance has no webhookUrl: set one (setSettings, or the console's settings) before sending a test notification"))
		return
	}
	note, err := s.Admin.Notifications.TestNotification(h, "A test notification sent from portrait's console; nothing happened to the instance.")
	if err != nil {
		s.fail(w, r, internal(err, "the test notification could not be made"))
		return
	}
	writeJSON(w, http.StatusOK, s.postTest(r.Context(), target, token, note))
}

// postTest posts body to target as the notification sender posts (the same
// headers, the same outbound guard) and reports the answer.
func (s *Server) postTest(ctx context.Context, target, token string, body []byte) adminWebhookTestReply {
	timeout := adminMaxTestTimeout
	if t := s.Admin.WebhookTimeout; t > 0 && t < timeout {
		timeout = t
	}
	client := s.webhookGuard.Client(timeout, 5)
	defer client.CloseIdleConnections()
	var out adminWebhookTestReply
	req, err := notify.NewWebhookRequest(ctx, target, token, body)
	if err != nil {
		out.Error = "the webhookUrl is not a usable URL"
		return out
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		out.TookMs = time.Since(start).Milliseconds()
		out.Error = adminTestError(err)
		return out
	}
	defer resp.Body.Close()
	head, rerr := io.ReadAll(io.LimitReader(resp.Body, adminTestBodyBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	out.TookMs = time.Since(start).Milliseconds()
	out.Status, out.StatusText = resp.StatusCode, resp.Status
	out.Delivered = resp.StatusCode == http.StatusOK
	out.Body = strings.ToValidUTF8(string(head), string(utf8.RuneError))
	if rerr != nil {
		out.Error = "reading the answer: " + adminTestError(rerr)
	} else if !out.Delivered {
		out.Error = "the receiver answered " + resp.Status + ": only 200 counts as delivered, so real notifications would be retried"
	}
	return out
}

// adminTestError words a failed test request; the URL (whose query may hold a
// secret) is redacted.
func adminTestError(err error) string {
	msg := outbound.RedactError(err).Error()
	if errors.Is(err, context.DeadlineExceeded) {
		return "the receiver did not answer in time: " + msg
	}
	return msg
}
