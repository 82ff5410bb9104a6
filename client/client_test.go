package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testID    = 1101000001
	testMaxID = 3100000001
)

var testToken = strings.Repeat("a1", 25) // 50 lowercase hex characters, like GREEN-API's

// sent is what the test server saw.
type sent struct {
	Method      string
	URI         string // raw request URI, token replaced by {token}
	ContentType string // media type only
	JSON        string // compacted JSON body
	Parts       []sentPart
	RawBody     string // other bodies
}

type sentPart struct {
	Name, Filename, ContentType, Value string
	Size                               int // files only
}

// reply is what the test server answers.
type reply struct {
	Status int
	Header map[string]string
	Body   string
}

// recorder is an httptest server that records one request and answers rep.
type recorder struct {
	mu   sync.Mutex
	got  []sent
	rep  reply
	srv  *httptest.Server
	errs []string
}

func newRecorder(t *testing.T, rep reply) *recorder {
	t.Helper()
	r := &recorder{rep: rep}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) serve(w http.ResponseWriter, req *http.Request) {
	s := sent{Method: req.Method, URI: strings.ReplaceAll(req.RequestURI, testToken, "{token}")}
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	s.ContentType = mt
	switch mt {
	case "multipart/form-data":
		mr, err := req.MultipartReader()
		if err != nil {
			r.fail("multipart: " + err.Error())
			break
		}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				r.fail("multipart part: " + err.Error())
				break
			}
			b, _ := io.ReadAll(p)
			sp := sentPart{Name: p.FormName(), Filename: p.FileName(), ContentType: p.Header.Get("Content-Type")}
			if sp.Filename == "" {
				sp.Value = string(b)
			} else {
				sp.Size = len(b)
			}
			s.Parts = append(s.Parts, sp)
		}
	default:
		b, _ := io.ReadAll(req.Body)
		if mt != "application/json" {
			s.RawBody = string(b)
		} else {
			var buf bytes.Buffer
			if err := json.Compact(&buf, b); err != nil {
				r.fail("bad JSON body: " + string(b))
			}
			s.JSON = buf.String()
		}
	}
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
	for k, v := range r.rep.Header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	status := r.rep.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, r.rep.Body)
}

func (r *recorder) fail(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, msg)
}

func (r *recorder) only(t *testing.T) sent {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Error(e)
	}
	if len(r.got) != 1 {
		t.Fatalf("server got %d requests, want 1: %+v", len(r.got), r.got)
	}
	return r.got[0]
}

func jpegBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewRGBA(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestWireFormat(t *testing.T) {
	ctx := context.Background()
	jpg, pic := jpegBytes(t), pngBytes(t)
	wa := "/waInstance1101000001/"
	v3 := "/v3/waInstance3100000001/"

	tests := []struct {
		name  string
		url   string // appended to the server URL
		id    int64
		opts  []Option
		rep   reply
		call  func(c *Client) (any, error)
		want  sent
		wantV any
	}{
		{
			name:  "getAvatar",
			rep:   reply{Body: `{"urlAvatar":"https://pps.whatsapp.net/v/a.jpg","available":true}`},
			call:  func(c *Client) (any, error) { return c.GetAvatar(ctx, "11001234567@c.us") },
			want:  sent{Method: "POST", URI: wa + "getAvatar/{token}", ContentType: "application/json", JSON: `{"chatId":"11001234567@c.us"}`},
			wantV: AvatarResponse{URLAvatar: "https://pps.whatsapp.net/v/a.jpg", Available: true},
		},
		{
			name:  "getAvatar hidden, apiURL with trailing slash",
			url:   "/",
			rep:   reply{Body: `{"urlAvatar":"","available":false}`},
			call:  func(c *Client) (any, error) { return c.GetAvatar(ctx, "120363043968066561@g.us") },
			want:  sent{Method: "POST", URI: wa + "getAvatar/{token}", ContentType: "application/json", JSON: `{"chatId":"120363043968066561@g.us"}`},
			wantV: AvatarResponse{},
		},
		{
			name:  "getAvatar MAX without available",
			id:    testMaxID,
			opts:  []Option{WithMAX()},
			rep:   reply{Body: `{"urlAvatar":"https://i.oneme.ru/i?r=x"}`},
			call:  func(c *Client) (any, error) { return c.GetAvatar(ctx, "-10000000000000") },
			want:  sent{Method: "POST", URI: v3 + "getAvatar/{token}", ContentType: "application/json", JSON: `{"chatId":"-10000000000000"}`},
			wantV: AvatarResponse{URLAvatar: "https://i.oneme.ru/i?r=x"},
		},
		{
			name:  "MAX apiURL already ending in /v3",
			url:   "/v3/",
			id:    testMaxID,
			opts:  []Option{WithMAX()},
			rep:   reply{Body: `{"urlAvatar":"","available":true}`},
			call:  func(c *Client) (any, error) { return c.GetAvatar(ctx, "10000000") },
			want:  sent{Method: "POST", URI: v3 + "getAvatar/{token}", ContentType: "application/json", JSON: `{"chatId":"10000000"}`},
			wantV: AvatarResponse{Available: true},
		},
		{
			name: "setProfilePicture",
			rep:  reply{Body: `{"reason":null,"urlAvatar":"https://x/me.jpg","setProfilePicture":true}`},
			call: func(c *Client) (any, error) { return c.SetProfilePicture(ctx, "me.png", bytes.NewReader(pic)) },
			want: sent{Method: "POST", URI: wa + "setProfilePicture/{token}", ContentType: "multipart/form-data",
				Parts: []sentPart{{Name: "file", Filename: "me.png", ContentType: "image/png", Size: len(pic)}}},
			wantV: SetProfilePictureResponse{URLAvatar: Ptr("https://x/me.jpg"), SetProfilePicture: true},
		},
		{
			name: "setProfilePicture rate-overlimit is not an error",
			rep:  reply{Body: `{"reason":"rate-overlimit","urlAvatar":null,"setProfilePicture":false}`},
			call: func(c *Client) (any, error) { return c.SetProfilePicture(ctx, "", bytes.NewReader(jpg)) },
			want: sent{Method: "POST", URI: wa + "setProfilePicture/{token}", ContentType: "multipart/form-data",
				Parts: []sentPart{{Name: "file", Filename: "avatar.jpg", ContentType: "image/jpeg", Size: len(jpg)}}},
			wantV: SetProfilePictureResponse{Reason: Ptr("rate-overlimit")},
		},
		{
			name: "setProfilePicture empty file is sent as is",
			rep:  reply{Status: 400, Body: `{"statusCode":400,"message":"File is empty"}`},
			call: func(c *Client) (any, error) { return c.SetProfilePicture(ctx, "x.jpg", nil) },
			want: sent{Method: "POST", URI: wa + "setProfilePicture/{token}", ContentType: "multipart/form-data",
				Parts: []sentPart{{Name: "file", Filename: "x.jpg", ContentType: "application/octet-stream"}}},
			wantV: &Error{Method: "setProfilePicture", StatusCode: 400, Message: "File is empty", Body: []byte(`{"statusCode":400,"message":"File is empty"}`)},
		},
		{
			name: "setGroupPicture WhatsApp sends groupId",
			rep:  reply{Body: `{"setGroupPicture":true,"urlAvatar":"https://x/g.jpg","reason":""}`},
			call: func(c *Client) (any, error) {
				return c.SetGroupPicture(ctx, "120363043968066561@g.us", "g.jpg", bytes.NewReader(jpg))
			},
			want: sent{Method: "POST", URI: wa + "setGroupPicture/{token}", ContentType: "multipart/form-data",
				Parts: []sentPart{
					{Name: "groupId", Value: "120363043968066561@g.us"},
					{Name: "file", Filename: "g.jpg", ContentType: "image/jpeg", Size: len(jpg)},
				}},
			wantV: SetGroupPictureResponse{Reason: Ptr(""), URLAvatar: Ptr("https://x/g.jpg"), SetGroupPicture: true},
		},
		{
			name: "setGroupPicture MAX sends chatId",
			id:   testMaxID,
			opts: []Option{WithMAX()},
			rep:  reply{Body: `{"reason":"Timed Out","urlAvatar":null,"setGroupPicture":false}`},
			call: func(c *Client) (any, error) {
				return c.SetGroupPicture(ctx, "-10000000000000", "g.png", bytes.NewReader(pic))
			},
			want: sent{Method: "POST", URI: v3 + "setGroupPicture/{token}", ContentType: "multipart/form-data",
				Parts: []sentPart{
					{Name: "chatId", Value: "-10000000000000"},
					{Name: "file", Filename: "g.png", ContentType: "image/png", Size: len(pic)},
				}},
			wantV: SetGroupPictureResponse{Reason: Ptr("Timed Out")},
		},
		{
			name:  "getAvatarAsync",
			rep:   reply{},
			call:  func(c *Client) (any, error) { return nil, c.GetAvatarAsync(ctx, "11001234567@c.us") },
			want:  sent{Method: "POST", URI: wa + "getAvatarAsync/{token}", ContentType: "application/json", JSON: `{"chatId":"11001234567@c.us"}`},
			wantV: nil,
		},
		{
			name: "receiveNotification",
			rep: reply{Body: `{"receiptId":42,"body":{"typeWebhook":"avatarInfo","instanceData":{"idInstance":1101000001,"wid":"11001234567@c.us","typeInstance":"whatsapp"},` +
				`"timestamp":1586700802,"avatarInfo":{"chatId":"79001234560@c.us","urlAvatar":"https://x/a.jpg","available":true}}}`},
			call: func(c *Client) (any, error) {
				n, err := c.ReceiveNotification(ctx, 30*time.Second)
				if err != nil || n == nil {
					return n, err
				}
				return n.Decode()
			},
			want: sent{Method: "GET", URI: wa + "receiveNotification/{token}?receiveTimeout=30"},
			wantV: NotificationBody{
				TypeWebhook:  TypeAvatarInfo,
				InstanceData: InstanceData{IDInstance: testID, Wid: "11001234567@c.us", TypeInstance: "whatsapp"},
				Timestamp:    1586700802,
				AvatarInfo:   &AvatarInfo{ChatID: "79001234560@c.us", URLAvatar: "https://x/a.jpg", Available: true},
			},
		},
		{
			name:  "receiveNotification null",
			rep:   reply{Body: "null"},
			call:  func(c *Client) (any, error) { return c.ReceiveNotification(ctx, 0) },
			want:  sent{Method: "GET", URI: wa + "receiveNotification/{token}"},
			wantV: (*Notification)(nil),
		},
		{
			name:  "receiveNotification rounds the timeout up",
			rep:   reply{Body: "null"},
			call:  func(c *Client) (any, error) { return c.ReceiveNotification(ctx, 4500*time.Millisecond) },
			want:  sent{Method: "GET", URI: wa + "receiveNotification/{token}?receiveTimeout=5"},
			wantV: (*Notification)(nil),
		},
		{
			name:  "deleteNotification",
			rep:   reply{Body: `{"result":true,"reason":""}`},
			call:  func(c *Client) (any, error) { return c.DeleteNotification(ctx, 42) },
			want:  sent{Method: "DELETE", URI: wa + "deleteNotification/{token}/42"},
			wantV: true,
		},
		{
			name:  "deleteNotification unknown receipt",
			rep:   reply{Body: `{"result":false,"reason":"notification not found"}`},
			call:  func(c *Client) (any, error) { return c.DeleteNotification(ctx, 7) },
			want:  sent{Method: "DELETE", URI: wa + "deleteNotification/{token}/7"},
			wantV: false,
		},
		{
			name: "getSettings",
			rep: reply{Body: `{"wid":"79001234567@c.us","countryInstance":"","webhookUrl":"https://mysite.com/webhook/","webhookUrlToken":"",` +
				`"delaySendMessagesMilliseconds":3000,"markIncomingMessagesReaded":"no","outgoingWebhook":"yes","stateWebhook":"yes",` +
				`"deviceWebhook":"no","avatarInfoWebhook":"yes","avatarChangedWebhook":false}`},
			call: func(c *Client) (any, error) { return c.GetSettings(ctx) },
			want: sent{Method: "GET", URI: wa + "getSettings/{token}"},
			wantV: Settings{Wid: "79001234567@c.us", WebhookURL: Ptr("https://mysite.com/webhook/"), WebhookURLToken: Ptr(""),
				DelaySendMessagesMilliseconds: Ptr(3000), MarkIncomingMessagesReaded: No, OutgoingWebhook: Yes, StateWebhook: Yes,
				DeviceWebhook: No, AvatarInfoWebhook: Yes, AvatarChangedWebhook: No},
		},
		{
			name: "setSettings sends only what is set",
			rep:  reply{Body: `{"saveSettings":true}`},
			call: func(c *Client) (any, error) {
				return c.SetSettings(ctx, Settings{WebhookURL: Ptr(""), WebhookURLToken: Ptr("secret"), StateWebhook: Yes, AvatarChangedWebhook: No})
			},
			want: sent{Method: "POST", URI: wa + "setSettings/{token}", ContentType: "application/json",
				JSON: `{"webhookUrl":"","webhookUrlToken":"secret","stateWebhook":"yes","avatarChangedWebhook":"no"}`},
			wantV: true,
		},
		{
			name:  "getStateInstance",
			rep:   reply{Body: `{"stateInstance":"authorized"}`},
			call:  func(c *Client) (any, error) { return c.GetStateInstance(ctx) },
			want:  sent{Method: "GET", URI: wa + "getStateInstance/{token}"},
			wantV: StateAuthorized,
		},
		{
			name:  "getStateInstance null while the instance is created",
			rep:   reply{Body: `null`},
			call:  func(c *Client) (any, error) { return c.GetStateInstance(ctx) },
			want:  sent{Method: "GET", URI: wa + "getStateInstance/{token}"},
			wantV: "",
		},
		{
			name:  "getWaSettings",
			rep:   reply{Body: `{"avatar":"https://x/me.jpg","phone":"79001234567","stateInstance":"authorized","deviceId":"79001234567:8@s.whatsapp.net"}`},
			call:  func(c *Client) (any, error) { return c.GetWaSettings(ctx) },
			want:  sent{Method: "GET", URI: wa + "getWaSettings/{token}"},
			wantV: WaSettings{Avatar: "https://x/me.jpg", Phone: "79001234567", StateInstance: "authorized", DeviceID: "79001234567:8@s.whatsapp.net"},
		},
		{
			name:  "getAccountSettings MAX",
			id:    testMaxID,
			opts:  []Option{WithMAX()},
			rep:   reply{Body: `{"avatar":"https://i.oneme.ru/i?r=me","phone":"79001234567","stateInstance":"authorized","chatId":"39888725","historySyncProgress":100}`},
			call:  func(c *Client) (any, error) { return c.GetAccountSettings(ctx) },
			want:  sent{Method: "GET", URI: v3 + "getAccountSettings/{token}"},
			wantV: AccountSettings{Avatar: "https://i.oneme.ru/i?r=me", Phone: "79001234567", StateInstance: "authorized", ChatID: "39888725"},
		},
		{
			name:  "qr",
			rep:   reply{Body: `{"type":"alreadyLogged","message":"instance account already authorized"}`},
			call:  func(c *Client) (any, error) { return c.QR(ctx) },
			want:  sent{Method: "GET", URI: wa + "qr/{token}"},
			wantV: QRResponse{Type: QRAlreadyLogged, Message: "instance account already authorized"},
		},
		{
			name:  "logout",
			rep:   reply{Body: `{"isLogout":true}`},
			call:  func(c *Client) (any, error) { return c.Logout(ctx) },
			want:  sent{Method: "GET", URI: wa + "logout/{token}"},
			wantV: true,
		},
		{
			name:  "reboot",
			rep:   reply{Body: `{"isReboot":true}`},
			call:  func(c *Client) (any, error) { return c.Reboot(ctx) },
			want:  sent{Method: "GET", URI: wa + "reboot/{token}"},
			wantV: true,
		},
		{
			name: "Call keeps the method's spelling",
			rep:  reply{Body: `{"urlAvatar":"","available":true}`},
			call: func(c *Client) (any, error) {
				var r AvatarResponse
				err := c.Call(ctx, http.MethodPost, "GetAvatar", map[string]any{"phoneNumber": 11001234567}, &r)
				return r, err
			},
			want:  sent{Method: "POST", URI: wa + "GetAvatar/{token}", ContentType: "application/json", JSON: `{"phoneNumber":11001234567}`},
			wantV: AvatarResponse{Available: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t, tc.rep)
			id := tc.id
			if id == 0 {
				id = testID
			}
			c := New(rec.srv.URL+tc.url, id, testToken, tc.opts...)
			v, err := tc.call(c)
			got := rec.only(t)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("sent\n %+v\nwant\n %+v", got, tc.want)
			}
			if wantErr, ok := tc.wantV.(*Error); ok {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error = %v, want *Error", err)
				}
				if !reflect.DeepEqual(e, wantErr) {
					t.Errorf("error = %#v, want %#v", e, wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if !reflect.DeepEqual(v, tc.wantV) {
				t.Errorf("got %#v, want %#v", v, tc.wantV)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		rep        reply
		wantStatus int
		wantMsg    string
		wantRetry  time.Duration
	}{
		{"401 wrong token", reply{Status: 401, Body: `{"code":401,"description":"Unauthorized"}`}, 401, "Unauthorized", 0},
		{"403 unknown instance", reply{Status: 403, Body: `{"code":403,"description":"Forbidden"}`}, 403, "Forbidden", 0},
		{"200 with a 401 body", reply{Body: `{"code":401,"description":"Unauthorized"}`}, 401, "Unauthorized", 0},
		{"validation error echoing the token", reply{Status: 400, Body: `{"statusCode":400,"timestamp":"2026-01-01T00:00:00Z","path":"/waInstance1101000001/getAvatar/` +
			testToken + `","message":"Validation failed. Details: 'chatId' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'"}`},
			400, "Validation failed. Details: 'chatId' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'", 0},
		{"429 with Retry-After seconds", reply{Status: 429, Header: map[string]string{"Retry-After": "10", "X-RateLimit-Remaining": "0"}, Body: `{"statusCode":429,"message":"Too Many Requests"}`},
			429, "Too Many Requests", 10 * time.Second},
		{"bare JSON string body", reply{Status: 400, Body: `"File is empty"`}, 400, "File is empty", 0},
		{"plain text body", reply{Status: 400, Header: map[string]string{"Content-Type": "text/plain"}, Body: "instance account not authorized\n"}, 400, "instance account not authorized", 0},
		{"HTML body", reply{Status: 404, Header: map[string]string{"Content-Type": "text/html"}, Body: "<html><body><h1>404 Not Found</h1></body></html>"}, 404, "Not Found", 0},
		{"empty 502", reply{Status: 502}, 502, "Bad Gateway", 0},
		{"redirect is not followed", reply{Status: 301, Header: map[string]string{"Location": "/elsewhere"}}, 301, "Moved Permanently", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t, tc.rep)
			c := New(rec.srv.URL, testID, testToken)
			_, err := c.GetAvatar(ctx, "11001234567@c.us")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error = %v, want *Error", err)
			}
			if e.StatusCode != tc.wantStatus || e.Message != tc.wantMsg || e.RetryAfter != tc.wantRetry || e.Method != "getAvatar" {
				t.Errorf("error = %+v, want status %d message %q retry %v", e, tc.wantStatus, tc.wantMsg, tc.wantRetry)
			}
			if strings.Contains(err.Error(), testToken) || bytes.Contains(e.Body, []byte(testToken)) {
				t.Errorf("token in error: %q body %s", err, e.Body)
			}
			if !strings.HasPrefix(err.Error(), "green-api getAvatar: HTTP ") {
				t.Errorf("error text %q", err)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Method: "setProfilePicture", StatusCode: 429, Message: "Too Many Requests", RetryAfter: 10 * time.Second}
	if got, want := e.Error(), "green-api setProfilePicture: HTTP 429: Too Many Requests (retry after 10s)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestRetryAfterDate(t *testing.T) {
	d := retryAfter(time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat))
	if d < 25*time.Second || d > 31*time.Second {
		t.Errorf("retryAfter(date in 30s) = %v", d)
	}
	for _, v := range []string{"", "soon", "-1", "0"} {
		if d := retryAfter(v); d != 0 {
			t.Errorf("retryAfter(%q) = %v, want 0", v, d)
		}
	}
}

func TestPartnerErrorOnlyForThatShape(t *testing.T) {
	for _, body := range []string{
		`{"code":401,"description":"Unauthorized","urlAvatar":""}`, // extra field: a real reply
		`{"code":200,"description":"ok"}`,
		`{"code":"401","description":"Unauthorized"}`,
		`[]`, ``, `null`,
	} {
		if _, _, ok := partnerError([]byte(body)); ok {
			t.Errorf("partnerError(%s) = true", body)
		}
	}
	if code, desc, ok := partnerError([]byte(` {"description":"Forbidden","code":403}`)); !ok || code != 403 || desc != "Forbidden" {
		t.Errorf("partnerError(403 body) = %d %q %v", code, desc, ok)
	}
}

func TestTransportErrorsHideToken(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c := New(url, testID, testToken)
	_, err := c.GetAvatar(context.Background(), "11001234567@c.us")
	if err == nil {
		t.Fatal("no error from a closed server")
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("token in error: %v", err)
	}
	if !strings.Contains(err.Error(), "/waInstance1101000001/getAvatar/{apiTokenInstance}") {
		t.Errorf("error does not name the redacted path: %v", err)
	}
	var e *Error
	if errors.As(err, &e) {
		t.Errorf("transport failure reported as *Error: %v", err)
	}
}

func TestContextCancel(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := New(srv.URL, testID, testToken).ReceiveNotification(ctx, 60*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want context.DeadlineExceeded", err)
	}
	if err != nil && strings.Contains(err.Error(), testToken) {
		t.Errorf("token in error: %v", err)
	}
}

func TestBadResponses(t *testing.T) {
	ctx := context.Background()
	for _, body := range []string{"", "null", "{not json"} {
		rec := newRecorder(t, reply{Body: body})
		_, err := New(rec.srv.URL, testID, testToken).GetAvatar(ctx, "11001234567@c.us")
		if err == nil || !strings.HasPrefix(err.Error(), "green-api getAvatar: ") {
			t.Errorf("body %q: error = %v", body, err)
		}
	}
}

func TestBuildRequestErrorHidesToken(t *testing.T) {
	_, err := New("http://[bad host", testID, testToken).GetAvatar(context.Background(), "x@c.us")
	if err == nil {
		t.Fatal("no error for a bad URL")
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("token in error: %v", err)
	}
}

func TestYesNo(t *testing.T) {
	b, err := json.Marshal(struct {
		A YesNo `json:"a,omitempty"`
		B YesNo `json:"b,omitempty"`
		C YesNo `json:"c,omitempty"`
		D YesNo `json:"d"`
	}{A: Yes, B: No})
	if err != nil || string(b) != `{"a":"yes","b":"no","d":null}` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
	var v struct{ A, B, C, D, E YesNo }
	if err := json.Unmarshal([]byte(`{"A":"yes","B":"no","C":true,"D":"maybe","E":null}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.A != Yes || v.B != No || v.C != Yes || v.D != 0 || v.E != 0 || !v.A.Bool() || v.B.Bool() {
		t.Errorf("Unmarshal = %+v", v)
	}
	if _, err := json.Marshal(YesNo(9)); err == nil {
		t.Error("no error for an invalid YesNo")
	}
}
