package client

import (
	"encoding/json"
	"fmt"
)

// AvatarResponse is the reply of getAvatar.
type AvatarResponse struct {
	// URLAvatar is the picture's URL; empty when there is no picture or it
	// is hidden.
	URLAvatar string `json:"urlAvatar"`
	// Available is false when the contact's privacy settings hide the
	// picture from this account.
	Available bool `json:"available"`
}

// SetProfilePictureResponse is the reply of setProfilePicture.
type SetProfilePictureResponse struct {
	// Reason says why the picture was not set (e.g. "rate-overlimit"); null
	// (nil) or "" on success.
	Reason *string `json:"reason"`
	// URLAvatar is the new picture's URL; null (nil) on failure.
	URLAvatar *string `json:"urlAvatar"`
	// SetProfilePicture reports success.
	SetProfilePicture bool `json:"setProfilePicture"`
}

// SetGroupPictureResponse is the reply of setGroupPicture.
type SetGroupPictureResponse struct {
	// Reason says why the picture was not set (e.g. "Timed Out" for an
	// unknown group); "" on success.
	Reason *string `json:"reason"`
	// URLAvatar is the new picture's URL; null (nil) on failure.
	URLAvatar *string `json:"urlAvatar"`
	// SetGroupPicture reports success.
	SetGroupPicture bool `json:"setGroupPicture"`
}

// WaSettings is the reply of getWaSettings: the linked WhatsApp account.
type WaSettings struct {
	Avatar        string `json:"avatar"`        // URL of the account's own picture
	Phone         string `json:"phone"`         // the account's number, digits only
	StateInstance string `json:"stateInstance"` // see the State constants
	DeviceID      string `json:"deviceId"`      // e.g. "79001234567:8@s.whatsapp.net"
}

// AccountSettings is the reply of getAccountSettings (MAX): the linked MAX
// account.
type AccountSettings struct {
	Avatar        string `json:"avatar"`        // URL of the account's own picture
	Phone         string `json:"phone"`         // the account's number
	StateInstance string `json:"stateInstance"` // see the State constants
	ChatID        string `json:"chatId"`        // the account's own chat id
}

// QRResponse is the reply of qr.
type QRResponse struct {
	// Type is QRCode, QRAlreadyLogged or QRError.
	Type string `json:"type"`
	// Message is the QR code as a base64 PNG (Type QRCode) or a text.
	Message string `json:"message"`
}

// The values of QRResponse.Type.
const (
	QRCode          = "qrCode"
	QRAlreadyLogged = "alreadyLogged"
	QRError         = "error"
)

// The values of stateInstance.
const (
	StateNotAuthorized = "notAuthorized"
	StateAuthorized    = "authorized"
	StateBlocked       = "blocked"
	StateStarting      = "starting"
	StateSuspended     = "suspended"
	StateYellowCard    = "yellowCard"
)

// YesNo is a GREEN-API on/off setting, "yes" or "no" on the wire. The zero
// value means "not set": SetSettings leaves such a setting unchanged.
type YesNo int8

// The values of a YesNo setting.
const (
	Yes YesNo = 1
	No  YesNo = 2
)

// Bool reports whether the setting is Yes.
func (v YesNo) Bool() bool { return v == Yes }

// String returns "yes", "no" or "" (not set).
func (v YesNo) String() string {
	switch v {
	case Yes:
		return "yes"
	case No:
		return "no"
	}
	return ""
}

// MarshalJSON writes "yes" or "no" (null when not set).
func (v YesNo) MarshalJSON() ([]byte, error) {
	switch v {
	case Yes, No:
		return json.Marshal(v.String())
	case 0:
		return []byte("null"), nil
	}
	return nil, fmt.Errorf("client: invalid YesNo value %d", int8(v))
}

// UnmarshalJSON reads "yes"/"no" (and, leniently, true/false); anything
// else reads as not set.
func (v *YesNo) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		switch s {
		case "yes":
			*v = Yes
		case "no":
			*v = No
		default:
			*v = 0
		}
		return nil
	}
	var t bool
	if json.Unmarshal(b, &t) == nil {
		*v = No
		if t {
			*v = Yes
		}
		return nil
	}
	*v = 0
	return nil
}

// Ptr returns a pointer to v, for the pointer fields of Settings:
// client.Settings{WebhookURL: client.Ptr("")}.
func Ptr[T any](v T) *T { return &v }

