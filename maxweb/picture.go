package maxweb

import (
	"context"
	"errors"
	"fmt"

	"github.com/portrait-dev/portrait"
)

// Picture fetches the current picture of chat (a user, a group, or the
// account's own id) and downloads it unless its id is existingID. See the
// package documentation for how MAX's answers map to portrait's outcomes.
func (s *session) Picture(ctx context.Context, chat portrait.ChatID, existingID string) (portrait.RemotePicture, error) {
	rp, err := s.picture(ctx, chat, existingID)
	if err != nil {
		return portrait.RemotePicture{}, fmt.Errorf("max: picture of %s: %w", chat.String(), err)
	}
	return rp, nil
}

func (s *session) picture(ctx context.Context, chat portrait.ChatID, existingID string) (portrait.RemotePicture, error) {
	c, own, err := s.ready()
	if err != nil {
		return portrait.RemotePicture{}, err
	}
	n, err := userID(chat)
	if err != nil {
		return portrait.RemotePicture{}, err
	}
	var pictureID, url string
	switch chat.Kind() {
	case portrait.KindContact:
		payload, err := c.call(ctx, opContactInfo, map[string]any{"contactIds": []int64{n}})
		if err != nil {
			return portrait.RemotePicture{}, queryError(err, portrait.ErrNoAccount)
		}
		contacts, err := parseContacts(payload)
		if err != nil {
			return portrait.RemotePicture{}, err
		}
		ct, ok := findContact(contacts, chat.String())
		if !ok && chat.String() == own {
			// Not every reply lists the account itself: the profile of the
			// login (kept current by push 159) says the same.
			s.mu.Lock()
			ct, ok = s.profile, s.profile.ID != ""
			s.mu.Unlock()
		}
		if !ok {
			return portrait.RemotePicture{}, fmt.Errorf("%w: MAX knows no user %s", portrait.ErrNoAccount, chat.String())
		}
		pictureID, url = ct.pictureID(), ct.pictureURL()
	case portrait.KindGroup:
		ch, err := s.chatInfo(ctx, c, n)
		if err != nil {
			return portrait.RemotePicture{}, err
		}
		pictureID, url = ch.pictureID(), ch.pictureURL()
	default:
		return portrait.RemotePicture{}, fmt.Errorf("%q is not a MAX chat id", chat.String())
	}
	s.remember(chat.String(), pictureID)
	switch {
	case pictureID == "":
		return portrait.RemotePicture{}, fmt.Errorf("%w (MAX gave no photoId and no picture address)", portrait.ErrPictureNotSet)
	case existingID != "" && pictureID == existingID:
		return portrait.RemotePicture{ID: existingID, Unchanged: true}, nil
	}
	data, err := s.e.download(ctx, url)
	if err != nil {
		return portrait.RemotePicture{}, fmt.Errorf("downloading picture %s: %w", pictureID, err)
	}
	return portrait.RemotePicture{ID: pictureID, Data: data, URL: url}, nil
}

// chatInfo asks for one chat (opcode 48).
func (s *session) chatInfo(ctx context.Context, c *conn, n int64) (chat, error) {
	payload, err := c.call(ctx, opChatInfo, map[string]any{"chatIds": []int64{n}})
	if err != nil {
		return chat{}, queryError(err, portrait.ErrGroupNotFound)
	}
	chats, err := parseChats(payload)
	if err != nil {
		return chat{}, err
	}
	id := fmt.Sprint(n)
	for _, ch := range chats {
		if string(ch.ID) == id {
			if ch.Status == "REMOVED" || ch.Status == "CLOSED" {
				return chat{}, fmt.Errorf("%w: the group's status is %s", portrait.ErrGroupNotFound, ch.Status)
			}
			return ch, nil
		}
	}
	return chat{}, fmt.Errorf("%w: MAX knows no chat %s", portrait.ErrGroupNotFound, id)
}

func findContact(cs []contact, id string) (contact, bool) {
	for _, c := range cs {
		if string(c.ID) == id {
			return c, true
		}
	}
	return contact{}, false
}

// SetPicture sets the account's own picture (chat zero, or the own id) or,
// experimentally, a group's: a photo upload address (opcode 80), the upload,
// then the profile change (16) or the chat update (55). preview is not
// used: MAX makes its own sizes.
func (s *session) SetPicture(ctx context.Context, chat portrait.ChatID, jpeg, preview []byte) (string, error) {
	if len(jpeg) == 0 {
		return "", fmt.Errorf("%w: MAX's web protocol offers no way to remove a picture that portrait knows of", portrait.ErrUnsupported)
	}
	id, err := s.setPicture(ctx, chat, jpeg)
	if err != nil {
		what := "own picture"
		if !chat.IsZero() {
			what = "picture of " + chat.String()
		}
		return "", fmt.Errorf("max: set %s: %w", what, err)
	}
	return id, nil
}

func (s *session) setPicture(ctx context.Context, chat portrait.ChatID, jpeg []byte) (string, error) {
	c, own, err := s.ready()
	if err != nil {
		return "", err
	}
	switch {
	case chat.IsZero() || (chat.Kind() == portrait.KindContact && chat.String() == own):
		return s.setOwn(ctx, c, own, jpeg)
	case chat.Kind() == portrait.KindGroup:
		n, err := userID(chat)
		if err != nil {
			return "", err
		}
		return s.setGroup(ctx, c, own, n, jpeg)
	}
	return "", fmt.Errorf("%w: only the pictures of groups and of the account itself can be set", portrait.ErrUnsupported)
}

