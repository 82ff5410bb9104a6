// Package botfake is an in-process fake of the MAX Bot API, built from its
// documentation and OpenAPI schema: an HTTPS server with a test
// certificate (as the real API's certificate comes from a root CA the
// client must be told to trust), the bot token checked in the
// Authorization header only, chats with icons, members with permissions,
// dialogs, image uploads, and faults (401, 403, 429, "attachment.not.ready").
// It enforces a requests-per-second limit like MAX's.
//
// It is a test double: agreeing with it proves only that the maxbot engine
// does what portrait believes the Bot API does.
package botfake

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bot is the bot the token belongs to.
type Bot struct {
	ID      int64
	Name    string
	Picture []byte
}

// User is a MAX user.
type User struct {
	ID      int64
	Name    string
	Picture []byte
}

// Chat is a group chat.
type Chat struct {
	ID      int64
	Title   string
	Picture []byte
	Members []int64 // users (not the bot)
	// BotMember, BotAdmin and BotCanEdit (the change_chat_info right)
	// describe the bot in this chat.
	BotMember, BotAdmin, BotCanEdit bool
}

// Fault is an injected reply to the next request matching a route
// ("GET /chats/{id}", "PATCH /chats/{id}", "GET /me", …).
type Fault struct {
	Status  int
	Code    string
	Message string
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	srv   *httptest.Server
	token string
	limit int // requests a second; 0: none

	mu        sync.Mutex
	bot       Bot
	users     map[int64]*User
	chats     map[int64]*Chat
	dialogs   map[int64]int64 // user → dialog chat id
	versions  map[int64]int   // chat → icon version
	pictures  map[string][]byte
	uploads   map[string][]byte // token → bytes
	faults    map[string][]Fault
	notReady  int
	requests  map[string]int
	times     []time.Time
	queryTok  int
	downloads int
}

// New starts a fake for a bot whose token is token, limiting requests to
// limit a second (MAX: 30; 0 for none).
func New(token string, bot Bot, limit int) *Server {
	s := &Server{
		token:    token,
		limit:    limit,
		bot:      bot,
		users:    map[int64]*User{},
		chats:    map[int64]*Chat{},
		dialogs:  map[int64]int64{},
		versions: map[int64]int{},
		pictures: map[string][]byte{},
		uploads:  map[string][]byte{},
		faults:   map[string][]Fault{},
		requests: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /me", s.api("GET /me", s.me))
	mux.HandleFunc("GET /chats", s.api("GET /chats", s.listChats))
	mux.HandleFunc("GET /chats/{id}", s.api("GET /chats/{id}", s.getChat))
	mux.HandleFunc("PATCH /chats/{id}", s.api("PATCH /chats/{id}", s.patchChat))
	mux.HandleFunc("GET /chats/{id}/members", s.api("GET /chats/{id}/members", s.members))
	mux.HandleFunc("GET /chats/{id}/members/me", s.api("GET /chats/{id}/members/me", s.membership))
	mux.HandleFunc("POST /uploads", s.api("POST /uploads", s.uploadURL))
	mux.HandleFunc("POST /upload/{n}", s.receiveUpload)
	mux.HandleFunc("GET /pic/{name}", s.servePicture)
	s.srv = httptest.NewUnstartedServer(mux)
	// Clients that do not trust the test certificate are tested on
	// purpose: their handshake errors are not news.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// URL is the API's address (https://127.0.0.1:port).
func (s *Server) URL() string { return s.srv.URL }

// Host is its "host:port".
func (s *Server) Host() string { return strings.TrimPrefix(s.srv.URL, "https://") }

// CertPEM is the server's test certificate in PEM, for a root CA file.
func (s *Server) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// CertPool trusts the test certificate.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.srv.Certificate())
	return p
}

// SetToken changes the valid token (the old one gets 401).
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// AddUser adds a user; dialog makes the bot have a dialog with them.
func (s *Server) AddUser(u User, dialog bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = &u
	if dialog {
		s.dialogs[u.ID] = 500000000 + u.ID
	}
}

// AddChat adds a group chat.
func (s *Server) AddChat(c Chat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chats[c.ID] = &c
	s.versions[c.ID] = 1
}

// SetChatPicture changes a group's icon (no event: the Bot API has none).
func (s *Server) SetChatPicture(id int64, pic []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chats[id]; c != nil {
		c.Picture = pic
		s.versions[id]++
	}
}

// ChatPicture returns a group's icon.
func (s *Server) ChatPicture(id int64) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chats[id]; c != nil {
		return c.Picture
	}
	return nil
}

