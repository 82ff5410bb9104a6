package greenapi

import (
	"encoding/json"

	"github.com/portrait-dev/portrait"
)

// The bodies the GREEN-API methods take and give, as the method table
// (routes.go) names them. Replies the handlers write are of these types,
// so that the table describes what is really sent.

// chatRequest, the body of getAvatar and getAvatarAsync, is in decode.go.

// avatarReply is getAvatar's reply.
type avatarReply struct {
	URLAvatar string `json:"urlAvatar"`
	Available bool   `json:"available"`
}

// pictureUpload is the multipart form of setProfilePicture.
type pictureUpload struct {
	File []byte `form:"file"`
}

// groupPictureUpload is the multipart form of setGroupPicture: the group
// as groupId (WhatsApp's name) or chatId (MAX's name).
type groupPictureUpload struct {
	GroupID string `form:"groupId"`
	ChatID  string `form:"chatId"`
	File    []byte `form:"file"`
}

// setProfilePictureReply is setProfilePicture's reply. Reason is null on
// success for WhatsApp (as GREEN-API answers) and "" for MAX.
type setProfilePictureReply struct {
	Reason            *string `json:"reason"`
	URLAvatar         *string `json:"urlAvatar"`
	SetProfilePicture bool    `json:"setProfilePicture"`
}

// setGroupPictureReply is setGroupPicture's reply.
type setGroupPictureReply struct {
	SetGroupPicture bool    `json:"setGroupPicture"`
	URLAvatar       *string `json:"urlAvatar"`
	Reason          string  `json:"reason"`
}

// notificationReply is receiveNotification's reply when there is a
// notification (null otherwise).
type notificationReply struct {
	ReceiptID int64           `json:"receiptId"`
	Body      json.RawMessage `json:"body"`
}

// deleteNotificationReply is deleteNotification's reply.
type deleteNotificationReply struct {
	Result bool   `json:"result"`
	Reason string `json:"reason"`
}

// settingsDoc is the settings object of getSettings and setSettings, by
// wire name (see account.go for the names and their values).
type settingsDoc map[string]json.RawMessage

// saveSettingsReply is setSettings' reply.
type saveSettingsReply struct {
	SaveSettings bool `json:"saveSettings"`
}

// stateReply is getStateInstance's reply.
type stateReply struct {
	StateInstance portrait.State `json:"stateInstance"`
}

// waSettingsReply is getWaSettings' reply.
type waSettingsReply struct {
	Avatar        string         `json:"avatar"`
	Phone         string         `json:"phone"`
	StateInstance portrait.State `json:"stateInstance"`
	DeviceID      string         `json:"deviceId"`
}

// accountSettingsReply is getAccountSettings' reply (MAX's getWaSettings).
type accountSettingsReply struct {
	Avatar        string         `json:"avatar"`
	Phone         string         `json:"phone"`
	StateInstance portrait.State `json:"stateInstance"`
	ChatID        string         `json:"chatId"`
}

// qrReply is the qr method's reply.
type qrReply struct {
	Type    portrait.QRKind `json:"type"`
	Message string          `json:"message"`
}

// authorizationCodeRequest is getAuthorizationCode's body.
type authorizationCodeRequest struct {
	PhoneNumber int64 `json:"phoneNumber"`
}

// authorizationCodeReply is getAuthorizationCode's reply.
type authorizationCodeReply struct {
	Status bool   `json:"status"`
	Code   string `json:"code"`
	Reason string `json:"reason,omitempty"`
}

// logoutReply is logout's reply.
type logoutReply struct {
	IsLogout bool `json:"isLogout"`
}

// rebootReply is reboot's reply.
type rebootReply struct {
	IsReboot bool `json:"isReboot"`
}

// removeProfilePictureReply is removeProfilePicture's reply (a method
// GREEN-API's users asked for; portrait's own).
type removeProfilePictureReply struct {
	RemoveProfilePicture bool   `json:"removeProfilePicture"`
	Reason               string `json:"reason"`
}

// groupRequest names a group as JSON: groupId (WhatsApp's name) or chatId
// (MAX's name).
type groupRequest struct {
	GroupID string `json:"groupId,omitempty"`
	ChatID  string `json:"chatId,omitempty"`
}

// removeGroupPictureReply is removeGroupPicture's reply.
type removeGroupPictureReply struct {
	RemoveGroupPicture bool   `json:"removeGroupPicture"`
	Reason             string `json:"reason"`
}