// uploadPhoto gets an upload address (for the profile or a chat) and
// uploads jpeg to it.
func (s *session) uploadPhoto(ctx context.Context, c *conn, profile bool, jpeg []byte) (string, error) {
	payload, err := c.call(ctx, opPhotoUpload, map[string]any{"count": 1, "profile": profile})
	if err != nil {
		return "", fmt.Errorf("asking for an upload address: %w", err)
	}
	url, err := parseUploadURL(payload)
	if err != nil {
		return "", err
	}
	return s.e.upload(ctx, url, jpeg)
}

func (s *session) setOwn(ctx context.Context, c *conn, own string, jpeg []byte) (string, error) {
	s.mu.Lock()
	first, last := s.profile.firstName()
	s.mu.Unlock()
	if first == "" {
		return "", errors.New("the profile's first name is not known, and MAX needs it to change the picture")
	}
	token, err := s.uploadPhoto(ctx, c, true, jpeg)
	if err != nil {
		return "", setError(err)
	}
	p := map[string]any{"firstName": first, "photoToken": token, "avatarType": "USER_AVATAR"}
	if last != "" {
		p["lastName"] = last
	}
	payload, err := c.call(ctx, opProfile, p)
	if err != nil {
		return "", setError(err)
	}
	info, err := parseLogin(payload)
	if err != nil {
		// Set, but the reply is not understood: no id to remember.
		s.log.Warn("max: the own picture was set but MAX's reply is not understood", "err", err)
		return "", nil
	}
	id := info.Profile.pictureID()
	s.mu.Lock()
	s.profile = info.Profile
	s.rememberLocked(own, id)
	s.mu.Unlock()
	return id, nil
}

// setGroup sets a group's picture with the chat update opcode 55 {chatId,
// photoToken}: EXPERIMENTAL, no public client shows this call.
func (s *session) setGroup(ctx context.Context, c *conn, own string, n int64, jpeg []byte) (string, error) {
	token, err := s.uploadPhoto(ctx, c, false, jpeg)
	if err != nil {
		return "", setError(err)
	}
	payload, err := c.call(ctx, opChatUpdate, map[string]any{"chatId": n, "photoToken": token})
	if err != nil {
		return "", s.groupError(ctx, c, own, n, err)
	}
	var ch chat
	if _, chats, perr := parsePush(opNotifChat, payload); perr == nil && len(chats) > 0 {
		ch = chats[0]
	}
	id := ch.pictureID()
	if id == "" {
		// The reply did not show the chat: ask for it.
		if got, err := s.chatInfo(ctx, c, n); err == nil {
			id = got.pictureID()
		}
	}
	if id != "" {
		s.remember(fmt.Sprint(n), id)
	}
	return id, nil
}

// groupError explains MAX's refusal of a chat update by looking at the
// chat: unknown → ErrGroupNotFound, not a participant → ErrNotGroupMember,
// not the owner or an admin → ErrNotGroupAdmin; otherwise MAX's own error
// as ErrRefused.
func (s *session) groupError(ctx context.Context, c *conn, own string, n int64, err error) error {
	var me *Error
	if !errors.As(err, &me) {
		return setError(err)
	}
	switch errorKind(me.Code) {
	case kindRateLimit:
		return both(portrait.ErrUpstreamRateLimit, err)
	case kindNotFound:
		return both(portrait.ErrGroupNotFound, err)
	}
	ch, cerr := s.chatInfo(ctx, c, n)
	switch {
	case errors.Is(cerr, portrait.ErrGroupNotFound):
		return both(portrait.ErrGroupNotFound, err)
	case cerr == nil && (!ch.member(own) || ch.Status == "LEFT"):
		return both(portrait.ErrNotGroupMember, err)
	case cerr == nil && (!ch.isAdmin(own) || ch.onlyOwnerEdits() && string(ch.Owner) != own):
		return both(portrait.ErrNotGroupAdmin, err)
	}
	return fmt.Errorf("%w (%s: %s); group pictures over the web protocol are experimental", ErrRefused, me.Code, me.Message)
}

// setError maps an error of the upload or the profile change.
func setError(err error) error {
	var me *Error
	if errors.As(err, &me) {
		switch errorKind(me.Code) {
		case kindRateLimit:
			return both(portrait.ErrUpstreamRateLimit, err)
		case kindTimeout:
			return both(portrait.ErrUpstreamTimeout, err)
		case kindBadToken:
			return both(portrait.ErrNotAuthorized, err)
		}
		return fmt.Errorf("%w (%s: %s)", ErrRefused, me.Code, me.Message)
	}
	return commonError(err)
}

// queryError maps an error of a picture query; notFound is the outcome of
// MAX's "not found" (no account, or no such group).
func queryError(err error, notFound error) error {
	var me *Error
	if errors.As(err, &me) {
		switch errorKind(me.Code) {
		case kindRateLimit:
			return both(portrait.ErrUpstreamRateLimit, err)
		case kindNotFound:
			return both(notFound, err)
		case kindTimeout:
			return both(portrait.ErrUpstreamTimeout, err)
		case kindBadToken:
			return both(portrait.ErrNotAuthorized, err)
		case kindDenied:
			if errors.Is(notFound, portrait.ErrNoAccount) {
				return both(portrait.ErrPictureHidden, err)
			}
			return both(portrait.ErrGroupNotFound, err)
		}
		return err
	}
	return commonError(err)
}

// commonError maps the local errors every request can end with.
func commonError(err error) error {
	if errors.Is(err, errConnClosed) {
		return both(portrait.ErrStarting, err)
	}
	return err
}

func both(kind, err error) error { return fmt.Errorf("%w: %w", kind, err) }
