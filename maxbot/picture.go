package maxbot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/portrait-dev/portrait"
)

// Picture fetches the picture of a group (its icon, GET /chats/{id}), of
// the bot itself (GET /me), or of a user the bot can see: a dialog
// partner, or a member of a chat the bot administers. Users it cannot see
// are ErrNotVisible (portrait.ErrUnsupported), never "no picture".
func (s *session) Picture(ctx context.Context, chat portrait.ChatID, existingID string) (portrait.RemotePicture, error) {
	rp, err := s.picture(ctx, chat, existingID)
	if err != nil {
		return portrait.RemotePicture{}, fmt.Errorf("maxbot: picture of %s: %w", chat.String(), err)
	}
	return rp, nil
}

func (s *session) picture(ctx context.Context, chat portrait.ChatID, existingID string) (portrait.RemotePicture, error) {
	token, bot, err := s.ready()
	if err != nil {
		return portrait.RemotePicture{}, err
	}
	n, err := strconv.ParseInt(chat.String(), 10, 64)
	if err != nil {
		return portrait.RemotePicture{}, fmt.Errorf("%q is not a MAX chat id", chat.String())
	}
	var pic string
	switch {
	case chat.Kind() == portrait.KindGroup:
		c, err := s.chat(ctx, token, n)
		if err != nil {
			return portrait.RemotePicture{}, err
		}
		pic = c.iconURL()
	case n == bot.UserID:
		var me user
		if err := s.call(ctx, token, http.MethodGet, "/me", nil, nil, &me); err != nil {
			return portrait.RemotePicture{}, err
		}
		pic = me.pictureURL()
	default:
		u, err := s.findUser(ctx, token, n)
		if err != nil {
			return portrait.RemotePicture{}, err
		}
		pic = u.pictureURL()
	}
	if pic == "" {
		return portrait.RemotePicture{}, fmt.Errorf("%w (the Bot API gives no picture address)", portrait.ErrPictureNotSet)
	}
	id := urlID(pic)
	if existingID != "" && id == existingID {
		return portrait.RemotePicture{ID: id, Unchanged: true}, nil
	}
	data, err := s.e.download(ctx, pic)
	if err != nil {
		return portrait.RemotePicture{}, fmt.Errorf("downloading the picture: %w", err)
	}
	return portrait.RemotePicture{ID: id, Data: data, URL: pic}, nil
}

// urlID is the picture id of a picture address: the Bot API gives no
// other. A hash, so that the address is not stored as an id.
func urlID(u string) string {
	sum := sha256.Sum256([]byte(u))
	return "u" + hex.EncodeToString(sum[:12])
}

// chat asks for a group (GET /chats/{id}).
func (s *session) chat(ctx context.Context, token string, n int64) (chat, error) {
	var c chat
	err := s.call(ctx, token, http.MethodGet, "/chats/"+strconv.FormatInt(n, 10), nil, nil, &c)
	if ae := apiErr(err); ae != nil {
		switch ae.Status {
		case http.StatusNotFound:
			return chat{}, fmt.Errorf("%w: the Bot API knows no chat %d: there is none, or the bot is not in it: %w", ErrNotVisible, n, err)
		case http.StatusForbidden:
			return chat{}, fmt.Errorf("%w: the bot may not see chat %d: %w", ErrNotVisible, n, err)
		}
	}
	if err != nil {
		return chat{}, err
	}
	switch c.Status {
	case "removed", "left":
		return chat{}, fmt.Errorf("%w: the bot is no longer in chat %d (status %s)", ErrNotVisible, n, c.Status)
	case "closed":
		return chat{}, fmt.Errorf("%w: chat %d is closed", portrait.ErrGroupNotFound, n)
	}
	return c, nil
}

