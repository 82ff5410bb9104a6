// Package portrait holds the domain of the portrait avatar gateway: instances,
// chat ids, lookup outcomes, the messenger engine interface and the store
// interfaces. It has no dependencies outside the standard library; every
// dependency (HTTP, SQLite, the sandbox messenger, whatsmeow) lives in a
// subpackage that implements or uses these types.
package portrait

import (
	"context"
	"time"
)

// InstanceType is the messenger an instance speaks for, as GREEN-API names it
// in typeInstance.
type InstanceType string

// The instance types.
const (
	// TypeWhatsApp instances are served under /waInstance….
	TypeWhatsApp InstanceType = "whatsapp"
	// TypeMAX instances (the MAX messenger) are served under /v3/waInstance….
	TypeMAX InstanceType = "v3"
)

// Valid reports whether t is a known instance type.
func (t InstanceType) Valid() bool { return t == TypeWhatsApp || t == TypeMAX }

// InstanceID is an idInstance: a 10-digit number.
type InstanceID int64

// Instance is one account on one messenger, reached through one engine.
type Instance struct {
	ID        InstanceID
	Type      InstanceType
	Engine    string // name of the engine, e.g. "sandbox" or "whatsapp"
	TokenHash []byte // SHA-256 of apiTokenInstance; the token itself is never stored
	Settings  Settings
	CreatedAt time.Time
}

// Settings are the per-instance settings of getSettings/setSettings that
// portrait acts on, plus the ones it stores only so that clients reading them
// back see what they wrote.
type Settings struct {
	WebhookURL           string `json:"webhookUrl"`
	WebhookURLToken      string `json:"webhookUrlToken"`
	StateWebhook         bool   `json:"stateWebhook"`
	AvatarInfoWebhook    bool   `json:"avatarInfoWebhook"`
	AvatarChangedWebhook bool   `json:"avatarChangedWebhook"`
	// Extra holds the GREEN-API settings portrait does not act on (for
	// example incomingWebhook or delaySendMessagesMilliseconds), keyed by
	// their wire name, with their JSON values as written by the client.
	Extra map[string]string `json:"extra,omitempty"`
}

// DefaultSettings are the settings of a new instance: like GREEN-API's,
// every upstream switch is off (stateWebhook "no"), while portrait's own
// avatar notifications are on.
func DefaultSettings() Settings {
	return Settings{AvatarInfoWebhook: true, AvatarChangedWebhook: true}
}

// State is an instance's stateInstance.
type State string

// The states of an instance, as getStateInstance reports them.
const (
	StateStarting      State = "starting"
	StateNotAuthorized State = "notAuthorized"
	StateAuthorized    State = "authorized"
	StateBlocked       State = "blocked"
	StateSuspended     State = "suspended"
	StateYellowCard    State = "yellowCard"
)

// Account describes the messenger account an instance is linked to.
type Account struct {
	Wid      string // own chat id, e.g. "11001234567@c.us"; "" when not linked
	Phone    string // own number, digits only; "" when not linked
	DeviceID string // e.g. "11001234567:8@s.whatsapp.net"
}

// KV is the per-instance key/value space engines use to persist their own
// state (the sandbox keeps its world there) in portrait's store.
type KV interface {
	// Get returns the value stored under key, or ErrNotFound.
	Get(ctx context.Context, id InstanceID, key string) ([]byte, error)
	// Put stores value under key, replacing any previous value. It returns
	// ErrNotFound when the instance does not exist.
	Put(ctx context.Context, id InstanceID, key string, value []byte) error
	// DeleteKey removes the value under key; a missing key is not an error.
	DeleteKey(ctx context.Context, id InstanceID, key string) error
}
