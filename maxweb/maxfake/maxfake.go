// Package maxfake is an in-process fake of MAX's web protocol, built from
// the shapes the public reverse-engineered clients document (see the max
// package): a WebSocket endpoint speaking JSON frames {ver, cmd, seq,
// opcode, payload}, a picture host and an upload host, all on one
// httptest TLS server with a test certificate. It scripts what a real
// phone and MAX would do (scanning a QR code, contacts and groups changing
// their pictures, pushes) and injects faults (error replies, stalls,
// dropped connections), so that the max engine is tested without MAX.
//
// It is a test double, not MAX: it knows nothing that the max package does
// not assume, and agreeing with it proves only that the engine does what
// portrait believes MAX does.
package maxfake

import (
	"context"
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
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// The opcodes the fake answers, as the max package names them.
const (
	OpPing          = 1
	OpHello         = 6
	OpProfile       = 16
	OpLogin         = 19
	OpLogout        = 20
	OpContactInfo   = 32
	OpChatInfo      = 48
	OpChatUpdate    = 55
	OpPhotoUpload   = 80
	OpQRPassword    = 115
	OpNotifContact  = 131
	OpNotifChat     = 135
	OpNotifProfile  = 159
	OpQRStart       = 288
	OpQRStatus      = 289
	OpQRLogin       = 291
	cmdRequest      = 0
	cmdOK           = 1
	cmdError        = 3
	protocolVersion = 11
)

// Account is the MAX account a phone links.
type Account struct {
	ID        int64
	Phone     string
	FirstName string
	LastName  string
	// CloudPassword makes the login after a scan ask for the password.
	CloudPassword bool
	Picture       []byte // nil: none
}

// User is another MAX user.
type User struct {
	ID      int64
	Name    string
	Phone   string
	Picture []byte // nil: none
}

// Chat is a group.
type Chat struct {
	ID      int64
	Title   string
	Owner   int64
	Admins  []int64
	Members []int64 // the account must be among them to see or change it
	Picture []byte
	// OnlyOwnerEdits is the option ONLY_OWNER_CAN_CHANGE_ICON_TITLE.
	OnlyOwnerEdits bool
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server

	// QRTTL is how long a QR code lives (its expiresAt); PollInterval is
	// the pollingInterval the fake asks for. Set them before use.
	QRTTL        time.Duration
	PollInterval time.Duration
	// MinAppVersion, when set, makes the handshake fail for an older
	// announced appVersion (compared as dotted numbers).
	MinAppVersion string

	mu       sync.Mutex
	account  Account
	photoSeq int64
	selfPID  int64
	users    map[int64]*user
	chats    map[int64]*chat
	tokens   map[string]bool
	tracks   map[string]*track
	conns    map[*session]bool
	uploads  map[string][]byte // photo token → bytes
	pictures map[string][]byte // picture name → bytes
	faults   map[int][]Fault
	counts   map[int]int
	hellos   []map[string]any
	refuse   bool
	omitSelf bool
	pushCmd  int
	dl       int
}

type user struct {
	User
	photoID int64
}

type chat struct {
	Chat
	version int
}

type track struct {
	id      string
	scanned bool
	expires time.Time
}

// Fault is an injected answer to the next request of an opcode: an error
// reply with Code and Message, or, with Stall, no reply at all.
type Fault struct {
	Code    string
	Message string
	Stall   bool
}

// New starts a fake with account (not yet linked to anything: a token
// exists only once a QR code is scanned, or with Token).
func New(account Account) *Server {
	s := &Server{
		QRTTL:        time.Second,
		PollInterval: 20 * time.Millisecond,
		account:      account,
		users:        map[int64]*user{},
		chats:        map[int64]*chat{},
		tokens:       map[string]bool{},
		tracks:       map[string]*track{},
		conns:        map[*session]bool{},
		uploads:      map[string][]byte{},
		pictures:     map[string][]byte{},
		faults:       map[int][]Fault{},
		counts:       map[int]int{},
	}
	if account.Picture != nil {
		s.photoSeq++
		s.selfPID = s.photoSeq
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/websocket", s.serveWS)
	mux.HandleFunc("GET /i", s.servePicture)
	mux.HandleFunc("POST /upload", s.serveUpload)
	s.srv = httptest.NewUnstartedServer(mux)
	// Clients that do not trust the test certificate are tested on
	// purpose: their handshake errors are not news.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	return s
}

// Close stops the server and drops every connection.
func (s *Server) Close() {
	s.DropConnections()
	s.srv.Close()
}

// URL is the WebSocket endpoint (wss://127.0.0.1:port/websocket).
func (s *Server) URL() string { return "wss" + strings.TrimPrefix(s.srv.URL, "https") + "/websocket" }

// Host is the "host:port" of the picture and upload addresses.
func (s *Server) Host() string { return strings.TrimPrefix(s.srv.URL, "https://") }

// CertPEM is the server's test certificate in PEM, for a root CA file.
func (s *Server) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// CertPool trusts the server's test certificate.
func (s *Server) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.srv.Certificate())
	return p
}