// Fail queues faults for the next requests of route.
func (s *Server) Fail(route string, f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[route] = append(s.faults[route], f...)
}

// NotReady makes the next n icon changes answer "attachment.not.ready".
func (s *Server) NotReady(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notReady = n
}

// Requests returns how many requests of route the fake answered.
func (s *Server) Requests(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[route]
}

// QueryTokens returns how many requests carried a token in the address.
func (s *Server) QueryTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queryTok
}

// Downloads returns how many pictures were downloaded.
func (s *Server) Downloads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downloads
}

type handler func(r *http.Request) (int, any)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(status int, code, msg string) (int, any) {
	return status, map[string]any{"code": code, "message": msg}
}

// api wraps a route: query tokens are refused, the Authorization header
// checked, the rate limit applied, faults injected.
func (s *Server) api(route string, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[route]++
		if r.URL.Query().Has("access_token") {
			s.queryTok++
			s.mu.Unlock()
			writeJSON(w, http.StatusUnauthorized, map[string]any{"code": "verify.token", "message": "query tokens are no longer accepted"})
			return
		}
		now := time.Now()
		if s.limit > 0 {
			keep := s.times[:0]
			for _, t := range s.times {
				if now.Sub(t) < time.Second {
					keep = append(keep, t)
				}
			}
			s.times = keep
			if len(s.times) >= s.limit {
				s.mu.Unlock()
				writeJSON(w, http.StatusTooManyRequests, map[string]any{"code": "too.many.requests", "message": "Too many requests"})
				return
			}
			s.times = append(s.times, now)
		}
		if r.Header.Get("Authorization") != s.token {
			s.mu.Unlock()
			writeJSON(w, http.StatusUnauthorized, map[string]any{"code": "verify.token", "message": "Invalid access_token"})
			return
		}
		var fault *Fault
		if q := s.faults[route]; len(q) > 0 {
			fault = &q[0]
			s.faults[route] = q[1:]
		}
		s.mu.Unlock()
		if fault != nil {
			writeJSON(w, fault.Status, map[string]any{"code": fault.Code, "message": fault.Message})
			return
		}
		status, v := h(r)
		writeJSON(w, status, v)
	}
}

func (s *Server) picURLLocked(name string, pic []byte) string {
	s.pictures[name] = pic
	return fmt.Sprintf("%s/pic/%s", s.srv.URL, name)
}

func (s *Server) userJSONLocked(u *User) map[string]any {
	m := map[string]any{"user_id": u.ID, "first_name": u.Name, "name": u.Name, "is_bot": false, "last_activity_time": 0}
	if u.Picture != nil {
		m["avatar_url"] = s.picURLLocked(fmt.Sprintf("u%d-small", u.ID), u.Picture)
		m["full_avatar_url"] = s.picURLLocked(fmt.Sprintf("u%d", u.ID), u.Picture)
	}
	return m
}

func (s *Server) me(*http.Request) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]any{"user_id": s.bot.ID, "first_name": s.bot.Name, "name": s.bot.Name, "is_bot": true, "username": "test_bot"}
	if s.bot.Picture != nil {
		m["avatar_url"] = s.picURLLocked("bot-small", s.bot.Picture)
		m["full_avatar_url"] = s.picURLLocked("bot", s.bot.Picture)
	}
	return http.StatusOK, m
}

func (s *Server) chatJSONLocked(c *Chat) map[string]any {
	m := map[string]any{"chat_id": c.ID, "type": "chat", "status": "active", "title": c.Title,
		"participants_count": len(c.Members) + 1, "is_public": false, "last_event_time": 0}
	if c.Picture != nil {
		m["icon"] = map[string]any{"url": s.picURLLocked(fmt.Sprintf("c%d-%d", -c.ID, s.versions[c.ID]), c.Picture)}
	} else {
		m["icon"] = nil
	}
	return m
}

func (s *Server) dialogJSONLocked(uid, cid int64) map[string]any {
	return map[string]any{"chat_id": cid, "type": "dialog", "status": "active", "dialog_with_user": s.userJSONLocked(s.users[uid])}
}

