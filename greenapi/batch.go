package greenapi

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
)

// getAvatars looks many chats up in one call: the CRM that syncs ten
// thousand contacts (a method GREEN-API's users asked for; portrait's own).

// The bounds of getAvatars.
const (
	// maxBatchChats is the most chat ids one call may name.
	maxBatchChats = 100
	// batchConcurrency bounds the lookups of one call that run at once.
	batchConcurrency = 8
	// maxBatchWait bounds how long a chat waits for its turn under
	// getAvatar's rate limit; a chat that would wait longer fails with 429.
	maxBatchWait = 30 * time.Second
)

// getAvatarsRequest is getAvatars' body: the chats, and optionally the
// urlAvatar the client already holds for some of them.
type getAvatarsRequest struct {
	ChatIDs []string          `json:"chatIds"`
	Known   map[string]string `json:"known,omitempty"`
}

// avatarsEntry is one chat of getAvatars' reply. Changed is there for the
// chats named in known: whether urlAvatar differs from the known one.
// Error is there for a chat whose lookup failed, with the status and
// message getAvatar would have answered for it.
type avatarsEntry struct {
	ChatID    string      `json:"chatId"`
	URLAvatar string      `json:"urlAvatar"`
	Available bool        `json:"available"`
	Changed   *bool       `json:"changed,omitempty"`
	Error     *entryError `json:"error,omitempty"`
}

// entryError is the failure of one chat of getAvatars.
type entryError struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// getAvatars: {"chatIds": [...], "known": {...}} → one entry per chat, in
// order, sharing getAvatar's cache and coalescing; each chat counts
// against getAvatar's per-instance rate limit and waits for its turn (at
// most maxBatchWait).
func (s *Server) getAvatars(q *request) *apiError {
	body, e := readJSONBody(q.w, q.r)
	if e != nil {
		return e
	}
	var in getAvatarsRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return validation(`the request body must be {"chatIds": ["11001234567@c.us", …], "known": {"<chatId>": "<urlAvatar>"}}: %v`, err)
	}
	if len(in.ChatIDs) == 0 || len(in.ChatIDs) > maxBatchChats {
		return validation("'chatIds' must list 1 to %d chat ids", maxBatchChats)
	}
	out := make([]avatarsEntry, len(in.ChatIDs))
	sem := make(chan struct{}, batchConcurrency)
	var wg sync.WaitGroup
	for i, raw := range in.ChatIDs {
		out[i].ChatID = raw
		chat, err := portrait.ParseChatID(q.h.Type(), raw)
		if err != nil {
			out[i].Error = &entryError{Status: http.StatusBadRequest, Message: validation("%v", err).message}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-q.ctx().Done():
				return
			}
			defer func() { <-sem }()
			out[i] = s.batchLookup(q.ctx(), q.h, chat, raw)
		}()
	}
	wg.Wait()
	if q.ctx().Err() != nil {
		return nil // the client has gone
	}
	for i := range out {
		if known, ok := in.Known[out[i].ChatID]; ok && out[i].Error == nil {
			changed := known != out[i].URLAvatar
			out[i].Changed = &changed
		}
	}
	writeJSON(q.w, http.StatusOK, out)
	return nil
}

// batchLookup looks one chat of getAvatars up, after its turn under
// getAvatar's rate limit.
func (s *Server) batchLookup(ctx context.Context, h portrait.Handle, chat portrait.ChatID, raw string) avatarsEntry {
	entry := avatarsEntry{ChatID: raw}
	deadline := time.Now().Add(maxBatchWait)
	for {
		ok, wait := s.limits.allow(h.ID(), "getAvatar", s.cfg.Now(), func(string, string) {})
		if ok {
			break
		}
		if time.Now().Add(wait).After(deadline) {
			entry.Error = &entryError{Status: http.StatusTooManyRequests,
				Message: msgTooManyRequests + ": getAvatar's per-instance limit counts every chat of getAvatars; retry this chat later"}
			return entry
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return entry
		}
	}
	av, err := s.Avatars.Get(ctx, h, chat)
	if err != nil {
		e := engineError(err, "look up the picture of "+raw)
		if e.detail != nil {
			s.Log.Warn("getAvatars: lookup failed", "idInstance", int64(h.ID()), "chatId", raw, "err", e.detail)
		}
		entry.Error = &entryError{Status: e.status, Message: e.message}
		return entry
	}
	entry.URLAvatar, entry.Available = av.URL, av.Available
	return entry
}