// findUser finds user n where the bot can see them: a chat it saw them in
// before, its dialogs (GET /chats, dialog_with_user), then the members of
// the group chats it is in (GET /chats/{id}/members?user_ids=n, which
// needs the bot to be an admin), at most Options.ScanChats chats.
func (s *session) findUser(ctx context.Context, token string, n int64) (user, error) {
	s.mu.Lock()
	where, ok := s.seen[n]
	s.mu.Unlock()
	if ok {
		u, found, err := s.userIn(ctx, token, where, n)
		if err != nil || found {
			return u, err
		}
		s.mu.Lock()
		delete(s.seen, n)
		s.mu.Unlock()
	}
	var groups []int64
	scanned := 0
	q := url.Values{"count": {"100"}}
	for scanned < s.e.opts.ScanChats {
		var l chatList
		if err := s.call(ctx, token, http.MethodGet, "/chats", q, nil, &l); err != nil {
			return user{}, err
		}
		for _, c := range l.Chats {
			scanned++
			switch {
			case c.Type == "dialog" && c.DialogWithUser != nil && c.DialogWithUser.UserID == n:
				s.saw(n, c.ChatID)
				return *c.DialogWithUser, nil
			case c.Type == "chat" && c.Status == "active":
				groups = append(groups, c.ChatID)
			}
		}
		if l.Marker == nil || len(l.Chats) == 0 {
			break
		}
		q.Set("marker", strconv.FormatInt(*l.Marker, 10))
	}
	for _, g := range groups {
		u, found, err := s.userIn(ctx, token, g, n)
		if err != nil {
			return user{}, err
		}
		if found {
			return u, nil
		}
	}
	return user{}, fmt.Errorf("%w: the Bot API shows a user's picture only to a bot in a dialog with them or administering a chat they are in, and user %d is in none of the %d chats looked at", ErrNotVisible, n, scanned)
}

// userIn looks for user n in chat c: the dialog partner, or a member.
// Chats the bot may not list members of are skipped (found false).
func (s *session) userIn(ctx context.Context, token string, c, n int64) (user, bool, error) {
	if c > 0 { // a dialog
		var ch chat
		err := s.call(ctx, token, http.MethodGet, "/chats/"+strconv.FormatInt(c, 10), nil, nil, &ch)
		if skippable(err) {
			return user{}, false, nil
		}
		if err != nil {
			return user{}, false, err
		}
		if ch.DialogWithUser != nil && ch.DialogWithUser.UserID == n {
			return *ch.DialogWithUser, true, nil
		}
		return user{}, false, nil
	}
	var l memberList
	q := url.Values{"user_ids": {strconv.FormatInt(n, 10)}}
	err := s.call(ctx, token, http.MethodGet, "/chats/"+strconv.FormatInt(c, 10)+"/members", q, nil, &l)
	if skippable(err) {
		return user{}, false, nil
	}
	if err != nil {
		return user{}, false, err
	}
	for _, m := range l.Members {
		if m.UserID == n {
			s.saw(n, c)
			return m, true, nil
		}
	}
	return user{}, false, nil
}

// skippable: a chat the bot may not look into while searching.
func skippable(err error) bool {
	ae := apiErr(err)
	return ae != nil && (ae.Status == http.StatusForbidden || ae.Status == http.StatusNotFound)
}

// maxSeen bounds the users a session remembers a chat of.
const maxSeen = 100_000

// saw remembers chat as one where the bot can see user.
func (s *session) saw(user, chat int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[user]; !ok && len(s.seen) >= maxSeen {
		// Full: one other user makes room, the rest stay found at once.
		for other := range s.seen {
			delete(s.seen, other)
			break
		}
	}
	s.seen[user] = chat
}

// SetPicture sets a group's icon: an upload address (POST
// /uploads?type=image), the upload (multipart field "data"), then PATCH
// /chats/{id} {"icon": {"photos": …}}, retried while MAX answers
// "attachment.not.ready". The bot's own picture cannot be set through the
// Bot API as documented today; users' pictures never.
func (s *session) SetPicture(ctx context.Context, chat portrait.ChatID, jpeg, preview []byte) (string, error) {
	if len(jpeg) == 0 {
		return "", fmt.Errorf("%w: MAX's Bot API offers no way to remove a picture that portrait knows of", portrait.ErrUnsupported)
	}
	id, err := s.setPicture(ctx, chat, jpeg)
	if err != nil {
		what := "own picture"
		if !chat.IsZero() {
			what = "picture of " + chat.String()
		}
		return "", fmt.Errorf("maxbot: set %s: %w", what, err)
	}
	return id, nil
}

