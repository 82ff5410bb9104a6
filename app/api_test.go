package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/app"
	"github.com/portrait-dev/portrait/client"
)

// TestRouting: the path forms clients send, authentication, and the
// documented error bodies.
func TestRouting(t *testing.T) {
	s := start(t)
	wa, mx := s.WhatsApp, s.MAX
	body := `{"chatId":"11001230001@c.us"}`
	ok := func(code int, b []byte) bool { return code == 200 && strings.Contains(string(b), `"available":true`) }

	for _, form := range []string{
		"%s/waInstance%d/getAvatar/%s",
		"%s//waInstance%d/getAvatar/%s",  // a base URL with a trailing slash
		"%s/waInstance%d/GetAvatar/%s",   // old docs and clients
		"%s/waInstance%d/GETAVATAR/%s/",  // trailing slash
		"%s///waInstance%d/getavatar/%s", // any case, any slashes
	} {
		url := fmt.Sprintf(form, s.URL, wa.ID, wa.Token)
		// The default client follows redirects, which would turn the POST
		// into a bodyless GET: refuse them to see the first answer.
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b := new(bytes.Buffer)
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		if !ok(resp.StatusCode, b.Bytes()) {
			t.Errorf("%s: %d %s", form, resp.StatusCode, b)
		}
	}

	tests := []struct {
		name, method, path, body string
		status                   int
		want                     string // substring of the body
	}{
		{"wrong token", "POST", fmt.Sprintf("/waInstance%d/getAvatar/%s", wa.ID, strings.Repeat("0", 50)), body, 401, `{"code":401,"description":"Unauthorized"}`},
		{"unknown instance", "POST", fmt.Sprintf("/waInstance1101999999/getAvatar/%s", wa.Token), body, 403, `{"code":403,"description":"Forbidden"}`},
		{"other instance's token", "POST", fmt.Sprintf("/waInstance%d/getAvatar/%s", wa.ID, mx.Token), body, 401, `"Unauthorized"`},
		{"unknown method", "POST", fmt.Sprintf("/waInstance%d/sendMessage/%s", wa.ID, wa.Token), body, 404, "unknown method 'sendMessage'"},
		{"max on whatsapp route", "POST", fmt.Sprintf("/waInstance%d/getAvatar/%s", mx.ID, mx.Token), `{"chatId":"10000001"}`, 404, "/v3/waInstance"},
		{"whatsapp on v3 route", "POST", fmt.Sprintf("/v3/waInstance%d/getAvatar/%s", wa.ID, wa.Token), body, 404, "without /v3"},
		{"wrong verb", "GET", fmt.Sprintf("/waInstance%d/getAvatar/%s", wa.ID, wa.Token), "", 405, "getAvatar takes POST"},
		{"bad id", "POST", fmt.Sprintf("/waInstanceabc/getAvatar/%s", wa.Token), body, 400, "idInstance must be a number"},
		{"no token", "POST", fmt.Sprintf("/waInstance%d/getAvatar", wa.ID), body, 400, "apiTokenInstance is missing"},
		{"extra segment", "POST", fmt.Sprintf("/waInstance%d/getAvatar/%s/7", wa.ID, wa.Token), body, 404, "unexpected path segment"},
		{"bad chat id", "POST", fmt.Sprintf("/waInstance%d/getAvatar/%s", wa.ID, wa.Token), `{"chatId":"7123"}`, 400, "Validation failed. Details: 'chatId' must be one of the next formats"},
		{"legacy phoneNumber", "POST", fmt.Sprintf("/waInstance%d/getAvatar/%s", wa.ID, wa.Token), `{"phoneNumber":11001230001}`, 200, `"available":true`},
		{"max ok", "POST", fmt.Sprintf("/v3/waInstance%d/getAvatar/%s", mx.ID, mx.Token), `{"chatId":"10000001"}`, 200, `"available":true`},
		{"max numeric id", "POST", fmt.Sprintf("/v3/waInstance%d/getAvatar/%s", mx.ID, mx.Token), `{"chatId":-10000000000001}`, 200, `"available":true`},
		{"not found", "GET", "/nothing/here", "", 404, "waInstance{idInstance}"},
		{"body too large", "POST", fmt.Sprintf("/waInstance%d/getAvatar/%s", wa.ID, wa.Token), `{"chatId":"` + strings.Repeat("1", 70000) + `"}`, 413, "Payload Too Large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rd *strings.Reader
			if tt.body != "" {
				rd = strings.NewReader(tt.body)
			} else {
				rd = strings.NewReader("")
			}
			code, _, b := raw(t, tt.method, s.URL+tt.path, "application/json", rd)
			if code != tt.status || !strings.Contains(string(b), tt.want) {
				t.Fatalf("%d %s; want %d with %q", code, b, tt.status, tt.want)
			}
			for _, tok := range []string{wa.Token, mx.Token} {
				if strings.Contains(string(b), tok) {
					t.Fatalf("the body leaks a token: %s", b)
				}
			}
			if code != 200 && code != 401 && code != 403 {
				e := decodeError(t, b)
				if e.StatusCode != code || e.Message == "" {
					t.Errorf("error body %+v does not match status %d", e, code)
				}
				if strings.Contains(tt.path, "waInstance") && tt.name != "no token" && !strings.Contains(e.Path, "{apiTokenInstance}") {
					t.Errorf("path %q does not redact the token", e.Path)
				}
			}
		})
	}
}

