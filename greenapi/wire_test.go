package greenapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/picture"
)

const tok = "bde035edae3fc00bc116bd112297908d8145e5ba8decc5d884"

func TestParseCall(t *testing.T) {
	tests := []struct {
		path   string
		ok     bool
		v3     bool
		id     portrait.InstanceID
		method string
		token  string
		extra  string
	}{
		{"/waInstance1101000001/getAvatar/" + tok, true, false, 1101000001, "getAvatar", tok, ""},
		{"//waInstance1101000001/getAvatar/" + tok, true, false, 1101000001, "getAvatar", tok, ""},
		{"///waInstance1101000001/GetAvatar/" + tok + "/", true, false, 1101000001, "GetAvatar", tok, ""},
		{"/v3/waInstance3100000001/setGroupPicture/" + tok, true, true, 3100000001, "setGroupPicture", tok, ""},
		{"//v3//waInstance3100000001/getAvatar/" + tok, true, true, 3100000001, "getAvatar", tok, ""},
		{"/waInstance1101000001/deleteNotification/" + tok + "/42", true, false, 1101000001, "deleteNotification", tok, "42"},
		{"/waInstance1101000001/getStateInstance", true, false, 1101000001, "getStateInstance", "", ""},
		{"/waInstance1101000001/getAvatar/" + tok + "/1/2", false, false, 0, "", "", ""},
		{"/waInstance1101000001", false, false, 0, "", "", ""},
		{"/admin/instances", false, false, 0, "", "", ""},
		{"/v4/waInstance1/getAvatar/x", false, false, 0, "", "", ""},
		{"/healthz", false, false, 0, "", "", ""},
	}
	for _, tt := range tests {
		c, ok := parseCall(tt.path)
		if ok != tt.ok {
			t.Errorf("parseCall(%q) ok = %v, want %v", tt.path, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if c.v3 != tt.v3 || c.id != tt.id || !c.idOK || c.method != tt.method || c.token != tt.token || c.extra != tt.extra {
			t.Errorf("parseCall(%q) = %+v", tt.path, c)
		}
	}
	for _, bad := range []string{"/waInstanceabc/getAvatar/x", "/waInstance/getAvatar/x", "/waInstance-5/getAvatar/x", "/waInstance+5/getAvatar/x", "/waInstance99999999999999999999/getAvatar/x"} {
		if c, ok := parseCall(bad); !ok || c.idOK {
			t.Errorf("parseCall(%q) = %+v, %v; want a call with a bad id", bad, c, ok)
		}
	}
}

func TestRedactPath(t *testing.T) {
	tests := map[string]string{
		"/waInstance1101000001/getAvatar/" + tok:                  "/waInstance1101000001/getAvatar/{apiTokenInstance}",
		"//waInstance1101000001/getAvatar/" + tok + "/":           "/waInstance1101000001/getAvatar/{apiTokenInstance}",
		"/v3/waInstance3100000001/qr/" + tok:                      "/v3/waInstance3100000001/qr/{apiTokenInstance}",
		"/waInstance1101000001/deleteNotification/" + tok + "/17": "/waInstance1101000001/deleteNotification/{apiTokenInstance}/17",
		"/waInstance1101000001/getAvatar/" + tok + "/a/b/c":       "/waInstance1101000001/getAvatar/{apiTokenInstance}",
		"/x/waInstance1/m/" + tok + "/a/b":                        "/x/waInstance1/m/{apiTokenInstance}",
		"/healthz":                                                "/healthz",
		// A token anywhere else, whatever the route, is hidden too.
		"/waInstance1101000001/" + tok:                                      "/waInstance1101000001/{apiTokenInstance}",
		"/api/waInstance1101000001/getSettings/" + tok:                      "/api/waInstance1101000001/getSettings/{apiTokenInstance}",
		"/console/" + tok:                                                   "/console/{apiTokenInstance}",
		"/admin/instances/" + tok + "/qr":                                   "/admin/instances/{apiTokenInstance}/qr",
		"/avatars/0123456789abcdef0123456789abcdef01234567.jpg":             "/avatars/0123456789abcdef0123456789abcdef01234567.jpg",
		"/admin/instances/1101000001/sandbox/chats/120363043968066561@g.us": "/admin/instances/1101000001/sandbox/chats/120363043968066561@g.us",
	}
	for in, want := range tests {
		got := RedactPath(in)
		if got != want {
			t.Errorf("RedactPath(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, tok) {
			t.Errorf("RedactPath(%q) leaks the token", in)
		}
	}
}

func FuzzRedactPath(f *testing.F) {
	f.Add("/waInstance1101000001/getAvatar/" + tok)
	f.Add("//v3/waInstance1/x/" + tok + "/1/2/3")
	f.Add("/waInstance/" + tok)
	f.Fuzz(func(t *testing.T, path string) {
		secret := "s3cr3tt0k3n"
		for _, p := range []string{path + "/waInstance1/m/" + secret, "/waInstance1/m/" + secret + path, "/v3/waInstance" + path + "/m/" + secret} {
			if strings.Contains(p[strings.Index(p, "waInstance"):], "/") && strings.Count(p[strings.Index(p, "waInstance"):], "/") >= 2 {
				if got := RedactPath(p); strings.Contains(got, secret) {
					t.Fatalf("RedactPath(%q) = %q leaks the token", p, got)
				}
			}
		}
	})
}

func TestDecodeChatRequest(t *testing.T) {
	wa, mx := portrait.TypeWhatsApp, portrait.TypeMAX
	tests := []struct {
		typ  portrait.InstanceType
		body string
		want string // "" = 400
		msg  string // part of the 400 message
	}{
		{wa, `{"chatId": "11001234567@c.us"}`, "11001234567@c.us", ""},
		{wa, `{"chatId":"120363043968066561@g.us"}`, "120363043968066561@g.us", ""},
		{wa, ` {"chatId": " 11001234567@c.us "} `, "11001234567@c.us", ""},
		{wa, `{"phoneNumber": 11001234567}`, "11001234567@c.us", ""},
		{wa, `{"phoneNumber": "11001234567"}`, "11001234567@c.us", ""},
		{wa, `{"chatId": "11001234567@c.us", "phoneNumber": 79001234567}`, "11001234567@c.us", ""},
		{wa, `{"chatId": null, "phoneNumber": 79001234567}`, "79001234567@c.us", ""},
		{wa, `{"chatId": "", "phoneNumber": 79001234567}`, "79001234567@c.us", ""},
		{wa, `"{\r\n \"chatId\": \"11001234567@c.us\"\r\n}"`, "11001234567@c.us", ""}, // GREEN-API's Python sample
		{wa, `{"chatId": "7123"}`, "", "'chatId' must be one of the next formats"},
		{wa, `{"chatId": 11001234567}`, "", "'chatId' must be one of the next formats"},
		{wa, `{"phoneNumber": 123}`, "", "'phoneNumber'"},
		{wa, `{"phoneNumber": 1.5}`, "", "'phoneNumber' must be a whole number"},
		{wa, `{"phoneNumber": true}`, "", "'phoneNumber' must be a string"},
		{wa, `{"chatId": ["x"]}`, "", "'chatId' must be a string"},
		{wa, `{}`, "", "'chatId' is required"},
		{wa, ``, "", "the request body is empty"},
		{wa, `[]`, "", "must be a JSON object"},
		{wa, `{"chatId": "11001234567@c.us"`, "", "not valid JSON"},
		{wa, `"not json"`, "", "must be a JSON object"},
		{mx, `{"chatId": "10000000"}`, "10000000", ""},
		{mx, `{"chatId": "-10000000000000"}`, "-10000000000000", ""},
		{mx, `{"chatId": -10000000000000}`, "-10000000000000", ""},
		{mx, `{"chatId": "11001234567@c.us"}`, "", "MAX chat id"},
	}
	for _, tt := range tests {
		c, e := decodeChatRequest([]byte(tt.body), tt.typ)
		if tt.want != "" {
			if e != nil || c.String() != tt.want {
				t.Errorf("%s %s: got %q, %v; want %q", tt.typ, tt.body, c, e, tt.want)
			}
			continue
		}
		if e == nil {
			t.Errorf("%s %s: accepted as %q", tt.typ, tt.body, c)
			continue
		}
		if e.status != http.StatusBadRequest || !strings.HasPrefix(e.message, "Validation failed. Details: ") || !strings.Contains(e.message, tt.msg) {
			t.Errorf("%s %s: got %d %q; want 400 with %q", tt.typ, tt.body, e.status, e.message, tt.msg)
		}
	}
}

func FuzzDecodeChatRequest(f *testing.F) {
	for _, s := range []string{`{"chatId": "11001234567@c.us"}`, `{"phoneNumber": 11001234567}`, `"{\"chatId\":\"1@lid\"}"`, `{"chatId": -10000000000000}`, `{}`, `[`, `""`} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, max bool) {
		typ := portrait.TypeWhatsApp
		if max {
			typ = portrait.TypeMAX
		}
		c, e := decodeChatRequest(body, typ)
		if e != nil {
			if e.status != http.StatusBadRequest || !strings.HasPrefix(e.message, "Validation failed. Details: ") {
				t.Fatalf("error %d %q is not a validation error", e.status, e.message)
			}
			return
		}
		if _, err := portrait.ParseChatID(typ, c.String()); err != nil {
			t.Fatalf("decoded an invalid chat id %q", c)
		}
	})
}

func TestEngineError(t *testing.T) {
	tests := []struct {
		err    error
		status int
		msg    string
	}{
		{picture.ErrEmpty, 400, "File is empty"},
		{fmt.Errorf("%w: context deadline exceeded", picture.ErrBusy), 503, "no decode memory free"},
		{fmt.Errorf("%w: decoding needs about 900 MiB, the budget is 256 MiB", picture.ErrOverBudget), 413, "needs about 900 MiB"},
		{fmt.Errorf("x: %w", picture.ErrUnsupported), 400, "Unsupported media type"},
		{fmt.Errorf("%w: 20000x20000", picture.ErrTooLarge), 400, "Validation failed"},
		{portrait.ErrNotAuthorized, 400, "instance account not authorized"},
		{portrait.ErrStarting, 400, "instance in starting process try later"},
		{portrait.ErrUpstreamTimeout, 504, "did not answer in time"},
		{context.DeadlineExceeded, 504, "did not answer in time"},
		{fmt.Errorf("wrapped: %w", portrait.ErrUpstreamRateLimit), 429, "rate-overlimit"},
		{errors.New("boom at /secret/path"), 502, "could not do it: the messenger's answer could not be used"},
		{fmt.Errorf("%w: blobdir: put x: write /data/pictures/x: no space left on device", portrait.ErrStorage), 500, "Internal Server Error: portrait could not store"},
		{fmt.Errorf("%w: 9000x9000 is more than 60 MP", portrait.ErrUpstreamPicture), 502, "could not do it: the messenger's picture could not be processed: 9000x9000"},
		{fmt.Errorf("%w: engine \"x\" is not available", portrait.ErrUnavailable), 503, "Service Unavailable: the instance cannot be served: engine"},
	}
	for _, tt := range tests {
		e := engineError(tt.err, "do it")
		if e.status != tt.status || !strings.Contains(e.message, tt.msg) || strings.Contains(e.message, "/secret") || strings.Contains(e.message, "no space") {
			t.Errorf("engineError(%v) = %d %q; want %d with %q", tt.err, e.status, e.message, tt.status, tt.msg)
		}
	}
	if e := engineError(portrait.ErrUpstreamRateLimit, "x"); e.retryAfter <= 0 {
		t.Error("a 429 from the messenger's limit carries no Retry-After")
	}
}

// TestAdminChangeErrors: an operator's change the store could not take is
// a 500 that hides the store's words; anything else is a 400 that says why.
func TestAdminChangeErrors(t *testing.T) {
	disk := fmt.Errorf("%w: sqlite: write /data/portrait.db: disk I/O error", portrait.ErrStorage)
	tests := []struct {
		name   string
		e      *apiError
		status int
		msg    string
	}{
		{"create, unknown engine", createError(errors.New(`unknown engine "x" (available: sandbox)`)), 400, `Validation failed. Details: unknown engine "x"`},
		{"create, storage", createError(disk), 500, "Internal Server Error: the instance could not be stored; try again later"},
		{"credential, refused", credentialError(errors.New("the bot token was refused")), 400, "the credential was not accepted: the bot token was refused"},
		{"credential, storage", credentialError(disk), 500, "Internal Server Error: the credential could not be stored; try again later"},
	}
	for _, tt := range tests {
		if tt.e.status != tt.status || !strings.Contains(tt.e.message, tt.msg) || strings.Contains(tt.e.message, "/data") {
			t.Errorf("%s: %d %q; want %d with %q", tt.name, tt.e.status, tt.e.message, tt.status, tt.msg)
		}
	}
}

// TestReason: the reasons of avatarInfo notifications and qr errors, in
// GREEN-API's words.
func TestReason(t *testing.T) {
	_, badChat := portrait.ParseChatID(portrait.TypeWhatsApp, "nope")
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{badChat, "bad request data"},
		{portrait.ErrStarting, "instance in starting process try later"},
		{fmt.Errorf("sandbox: %w", portrait.ErrNotAuthorized), "instance account not authorized"},
		{portrait.ErrUpstreamTimeout, "get avatar timeout limit exceeded"},
		{context.DeadlineExceeded, "get avatar timeout limit exceeded"},
		{fmt.Errorf("x: %w", portrait.ErrUpstreamRateLimit), "rate-overlimit"},
		{fmt.Errorf("x: %w", portrait.ErrUpstreamPicture), "the messenger's picture could not be processed"},
		{errors.New("sqlite: disk I/O error at /data/portrait.db"), "the picture could not be looked up; the server log has the details"},
	}
	for _, tt := range tests {
		if got := Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestMethodTable: every method has a handler, a canonical name used once,
// verbs, and a rate that matches GREEN-API's published limits.
func TestMethodTable(t *testing.T) {
	want := map[string]float64{
		"getAvatar": 10, "getAvatarAsync": 10, "setProfilePicture": 0.1, "setGroupPicture": 1,
		"getSettings": 1, "setSettings": 1, "getStateInstance": 1, "getWaSettings": 1,
		"getAccountSettings": 1, "qr": 3, "getAuthorizationCode": 50, "logout": 1, "reboot": 1,
		"receiveNotification": 100, "deleteNotification": 100,
		// portrait's own methods.
		"getAvatars": 10, "removeProfilePicture": 0.1, "removeGroupPicture": 1,
	}
	seen := map[string]bool{}
	for _, m := range Methods {
		if m.handle == nil || len(m.Verbs) == 0 || seen[strings.ToLower(m.Name)] {
			t.Errorf("method %q: no handler, no verbs, or listed twice", m.Name)
		}
		seen[strings.ToLower(m.Name)] = true
	}
	if got := DefaultRateLimits(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("DefaultRateLimits() = %v\nwant %v", got, want)
	}
}

// FuzzPlainChatID: the fast path agrees with encoding/json whenever it
// answers.
func FuzzPlainChatID(f *testing.F) {
	for _, s := range []string{`{"chatId":"11001234567@c.us"}`, "{ \"chatId\" :\t\" 1@lid \" }", `{"chatId":"a\"b"}`, `{"chatId":""}`, `{"chatId":"x","y":1}`, `{"chatid":"x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := plainChatID(bytes.TrimSpace(body))
		if !ok {
			return
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("fast path accepted %q, which is not JSON: %v", body, err)
		}
		s, isString := v["chatId"].(string)
		if len(v) != 1 || !isString || strings.TrimSpace(s) != got {
			t.Fatalf("fast path read %q from %q; encoding/json reads %v", got, body, v)
		}
	})
}

// FuzzAvatarReply: the hand-written reply is exactly json.Marshal's.
func FuzzAvatarReply(f *testing.F) {
	f.Add("http://127.0.0.1:8780/avatars/b1e0185ba7dae58b7e603a70592eb472cbfac01a.jpg", true)
	f.Add("https://pps.whatsapp.net/v/t61/1.jpg?ccb=11-4&oh=01&oe=6946B8E0", false)
	f.Add("", true)
	f.Add("a\"b\\c<d>\x01é", false)
	f.Fuzz(func(t *testing.T, url string, available bool) {
		want, _ := json.Marshal(avatarReply{URLAvatar: url, Available: available})
		if got := appendAvatarReply(nil, url, available); !bytes.Equal(got, want) {
			t.Fatalf("appendAvatarReply(%q) = %s, json.Marshal = %s", url, got, want)
		}
	})
}