// Settings are an instance's settings (getSettings/setSettings). For
// SetSettings, nil pointers and zero YesNo values are left out of the
// request, so only the settings that are set change.
type Settings struct {
	// Wid is the account's own chat id (read only).
	Wid string `json:"wid,omitempty"`
	// TypeInstance is "whatsapp" or "v3" (MAX) (read only; GREEN-API sends
	// it for MAX instances).
	TypeInstance string `json:"typeInstance,omitempty"`
	// WebhookURL is where notifications are posted; "" means none (poll with
	// ReceiveNotification).
	WebhookURL *string `json:"webhookUrl,omitempty"`
	// WebhookURLToken is sent as "Authorization: Bearer <token>" with each
	// webhook.
	WebhookURLToken *string `json:"webhookUrlToken,omitempty"`
	// DelaySendMessagesMilliseconds is the message sending interval.
	DelaySendMessagesMilliseconds *int `json:"delaySendMessagesMilliseconds,omitempty"`

	MarkIncomingMessagesReaded        YesNo `json:"markIncomingMessagesReaded,omitempty"`
	MarkIncomingMessagesReadedOnReply YesNo `json:"markIncomingMessagesReadedOnReply,omitempty"`
	OutgoingWebhook                   YesNo `json:"outgoingWebhook,omitempty"`
	OutgoingMessageWebhook            YesNo `json:"outgoingMessageWebhook,omitempty"`
	OutgoingAPIMessageWebhook         YesNo `json:"outgoingAPIMessageWebhook,omitempty"`
	IncomingWebhook                   YesNo `json:"incomingWebhook,omitempty"`
	DeviceWebhook                     YesNo `json:"deviceWebhook,omitempty"`
	// StateWebhook switches the stateInstanceChanged notification.
	StateWebhook          YesNo `json:"stateWebhook,omitempty"`
	KeepOnlineStatus      YesNo `json:"keepOnlineStatus,omitempty"`
	PollMessageWebhook    YesNo `json:"pollMessageWebhook,omitempty"`
	IncomingCallWebhook   YesNo `json:"incomingCallWebhook,omitempty"`
	IncomingBlockWebhook  YesNo `json:"incomingBlockWebhook,omitempty"`
	EditedMessageWebhook  YesNo `json:"editedMessageWebhook,omitempty"`
	DeletedMessageWebhook YesNo `json:"deletedMessageWebhook,omitempty"`

	// AvatarInfoWebhook switches the avatarInfo notification (the result of
	// GetAvatarAsync). Not documented by GREEN-API (only its console knows
	// the name); portrait acts on it.
	AvatarInfoWebhook YesNo `json:"avatarInfoWebhook,omitempty"`
	// AvatarChangedWebhook switches the avatarChanged notification.
	// Portrait extension: GREEN-API has no such setting.
	AvatarChangedWebhook YesNo `json:"avatarChangedWebhook,omitempty"`
}

// Notification is one entry of the notification queue, as returned by
// ReceiveNotification.
type Notification struct {
	// ReceiptID identifies the entry for DeleteNotification.
	ReceiptID int64 `json:"receiptId"`
	// Body is the notification, as a webhook would carry it.
	Body json.RawMessage `json:"body"`
}

// The values of NotificationBody.TypeWebhook this package knows.
const (
	// TypeAvatarInfo carries the result of GetAvatarAsync in AvatarInfo.
	TypeAvatarInfo = "avatarInfo"
	// TypeStateInstanceChanged carries the new state in StateInstance.
	TypeStateInstanceChanged = "stateInstanceChanged"
	// TypeAvatarChanged tells that a contact, a group or the account changed
	// picture. Portrait extension: GREEN-API has no such notification.
	TypeAvatarChanged = "avatarChanged"
)

// NotificationBody is the common envelope of a notification plus the fields
// of the types this package knows; the rest stays in Notification.Body.
type NotificationBody struct {
	TypeWebhook  string       `json:"typeWebhook"`
	InstanceData InstanceData `json:"instanceData"`
	Timestamp    int64        `json:"timestamp"` // unix seconds
	// StateInstance is set for TypeStateInstanceChanged.
	StateInstance string `json:"stateInstance,omitempty"`
	// AvatarInfo is set for TypeAvatarInfo.
	AvatarInfo *AvatarInfo `json:"avatarInfo,omitempty"`
	// AvatarChanged is set for TypeAvatarChanged (portrait extension).
	AvatarChanged *AvatarChanged `json:"avatarChanged,omitempty"`
}

// AvatarChanged is the payload of an avatarChanged notification (portrait
// extension): a contact, a group or the account itself changed or removed
// its picture.
type AvatarChanged struct {
	ChatID string `json:"chatId"`
	// Kind is "contact", "group" or "self".
	Kind string `json:"kind"`
	// Author is who changed a group's picture, when known.
	Author string `json:"author,omitempty"`
	// Removed is true when the picture was removed.
	Removed bool `json:"removed"`
	// URLAvatar is the new picture's stable URL; "" when removed or hidden.
	URLAvatar string `json:"urlAvatar"`
	// Available is false when the new picture is hidden by privacy.
	Available bool `json:"available"`
	// Reason is set when the new picture could not be looked up.
	Reason string `json:"reason,omitempty"`
	// ChangedAt is when the messenger reported the change (unix seconds).
	ChangedAt int64 `json:"changedAt"`
}

// InstanceData identifies the instance a notification comes from.
type InstanceData struct {
	IDInstance   int64  `json:"idInstance"`
	Wid          string `json:"wid"`          // the account's own chat id
	TypeInstance string `json:"typeInstance"` // "whatsapp" or "v3"
}

// AvatarInfo is the payload of an avatarInfo notification.
type AvatarInfo struct {
	ChatID    string `json:"chatId"`
	URLAvatar string `json:"urlAvatar"`
	Available bool   `json:"available"`
	// Reason is set when the lookup failed, e.g. "bad request data" or
	// "get avatar timeout limit exceeded".
	Reason string `json:"reason,omitempty"`
}

// Decode parses the notification's envelope and known fields.
func (n *Notification) Decode() (NotificationBody, error) {
	var b NotificationBody
	if err := json.Unmarshal(n.Body, &b); err != nil {
		return b, fmt.Errorf("client: decode notification %d: %w", n.ReceiptID, err)
	}
	return b, nil
}