// TestRateLimits: per-instance, per-method limits with the upstream headers
// and Retry-After.
func TestRateLimits(t *testing.T) {
	s := start(t, "--rate-limits", "getAvatar=2,getStateInstance=1")
	call := func(c creds) (int, http.Header, []byte) {
		return s.call(t, c, false, "POST", "getAvatar", `{"chatId":"11001230004@c.us"}`)
	}
	for i := 0; i < 2; i++ {
		code, h, b := call(s.WhatsApp)
		if code != 200 || h.Get("X-RateLimit-Replenish-Rate") != "2" || h.Get("X-RateLimit-Remaining") != fmt.Sprint(1-i) {
			t.Fatalf("request %d: %d %s %v", i, code, b, h)
		}
	}
	code, h, b := call(s.WhatsApp)
	if code != 429 || h.Get("Retry-After") != "1" || h.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("third request: %d %v %s", code, h, b)
	}
	if e := decodeError(t, b); !strings.Contains(e.Message, "getAvatar is limited to 2 requests per second") {
		t.Errorf("429 message %q", e.Message)
	}
	// Another method of the same instance has its own budget.
	if code, _, b := s.call(t, s.WhatsApp, false, "GET", "getStateInstance", ""); code != 200 {
		t.Errorf("getStateInstance: %d %s", code, b)
	}
	// Another instance has its own budget.
	if code, _, b := s.call(t, s.MAX, true, "POST", "getAvatar", `{"chatId":"10000004"}`); code != 200 {
		t.Errorf("other instance: %d %s", code, b)
	}
	time.Sleep(600 * time.Millisecond) // 2 rps: one token back after 0.5 s
	if code, _, b := call(s.WhatsApp); code != 200 {
		t.Errorf("after the refill: %d %s", code, b)
	}
	// A method not listed keeps GREEN-API's default: setSettings 1 rps.
	for i, want := range []int{200, 429} {
		if code, _, b := s.call(t, s.WhatsApp, false, "POST", "setSettings", `{"stateWebhook":"yes"}`); code != want {
			t.Errorf("setSettings %d: %d %s", i, code, b)
		}
	}
}