// Token makes a login token valid, as a phone scanning a code would, and
// returns it.
func (s *Server) Token() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newTokenLocked()
}

func (s *Server) newTokenLocked() string {
	t := "tok-" + randHex(12)
	s.tokens[t] = true
	return t
}

// RevokeTokens makes every token invalid (the session was ended on the
// phone) and drops the connections.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	s.tokens = map[string]bool{}
	s.mu.Unlock()
	s.DropConnections()
}

// Scan scans the latest QR code, as the phone would. It reports whether
// there was a live code.
func (s *Server) Scan() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	var latest *track
	for _, t := range s.tracks {
		if time.Now().Before(t.expires) && (latest == nil || t.expires.After(latest.expires)) {
			latest = t
		}
	}
	if latest == nil {
		return false
	}
	latest.scanned = true
	return true
}

// QRLinks returns how many QR codes were handed out.
func (s *Server) QRLinks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[OpQRStart]
}

// AddUser adds (or replaces) a user, without a push.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nu := &user{User: u}
	if u.Picture != nil {
		s.photoSeq++
		nu.photoID = s.photoSeq
	}
	s.users[u.ID] = nu
}

// AddChat adds (or replaces) a group, without a push.
func (s *Server) AddChat(c Chat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chats[c.ID] = &chat{Chat: c, version: 1}
}

// SetUserPicture changes a user's picture (nil removes it) and pushes 131
// to the logged-in connections.
func (s *Server) SetUserPicture(id int64, pic []byte) {
	s.mu.Lock()
	u := s.users[id]
	if u == nil {
		s.mu.Unlock()
		return
	}
	u.Picture = pic
	u.photoID = 0
	if pic != nil {
		s.photoSeq++
		u.photoID = s.photoSeq
	}
	payload := map[string]any{"contact": s.userJSONLocked(u)}
	s.mu.Unlock()
	s.push(OpNotifContact, payload)
}

// SetUserName changes a user's name (not the picture) and pushes 131.
func (s *Server) SetUserName(id int64, name string) {
	s.mu.Lock()
	u := s.users[id]
	if u == nil {
		s.mu.Unlock()
		return
	}
	u.Name = name
	payload := map[string]any{"contact": s.userJSONLocked(u)}
	s.mu.Unlock()
	s.push(OpNotifContact, payload)
}

// SetChatPicture changes a group's picture and pushes 135.
func (s *Server) SetChatPicture(id int64, pic []byte) {
	s.mu.Lock()
	c := s.chats[id]
	if c == nil {
		s.mu.Unlock()
		return
	}
	c.Picture = pic
	c.version++
	payload := map[string]any{"chat": s.chatJSONLocked(c)}
	s.mu.Unlock()
	s.push(OpNotifChat, payload)
}

// SetOwnPicture changes the account's picture from "another device" and
// pushes 159.
func (s *Server) SetOwnPicture(pic []byte) {
	s.mu.Lock()
	s.setOwnLocked(pic)
	payload := map[string]any{"profile": map[string]any{"contact": s.selfJSONLocked()}}
	s.mu.Unlock()
	s.push(OpNotifProfile, payload)
}

func (s *Server) setOwnLocked(pic []byte) {
	s.account.Picture = pic
	s.selfPID = 0
	if pic != nil {
		s.photoSeq++
		s.selfPID = s.photoSeq
	}
}

// OwnPicture returns the account's picture.
func (s *Server) OwnPicture() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.account.Picture
}

// ChatPicture returns a group's picture.
func (s *Server) ChatPicture(id int64) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chats[id]; c != nil {
		return c.Picture
	}
	return nil
}

// Fail queues faults for the next requests of opcode, one per request.
func (s *Server) Fail(opcode int, f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[opcode] = append(s.faults[opcode], f...)
}

// Count returns how many requests of opcode the fake received.
func (s *Server) Count(opcode int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[opcode]
}

// Downloads returns how many pictures were downloaded.
func (s *Server) Downloads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dl
}