// listChats pages through the bot's chats, two at a time so that the
// engine must follow the marker.
func (s *Server) listChats(r *http.Request) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []map[string]any
	for uid, cid := range s.dialogs {
		all = append(all, s.dialogJSONLocked(uid, cid))
	}
	for _, c := range s.chats {
		if c.BotMember {
			all = append(all, s.chatJSONLocked(c))
		}
	}
	// A stable order: by chat id.
	for i := 1; i < len(all); i++ {
		for j := i; j > 0 && all[j]["chat_id"].(int64) < all[j-1]["chat_id"].(int64); j-- {
			all[j], all[j-1] = all[j-1], all[j]
		}
	}
	from, _ := strconv.Atoi(r.URL.Query().Get("marker"))
	to := min(from+2, len(all))
	if from > len(all) {
		from = len(all)
	}
	out := map[string]any{"chats": all[from:to], "marker": nil}
	if to < len(all) {
		out["marker"] = to
	}
	return http.StatusOK, out
}

func (s *Server) getChat(r *http.Request) (int, any) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return apiError(http.StatusBadRequest, "proto.payload", "bad chat id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for uid, cid := range s.dialogs {
		if cid == id {
			return http.StatusOK, s.dialogJSONLocked(uid, cid)
		}
	}
	c := s.chats[id]
	if c == nil || !c.BotMember {
		return apiError(http.StatusNotFound, "chat.not.found", "Chat not found")
	}
	return http.StatusOK, s.chatJSONLocked(c)
}

func (s *Server) members(r *http.Request) (int, any) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[id]
	if c == nil || !c.BotMember {
		return apiError(http.StatusNotFound, "chat.not.found", "Chat not found")
	}
	if !c.BotAdmin {
		return apiError(http.StatusForbidden, "chat.denied", "Bot is not admin")
	}
	want := map[int64]bool{}
	for _, p := range strings.Split(r.URL.Query().Get("user_ids"), ",") {
		if n, err := strconv.ParseInt(p, 10, 64); err == nil {
			want[n] = true
		}
	}
	var out []any
	for _, m := range c.Members {
		if u := s.users[m]; u != nil && (len(want) == 0 || want[m]) {
			j := s.userJSONLocked(u)
			j["is_admin"], j["is_owner"], j["permissions"] = false, false, nil
			out = append(out, j)
		}
	}
	return http.StatusOK, map[string]any{"members": out}
}

func (s *Server) membership(r *http.Request) (int, any) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[id]
	if c == nil || !c.BotMember {
		return apiError(http.StatusNotFound, "chat.not.found", "Chat not found")
	}
	perms := []string{"write", "read_all_messages"}
	if c.BotAdmin && c.BotCanEdit {
		perms = append(perms, "change_chat_info")
	}
	return http.StatusOK, map[string]any{"user_id": s.bot.ID, "is_bot": true, "is_admin": c.BotAdmin, "is_owner": false, "permissions": perms}
}

func (s *Server) patchChat(r *http.Request) (int, any) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var body struct {
		Icon *struct {
			Photos map[string]struct {
				Token string `json:"token"`
			} `json:"photos"`
		} `json:"icon"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil || body.Icon == nil {
		return apiError(http.StatusBadRequest, "proto.payload", "bad body")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chats[id]
	if c == nil || !c.BotMember {
		return apiError(http.StatusNotFound, "chat.not.found", "Chat not found")
	}
	if !c.BotAdmin || !c.BotCanEdit {
		return apiError(http.StatusForbidden, "chat.denied", "Not enough rights")
	}
	var pic []byte
	for _, p := range body.Icon.Photos {
		pic = s.uploads[p.Token]
	}
	if pic == nil {
		return apiError(http.StatusBadRequest, "proto.payload", "unknown photo token")
	}
	if s.notReady > 0 {
		s.notReady--
		return apiError(http.StatusBadRequest, "attachment.not.ready", "")
	}
	c.Picture = pic
	s.versions[id]++
	return http.StatusOK, s.chatJSONLocked(c)
}

func (s *Server) uploadURL(r *http.Request) (int, any) {
	if r.URL.Query().Get("type") != "image" {
		return apiError(http.StatusBadRequest, "proto.payload", "type must be image")
	}
	return http.StatusOK, map[string]any{"url": s.srv.URL + "/upload/" + randHex(6)}
}

// receiveUpload takes the multipart field "data"; the upload address
// needs no token.
func (s *Server) receiveUpload(w http.ResponseWriter, r *http.Request) {
	f, _, err := r.FormFile("data")
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": "proto.payload", "message": "no data field"})
		return
	}
	b, _ := io.ReadAll(io.LimitReader(f, 10<<20))
	tok := "img-" + randHex(8)
	s.mu.Lock()
	s.uploads[tok] = b
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"photos": map[string]any{randHex(4): map[string]any{"token": tok}}})
}

func (s *Server) servePicture(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	pic, ok := s.pictures[r.PathValue("name")]
	if ok {
		s.downloads++
	}
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	_, _ = w.Write(pic)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
