package maxbot

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/picfetch"
)

// maxReply caps a reply of the Bot API.
const maxReply = 4 << 20

// APIError is a reply of the Bot API with a status other than 200: its
// body {"code": …, "message": …} (schema.yaml, Error).
type APIError struct {
	Status  int
	Code    string
	Message string
}

// Error names the status and the API's code and message.
func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "(no message)"
	}
	return fmt.Sprintf("MAX Bot API answered %d %s: %s", e.Status, cmp.Or(e.Code, http.StatusText(e.Status)), msg)
}

// parseAPIError reads the body of a failed reply.
func parseAPIError(status int, body []byte) *APIError {
	var p struct {
		Code    string `json:"code"`
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &p)
	return &APIError{Status: status, Code: clip(cmp.Or(p.Code, p.Error), 100), Message: clip(p.Message, 300)}
}

// apiErr returns the *APIError in err, or nil.
func apiErr(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}

// call makes one request to the Bot API with the bot's token in the
// Authorization header (never in the address), after waiting for the
// bot's rate limiter, and decodes a 200 reply into out. Errors: *APIError
// wrapped with portrait.ErrUpstreamRateLimit (429), portrait.ErrNotAuthorized
// (401); no reply in time is portrait.ErrUpstreamTimeout.
func (s *session) call(ctx context.Context, token, method, path string, query url.Values, body, out any) error {
	if err := s.e.limiter(token).wait(ctx); err != nil {
		return fmt.Errorf("waiting for the bot's rate limit: %w", err)
	}
	u := s.e.base.JoinPath(path)
	if query != nil {
		u.RawQuery = query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, s.e.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.e.http.Do(req)
	if err != nil {
		return picfetch.Error(ctx, method+" "+path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return picfetch.Error(ctx, method+" "+path, err)
	}
	if len(b) > maxReply {
		return fmt.Errorf("%s %s: the reply is longer than %d bytes", method, path, maxReply)
	}
	if resp.StatusCode != http.StatusOK {
		ae := parseAPIError(resp.StatusCode, b)
		switch resp.StatusCode {
		case http.StatusTooManyRequests:
			return fmt.Errorf("%s %s: %w: %w", method, path, portrait.ErrUpstreamRateLimit, ae)
		case http.StatusUnauthorized:
			s.rejected(token, ae)
			return fmt.Errorf("%s %s: %w: %w", method, path, portrait.ErrNotAuthorized, ae)
		}
		return fmt.Errorf("%s %s: %w", method, path, ae)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: reading the reply: %w", method, path, err)
		}
	}
	return nil
}

// The Bot API's shapes (schema.yaml of max-messenger/max-bot-api-client-go;
// dev.max.ru/docs-api).

// user is a User / UserWithPhoto / BotInfo / ChatMember.
type user struct {
	UserID        int64    `json:"user_id"`
	Name          string   `json:"name"`
	FirstName     string   `json:"first_name"`
	IsBot         bool     `json:"is_bot"`
	AvatarURL     string   `json:"avatar_url"`
	FullAvatarURL string   `json:"full_avatar_url"`
	IsOwner       bool     `json:"is_owner"`
	IsAdmin       bool     `json:"is_admin"`
	Permissions   []string `json:"permissions"`
}

func (u user) pictureURL() string { return cmp.Or(u.FullAvatarURL, u.AvatarURL) }

// can reports whether a chat member has a permission.
func (u user) can(p string) bool {
	for _, q := range u.Permissions {
		if q == p {
			return true
		}
	}
	return false
}

// chat is a Chat.
type chat struct {
	ChatID int64  `json:"chat_id"`
	Type   string `json:"type"`   // "chat", "dialog", "channel"
	Status string `json:"status"` // "active", "removed", "left", "closed", "suspended"
	Title  string `json:"title"`
	Icon   *struct {
		URL string `json:"url"`
	} `json:"icon"`
	DialogWithUser *user `json:"dialog_with_user"`
}

func (c chat) iconURL() string {
	if c.Icon == nil {
		return ""
	}
	return c.Icon.URL
}

// chatList is the reply of GET /chats.
type chatList struct {
	Chats  []chat `json:"chats"`
	Marker *int64 `json:"marker"`
}

// memberList is the reply of GET /chats/{id}/members.
type memberList struct {
	Members []user `json:"members"`
	Marker  *int64 `json:"marker"`
}

// parseChat, parseChatList, parseMembers, parseUser and parseUploadReply
// decode replies; they are what the fuzz targets exercise.
func parseChat(b []byte) (chat, error) {
	var c chat
	err := json.Unmarshal(b, &c)
	return c, err
}

func parseChatList(b []byte) (chatList, error) {
	var l chatList
	err := json.Unmarshal(b, &l)
	return l, err
}

func parseMembers(b []byte) (memberList, error) {
	var l memberList
	err := json.Unmarshal(b, &l)
	return l, err
}

func parseUser(b []byte) (user, error) {
	var u user
	if err := json.Unmarshal(b, &u); err != nil {
		return user{}, err
	}
	if u.UserID == 0 {
		return user{}, errors.New("no user_id")
	}
	return u, nil
}

// photoTokens is what an image upload answers: {"photos": {"<key>":
// {"token": …}}} (schema.yaml, PhotoTokens); it is sent back as is in the
// icon of PATCH /chats/{id}.
type photoTokens map[string]struct {
	Token string `json:"token"`
}

func parseUploadReply(b []byte) (photoTokens, error) {
	var p struct {
		Photos photoTokens `json:"photos"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("reading the upload reply: %w", err)
	}
	if len(p.Photos) == 0 {
		return nil, errors.New("reading the upload reply: no photo in it")
	}
	for k, v := range p.Photos {
		if v.Token == "" || k == "" {
			return nil, errors.New("reading the upload reply: a photo without token")
		}
	}
	return p.Photos, nil
}

// allowedURL reports whether a picture or upload address may be used:
// https, no credentials, on Options.PictureHosts or the API's own host.
func (e *Engine) allowedURL(u *url.URL) bool { return picfetch.URLAllowed(e.pictureHosts(), u) }

// checkURL parses raw and checks it is allowed.
func (e *Engine) checkURL(raw string) (*url.URL, error) {
	return picfetch.CheckURL(e.pictureHosts(), raw, ErrRefusedURL)
}

// pictureHosts are the hosts pictures and uploads may come from.
func (e *Engine) pictureHosts() []string {
	return append([]string{e.base.Host}, e.opts.PictureHosts...)
}

// download fetches a picture: only from an allowed address, within
// Options.DownloadTimeout, at most Options.MaxPictureBytes. The token is
// not sent: picture addresses are public.
func (e *Engine) download(ctx context.Context, raw string) ([]byte, error) {
	u, err := e.checkURL(raw)
	if err != nil {
		return nil, err
	}
	return picfetch.Get(ctx, picfetch.Request{Client: e.http, URL: u, Timeout: e.opts.DownloadTimeout,
		Max: e.opts.MaxPictureBytes, TooLarge: ErrPictureTooLarge})
}

// upload posts jpeg as the multipart field "data" to an upload address
// from POST /uploads and returns the photo tokens of the reply.
func (s *session) upload(ctx context.Context, token, raw string, jpeg []byte) (photoTokens, error) {
	u, err := s.e.checkURL(raw)
	if err != nil {
		return nil, err
	}
	if err := s.e.limiter(token).wait(ctx); err != nil {
		return nil, fmt.Errorf("waiting for the bot's rate limit: %w", err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="data"; filename="picture.jpg"`)
	h.Set("Content-Type", "image/jpeg")
	part, err := mw.CreatePart(h)
	if err == nil {
		_, err = part.Write(jpeg)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("upload to %s: %w", u.Host, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.e.opts.DownloadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), &body)
	if err != nil {
		return nil, fmt.Errorf("upload to %s: %w", u.Host, err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if u.Host == s.e.base.Host {
		req.Header.Set("Authorization", token)
	}
	resp, err := s.e.http.Do(req)
	if err != nil {
		return nil, picfetch.Error(ctx, "upload to "+u.Host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return nil, picfetch.Error(ctx, "upload to "+u.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		ae := parseAPIError(resp.StatusCode, b)
		if resp.StatusCode == http.StatusTooManyRequests {
			return nil, fmt.Errorf("upload to %s: %w: %w", u.Host, portrait.ErrUpstreamRateLimit, ae)
		}
		return nil, fmt.Errorf("upload to %s: %w", u.Host, ae)
	}
	return parseUploadReply(b)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
