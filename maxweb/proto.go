package maxweb

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The protocol version the web client announces in every frame ("ver").
// Sources: szonov/max protocol/protocol.go (VersionCurrent = 11) and the
// frames the web client sends.
const protoVersion = 11

// The frame kinds ("cmd"). A reply carries the seq of its request. Sources:
// szonov/max protocol/protocol.go, MaxApiTeam/PyMax protocol/enums.py; cmd 2
// ("not found") is named by vkmax's documentation only.
const (
	cmdRequest  = 0 // a request, or a push from the server
	cmdOK       = 1
	cmdNotFound = 2
	cmdError    = 3
)

// The opcodes portrait uses. Sources: MaxApiTeam/PyMax protocol/enums.py,
// szonov/max maxclient/opcodes.go.
const (
	opPing         = 1   // keep-alive {interactive}
	opHello        = 6   // handshake {deviceId, userAgent}
	opProfile      = 16  // change the own profile {firstName, photoToken, avatarType}
	opLogin        = 19  // start a session with a saved token
	opLogout       = 20  // end the session (the token stops working)
	opContactInfo  = 32  // {contactIds} → {contacts}
	opChatInfo     = 48  // {chatIds} → {chats}
	opChatUpdate   = 55  // {chatId, photoToken}: not verified by any public client
	opPhotoUpload  = 80  // {count, profile} → {url}
	opQRPassword   = 115 // {trackId, password}: the cloud password after a scan
	opNotifContact = 131 // push: a contact changed
	opNotifChat    = 135 // push: a chat changed
	opNotifProfile = 159 // push: the own profile changed (on another device)
	opQRStart      = 288 // {} → {qrLink, trackId, pollingInterval, expiresAt}
	opQRStatus     = 289 // {trackId} → {status: {loginAvailable}}
	opQRLogin      = 291 // {trackId} → {tokenAttrs: {LOGIN: {token}}} or {passwordChallenge}
	maxOpcode      = 1 << 16
)