// TestSettings: defaults, a subset written back, validation, persistence.
func TestSettings(t *testing.T) {
	dir := t.TempDir()
	s := startIn(t, dir, fastArgs...)
	ctx := context.Background()
	c := s.wa()
	got, err := c.GetSettings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Wid != "11001234567@c.us" || (got.WebhookURL != nil && *got.WebhookURL != "") || got.StateWebhook != client.No || got.AvatarInfoWebhook != client.Yes || got.AvatarChangedWebhook != client.Yes || got.TypeInstance != "whatsapp" {
		t.Errorf("defaults: %+v", got)
	}
	code, _, b := s.call(t, s.WhatsApp, false, "POST", "setSettings",
		`{"webhookUrl":"https://example.com/hook","webhookUrlToken":"secret","stateWebhook":"yes","incomingWebhook":"yes","delaySendMessagesMilliseconds":1000,"wid":"ignored"}`)
	if code != 200 || string(b) != `{"saveSettings":true}` {
		t.Fatalf("setSettings: %d %s", code, b)
	}
	for _, tc := range []struct{ body, msg string }{
		{`{"webhookUrl":"ftp://x"}`, "'webhookUrl' must be"},
		{`{"stateWebhook":"maybe"}`, `'stateWebhook' must be "yes" or "no"`},
		{`{"incomingWebhook":1}`, `'incomingWebhook' must be "yes" or "no"`},
		{`{"delaySendMessagesMilliseconds":{"ms":1000}}`, "'delaySendMessagesMilliseconds' must be a whole number"},
		{`{"delaySendMessagesMilliseconds":"1000"}`, "'delaySendMessagesMilliseconds' must be a whole number"},
		{`{"delaySendMessagesMilliseconds":100}`, "from 500 to 86400000"},
		{`{"delaySendMessagesMilliseconds":1000.5}`, "whole number"},
		{`{"countryInstance":5}`, "'countryInstance' must be a string"},
		{`{"webhookUrlToken":"` + strings.Repeat("x", 3000) + `"}`, "at most 2048"},
		{`{"webhookUrl":"http://127.0.0.1:8080/hook"}`, "PORTRAIT_WEBHOOK_ALLOW"},
		// The first bad setting fails the whole call: nothing is saved.
		{`{"stateWebhook":"no","delaySendMessagesMilliseconds":[]}`, "whole number"},
		{`{}`, "no known setting"},
		{`[]`, "must be a JSON object"},
	} {
		code, _, b := s.call(t, s.WhatsApp, false, "POST", "setSettings", tc.body)
		if e := decodeError(t, b); code != 400 || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("setSettings %s: %d %s", tc.body, code, b)
		}
	}
	s.Stop()
	s2 := startIn(t, dir, fastArgs...)
	_, _, b = s2.call(t, s.WhatsApp, false, "GET", "getSettings", "")
	var m map[string]any
	mustJSON(t, b, &m)
	want := map[string]any{"webhookUrl": "https://example.com/hook", "webhookUrlToken": "secret", "stateWebhook": "yes", "incomingWebhook": "yes", "delaySendMessagesMilliseconds": 1000.0, "wid": "11001234567@c.us", "outgoingWebhook": "no"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("after restart %s = %v, want %v", k, m[k], v)
		}
	}
	// GREEN-API's field order starts wid, countryInstance, typeAccount, webhookUrl.
	if !strings.HasPrefix(string(b), `{"wid":"11001234567@c.us","countryInstance":"","typeAccount":"","webhookUrl":`) {
		t.Errorf("field order: %s", b)
	}
}

