package client

import (
	"context"
)

// The methods portrait adds to GREEN-API's (getAvatars, removing pictures,
// pictures by URL) and getAuthorizationCode.

// AuthorizationCodeResponse is the reply of getAuthorizationCode.
type AuthorizationCodeResponse struct {
	// Status is true when Code is a pairing code to type on the phone.
	Status bool `json:"status"`
	// Code is the pairing code, e.g. "ABCD-EFGH".
	Code string `json:"code"`
	// Reason says why there is no code (e.g. the account is linked).
	Reason string `json:"reason,omitempty"`
}

// GetAuthorizationCode starts linking by a code typed on the phone with the
// number phone (international, digits only) instead of by QR code:
// POST getAuthorizationCode {"phoneNumber": phone}. WhatsApp only.
func (c *Client) GetAuthorizationCode(ctx context.Context, phone int64) (AuthorizationCodeResponse, error) {
	var r AuthorizationCodeResponse
	data, err := c.postJSON(ctx, "getAuthorizationCode", struct {
		PhoneNumber int64 `json:"phoneNumber"`
	}{phone})
	if err != nil {
		return r, err
	}
	return r, decode("getAuthorizationCode", data, &r)
}

// AvatarsEntry is one chat of getAvatars' reply.
type AvatarsEntry struct {
	ChatID    string `json:"chatId"`
	URLAvatar string `json:"urlAvatar"`
	Available bool   `json:"available"`
	// Changed is set for the chats named in known: whether URLAvatar
	// differs from the known one.
	Changed *bool `json:"changed,omitempty"`
	// Error is set when this chat's lookup failed: the status and message
	// getAvatar would have answered.
	Error *EntryError `json:"error,omitempty"`
}

// EntryError is the failure of one chat of getAvatars.
type EntryError struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// GetAvatars looks up to 100 chats up at once: POST getAvatars {"chatIds",
// "known"}. known maps chat ids to the urlAvatar the caller already holds
// (may be nil); their entries say whether the picture changed. portrait
// only.
func (c *Client) GetAvatars(ctx context.Context, chatIDs []string, known map[string]string) ([]AvatarsEntry, error) {
	var r []AvatarsEntry
	data, err := c.postJSON(ctx, "getAvatars", struct {
		ChatIDs []string          `json:"chatIds"`
		Known   map[string]string `json:"known,omitempty"`
	}{chatIDs, known})
	if err != nil {
		return nil, err
	}
	return r, decode("getAvatars", data, &r)
}

// RemoveResponse is the reply of removeProfilePicture and
// removeGroupPicture: OK false is not an error, Reason says why.
type RemoveResponse struct {
	OK     bool
	Reason string
}

// RemoveProfilePicture removes the account's own picture:
// POST removeProfilePicture. portrait only.
func (c *Client) RemoveProfilePicture(ctx context.Context) (RemoveResponse, error) {
	var r struct {
		OK     bool   `json:"removeProfilePicture"`
		Reason string `json:"reason"`
	}
	data, err := c.postJSON(ctx, "removeProfilePicture", struct{}{})
	if err != nil {
		return RemoveResponse{}, err
	}
	err = decode("removeProfilePicture", data, &r)
	return RemoveResponse{OK: r.OK, Reason: r.Reason}, err
}

// RemoveGroupPicture removes the picture of the group groupID:
// POST removeGroupPicture {"groupId"} ("chatId" with WithMAX). portrait
// only.
func (c *Client) RemoveGroupPicture(ctx context.Context, groupID string) (RemoveResponse, error) {
	var r struct {
		OK     bool   `json:"removeGroupPicture"`
		Reason string `json:"reason"`
	}
	body := map[string]string{"groupId": groupID}
	if c.max {
		body = map[string]string{"chatId": groupID}
	}
	data, err := c.postJSON(ctx, "removeGroupPicture", body)
	if err != nil {
		return RemoveResponse{}, err
	}
	err = decode("removeGroupPicture", data, &r)
	return RemoveResponse{OK: r.OK, Reason: r.Reason}, err
}

// SetProfilePictureFromURL sets the account's own picture from the picture
// at url, which the server fetches: POST setProfilePicture {"urlFile"}.
// portrait only.
func (c *Client) SetProfilePictureFromURL(ctx context.Context, url string) (SetProfilePictureResponse, error) {
	var r SetProfilePictureResponse
	data, err := c.postJSON(ctx, "setProfilePicture", map[string]string{"urlFile": url})
	if err != nil {
		return r, err
	}
	return r, decode("setProfilePicture", data, &r)
}

// SetGroupPictureFromURL sets the picture of the group groupID from the
// picture at url: POST setGroupPicture {"urlFile", "groupId"} ("chatId"
// with WithMAX). portrait only.
func (c *Client) SetGroupPictureFromURL(ctx context.Context, groupID, url string) (SetGroupPictureResponse, error) {
	var r SetGroupPictureResponse
	field := "groupId"
	if c.max {
		field = "chatId"
	}
	data, err := c.postJSON(ctx, "setGroupPicture", map[string]string{"urlFile": url, field: groupID})
	if err != nil {
		return r, err
	}
	return r, decode("setGroupPicture", data, &r)
}