// Hellos returns the handshake payloads received, in order.
func (s *Server) Hellos() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.hellos...)
}

// Connections returns how many WebSocket connections are open.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// SetPushCmd sets the cmd of the pushes the fake sends: 0 by default; some
// public clients' notes say pushes come with 1.
func (s *Server) SetPushCmd(cmd int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushCmd = cmd
}

// OmitSelf leaves the account out of opcode 32's replies (no public
// client shows whether MAX lists it there).
func (s *Server) OmitSelf(omit bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.omitSelf = omit
}

// RefuseConnections makes new WebSocket connections fail (503) until
// called with false.
func (s *Server) RefuseConnections(refuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = refuse
}

// DropConnections closes every WebSocket connection.
func (s *Server) DropConnections() {
	s.mu.Lock()
	conns := make([]*session, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.ws.CloseNow()
	}
}

// Inject sends raw text as a frame to every logged-in connection (to test
// how the engine takes malformed or unexpected frames).
func (s *Server) Inject(raw string) {
	s.mu.Lock()
	to := s.loggedInLocked()
	s.mu.Unlock()
	for _, c := range to {
		c.write([]byte(raw))
	}
}

// loggedInLocked returns the logged-in connections. s.mu must be held.
func (s *Server) loggedInLocked() []*session {
	var to []*session
	for c := range s.conns {
		if c.loggedIn {
			to = append(to, c)
		}
	}
	return to
}