// frame is one JSON message of MAX's web protocol.
type frame struct {
	Ver     int             `json:"ver"`
	Cmd     int             `json:"cmd"`
	Seq     int64           `json:"seq"`
	Opcode  int             `json:"opcode"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// errBadFrame is wrapped by the errors of parseFrame.
var errBadFrame = errors.New("malformed frame")

// parseFrame decodes one frame received from MAX and checks its header.
func parseFrame(b []byte) (frame, error) {
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		return frame{}, fmt.Errorf("%w: %v", errBadFrame, err)
	}
	switch {
	case f.Cmd < cmdRequest || f.Cmd > cmdError:
		return frame{}, fmt.Errorf("%w: unknown cmd %d", errBadFrame, f.Cmd)
	case f.Opcode < 0 || f.Opcode >= maxOpcode:
		return frame{}, fmt.Errorf("%w: opcode %d out of range", errBadFrame, f.Opcode)
	case f.Seq < 0:
		return frame{}, fmt.Errorf("%w: negative seq", errBadFrame)
	}
	if bytes.Equal(bytes.TrimSpace(f.Payload), []byte("null")) {
		f.Payload = nil
	}
	return f, nil
}

// encodeFrame encodes a request.
func encodeFrame(seq int64, opcode int, payload any) ([]byte, error) {
	var raw json.RawMessage
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("encoding the payload of opcode %d: %w", opcode, err)
		}
		raw = b
	}
	return json.Marshal(frame{Ver: protoVersion, Cmd: cmdRequest, Seq: seq, Opcode: opcode, Payload: raw})
}

// Error is MAX's answer of kind error (cmd 3) or not found (cmd 2) to a
// request. Code is MAX's identifier of the error ("login.token", …).
type Error struct {
	Opcode  int
	Code    string
	Message string
}

// Error names the opcode and MAX's code and message.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "(no message)"
	}
	return fmt.Sprintf("MAX refused opcode %d: %s: %s", e.Opcode, e.Code, msg)
}

// parseError reads the payload of an error reply: {"error": code,
// "message": …, "localizedMessage": …} (szonov/max rpc/call.go).
func parseError(opcode, cmd int, payload []byte) *Error {
	var p struct {
		Error            string `json:"error"`
		Message          string `json:"message"`
		LocalizedMessage string `json:"localizedMessage"`
		Title            string `json:"title"`
	}
	_ = json.Unmarshal(payload, &p) // an unreadable error is still an error
	e := &Error{Opcode: opcode, Code: clip(p.Error, 100), Message: clip(cmp.Or(p.Message, p.LocalizedMessage, p.Title), 300)}
	if e.Code == "" {
		if cmd == cmdNotFound {
			e.Code = "not.found"
		} else {
			e.Code = "unknown"
		}
	}
	return e
}

// The kinds of MAX error that portrait tells apart. MAX's codes are not
// documented: they are matched by the words the public clients show
// ("login.token", "not.found", …), see errorKind.
type errKind int

const (
	kindOther errKind = iota
	kindBadToken
	kindNotFound
	kindRateLimit
	kindDenied
	kindTimeout
)

// errorKind classifies a MAX error code.
func errorKind(code string) errKind {
	c := strings.ToLower(code)
	switch {
	case c == "login.token" || strings.Contains(c, "token.invalid") || strings.Contains(c, "session.expired") || strings.Contains(c, "not.authorized"):
		return kindBadToken
	case strings.Contains(c, "limit") || strings.Contains(c, "too.many") || strings.Contains(c, "flood"):
		return kindRateLimit
	case strings.Contains(c, "not.found") || strings.Contains(c, "notfound"):
		return kindNotFound
	case strings.Contains(c, "timeout") || strings.Contains(c, "timed.out"):
		return kindTimeout
	case strings.Contains(c, "denied") || strings.Contains(c, "forbidden") || strings.Contains(c, "access") ||
		strings.Contains(c, "permission") || strings.Contains(c, "admin") || strings.Contains(c, "not.allowed"):
		return kindDenied
	}
	return kindOther
}

// flexID is an id MAX sends as a JSON number or string; it holds the
// decimal digits ("" when absent or null).
type flexID string

// UnmarshalJSON accepts a number, a string of digits, or null.
func (f *flexID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*f = ""
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if s == "" {
		*f = ""
		return nil
	}
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return fmt.Errorf("id %q is not an integer", clip(s, 40))
	}
	*f = flexID(s)
	return nil
}

// name is one of a user's names.
type name struct {
	Name      string `json:"name"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Type      string `json:"type"`
}

// contact is a MAX user as opcode 32, the login reply and pushes describe
// it (PyMax types: ContactMappingModel).
type contact struct {
	ID         flexID `json:"id"`
	Names      []name `json:"names"`
	Phone      flexID `json:"phone"`
	PhotoID    flexID `json:"photoId"`
	BaseURL    string `json:"baseUrl"`
	BaseRawURL string `json:"baseRawUrl"`
}

// pictureURL is the URL of the largest picture MAX offers.
func (c contact) pictureURL() string { return cmp.Or(c.BaseRawURL, c.BaseURL) }

// pictureID is MAX's photoId, or an id derived from the URL when MAX gives
// none; "" when the user has no picture.
func (c contact) pictureID() string {
	if c.PhotoID != "" && c.PhotoID != "0" {
		return string(c.PhotoID)
	}
	return urlID(c.pictureURL())
}

// firstName is the name MAX requires when the profile is changed.
func (c contact) firstName() (first, last string) {
	for _, n := range c.Names {
		if n.FirstName != "" {
			return n.FirstName, n.LastName
		}
	}
	for _, n := range c.Names {
		if n.Name != "" {
			return n.Name, ""
		}
	}
	return "", ""
}

// chat is a MAX chat as opcode 48 and pushes describe it (PyMax types:
// ChatMappingModel). Only groups ("CHAT") have pictures portrait serves.
type chat struct {
	ID             flexID           `json:"id"`
	Type           string           `json:"type"`
	Status         string           `json:"status"`
	Owner          flexID           `json:"owner"`
	Admins         []flexID         `json:"admins"`
	Participants   map[string]int64 `json:"participants"`
	PhotoID        flexID           `json:"photoId"`
	BaseIconURL    string           `json:"baseIconUrl"`
	BaseRawIconURL string           `json:"baseRawIconUrl"`
	Options        json.RawMessage  `json:"options"`
}

