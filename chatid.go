package portrait

import (
	"fmt"
	"strconv"
	"strings"
)

// ChatKind says what a chat id names.
type ChatKind uint8

// The kinds of chat.
const (
	// KindContact is a person: WhatsApp "<phone>@c.us" or "<n>@lid", MAX a positive id.
	KindContact ChatKind = iota + 1
	// KindGroup is a group: WhatsApp "…@g.us", MAX a negative id.
	KindGroup
)

// String returns "contact" or "group".
func (k ChatKind) String() string {
	switch k {
	case KindContact:
		return "contact"
	case KindGroup:
		return "group"
	}
	return "unknown"
}

// ChatID is a validated chat id in its canonical wire form.
type ChatID struct {
	s    string
	kind ChatKind
}

// String returns the chat id as it appears on the wire.
func (c ChatID) String() string { return c.s }

// Kind returns whether the id names a contact or a group.
func (c ChatID) Kind() ChatKind { return c.kind }

// IsZero reports whether c is the zero ChatID.
func (c ChatID) IsZero() bool { return c.s == "" }

// IsLID reports whether c is a WhatsApp "@lid" privacy id.
func (c ChatID) IsLID() bool { return strings.HasSuffix(c.s, "@lid") }

// User returns the part before the "@" (WhatsApp) or the whole id (MAX).
func (c ChatID) User() string {
	if i := strings.IndexByte(c.s, '@'); i >= 0 {
		return c.s[:i]
	}
	return c.s
}

// The validation messages of chat ids, as GREEN-API words them.
const (
	chatIDFormatsWhatsApp = "'chatId' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'"
	chatIDFormatsMAX      = "'chatId' must be a MAX chat id: a positive number for a user or a negative number for a group, as a string"
)

// ChatIDError is a chat id that failed validation. Its message is the one the
// API returns after "Validation failed. Details: ".
type ChatIDError struct {
	Field  string // the request field, e.g. "chatId" or "groupId"
	Value  string
	Reason string
}

func (e *ChatIDError) Error() string { return e.Reason }

// ParseChatID validates s as a chat id for an instance of type t.
//
// WhatsApp ids are "<phone>@c.us" (7–15 digits, no leading 0), "<n>@lid"
// (1–20 digits, no leading 0), "<18 digits>@g.us" or "<phone>-<unix time>@g.us"
// (15–20 digits for the new form; neither part may start with 0). MAX ids match
// ^-?[1-9][0-9]*$: positive for users (at most 19 digits) and negative for
// groups (at most 16 characters with the sign).
func ParseChatID(t InstanceType, s string) (ChatID, error) {
	if t == TypeMAX {
		return parseMAX(s)
	}
	return parseWhatsApp(s)
}

func parseWhatsApp(s string) (ChatID, error) {
	bad := func() (ChatID, error) {
		return ChatID{}, &ChatIDError{Field: "chatId", Value: s, Reason: chatIDFormatsWhatsApp}
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return bad()
	}
	user, server := s[:at], s[at+1:]
	switch server {
	case "c.us":
		if !digits(user, 7, 15) {
			return bad()
		}
		return ChatID{s: s, kind: KindContact}, nil
	case "lid":
		if !digits(user, 1, 20) {
			return bad()
		}
		return ChatID{s: s, kind: KindContact}, nil
	case "g.us":
		if creator, created, ok := strings.Cut(user, "-"); ok {
			if !digits(creator, 7, 15) || !digits(created, 9, 11) {
				return bad()
			}
			return ChatID{s: s, kind: KindGroup}, nil
		}
		if !digits(user, 15, 20) {
			return bad()
		}
		return ChatID{s: s, kind: KindGroup}, nil
	}
	return bad()
}

func parseMAX(s string) (ChatID, error) {
	bad := func() (ChatID, error) {
		return ChatID{}, &ChatIDError{Field: "chatId", Value: s, Reason: chatIDFormatsMAX}
	}
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		if len(s) > 16 || !digits(rest, 1, 15) {
			return bad()
		}
		return ChatID{s: s, kind: KindGroup}, nil
	}
	if !digits(s, 1, 19) {
		return bad()
	}
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return bad()
	}
	return ChatID{s: s, kind: KindContact}, nil
}

// digits reports whether s is min..max ASCII digits not starting with 0.
func digits(s string, min, max int) bool {
	if len(s) < min || len(s) > max || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// PhoneChatID turns the legacy getAvatar field phoneNumber (a JSON number such
// as 11001234567) into "<digits>@c.us" and validates it.
func PhoneChatID(phone int64) (ChatID, error) {
	s := fmt.Sprintf("%d@c.us", phone)
	c, err := parseWhatsApp(s)
	if err != nil {
		return ChatID{}, &ChatIDError{Field: "phoneNumber", Value: strconv.FormatInt(phone, 10),
			Reason: "'phoneNumber' must be a full international phone number of 7 to 15 digits"}
	}
	return c, nil
}

// MustChatID is ParseChatID for ids known to be valid (tests, the demo world).
// It panics on an invalid id.
func MustChatID(t InstanceType, s string) ChatID {
	c, err := ParseChatID(t, s)
	if err != nil {
		panic(fmt.Sprintf("portrait: invalid chat id %q: %v", s, err))
	}
	return c
}
