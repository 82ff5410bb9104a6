// Package client is a typed Go client for the GREEN-API avatar methods and
// the few framework methods around them (settings, notifications, instance
// state). It speaks the GREEN-API wire format only, so it works against
// portrait and against GREEN-API itself; the few portrait extensions (the
// avatarInfoWebhook and avatarChangedWebhook settings, the avatarChanged
// notification) are marked as such and are simply ignored by GREEN-API.
//
// Every method is a request to
//
//	{apiURL}[/v3]/waInstance{idInstance}/{method}/{apiTokenInstance}
//
// A response other than HTTP 200 (and a 200 carrying GREEN-API's
// {"code":401,"description":"Unauthorized"} body) is returned as an *Error.
// The token never appears in the errors this package returns.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxResponseBytes bounds the response bodies the client reads (a qr PNG in
// base64 is the largest expected body, a few kilobytes).
const maxResponseBytes = 16 << 20

// tokenPlaceholder replaces the token wherever a message could show it.
const tokenPlaceholder = "{apiTokenInstance}"

// Client calls one GREEN-API instance. It is safe for concurrent use.
type Client struct {
	apiURL     string
	idInstance int64
	token      string
	hc         *http.Client
	max        bool
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc. By default it
// uses a client with no timeout (pass deadlines through the context) that
// does not follow redirects: a redirect is returned as an *Error, since
// following it would turn a POST into a bodyless GET.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithMAX makes the client call an instance of the MAX messenger: requests
// go to {apiURL}/v3/waInstance… (an apiURL that already ends in /v3 is used
// as is), and SetGroupPicture names the group in the form field "chatId"
// instead of "groupId". MAX chat ids are numbers as strings: "10000000" for
// a user, "-10000000000000" for a group.
func WithMAX() Option { return func(c *Client) { c.max = true } }

// New returns a client for the instance idInstance, reached at apiURL (for
// example "https://7105.api.greenapi.com" or "http://localhost:8080"; a
// trailing slash is ignored) with the token apiTokenInstance.
func New(apiURL string, idInstance int64, apiTokenInstance string, opts ...Option) *Client {
	c := &Client{
		apiURL:     strings.TrimRight(apiURL, "/"),
		idInstance: idInstance,
		token:      apiTokenInstance,
		hc: &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	for _, o := range opts {
		o(c)
	}
	if c.max && !strings.HasSuffix(c.apiURL, "/v3") {
		c.apiURL += "/v3"
	}
	return c
}

// IDInstance returns the instance id the client calls.
func (c *Client) IDInstance() int64 { return c.idInstance }

// methodURL builds the URL of an API method; extra path segments follow the
// token (deleteNotification's receiptId).
func (c *Client) methodURL(method string, extra ...string) string {
	var b strings.Builder
	b.WriteString(c.apiURL)
	b.WriteString("/waInstance")
	b.WriteString(strconv.FormatInt(c.idInstance, 10))
	b.WriteString("/")
	b.WriteString(url.PathEscape(method))
	b.WriteString("/")
	b.WriteString(url.PathEscape(c.token))
	for _, e := range extra {
		b.WriteString("/")
		b.WriteString(url.PathEscape(e))
	}
	return b.String()
}

// redact replaces the token (raw and path-escaped) in s.
func (c *Client) redact(s string) string {
	if c.token == "" {
		return s
	}
	s = strings.ReplaceAll(s, c.token, tokenPlaceholder)
	if esc := url.PathEscape(c.token); esc != c.token {
		s = strings.ReplaceAll(s, esc, tokenPlaceholder)
	}
	return s
}

// call is one HTTP exchange with the API.
type call struct {
	httpMethod  string   // GET, POST, DELETE
	method      string   // API method name as sent, e.g. "getAvatar"
	extra       []string // path segments after the token
	query       url.Values
	contentType string
	body        []byte
}

// do sends cl and returns the body of a 200 response; anything else is an
// error (an *Error for an HTTP-level failure).
func (c *Client) do(ctx context.Context, cl call) ([]byte, error) {
	u := c.methodURL(cl.method, cl.extra...)
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.httpMethod, u, body)
	if err != nil {
		// The error text quotes the URL, token included: rebuild it.
		return nil, fmt.Errorf("green-api %s: build request: %s", cl.method, c.redact(err.Error()))
	}
	req.Header.Set("Accept", "application/json")
	if cl.contentType != "" {
		req.Header.Set("Content-Type", cl.contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(cl, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, c.transportError(cl, fmt.Errorf("read response: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.newError(cl.method, resp.StatusCode, resp.Header, data)
	}
	if code, desc, ok := partnerError(data); ok {
		// GREEN-API answers some auth failures with HTTP 200 and this body.
		return nil, c.newError(cl.method, code, resp.Header, data, desc)
	}
	return data, nil
}

// transportError describes a failed exchange without the token: net/http
// wraps its errors in a *url.Error that quotes the whole URL, so the
// *url.Error is dropped and the path is shown redacted.
func (c *Client) transportError(cl call, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if msg := err.Error(); c.redact(msg) != msg {
		err = errors.New(c.redact(msg)) // never the case for net/http's own errors
	}
	return fmt.Errorf("green-api %s: %s %s: %w", cl.method, cl.httpMethod, c.redact(c.methodURL(cl.method, cl.extra...)), err)
}

// postJSON sends v as a JSON body.
func (c *Client) postJSON(ctx context.Context, method string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("green-api %s: encode request: %w", method, err)
	}
	return c.do(ctx, call{httpMethod: http.MethodPost, method: method, contentType: "application/json", body: b})
}

// get sends a GET without a body.
func (c *Client) get(ctx context.Context, method string) ([]byte, error) {
	return c.do(ctx, call{httpMethod: http.MethodGet, method: method})
}

// decode unmarshals a 200 response body into out; an empty or null body is
// an error.
func decode(method string, data []byte, out any) error {
	if isNull(data) {
		return fmt.Errorf("green-api %s: empty response", method)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("green-api %s: decode response: %w", method, err)
	}
	return nil
}

// isNull reports whether a body is empty or the JSON literal null.
func isNull(data []byte) bool {
	t := bytes.TrimSpace(data)
	return len(t) == 0 || string(t) == "null"
}

// Call sends any API method and decodes the JSON reply into out (when out is
// not nil and the reply is not empty). in, when not nil, is sent as a JSON
// body. It is the way to call methods this package does not wrap, or to send
// a method name in another spelling (for example "GetAvatar"). Errors are as
// for the typed methods.
func (c *Client) Call(ctx context.Context, httpMethod, method string, in, out any) error {
	cl := call{httpMethod: httpMethod, method: method}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("green-api %s: encode request: %w", method, err)
		}
		cl.body, cl.contentType = b, "application/json"
	}
	data, err := c.do(ctx, cl)
	if err != nil {
		return err
	}
	if out == nil || isNull(data) {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("green-api %s: decode response: %w", method, err)
	}
	return nil
}

// chatRequest is the body of getAvatar and getAvatarAsync.
type chatRequest struct {
	ChatID string `json:"chatId"`
}

// GetAvatar returns the avatar of a contact or a group (or of the account
// itself, given its own chat id): POST getAvatar {"chatId": chatID}.
//
// URLAvatar is empty when there is no picture (Available true) or when
// privacy settings hide it (Available false). GREEN-API's MAX instances have
// been seen to leave out "available"; it then reads as false.
func (c *Client) GetAvatar(ctx context.Context, chatID string) (AvatarResponse, error) {
	var r AvatarResponse
	data, err := c.postJSON(ctx, "getAvatar", chatRequest{ChatID: chatID})
	if err != nil {
		return r, err
	}
	return r, decode("getAvatar", data, &r)
}

// GetAvatarAsync asks for the avatar of chatID to be delivered later as an
// "avatarInfo" notification (by webhook, or ReceiveNotification):
// POST getAvatarAsync {"chatId": chatID}. WhatsApp only; GREEN-API marks
// the method "not used".
func (c *Client) GetAvatarAsync(ctx context.Context, chatID string) error {
	_, err := c.postJSON(ctx, "getAvatarAsync", chatRequest{ChatID: chatID})
	return err
}

// SetProfilePicture sets the account's own picture from the image read from
// r (JPEG; GREEN-API also takes PNG): POST setProfilePicture as
// multipart/form-data with one part, "file". filename names the part's file
// ("avatar.jpg" or the like when empty); the part's Content-Type is sniffed
// from the bytes.
//
// A 200 reply with SetProfilePicture false is not an error: Reason says why
// (for example "rate-overlimit").
func (c *Client) SetProfilePicture(ctx context.Context, filename string, r io.Reader) (SetProfilePictureResponse, error) {
	var resp SetProfilePictureResponse
	data, err := c.upload(ctx, "setProfilePicture", nil, filename, r)
	if err != nil {
		return resp, err
	}
	return resp, decode("setProfilePicture", data, &resp)
}

// SetGroupPicture sets the picture of the group groupID from the image read
// from r: POST setGroupPicture as multipart/form-data with the parts
// "groupId" (WhatsApp; "chatId" with WithMAX) and "file".
//
// A 200 reply with SetGroupPicture false is not an error: Reason says why
// (for example "Timed Out" for an unknown group).
func (c *Client) SetGroupPicture(ctx context.Context, groupID, filename string, r io.Reader) (SetGroupPictureResponse, error) {
	var resp SetGroupPictureResponse
	field := "groupId"
	if c.max {
		field = "chatId"
	}
	data, err := c.upload(ctx, "setGroupPicture", [][2]string{{field, groupID}}, filename, r)
	if err != nil {
		return resp, err
	}
	return resp, decode("setGroupPicture", data, &resp)
}

// upload posts a multipart form: the fields in order, then the part "file".
func (c *Client) upload(ctx context.Context, method string, fields [][2]string, filename string, r io.Reader) ([]byte, error) {
	if r == nil {
		r = bytes.NewReader(nil)
	}
	img, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("green-api %s: read picture: %w", method, err)
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := w.WriteField(f[0], f[1]); err != nil {
			return nil, fmt.Errorf("green-api %s: build form: %w", method, err)
		}
	}
	ctype, ext := sniffImage(img)
	if filename == "" {
		filename = "avatar" + ext
	}
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", multipart.FileContentDisposition("file", filename))
	h.Set("Content-Type", ctype)
	pw, err := w.CreatePart(h)
	if err != nil {
		return nil, fmt.Errorf("green-api %s: build form: %w", method, err)
	}
	if _, err := pw.Write(img); err != nil {
		return nil, fmt.Errorf("green-api %s: build form: %w", method, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("green-api %s: build form: %w", method, err)
	}
	return c.do(ctx, call{httpMethod: http.MethodPost, method: method, contentType: w.FormDataContentType(), body: buf.Bytes()})
}

// sniffImage names the image type of b for the part's Content-Type and a
// default file name extension.
func sniffImage(b []byte) (contentType, ext string) {
	switch ct := http.DetectContentType(b); ct {
	case "image/jpeg":
		return ct, ".jpg"
	case "image/png":
		return ct, ".png"
	case "image/webp":
		return ct, ".webp"
	case "image/gif":
		return ct, ".gif"
	default:
		return "application/octet-stream", ".jpg"
	}
}

// ReceiveNotification takes the oldest notification off the instance's
// queue without removing it (GET receiveNotification), waiting up to
// receiveTimeout for one (GREEN-API takes 5 to 60 seconds; 0 leaves the
// server's default, 5 s; fractions round up to whole seconds). It returns
// nil when there is none. Remove a notification with DeleteNotification.
// Only works while webhookUrl is empty.
func (c *Client) ReceiveNotification(ctx context.Context, receiveTimeout time.Duration) (*Notification, error) {
	cl := call{httpMethod: http.MethodGet, method: "receiveNotification"}
	if receiveTimeout > 0 {
		secs := int64(math.Ceil(receiveTimeout.Seconds()))
		cl.query = url.Values{"receiveTimeout": {strconv.FormatInt(secs, 10)}}
	}
	data, err := c.do(ctx, cl)
	if err != nil {
		return nil, err
	}
	if isNull(data) {
		return nil, nil
	}
	var n Notification
	if err := json.Unmarshal(data, &n); err != nil {
		return nil, fmt.Errorf("green-api receiveNotification: decode response: %w", err)
	}
	return &n, nil
}

// DeleteNotification removes the notification receiptID from the queue
// (DELETE deleteNotification/{token}/{receiptID}). It returns false when the
// server knows no such notification (already deleted, or never existed).
func (c *Client) DeleteNotification(ctx context.Context, receiptID int64) (bool, error) {
	data, err := c.do(ctx, call{
		httpMethod: http.MethodDelete,
		method:     "deleteNotification",
		extra:      []string{strconv.FormatInt(receiptID, 10)},
	})
	if err != nil {
		return false, err
	}
	var r struct {
		Result bool `json:"result"`
	}
	return r.Result, decode("deleteNotification", data, &r)
}

// GetSettings returns the instance's settings (GET getSettings).
func (c *Client) GetSettings(ctx context.Context) (Settings, error) {
	var s Settings
	data, err := c.get(ctx, "getSettings")
	if err != nil {
		return s, err
	}
	return s, decode("getSettings", data, &s)
}

// SetSettings changes the settings that are set in s and leaves the others
// as they are (POST setSettings with only those fields). It reports the
// server's saveSettings. Set WebhookURL to a pointer to "" to switch to
// polling with ReceiveNotification.
func (c *Client) SetSettings(ctx context.Context, s Settings) (bool, error) {
	data, err := c.postJSON(ctx, "setSettings", s)
	if err != nil {
		return false, err
	}
	var r struct {
		SaveSettings bool `json:"saveSettings"`
	}
	return r.SaveSettings, decode("setSettings", data, &r)
}

// GetStateInstance returns the instance's state (GET getStateInstance), for
// example "authorized" or "notAuthorized"; see the State constants. It
// returns "" when the server answers null (an instance still being created).
func (c *Client) GetStateInstance(ctx context.Context) (string, error) {
	data, err := c.get(ctx, "getStateInstance")
	if err != nil || isNull(data) {
		return "", err
	}
	var r struct {
		StateInstance string `json:"stateInstance"`
	}
	return r.StateInstance, decode("getStateInstance", data, &r)
}

// GetWaSettings returns the WhatsApp account the instance is linked to,
// including its own avatar (GET getWaSettings).
func (c *Client) GetWaSettings(ctx context.Context) (WaSettings, error) {
	var s WaSettings
	data, err := c.get(ctx, "getWaSettings")
	if err != nil {
		return s, err
	}
	return s, decode("getWaSettings", data, &s)
}

// GetAccountSettings returns the MAX account the instance is linked to,
// including its own avatar (GET getAccountSettings; MAX's counterpart of
// getWaSettings, use it with WithMAX).
func (c *Client) GetAccountSettings(ctx context.Context) (AccountSettings, error) {
	var s AccountSettings
	data, err := c.get(ctx, "getAccountSettings")
	if err != nil {
		return s, err
	}
	return s, decode("getAccountSettings", data, &s)
}

// QR returns the login QR code (GET qr): Type "qrCode" with a base64 PNG in
// Message, "alreadyLogged", or "error".
func (c *Client) QR(ctx context.Context) (QRResponse, error) {
	var q QRResponse
	data, err := c.get(ctx, "qr")
	if err != nil {
		return q, err
	}
	return q, decode("qr", data, &q)
}

// Logout unlinks the account from the instance (GET logout) and reports the
// server's isLogout.
func (c *Client) Logout(ctx context.Context) (bool, error) {
	data, err := c.get(ctx, "logout")
	if err != nil {
		return false, err
	}
	var r struct {
		IsLogout bool `json:"isLogout"`
	}
	return r.IsLogout, decode("logout", data, &r)
}

// Reboot restarts the instance (GET reboot) and reports the server's
// isReboot.
func (c *Client) Reboot(ctx context.Context) (bool, error) {
	data, err := c.get(ctx, "reboot")
	if err != nil {
		return false, err
	}
	var r struct {
		IsReboot bool `json:"isReboot"`
	}
	return r.IsReboot, decode("reboot", data, &r)
}
