package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/portrait-dev/portrait"
)

// Group roles: what the sandbox account is in a group.
const (
	// RoleAdmin: the account administers the group and may always change its picture.
	RoleAdmin = "admin"
	// RoleMember: the account is a plain member; it may change the picture
	// unless the group lets only admins edit its info.
	RoleMember = "member"
	// RoleNone: the account is not in the group.
	RoleNone = "none"
)

// Per-contact faults of the simulated upstream. They apply only while
// Options.Faults is on.
const (
	// FaultNone: the contact behaves normally.
	FaultNone = ""
	// FaultTimeout: a picture lookup hangs for Options.FaultTimeout and then
	// fails with portrait.ErrUpstreamTimeout.
	FaultTimeout = "timeout"
	// FaultRateLimit: a picture lookup fails with portrait.ErrUpstreamRateLimit.
	FaultRateLimit = "rate-limit"
)

// World is everything the simulated messenger knows for one instance: the
// account, its contacts and its groups. Engine.World returns it without
// picture bytes; a Seeder returns it with them (Picture.Data).
type World struct {
	// Type is the instance type the world is for; chat ids follow its rules.
	Type     portrait.InstanceType `json:"type"`
	Account  Account               `json:"account"`
	Contacts []Contact             `json:"contacts"`
	Groups   []Group               `json:"groups"`
}

// Account is the messenger account of the instance.
type Account struct {
	// Phone is the account's own number, digits only. WhatsApp requires it:
	// the account's chat id is "<phone>@c.us".
	Phone string `json:"phone,omitempty"`
	// ID is the account's own user id on MAX (a positive number); empty on
	// WhatsApp.
	ID string `json:"id,omitempty"`
	// Linked says whether the instance is linked (authorized).
	Linked bool `json:"linked"`
	// Picture is the account's own picture; nil when none is set.
	Picture *Picture `json:"picture,omitempty"`
}

// Contact is a person the simulated messenger knows, or a number it knows to
// have no account.
type Contact struct {
	// ChatID is the contact's chat id: "<phone>@c.us" or "<n>@lid" on
	// WhatsApp, a positive number on MAX.
	ChatID string `json:"chatId"`
	// Name is a label for people reading the world; the messenger ignores it.
	Name string `json:"name,omitempty"`
	// HasAccount is false for a number that has no account on the messenger.
	HasAccount bool `json:"hasAccount"`
	// Hidden says the contact's privacy settings hide the picture from the account.
	Hidden bool `json:"hidden,omitempty"`
	// Fault is FaultNone, FaultTimeout or FaultRateLimit.
	Fault string `json:"fault,omitempty"`
	// Picture is the contact's picture; nil when none is set.
	Picture *Picture `json:"picture,omitempty"`
}

// Group is a group the simulated messenger knows.
type Group struct {
	// ChatID is the group's chat id: "…@g.us" on WhatsApp, a negative number on MAX.
	ChatID string `json:"chatId"`
	// Name is the group's subject.
	Name string `json:"name,omitempty"`
	// Role is what the account is in the group: RoleAdmin, RoleMember or RoleNone.
	Role string `json:"role"`
	// OnlyAdminsEditInfo says only admins may change the group's info,
	// including its picture.
	OnlyAdminsEditInfo bool `json:"onlyAdminsEditInfo,omitempty"`
	// Picture is the group's picture; nil when none is set.
	Picture *Picture `json:"picture,omitempty"`
}

// Picture is a picture held by the simulated messenger.
type Picture struct {
	// ID is the messenger's picture id: a decimal number that grows with
	// every change in the world. Seeders may leave it empty; the engine
	// assigns ids when it stores a seeded world.
	ID string `json:"id,omitempty"`
	// MIME is the sniffed content type, e.g. "image/jpeg".
	MIME string `json:"mime,omitempty"`
	// Size is the length of the picture in bytes.
	Size int `json:"size,omitempty"`
	// Source says where the picture came from: the world file's picture
	// value ("generated:alice", a file name, "data:" for inline data), "set"
	// for SetPicture, "update" for Engine.Update.
	Source string `json:"source,omitempty"`
	// ChangedAt is when the picture was stored.
	ChangedAt time.Time `json:"changedAt,omitzero"`
	// Data holds the bytes in a seeded world; it is never persisted in the
	// world document and is nil in worlds returned by Engine.World.
	Data []byte `json:"-"`
}

// OwnChatID returns the account's own chat id: "<phone>@c.us" on WhatsApp,
// the account id on MAX.
func (w *World) OwnChatID() string {
	if w.Type == portrait.TypeMAX {
		return w.Account.ID
	}
	if w.Account.Phone == "" {
		return ""
	}
	return w.Account.Phone + "@c.us"
}

// contact returns the contact with chat id chat, or nil.
func (w *World) contact(chat string) *Contact {
	for i := range w.Contacts {
		if w.Contacts[i].ChatID == chat {
			return &w.Contacts[i]
		}
	}
	return nil
}

// group returns the group with chat id chat, or nil.
func (w *World) group(chat string) *Group {
	for i := range w.Groups {
		if w.Groups[i].ChatID == chat {
			return &w.Groups[i]
		}
	}
	return nil
}