// session is one WebSocket connection.
type session struct {
	ws       *websocket.Conn
	wmu      sync.Mutex
	loggedIn bool // guarded by Server.mu
	seq      int64
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	refuse := s.refuse
	s.mu.Unlock()
	if refuse {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	if r.Header.Get("Origin") == "" {
		http.Error(w, "no Origin", http.StatusForbidden)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	c := &session{ws: ws}
	s.mu.Lock()
	s.conns[c] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = ws.CloseNow()
	}()
	ctx := r.Context()
	for {
		typ, b, err := ws.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		var f struct {
			Ver     int             `json:"ver"`
			Cmd     int             `json:"cmd"`
			Seq     int64           `json:"seq"`
			Opcode  int             `json:"opcode"`
			Payload json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(b, &f) != nil || f.Cmd != cmdRequest || f.Ver != protocolVersion {
			s.reply(c, f.Seq, f.Opcode, cmdError, map[string]any{"error": "proto.payload", "message": "bad frame"})
			continue
		}
		go s.handle(c, f.Seq, f.Opcode, f.Payload)
	}
}

func (s *Server) reply(c *session, seq int64, opcode, cmd int, payload any) {
	b, _ := json.Marshal(map[string]any{"ver": protocolVersion, "cmd": cmd, "seq": seq, "opcode": opcode, "payload": payload})
	c.write(b)
}

// write sends one frame to c, bounded in time so that a client that stopped
// reading does not hold the fake.
func (c *session) write(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.ws.Write(ctx, websocket.MessageText, b)
}

// push sends a push to every logged-in connection.
func (s *Server) push(opcode int, payload any) {
	s.mu.Lock()
	cmd := s.pushCmd
	to := s.loggedInLocked()
	s.mu.Unlock()
	for _, c := range to {
		c.wmu.Lock()
		c.seq++
		seq := c.seq
		c.wmu.Unlock()
		s.reply(c, seq, opcode, cmd, payload)
	}
}

func (s *Server) handle(c *session, seq int64, opcode int, raw json.RawMessage) {
	s.mu.Lock()
	s.counts[opcode]++
	var fault *Fault
	if q := s.faults[opcode]; len(q) > 0 {
		fault = &q[0]
		s.faults[opcode] = q[1:]
	}
	s.mu.Unlock()
	if fault != nil {
		if fault.Stall {
			return
		}
		s.reply(c, seq, opcode, cmdError, map[string]any{"error": fault.Code, "message": fault.Message})
		return
	}
	var p map[string]any
	_ = json.Unmarshal(raw, &p)
	payload, errCode := s.answer(c, opcode, p)
	if errCode != "" {
		s.reply(c, seq, opcode, cmdError, map[string]any{"error": errCode, "message": errCode, "localizedMessage": "ошибка"})
		return
	}
	s.reply(c, seq, opcode, cmdOK, payload)
}

// answer computes the reply of a request, or an error code.
func (s *Server) answer(c *session, opcode int, p map[string]any) (any, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch opcode {
	case OpPing:
		return map[string]any{}, ""
	case OpHello:
		s.hellos = append(s.hellos, p)
		ua, _ := p["userAgent"].(map[string]any)
		v, _ := ua["appVersion"].(string)
		if _, ok := p["deviceId"].(string); !ok {
			return nil, "proto.payload"
		}
		if s.MinAppVersion != "" && olderVersion(v, s.MinAppVersion) {
			return nil, "client.version.outdated"
		}
		return map[string]any{"location": "RU", "app-update-type": 0}, ""
	case OpQRStart:
		t := &track{id: randHex(8), expires: time.Now().Add(s.QRTTL)}
		s.tracks[t.id] = t
		return map[string]any{
			"qrLink":          "https://max.ru/:auth/" + t.id,
			"trackId":         t.id,
			"pollingInterval": s.PollInterval.Milliseconds(),
			"expiresAt":       t.expires.UnixMilli(),
			"ttl":             s.QRTTL.Milliseconds(),
		}, ""
	case OpQRStatus:
		t := s.tracks[str(p["trackId"])]
		if t == nil || time.Now().After(t.expires) {
			return nil, "track.not.found"
		}
		return map[string]any{"status": map[string]any{"loginAvailable": t.scanned, "expiresAt": t.expires.UnixMilli()}}, ""
	case OpQRLogin:
		t := s.tracks[str(p["trackId"])]
		if t == nil || !t.scanned {
			return nil, "track.not.found"
		}
		delete(s.tracks, t.id)
		if s.account.CloudPassword {
			return map[string]any{"tokenAttrs": map[string]any{}, "passwordChallenge": map[string]any{"trackId": t.id, "hint": "h"}}, ""
		}
		return map[string]any{"tokenAttrs": map[string]any{"LOGIN": map[string]any{"token": s.newTokenLocked()}}}, ""
	case OpLogin:
		if !s.tokens[str(p["token"])] {
			return nil, "login.token"
		}
		c.loggedIn = true
		var contacts, chats []any
		for _, u := range s.users {
			contacts = append(contacts, s.userJSONLocked(u))
		}
		for _, ch := range s.chats {
			chats = append(chats, s.chatJSONLocked(ch))
		}
		return map[string]any{
			"profile":  map[string]any{"contact": s.selfJSONLocked(), "profileOptions": []any{}},
			"contacts": contacts,
			"chats":    chats,
			"time":     time.Now().UnixMilli(),
		}, ""
	}
	if !c.loggedIn {
		return nil, "login.required"
	}
	switch opcode {
	case OpLogout:
		for t := range s.tokens {
			delete(s.tokens, t) // the fake has one account and one session
		}
		c.loggedIn = false
		return map[string]any{}, ""
	case OpContactInfo:
		var out []any
		for _, id := range ints(p["contactIds"]) {
			if id == s.account.ID {
				if !s.omitSelf {
					out = append(out, s.selfJSONLocked())
				}
			} else if u := s.users[id]; u != nil {
				out = append(out, s.userJSONLocked(u))
			}
		}
		return map[string]any{"contacts": out}, ""
	case OpChatInfo:
		var out []any
		for _, id := range ints(p["chatIds"]) {
			if ch := s.chats[id]; ch != nil && s.memberLocked(ch) {
				out = append(out, s.chatJSONLocked(ch))
			}
		}
		return map[string]any{"chats": out}, ""
	case OpPhotoUpload:
		s.photoSeq++
		return map[string]any{"url": fmt.Sprintf("https://%s/upload?apiToken=secret&photoIds=%d", s.Host(), s.photoSeq)}, ""
	case OpProfile:
		pic, ok := s.uploads[str(p["photoToken"])]
		if !ok {
			return nil, "photo.token.invalid"
		}
		if str(p["firstName"]) == "" {
			return nil, "proto.payload"
		}
		s.setOwnLocked(pic)
		return map[string]any{"profile": map[string]any{"contact": s.selfJSONLocked()}}, ""
	case OpChatUpdate:
		ch := s.chats[int64(num(p["chatId"]))]
		if ch == nil {
			return nil, "chat.not.found"
		}
		if !s.memberLocked(ch) {
			return nil, "chat.access.denied"
		}
		if ch.OnlyOwnerEdits && ch.Owner != s.account.ID || !ch.OnlyOwnerEdits && !s.adminLocked(ch) {
			return nil, "chat.access.denied"
		}
		pic, ok := s.uploads[str(p["photoToken"])]
		if !ok {
			return nil, "photo.token.invalid"
		}
		ch.Picture = pic
		ch.version++
		return map[string]any{"chat": s.chatJSONLocked(ch)}, ""
	}
	return nil, "opcode.unknown"
}

func (s *Server) memberLocked(ch *chat) bool {
	for _, m := range ch.Members {
		if m == s.account.ID {
			return true
		}
	}
	return false
}

func (s *Server) adminLocked(ch *chat) bool {
	if ch.Owner == s.account.ID {
		return true
	}
	for _, a := range ch.Admins {
		if a == s.account.ID {
			return true
		}
	}
	return false
}

// pictureURL registers pic under name and returns its address.
func (s *Server) pictureURLLocked(name string, pic []byte) string {
	s.pictures[name] = pic
	return fmt.Sprintf("https://%s/i?r=%s&sig=%s", s.Host(), url.QueryEscape(name), randHex(4))
}

func (s *Server) userJSONLocked(u *user) map[string]any {
	m := map[string]any{
		"id":            u.ID,
		"accountStatus": 0,
		"names":         []any{map[string]any{"name": u.Name, "firstName": u.Name, "type": "ONEME"}},
		"options":       []any{"ONEME"},
		"updateTime":    time.Now().UnixMilli(),
	}
	if u.Phone != "" {
		n, _ := strconv.ParseInt(u.Phone, 10, 64)
		m["phone"] = n
	}
	if u.Picture != nil {
		m["photoId"] = u.photoID
		name := fmt.Sprintf("u%d-%d", u.ID, u.photoID)
		m["baseUrl"] = s.pictureURLLocked(name, u.Picture)
		m["baseRawUrl"] = s.pictureURLLocked(name, u.Picture)
	}
	return m
}

func (s *Server) selfJSONLocked() map[string]any {
	a := s.account
	n, _ := strconv.ParseInt(a.Phone, 10, 64)
	m := map[string]any{
		"id":    a.ID,
		"phone": n,
		"names": []any{map[string]any{"name": strings.TrimSpace(a.FirstName + " " + a.LastName), "firstName": a.FirstName, "lastName": a.LastName, "type": "ONEME"}},
	}
	if a.Picture != nil {
		m["photoId"] = s.selfPID
		name := fmt.Sprintf("self-%d", s.selfPID)
		m["baseUrl"] = s.pictureURLLocked(name, a.Picture)
		m["baseRawUrl"] = s.pictureURLLocked(name, a.Picture)
	}
	return m
}

func (s *Server) chatJSONLocked(c *chat) map[string]any {
	parts := map[string]any{}
	for _, m := range c.Members {
		parts[strconv.FormatInt(m, 10)] = time.Now().UnixMilli()
	}
	m := map[string]any{
		"id":           c.ID,
		"type":         "CHAT",
		"status":       "ACTIVE",
		"title":        c.Title,
		"owner":        c.Owner,
		"admins":       c.Admins,
		"participants": parts,
		"options":      map[string]any{"ONLY_OWNER_CAN_CHANGE_ICON_TITLE": c.OnlyOwnerEdits},
	}
	if c.Picture != nil {
		// Stable per version: the same picture keeps its address.
		name := fmt.Sprintf("c%d-%d", -c.ID, c.version)
		s.pictures[name] = c.Picture
		u := fmt.Sprintf("https://%s/i?r=%s", s.Host(), name)
		m["baseIconUrl"] = u
		m["baseRawIconUrl"] = u + "&raw=1"
	}
	return m
}

func (s *Server) servePicture(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	pic, ok := s.pictures[r.URL.Query().Get("r")]
	if ok {
		s.dl++
	}
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	_, _ = w.Write(pic)
}

func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("photoIds")
	f, _, err := r.FormFile("file")
	if err != nil || id == "" {
		http.Error(w, `{"error":"no file"}`, http.StatusBadRequest)
		return
	}
	b, err := io.ReadAll(io.LimitReader(f, 10<<20))
	if err != nil || len(b) == 0 {
		http.Error(w, `{"error":"empty"}`, http.StatusBadRequest)
		return
	}
	token := "ph-" + randHex(10)
	s.mu.Lock()
	s.uploads[token] = b
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"photos": map[string]any{id: map[string]any{"token": token}}})
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func str(v any) string { s, _ := v.(string); return s }

func num(v any) float64 { f, _ := v.(float64); return f }

func ints(v any) []int64 {
	a, _ := v.([]any)
	out := make([]int64, 0, len(a))
	for _, x := range a {
		if f, ok := x.(float64); ok {
			out = append(out, int64(f))
		}
	}
	return out
}

// olderVersion reports whether dotted version a is older than b.
func olderVersion(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}