// TestLifecycle: state, QR, logout, simulated scan, reboot.
func TestLifecycle(t *testing.T) {
	s := start(t, "--sandbox-start-delay", "2s")
	ctx := context.Background()
	c := s.wa()
	waitState := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, err := c.GetStateInstance(ctx)
			if err == nil && st == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("state %q (%v), want %q", st, err, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Just started (well within the 2 s start delay): starting, and the
	// avatar methods say so.
	if st, err := c.GetStateInstance(ctx); err != nil || st != client.StateStarting {
		t.Fatalf("right after the start: %q, %v; want starting", st, err)
	}
	_, err := c.GetAvatar(ctx, "11001230001@c.us")
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != 400 || ce.Message != "instance in starting process try later" {
		t.Errorf("getAvatar while starting: %v", err)
	}
	waitState(client.StateAuthorized)
	if qr, err := c.QR(ctx); err != nil || qr.Type != client.QRAlreadyLogged || qr.Message != "instance account already authorized" {
		t.Errorf("qr when linked: %+v, %v", qr, err)
	}
	if ok, err := c.Logout(ctx); !ok || err != nil {
		t.Fatalf("logout: %v, %v", ok, err)
	}
	waitState(client.StateNotAuthorized)
	_, err = c.GetAvatar(ctx, "11001230001@c.us")
	if !errors.As(err, &ce) || ce.StatusCode != 400 || ce.Message != "instance account not authorized" {
		t.Errorf("getAvatar when not authorized: %v", err)
	}
	qr, err := c.QR(ctx)
	if err != nil || qr.Type != client.QRCode {
		t.Fatalf("qr when not linked: %+v, %v", qr, err)
	}
	pngBytes, err := base64.StdEncoding.DecodeString(qr.Message)
	if err != nil {
		t.Fatal(err)
	}
	if img, err := png.Decode(bytes.NewReader(pngBytes)); err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("qr message is not a PNG: %v", err)
	}
	wa, err := c.GetWaSettings(ctx)
	if err != nil || wa.StateInstance != client.StateNotAuthorized || wa.Avatar != "" {
		t.Errorf("getWaSettings when not linked: %+v, %v", wa, err)
	}
	// Linking by pairing code instead.
	var pair struct {
		Status bool   `json:"status"`
		Code   string `json:"code"`
	}
	code, _, b := s.call(t, s.WhatsApp, false, "POST", "getAuthorizationCode", `{"phoneNumber": 11001234567}`)
	mustJSON(t, b, &pair)
	if code != 200 || !pair.Status || !regexp.MustCompile(`^[1-9A-Z]{4}-[1-9A-Z]{4}$`).MatchString(pair.Code) {
		t.Errorf("getAuthorizationCode: %d %s", code, b)
	}
	for _, bad := range []string{`{}`, `{"phoneNumber": 123}`, `{"phoneNumber": "abc"}`} {
		if code, _, b := s.call(t, s.WhatsApp, false, "POST", "getAuthorizationCode", bad); code != 400 {
			t.Errorf("getAuthorizationCode %s: %d %s", bad, code, b)
		}
	}
	if code, _, b := s.call(t, s.MAX, true, "POST", "getAuthorizationCode", `{"phoneNumber": 11001234567}`); code != 404 {
		t.Errorf("getAuthorizationCode on MAX: %d %s", code, b)
	}
	// The console's view of it.
	code, b = s.admin(t, "GET", fmt.Sprintf("/admin/instances/%d/qr", s.WhatsApp.ID), nil)
	if code != 200 || !strings.Contains(string(b), `"type":"qrCode"`) {
		t.Errorf("admin qr: %d %s", code, b)
	}
	// The phone scans the code.
	if code, b := s.admin(t, "POST", fmt.Sprintf("/admin/instances/%d/sandbox/scan", s.WhatsApp.ID), nil); code != 200 {
		t.Fatalf("scan: %d %s", code, b)
	}
	waitState(client.StateAuthorized)
	code, _, b = s.call(t, s.WhatsApp, false, "POST", "getAuthorizationCode", `{"phoneNumber": 11001234567}`)
	if code != 200 || !strings.Contains(string(b), `"status":false`) {
		t.Errorf("getAuthorizationCode when linked: %d %s", code, b)
	}
	if ok, err := c.Reboot(ctx); !ok || err != nil {
		t.Fatalf("reboot: %v, %v", ok, err)
	}
	if st, _ := c.GetStateInstance(ctx); st != client.StateStarting {
		t.Errorf("right after reboot: %q, want starting", st)
	}
	waitState(client.StateAuthorized)
	// MAX: getAccountSettings.
	acc, err := s.max().GetAccountSettings(ctx)
	if err != nil || acc.ChatID != "10000000" || acc.Avatar == "" || acc.StateInstance != client.StateAuthorized {
		t.Errorf("getAccountSettings: %+v, %v", acc, err)
	}
}