// clone returns a deep copy of w; picture bytes are shared, not copied, and
// dropped when withData is false.
func (w *World) clone(withData bool) World {
	c := *w
	c.Account.Picture = clonePicture(w.Account.Picture, withData)
	c.Contacts = make([]Contact, len(w.Contacts))
	for i, ct := range w.Contacts {
		ct.Picture = clonePicture(ct.Picture, withData)
		c.Contacts[i] = ct
	}
	c.Groups = make([]Group, len(w.Groups))
	for i, g := range w.Groups {
		g.Picture = clonePicture(g.Picture, withData)
		c.Groups[i] = g
	}
	return c
}

func clonePicture(p *Picture, withData bool) *Picture {
	if p == nil {
		return nil
	}
	c := *p
	if !withData {
		c.Data = nil
	}
	return &c
}

// Validate checks the world: a known type, a valid account, and chat ids,
// roles and faults that are valid for the type, with no chat listed twice.
// Its errors name the offending entry and field, e.g.
// `contacts[2] ("123@c.us"): chatId: …`.
func (w *World) Validate() error {
	if !w.Type.Valid() {
		return fmt.Errorf("type: unknown instance type %q (want %q or %q)", w.Type, portrait.TypeWhatsApp, portrait.TypeMAX)
	}
	if err := w.validateAccount(); err != nil {
		return fmt.Errorf("account: %w", err)
	}
	own := w.OwnChatID()
	seen := map[string]string{own: "the account's own id"}
	for i, c := range w.Contacts {
		where := fmt.Sprintf("contacts[%d] (%q)", i, c.ChatID)
		if err := validateChatID(w.Type, c.ChatID, portrait.KindContact); err != nil {
			return fmt.Errorf("%s: chatId: %w", where, err)
		}
		if prev, dup := seen[c.ChatID]; dup {
			return fmt.Errorf("%s: chatId: already used by %s", where, prev)
		}
		seen[c.ChatID] = where
		switch c.Fault {
		case FaultNone, FaultTimeout, FaultRateLimit:
		default:
			return fmt.Errorf("%s: fault: unknown fault %q (want %q, %q or %q)", where, c.Fault, FaultNone, FaultTimeout, FaultRateLimit)
		}
	}
	for i, g := range w.Groups {
		where := fmt.Sprintf("groups[%d] (%q)", i, g.ChatID)
		if err := validateChatID(w.Type, g.ChatID, portrait.KindGroup); err != nil {
			return fmt.Errorf("%s: chatId: %w", where, err)
		}
		if prev, dup := seen[g.ChatID]; dup {
			return fmt.Errorf("%s: chatId: already used by %s", where, prev)
		}
		seen[g.ChatID] = where
		if !validRole(g.Role) {
			return fmt.Errorf("%s: role: unknown role %q (want %q, %q or %q)", where, g.Role, RoleAdmin, RoleMember, RoleNone)
		}
	}
	return nil
}

func (w *World) validateAccount() error {
	a := w.Account
	if w.Type == portrait.TypeMAX {
		if a.ID == "" {
			return errors.New("id: the MAX account needs its own user id (a positive number)")
		}
		if err := validateChatID(w.Type, a.ID, portrait.KindContact); err != nil {
			return fmt.Errorf("id: %w", err)
		}
		if a.Phone != "" && !isPhone(a.Phone) {
			return fmt.Errorf("phone: %q is not a phone number of 7 to 15 digits", a.Phone)
		}
		return nil
	}
	if a.ID != "" {
		return errors.New("id: only MAX accounts have an id; a WhatsApp account is named by its phone")
	}
	if a.Phone == "" {
		return errors.New("phone: the WhatsApp account needs its own phone number")
	}
	if !isPhone(a.Phone) {
		return fmt.Errorf("phone: %q is not a phone number of 7 to 15 digits", a.Phone)
	}
	return nil
}

func validRole(r string) bool { return r == RoleAdmin || r == RoleMember || r == RoleNone }

// validateChatID checks that s is a chat id of kind want for type t.
func validateChatID(t portrait.InstanceType, s string, want portrait.ChatKind) error {
	if s == "" {
		return errors.New("missing")
	}
	c, err := portrait.ParseChatID(t, s)
	if err != nil {
		return fmt.Errorf("invalid %s chat id %q: %w", typeLabel(t), s, err)
	}
	if c.Kind() != want {
		return fmt.Errorf("%q is a %s id, not a %s id", s, c.Kind(), want)
	}
	return nil
}

func isPhone(s string) bool {
	_, err := portrait.ParseChatID(portrait.TypeWhatsApp, s+"@c.us")
	return err == nil
}

func typeLabel(t portrait.InstanceType) string {
	if t == portrait.TypeMAX {
		return "MAX"
	}
	return "WhatsApp"
}

// sniffImage returns the MIME type of an image, or an error when data does
// not look like one.
func sniffImage(data []byte) (string, error) {
	if len(data) == 0 {
		return "", errors.New("empty picture")
	}
	// http.DetectContentType knows JPEG, PNG, GIF, WebP, BMP and ICO.
	mime := http.DetectContentType(data)
	if bytes.HasPrefix([]byte(mime), []byte("image/")) {
		return mime, nil
	}
	return "", fmt.Errorf("not an image (content looks like %s)", mime)
}