func (c chat) pictureURL() string { return cmp.Or(c.BaseRawIconURL, c.BaseIconURL) }

// pictureID is the chat's photoId when MAX sends one (no public client
// shows it does), else an id derived from the icon's URL.
func (c chat) pictureID() string {
	if c.PhotoID != "" && c.PhotoID != "0" {
		return string(c.PhotoID)
	}
	return urlID(c.pictureURL())
}

// isAdmin reports whether user is the chat's owner or one of its admins.
func (c chat) isAdmin(user string) bool {
	if string(c.Owner) == user {
		return true
	}
	for _, a := range c.Admins {
		if string(a) == user {
			return true
		}
	}
	return false
}

// onlyOwnerEdits reports the option ONLY_OWNER_CAN_CHANGE_ICON_TITLE.
func (c chat) onlyOwnerEdits() bool {
	var opts map[string]bool
	if json.Unmarshal(c.Options, &opts) != nil {
		return false
	}
	return opts["ONLY_OWNER_CAN_CHANGE_ICON_TITLE"]
}

// member reports whether user is among the chat's participants.
func (c chat) member(user string) bool {
	if c.Participants == nil {
		return true // not told: do not claim otherwise
	}
	_, ok := c.Participants[user]
	return ok
}

// urlID derives a picture id from a picture URL: a hash of it, so that the
// URL (which may carry a signature) is never stored as an id.
func urlID(u string) string {
	if u == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(u))
	return "u" + hex.EncodeToString(sum[:12])
}

// parseContacts reads the reply of opcode 32: {"contacts": [...]}.
func parseContacts(payload []byte) ([]contact, error) {
	var p struct {
		Contacts []contact `json:"contacts"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("reading the contacts: %w", err)
	}
	return p.Contacts, nil
}

// parseChats reads the reply of opcode 48: {"chats": [...]}.
func parseChats(payload []byte) ([]chat, error) {
	var p struct {
		Chats []chat `json:"chats"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("reading the chats: %w", err)
	}
	return p.Chats, nil
}

// loginInfo is what portrait reads of the login reply (opcode 19): the own
// profile, and the contacts and chats it already knows the pictures of.
type loginInfo struct {
	Profile  contact
	Contacts []contact
	Chats    []chat
}

// parseLogin reads the reply of opcode 19 (and of opcode 16, and the
// payload of push 159): {"profile": {"contact": {...}}, "contacts", "chats"}.
func parseLogin(payload []byte) (loginInfo, error) {
	var p struct {
		Profile *struct {
			Contact *contact `json:"contact"`
		} `json:"profile"`
		Contacts []contact `json:"contacts"`
		Chats    []chat    `json:"chats"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return loginInfo{}, fmt.Errorf("reading the profile: %w", err)
	}
	if p.Profile == nil || p.Profile.Contact == nil || p.Profile.Contact.ID == "" {
		return loginInfo{}, errors.New("reading the profile: MAX sent no own user id")
	}
	return loginInfo{Profile: *p.Profile.Contact, Contacts: p.Contacts, Chats: p.Chats}, nil
}

// qrStart is the reply of opcode 288.
type qrStart struct {
	Link            string `json:"qrLink"`
	TrackID         string `json:"trackId"`
	PollingInterval int64  `json:"pollingInterval"` // milliseconds
	ExpiresAt       int64  `json:"expiresAt"`       // Unix milliseconds
}

// parseQRStart reads the reply of opcode 288.
func parseQRStart(payload []byte) (qrStart, error) {
	var q qrStart
	if err := json.Unmarshal(payload, &q); err != nil {
		return qrStart{}, fmt.Errorf("reading the QR code: %w", err)
	}
	switch {
	case q.Link == "" || q.TrackID == "":
		return qrStart{}, errors.New("reading the QR code: MAX sent no link or no track id")
	case len(q.Link) > 2048:
		return qrStart{}, errors.New("reading the QR code: the link is too long for a QR code")
	}
	return q, nil
}

// parseQRStatus reads the reply of opcode 289: whether the code was
// scanned and the login may be completed.
func parseQRStatus(payload []byte) (bool, error) {
	var p struct {
		Status struct {
			LoginAvailable bool `json:"loginAvailable"`
		} `json:"status"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return false, fmt.Errorf("reading the QR status: %w", err)
	}
	return p.Status.LoginAvailable, nil
}