// TestAdminAPI: off without a token, 401 with a wrong one, and the
// instance operations.
func TestAdminAPI(t *testing.T) {
	s := start(t)
	if code, _, _ := raw(t, "GET", s.URL+"/admin/instances", "", nil, "Authorization", "Bearer wrong"); code != 401 {
		t.Errorf("wrong admin token: %d", code)
	}
	code, b := s.admin(t, "POST", "/admin/instances", map[string]string{"typeInstance": "v3"})
	var created struct {
		IDInstance       int64  `json:"idInstance"`
		APITokenInstance string `json:"apiTokenInstance"`
		TypeInstance     string `json:"typeInstance"`
		APIURL           string `json:"apiUrl"`
	}
	mustJSON(t, b, &created)
	if code != 201 || created.TypeInstance != "v3" || len(created.APITokenInstance) != 50 || !strings.HasPrefix(fmt.Sprint(created.IDInstance), "3100") || created.APIURL != s.URL+"/v3" {
		t.Fatalf("create: %d %s", code, b)
	}
	c := newClient(s.URL, created.IDInstance, created.APITokenInstance, client.WithMAX())
	if _, err := c.GetStateInstance(context.Background()); err != nil {
		t.Fatalf("new instance: %v", err)
	}
	code, b = s.admin(t, "GET", "/admin/instances", nil)
	if code != 200 || strings.Count(string(b), "idInstance") != 3 || strings.Contains(string(b), created.APITokenInstance) {
		t.Errorf("list: %d %s", code, b)
	}
	code, b = s.admin(t, "POST", fmt.Sprintf("/admin/instances/%d/rotate-token", created.IDInstance), nil)
	var rotated struct {
		APITokenInstance string `json:"apiTokenInstance"`
	}
	mustJSON(t, b, &rotated)
	if code != 200 || len(rotated.APITokenInstance) != 50 || rotated.APITokenInstance == created.APITokenInstance {
		t.Fatalf("rotate: %d %s", code, b)
	}
	var ce *client.Error
	if _, err := c.GetStateInstance(context.Background()); !errors.As(err, &ce) || ce.StatusCode != 401 {
		t.Errorf("old token after rotation: %v", err)
	}
	c = newClient(s.URL, created.IDInstance, rotated.APITokenInstance, client.WithMAX())
	if _, err := c.GetStateInstance(context.Background()); err != nil {
		t.Errorf("new token: %v", err)
	}
	if code, b := s.admin(t, "DELETE", fmt.Sprintf("/admin/instances/%d", created.IDInstance), nil); code != 200 {
		t.Fatalf("delete: %d %s", code, b)
	}
	if _, err := c.GetStateInstance(context.Background()); !errors.As(err, &ce) || ce.StatusCode != 403 {
		t.Errorf("deleted instance: %v", err)
	}
	if code, _ := s.admin(t, "DELETE", "/admin/instances/1101000000", nil); code != 404 {
		t.Errorf("delete unknown: %d", code)
	}
	if code, b := s.admin(t, "POST", "/admin/instances", map[string]string{"typeInstance": "telegram"}); code != 400 {
		t.Errorf("unknown type: %d %s", code, b)
	}

	// The console's endpoints: one instance with its own picture, and a
	// profile picture upload that shows before and after.
	code, b = s.admin(t, "GET", fmt.Sprintf("/admin/instances/%d", s.WhatsApp.ID), nil)
	var detail struct {
		StateInstance string `json:"stateInstance"`
		Avatar        struct {
			URLAvatar  string `json:"urlAvatar"`
			PreviewURL string `json:"previewUrl"`
		} `json:"avatar"`
	}
	mustJSON(t, b, &detail)
	if code != 200 || detail.StateInstance != "authorized" || detail.Avatar.URLAvatar == "" || !strings.HasSuffix(detail.Avatar.PreviewURL, "-96.jpg") {
		t.Fatalf("instance detail: %d %s", code, b)
	}
	ct, body := multipartBody(t, [4]string{"file", "me.png", "image/png", string(encodePNG(t, testImage(320, 240, true)))})
	code, _, b = raw(t, "POST", fmt.Sprintf("%s/admin/instances/%d/profile-picture", s.URL, s.WhatsApp.ID), ct, body, "Authorization", "Bearer "+adminToken)
	var upload struct {
		Before, After struct {
			URLAvatar  string `json:"urlAvatar"`
			PreviewURL string `json:"previewUrl"`
		}
	}
	mustJSON(t, b, &upload)
	if code != 200 || upload.Before.URLAvatar != detail.Avatar.URLAvatar || upload.After.URLAvatar == upload.Before.URLAvatar {
		t.Fatalf("profile picture upload: %d %s", code, b)
	}
	fetchPicture(t, upload.After.URLAvatar, 640)
	fetchPicture(t, upload.After.PreviewURL, 96)

	// Without an admin token the admin API does not exist.
	s2 := startIn(t, t.TempDir(), append(fastArgs, "--admin-token", "")...)
	if code, _, _ := raw(t, "GET", s2.URL+"/admin/instances", "", nil, "Authorization", "Bearer "); code != 404 {
		t.Errorf("admin API without a configured token: %d", code)
	}
}