func (s *session) setPicture(ctx context.Context, target portrait.ChatID, jpeg []byte) (string, error) {
	token, bot, err := s.ready()
	if err != nil {
		return "", err
	}
	if target.IsZero() || target.String() == strconv.FormatInt(bot.UserID, 10) {
		return "", fmt.Errorf("%w: the MAX Bot API documents no way for a bot to change its own picture (PATCH /me with a photo is only in an older schema); set it in MAX's bot settings", portrait.ErrUnsupported)
	}
	if target.Kind() != portrait.KindGroup {
		return "", fmt.Errorf("%w: a bot can change the pictures of groups only", portrait.ErrUnsupported)
	}
	n, err := strconv.ParseInt(target.String(), 10, 64)
	if err != nil {
		return "", fmt.Errorf("%q is not a MAX chat id", target.String())
	}
	var up struct {
		URL string `json:"url"`
	}
	if err := s.call(ctx, token, http.MethodPost, "/uploads", url.Values{"type": {"image"}}, nil, &up); err != nil {
		return "", fmt.Errorf("asking for an upload address: %w", err)
	}
	if up.URL == "" {
		return "", errors.New("asking for an upload address: the Bot API gave none")
	}
	photos, err := s.upload(ctx, token, up.URL, jpeg)
	if err != nil {
		return "", err
	}
	body := map[string]any{"icon": map[string]any{"photos": photos}}
	path := "/chats/" + strconv.FormatInt(n, 10)
	var c chat
	for try := 1; ; try++ {
		err = s.call(ctx, token, http.MethodPatch, path, nil, body, &c)
		ae := apiErr(err)
		if ae == nil || ae.Code != "attachment.not.ready" || try >= s.e.opts.NotReadyTries {
			break
		}
		if err := sleepCtx(ctx, s.e.opts.NotReadyWait); err != nil {
			return "", fmt.Errorf("waiting for MAX to process the upload: %w", err)
		}
	}
	if err != nil {
		return "", s.setError(ctx, token, n, err)
	}
	if u := c.iconURL(); u != "" {
		return urlID(u), nil
	}
	return "", nil
}

// setError explains a refused PATCH /chats/{id} with the bot's membership
// (GET /chats/{id}/members/me).
func (s *session) setError(ctx context.Context, token string, n int64, err error) error {
	ae := apiErr(err)
	if ae == nil || errors.Is(err, portrait.ErrUpstreamRateLimit) || errors.Is(err, portrait.ErrNotAuthorized) {
		return err
	}
	if ae.Status == http.StatusNotFound {
		return fmt.Errorf("%w: %w", portrait.ErrGroupNotFound, err)
	}
	var me user
	merr := s.call(ctx, token, http.MethodGet, "/chats/"+strconv.FormatInt(n, 10)+"/members/me", nil, nil, &me)
	mae := apiErr(merr)
	switch {
	case mae != nil && (mae.Status == http.StatusNotFound || mae.Status == http.StatusForbidden):
		return fmt.Errorf("%w: the bot is not a member of the chat: %w", portrait.ErrNotGroupMember, err)
	case merr == nil && !me.IsAdmin && !me.IsOwner:
		return fmt.Errorf("%w: the bot is not an admin of the chat: %w", portrait.ErrNotGroupAdmin, err)
	case merr == nil && !me.IsOwner && !me.can("change_chat_info"):
		return fmt.Errorf("%w: the bot is an admin without the right change_chat_info: %w", portrait.ErrNotGroupAdmin, err)
	case ae.Code == "attachment.not.ready":
		return fmt.Errorf("%w: MAX had not processed the upload after %d tries: %w", ErrRefused, s.e.opts.NotReadyTries, err)
	}
	return fmt.Errorf("%w: %w", ErrRefused, err)
}