// errCloudPassword: the account has a cloud password (two-step
// verification), which portrait does not take.
var errCloudPassword = errors.New("the MAX account has a cloud password (two-step verification): switch it off in MAX (Settings → Privacy → Cloud password), then scan a new QR code")

// parseQRLogin reads the reply of opcode 291 (and 115): the login token, or
// errCloudPassword when MAX asks for the cloud password instead.
func parseQRLogin(payload []byte) (string, error) {
	var p struct {
		TokenAttrs struct {
			Login struct {
				Token string `json:"token"`
			} `json:"LOGIN"`
		} `json:"tokenAttrs"`
		PasswordChallenge json.RawMessage `json:"passwordChallenge"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return "", fmt.Errorf("reading the login: %w", err)
	}
	if t := p.TokenAttrs.Login.Token; t != "" {
		return t, nil
	}
	if len(p.PasswordChallenge) > 0 && string(p.PasswordChallenge) != "null" {
		return "", errCloudPassword
	}
	return "", errors.New("reading the login: MAX sent no token")
}

// parseUploadURL reads the reply of opcode 80: {"url": ...}. The photo id
// the upload's reply is keyed by is the url's photoIds parameter (PyMax
// api/uploads/service.py).
func parseUploadURL(payload []byte) (string, error) {
	var p struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return "", fmt.Errorf("reading the upload address: %w", err)
	}
	if p.URL == "" {
		return "", errors.New("reading the upload address: MAX sent none")
	}
	return p.URL, nil
}

// parseUploadReply reads the upload server's reply, {"photos": {"<photo
// id>": {"token": ...}}} (PyMax, vkmax), and returns the token of photoID,
// or of the only photo when photoID is not in it. A list of photos, which
// one client's notes show, is accepted too.
func parseUploadReply(body []byte, photoID string) (string, error) {
	type photo struct {
		Token string `json:"token"`
	}
	var p struct {
		Photos json.RawMessage `json:"photos"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return "", fmt.Errorf("reading the upload reply: %w", err)
	}
	var byID map[string]photo
	var list []photo
	if json.Unmarshal(p.Photos, &byID) != nil {
		byID = nil
		if json.Unmarshal(p.Photos, &list) != nil {
			list = nil
		}
	}
	if ph, ok := byID[photoID]; ok && ph.Token != "" {
		return ph.Token, nil
	}
	for _, ph := range byID {
		list = append(list, ph)
	}
	if len(list) == 1 && list[0].Token != "" {
		return list[0].Token, nil
	}
	return "", errors.New("reading the upload reply: no photo token in it")
}

// parsePush reads a push that may change pictures: the contacts (131), the
// chats (135) and the own profile (159) it is about. Other opcodes give
// nothing.
func parsePush(opcode int, payload []byte) (contacts []contact, chats []chat, err error) {
	var p struct {
		Contact  *contact  `json:"contact"`
		Contacts []contact `json:"contacts"`
		Chat     *chat     `json:"chat"`
		Chats    []chat    `json:"chats"`
		Profile  *struct {
			Contact *contact `json:"contact"`
		} `json:"profile"`
	}
	switch opcode {
	case opNotifContact, opNotifChat, opNotifProfile:
	default:
		return nil, nil, nil
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, nil, fmt.Errorf("reading push %d: %w", opcode, err)
	}
	if p.Contact != nil {
		contacts = append(contacts, *p.Contact)
	}
	contacts = append(contacts, p.Contacts...)
	if p.Profile != nil && p.Profile.Contact != nil {
		contacts = append(contacts, *p.Profile.Contact)
	}
	if p.Chat != nil {
		chats = append(chats, *p.Chat)
	}
	chats = append(chats, p.Chats...)
	return contacts, chats, nil
}

// clip shortens s to at most n bytes (for messages from MAX in errors).
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