// TestCLI: the instance commands work on the data directory, and a running
// server picks their changes up.
func TestCLI(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	run := func(args ...string) (string, error) {
		var out, errb syncBuffer
		err := app.Run(ctx, app.Env{Args: args, Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errb})
		return out.String() + errb.String(), err
	}
	out, err := run("instance", "create", "--data-dir", s.DataDir, "--type", "whatsapp")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	wa, _ := parseWelcome("x instance\n" + out)
	if wa.ID == 0 || len(wa.Token) != 50 {
		t.Fatalf("create printed %q", out)
	}
	c := newClient(s.URL, wa.ID, wa.Token)
	eventually(t, func() error { _, err := c.GetStateInstance(ctx); return err })

	out, err = run("instance", "list", "--data-dir", s.DataDir)
	if err != nil || strings.Count(out, "\n") != 4 || !strings.Contains(out, fmt.Sprint(wa.ID)) || strings.Contains(out, wa.Token) {
		t.Errorf("list: %v\n%s", err, out)
	}
	out, err = run("instance", "rotate-token", "--data-dir", s.DataDir, fmt.Sprint(wa.ID))
	if err != nil {
		t.Fatalf("rotate-token: %v\n%s", err, out)
	}
	rotated, _ := parseWelcome("x instance\n" + out)
	c2 := newClient(s.URL, wa.ID, rotated.Token)
	eventually(t, func() error { _, err := c2.GetStateInstance(ctx); return err })
	if _, err := c.GetStateInstance(ctx); err == nil {
		t.Error("the old token still works")
	}
	if out, err := run("instance", "delete", "--data-dir", s.DataDir, fmt.Sprint(wa.ID)); err != nil {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	eventually(t, func() error {
		_, err := c2.GetStateInstance(ctx)
		var ce *client.Error
		if errors.As(err, &ce) && ce.StatusCode == 403 {
			return nil
		}
		return fmt.Errorf("still served: %v", err)
	})
	if _, err := run("instance", "delete", "--data-dir", s.DataDir, "1101000000"); err == nil {
		t.Error("deleting an unknown instance succeeded")
	}
	if _, err := run("instance", "bogus"); !errors.Is(err, app.ErrUsage) {
		t.Errorf("unknown subcommand: %v", err)
	}

	// The sandbox commands go through the running server's admin API.
	out, err = run("sandbox", "privacy", "--server", s.URL, "--admin-token", adminToken, fmt.Sprint(s.WhatsApp.ID), "11001230004@c.us", "hidden")
	if err != nil {
		t.Fatalf("sandbox privacy: %v\n%s", err, out)
	}
	out, err = run("sandbox", "world", "--server", s.URL, "--admin-token", adminToken, fmt.Sprint(s.WhatsApp.ID))
	if err != nil || !strings.Contains(out, "11001230004@c.us") {
		t.Fatalf("sandbox world: %v\n%s", err, out)
	}
	if _, err := run("sandbox", "scan", "--server", s.URL, "--admin-token", "wrong", fmt.Sprint(s.WhatsApp.ID)); err == nil {
		t.Error("sandbox command with a wrong admin token succeeded")
	}
}

// eventually waits up to 5 s for f to succeed.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	eventuallyWithin(t, 5*time.Second, f)
}

// TestObservability: health, readiness, metrics, and logs without tokens.
func TestObservability(t *testing.T) {
	s := start(t, "--log-level", "debug")
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _, b := raw(t, "GET", s.URL+p, "", nil); code != 200 {
			t.Errorf("%s: %d %s", p, code, b)
		}
	}
	s.call(t, s.WhatsApp, false, "POST", "getAvatar", `{"chatId":"11001230001@c.us"}`)
	s.call(t, s.WhatsApp, false, "POST", "getAvatar", `{"chatId":"11001230001@c.us"}`)
	s.call(t, s.WhatsApp, false, "POST", "nope", `{}`)
	ct, body := multipartBody(t, [4]string{"file", "a.jpg", "", string(encodeJPEG(t, testImage(50, 50, false)))})
	raw(t, "POST", fmt.Sprintf("%s/waInstance%d/setProfilePicture/%s", s.URL, s.WhatsApp.ID, s.WhatsApp.Token), ct, body)
	for name, want := range map[string]float64{
		`portrait_http_requests_total{code="200",method="getAvatar"}`:         2,
		`portrait_http_requests_total{code="404",method="unknown"}`:           1,
		`portrait_avatar_lookups_total{outcome="picture"}`:                    1,
		`portrait_avatar_cache_requests_total{result="hit"}`:                  1,
		`portrait_picture_process_seconds_count`:                              2,
		`portrait_http_requests_total{code="200",method="setProfilePicture"}`: 1,
	} {
		if got := s.metric(t, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	logs := s.Stderr.String()
	if !strings.Contains(logs, "getAvatar/{apiTokenInstance}") {
		t.Errorf("debug logs do not show the redacted request path:\n%s", logs)
	}
	for _, tok := range []string{s.WhatsApp.Token, s.MAX.Token} {
		if strings.Contains(logs, tok) || strings.Contains(s.metricsText(t), tok) {
			t.Fatal("a token appears in the logs or metrics")
		}
	}
}

func (s *server) metricsText(t *testing.T) string {
	_, _, b := raw(t, "GET", s.URL+"/metrics", "", nil)
	return string(b)
}

// TestGracefulShutdown: a request in flight when the signal comes is
// answered, then Run returns nil.
func TestGracefulShutdown(t *testing.T) {
	s := start(t, "--sandbox-latency", "500ms")
	res := make(chan error, 1)
	go func() {
		_, err := s.wa().GetAvatar(context.Background(), "11001230001@c.us")
		res <- err
	}()
	time.Sleep(150 * time.Millisecond)
	if err := s.Stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	if err := <-res; err != nil {
		t.Fatalf("request in flight: %v", err)
	}
}
