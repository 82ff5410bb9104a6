package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/app"
	"github.com/portrait-dev/portrait/internal/servertest"
)

var adminTokenRE = regexp.MustCompile(`admin token:\s+([0-9a-f]{64})\b`)

// noRedirect is an HTTP client that reports redirects instead of
// following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// TestAdminTokenBootstrap: on the default run portrait makes an admin
// token, prints it once with the console's address and keeps only its
// SHA-256; `portrait admin rotate-token` replaces it, and the running
// server takes the new one; a given token wins; "off" switches the admin
// side off.
func TestAdminTokenBootstrap(t *testing.T) {
	dir := t.TempDir()
	s := servertest.Start(t, dir, fastArgs...)
	out := s.Stdout.String()
	m := adminTokenRE.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "console:           "+s.URL+"/console") {
		t.Fatalf("the first start does not print the admin token and the console's address:\n%s", out)
	}
	token := m[1]
	if wa, mx := parseWelcome(out); wa.ID == 0 || mx.ID == 0 || wa.Token == "" || mx.Token == "" {
		t.Errorf("the instances' credentials cannot be read from the first start's output any more:\n%s", out)
	}
	file := filepath.Join(dir, "admin-token.sha256")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	if strings.TrimSpace(string(b)) != hex.EncodeToString(sum[:]) {
		t.Errorf("%s holds %q, want the token's SHA-256", file, b)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", file, fi.Mode().Perm())
	}
	adminGet := func(s *servertest.Server, token string) int {
		code, _, _ := raw(t, "GET", s.URL+"/admin/instances", "", nil, "Authorization", "Bearer "+token)
		return code
	}
	if code := adminGet(s, token); code != 200 {
		t.Fatalf("the printed admin token: %d, want 200", code)
	}
	if code := adminGet(s, "wrong"); code != 401 {
		t.Errorf("a wrong admin token: %d, want 401", code)
	}
	// The server's root leads to the console.
	resp, err := noRedirect.Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/console" {
		t.Errorf("GET /: %d to %q, want 302 to /console", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Rotate from the CLI, the flag after the command: the running server
	// takes the new token within a second.
	var stdout, stderr servertest.SyncBuffer
	err = app.Run(context.Background(), app.Env{Args: []string{"admin", "rotate-token", "--data-dir", dir}, Getenv: func(string) string { return "" }, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatalf("admin rotate-token: %v\n%s", err, stderr.String())
	}
	m = adminTokenRE.FindStringSubmatch(stdout.String())
	if m == nil || m[1] == token {
		t.Fatalf("admin rotate-token printed no new token:\n%s", stdout.String())
	}
	rotated := m[1]
	deadline := time.Now().Add(5 * time.Second)
	for adminGet(s, rotated) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the running server did not take the rotated token")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code := adminGet(s, token); code != 401 {
		t.Errorf("the old token after the rotation: %d, want 401", code)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	// A later start prints no token and keeps the rotated one.
	s2 := servertest.Start(t, dir, fastArgs...)
	if adminTokenRE.MatchString(s2.Stdout.String()) || !strings.Contains(s2.Stdout.String(), "portrait admin rotate-token") {
		t.Errorf("a later start's output: want no token and how to get a new one:\n%s", s2.Stdout.String())
	}
	if code := adminGet(s2, rotated); code != 200 {
		t.Errorf("the rotated token after a restart: %d", code)
	}
	if err := s2.Stop(); err != nil {
		t.Fatal(err)
	}

	// A given token wins over the kept one.
	s3 := servertest.Start(t, dir, append(append([]string{}, fastArgs...), "--admin-token", "given-token")...)
	if adminGet(s3, "given-token") != 200 || adminGet(s3, rotated) != 401 {
		t.Errorf("with --admin-token the given token must be the only one")
	}
	if err := s3.Stop(); err != nil {
		t.Fatal(err)
	}

	// Off: no admin API, no console, no redirect.
	s4 := servertest.Start(t, dir, append(append([]string{}, fastArgs...), "--admin-token", "off")...)
	if code := adminGet(s4, rotated); code != 404 {
		t.Errorf("admin API with --admin-token off: %d, want 404", code)
	}
	for _, p := range []string{"/console", "/"} {
		resp, err := noRedirect.Get(s4.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET %s with --admin-token off: %d, want 404", p, resp.StatusCode)
		}
	}

	// Flags before the command work too; mistakes are usage errors.
	if err := app.Run(context.Background(), app.Env{Args: []string{"admin", "--data-dir", dir, "rotate-token"}, Getenv: func(string) string { return "" }, Stdout: io.Discard, Stderr: io.Discard}); err != nil {
		t.Errorf("admin --data-dir DIR rotate-token: %v", err)
	}
	for _, args := range [][]string{{"admin"}, {"admin", "nope", "--data-dir", dir}, {"admin", "rotate-token", "extra", "--data-dir", dir}, {"admin", "--bogus"}} {
		if err := app.Run(context.Background(), app.Env{Args: args, Getenv: func(string) string { return "" }, Stdout: io.Discard, Stderr: io.Discard}); !errors.Is(err, app.ErrUsage) {
			t.Errorf("%v: %v, want ErrUsage", args, err)
		}
	}

	// Without a data directory the command says what to do.
	err = app.Run(context.Background(), app.Env{Args: []string{"admin", "rotate-token", "--data-dir", filepath.Join(dir, "nope")}, Getenv: func(string) string { return "" }, Stdout: io.Discard, Stderr: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("rotate-token without a data directory: %v", err)
	}
}

// adminJSON calls the admin API and decodes the reply into out (if not
// nil); it returns the status.
func (s *server) adminJSON(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	code, b := s.admin(t, method, path, body)
	if out != nil && code < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	if code >= 300 && out != nil {
		if e, ok := out.(*errorBody); ok {
			_ = json.Unmarshal(b, e)
		}
	}
	return code
}

func TestAdminEngines(t *testing.T) {
	s := start(t)
	var engines []struct {
		Name       string   `json:"name"`
		Types      []string `json:"types"`
		Default    bool     `json:"default"`
		Credential bool     `json:"credential"`
	}
	if code := s.adminJSON(t, "GET", "/admin/engines", nil, &engines); code != 200 {
		t.Fatalf("GET /admin/engines: %d", code)
	}
	got := map[string]string{}
	for _, e := range engines {
		got[e.Name] = fmt.Sprint(e.Types, e.Default, e.Credential)
	}
	want := map[string]string{
		"sandbox":  "[whatsapp v3] true false",
		"whatsapp": "[whatsapp] false false",
		"max":      "[v3] false false",
		"maxbot":   "[v3] false true",
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("engine %s: %q, want %q (all: %v)", name, got[name], w, got)
		}
	}
	if len(engines) == 0 || engines[0].Name != "sandbox" {
		t.Errorf("engines %v: want the list in the help texts' order, sandbox first", engines)
	}
	// The instances say what applies to them.
	var list []struct {
		ID         int64 `json:"idInstance"`
		Sandbox    bool  `json:"sandbox"`
		Credential bool  `json:"credential"`
	}
	s.adminJSON(t, "GET", "/admin/instances", nil, &list)
	for _, in := range list {
		if !in.Sandbox || in.Credential {
			t.Errorf("instance %d: sandbox %v, credential %v; want a sandbox instance without a credential", in.ID, in.Sandbox, in.Credential)
		}
	}
	var bot struct {
		ID         int64 `json:"idInstance"`
		Sandbox    bool  `json:"sandbox"`
		Credential bool  `json:"credential"`
	}
	if code := s.adminJSON(t, "POST", "/admin/instances", map[string]string{"typeInstance": "v3", "engine": "maxbot"}, &bot); code != 201 {
		t.Fatalf("creating a maxbot instance: %d", code)
	}
	if bot.Sandbox || !bot.Credential {
		t.Errorf("maxbot instance: sandbox %v, credential %v; want credential only", bot.Sandbox, bot.Credential)
	}
}

// TestAdminSettings: the console's settings are setSettings and
// getSettings, with the same validation.
func TestAdminSettings(t *testing.T) {
	s := start(t)
	path := fmt.Sprintf("/admin/instances/%d/settings", s.WhatsApp.ID)
	var st map[string]any
	if code := s.adminJSON(t, "GET", path, nil, &st); code != 200 {
		t.Fatalf("GET settings: %d", code)
	}
	for _, k := range []string{"webhookUrl", "webhookUrlToken", "stateWebhook", "avatarInfoWebhook", "avatarChangedWebhook", "delaySendMessagesMilliseconds", "typeInstance"} {
		if _, ok := st[k]; !ok {
			t.Errorf("settings lack %s: %v", k, st)
		}
	}
	// A loopback webhook without --webhook-allow: refused, naming the
	// setting to change.
	var e errorBody
	if code := s.adminJSON(t, "POST", path, map[string]any{"webhookUrl": "http://127.0.0.1:9/hook"}, &e); code != 400 || !strings.Contains(e.Message, "PORTRAIT_WEBHOOK_ALLOW") {
		t.Errorf("a loopback webhookUrl: %d %q, want 400 naming PORTRAIT_WEBHOOK_ALLOW", code, e.Message)
	}
	for _, bad := range []map[string]any{
		{"webhookUrl": "ftp://example.com/"},
		{"stateWebhook": "maybe"},
		{"delaySendMessagesMilliseconds": 5},
		{"unknown": 1},
	} {
		if code, b := s.admin(t, "POST", path, bad); code != 400 {
			t.Errorf("settings %v: %d %s, want 400", bad, code, b)
		}
	}
	var saved struct {
		SaveSettings bool `json:"saveSettings"`
	}
	if code := s.adminJSON(t, "POST", path, map[string]any{"webhookUrl": "https://hooks.example.com/p", "webhookUrlToken": "tok", "stateWebhook": "yes", "avatarChangedWebhook": "no", "keepOnlineStatus": "yes"}, &saved); code != 200 || !saved.SaveSettings {
		t.Fatalf("saving settings: %d %v", code, saved)
	}
	s.adminJSON(t, "GET", path, nil, &st)
	for k, want := range map[string]string{"webhookUrl": "https://hooks.example.com/p", "webhookUrlToken": "tok", "stateWebhook": "yes", "avatarChangedWebhook": "no", "keepOnlineStatus": "yes", "avatarInfoWebhook": "yes"} {
		if fmt.Sprint(st[k]) != want {
			t.Errorf("after saving, %s = %v, want %s", k, st[k], want)
		}
	}
	// The GREEN-API method sees the same.
	if code, _, b := s.call(t, s.WhatsApp, false, "GET", "getSettings", ""); code != 200 || !strings.Contains(string(b), `"webhookUrl":"https://hooks.example.com/p"`) {
		t.Errorf("getSettings after the admin's save: %d %s", code, b)
	}
	if code, _ := s.admin(t, "GET", "/admin/instances/1101000000/settings", nil); code != 404 {
		t.Errorf("settings of an unknown instance: %d, want 404", code)
	}
}

// testReceiver is a webhook receiver that answers with status and body
// and remembers what it got.
type testReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	bodies []string
	auths  []string
}

func newTestReceiver(t *testing.T, status int) *testReceiver {
	r := &testReceiver{status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, string(b))
		r.auths = append(r.auths, req.Header.Get("Authorization"))
		status := r.status
		r.mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprintf(w, "receiver says %d", status)
	}))
	t.Cleanup(r.Close)
	return r
}

type webhookTest struct {
	Delivered  bool   `json:"delivered"`
	Status     int    `json:"status"`
	StatusText string `json:"statusText"`
	TookMs     int64  `json:"tookMs"`
	Body       string `json:"body"`
	Error      string `json:"error"`
}

// TestAdminWebhookTest: the test notification reaches the receiver with
// the instance's token, and its answer (or the failure) comes back; it
// goes through the same guard as real notifications.
func TestAdminWebhookTest(t *testing.T) {
	s := start(t, "--webhook-allow", "127.0.0.0/8", "--webhook-timeout", "1s")
	path := fmt.Sprintf("/admin/instances/%d/webhook-test", s.WhatsApp.ID)
	var e errorBody
	if code := s.adminJSON(t, "POST", path, nil, &e); code != 400 || !strings.Contains(e.Message, "webhookUrl") {
		t.Errorf("a test without a webhookUrl: %d %q, want 400 saying so", code, e.Message)
	}

	ok := newTestReceiver(t, 200)
	if code, b := s.admin(t, "POST", fmt.Sprintf("/admin/instances/%d/settings", s.WhatsApp.ID), map[string]any{"webhookUrl": ok.URL + "/hook", "webhookUrlToken": "s3cret"}); code != 200 {
		t.Fatalf("saving the webhook: %d %s", code, b)
	}
	var res webhookTest
	if code := s.adminJSON(t, "POST", path, nil, &res); code != 200 {
		t.Fatalf("webhook test: %d", code)
	}
	if !res.Delivered || res.Status != 200 || res.Body != "receiver says 200" || res.Error != "" {
		t.Errorf("webhook test against a 200 receiver: %+v", res)
	}
	ok.mu.Lock()
	if len(ok.bodies) != 1 || ok.auths[0] != "Bearer s3cret" {
		t.Errorf("the receiver got %d requests, Authorization %q", len(ok.bodies), ok.auths)
	} else {
		var n struct {
			TypeWebhook  string `json:"typeWebhook"`
			InstanceData struct {
				IDInstance   int64  `json:"idInstance"`
				TypeInstance string `json:"typeInstance"`
			} `json:"instanceData"`
			Timestamp int64 `json:"timestamp"`
		}
		if err := json.Unmarshal([]byte(ok.bodies[0]), &n); err != nil || n.TypeWebhook != "testNotification" || n.InstanceData.IDInstance != s.WhatsApp.ID || n.InstanceData.TypeInstance != "whatsapp" || n.Timestamp == 0 {
			t.Errorf("test notification %s (%v)", ok.bodies[0], err)
		}
	}
	ok.mu.Unlock()

	// Values from the form, before saving: a receiver answering 500.
	res = webhookTest{}
	bad := newTestReceiver(t, 500)
	if code := s.adminJSON(t, "POST", path, map[string]string{"webhookUrl": bad.URL + "/x", "webhookUrlToken": ""}, &res); code != 200 {
		t.Fatalf("webhook test with a URL: %d", code)
	}
	if res.Delivered || res.Status != 500 || res.Body != "receiver says 500" || !strings.Contains(res.Error, "only 200") {
		t.Errorf("webhook test against a 500 receiver: %+v", res)
	}
	bad.mu.Lock()
	if len(bad.auths) != 1 || bad.auths[0] != "" {
		t.Errorf("the form's empty token was not used: %q", bad.auths)
	}
	bad.mu.Unlock()

	// Nobody listening.
	res = webhookTest{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/"
	ln.Close()
	if code := s.adminJSON(t, "POST", path, map[string]string{"webhookUrl": closed}, &res); code != 200 || res.Delivered || res.Error == "" || res.Status != 0 {
		t.Errorf("webhook test against a closed port: %d %+v", code, res)
	}
	// A receiver that does not answer in time.
	res = webhookTest{}
	quit := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-quit:
		}
	}))
	defer hang.Close()
	defer close(quit)
	if code := s.adminJSON(t, "POST", path, map[string]string{"webhookUrl": hang.URL}, &res); code != 200 || res.Delivered || !strings.Contains(res.Error, "in time") {
		t.Errorf("webhook test against a receiver that hangs: %d %+v", code, res)
	}
	// The form's URL is validated as setSettings validates it.
	if code := s.adminJSON(t, "POST", path, map[string]string{"webhookUrl": "http://[::1"}, &e); code != 400 {
		t.Errorf("webhook test with a broken URL: %d", code)
	}

	// Without --webhook-allow the guard refuses loopback, also for a name
	// that resolves to it: the test says so, as the sender would.
	s2 := start(t)
	guarded := fmt.Sprintf("/admin/instances/%d/webhook-test", s2.WhatsApp.ID)
	if code := s2.adminJSON(t, "POST", guarded, map[string]string{"webhookUrl": ok.URL}, &e); code != 400 || !strings.Contains(e.Message, "PORTRAIT_WEBHOOK_ALLOW") {
		t.Errorf("a loopback test without --webhook-allow: %d %q", code, e.Message)
	}
	// The name is refused when it is validated, or else by the guard when
	// the test is sent; either way the answer says why.
	res, e = webhookTest{}, errorBody{}
	code, raw := s2.admin(t, "POST", guarded, map[string]string{"webhookUrl": strings.Replace(ok.URL, "127.0.0.1", "localhost", 1)})
	switch code {
	case 400:
		if err := json.Unmarshal(raw, &e); err != nil || !strings.Contains(e.Message, "PORTRAIT_WEBHOOK_ALLOW") {
			t.Errorf("a test to localhost without --webhook-allow: 400 %s, want the reason", raw)
		}
	case 200:
		if err := json.Unmarshal(raw, &res); err != nil || res.Delivered || !strings.Contains(res.Error, "not public") {
			t.Errorf("a test to localhost without --webhook-allow reached it: %s", raw)
		}
	default:
		t.Errorf("a test to localhost without --webhook-allow: %d %s, want 400, or 200 with the guard's refusal", code, raw)
	}
}

// TestAdminNotifications: the queue's depth and head by polling, and the
// last delivery attempt with its error once a webhook fails.
func TestAdminNotifications(t *testing.T) {
	s := start(t, "--webhook-allow", "127.0.0.0/8", "--webhook-backoff-min", "5s", "--webhook-timeout", "1s")
	path := fmt.Sprintf("/admin/instances/%d/notifications", s.WhatsApp.ID)
	type status struct {
		Delivery string `json:"delivery"`
		Depth    int64  `json:"depth"`
		Head     *struct {
			ReceiptID int64           `json:"receiptId"`
			CreatedAt time.Time       `json:"createdAt"`
			Body      json.RawMessage `json:"body"`
		} `json:"head"`
		LastAttempt *struct {
			At        time.Time  `json:"at"`
			ReceiptID int64      `json:"receiptId"`
			Attempt   int        `json:"attempt"`
			Outcome   string     `json:"outcome"`
			Error     string     `json:"error"`
			RetryAt   *time.Time `json:"retryAt"`
		} `json:"lastAttempt"`
	}
	var st status
	if code := s.adminJSON(t, "GET", path, nil, &st); code != 200 || st.Depth != 0 || st.Head != nil || st.LastAttempt != nil || st.Delivery != "polling" {
		t.Fatalf("an empty queue: %d %+v", code, st)
	}
	for _, chat := range []string{"11001230001@c.us", "11001230002@c.us"} {
		if code, _, b := s.call(t, s.WhatsApp, false, "POST", "getAvatarAsync", fmt.Sprintf(`{"chatId":%q}`, chat)); code != 200 {
			t.Fatalf("getAvatarAsync: %d %s", code, b)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st = status{}
		s.adminJSON(t, "GET", path, nil, &st)
		if st.Depth == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queue never held 2 notifications: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.Head == nil || !strings.Contains(string(st.Head.Body), `"typeWebhook":"avatarInfo"`) || !strings.Contains(string(st.Head.Body), "11001230001@c.us") || st.Head.CreatedAt.IsZero() {
		t.Errorf("head: %+v", st.Head)
	}

	// A webhook that answers 503: the last attempt says so.
	r := newTestReceiver(t, 503)
	if code, b := s.admin(t, "POST", fmt.Sprintf("/admin/instances/%d/settings", s.WhatsApp.ID), map[string]any{"webhookUrl": r.URL + "/hook"}); code != 200 {
		t.Fatalf("saving the webhook: %d %s", code, b)
	}
	for {
		st = status{}
		s.adminJSON(t, "GET", path, nil, &st)
		if st.LastAttempt != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery attempt reported: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	a := st.LastAttempt
	if st.Delivery != "webhook" || a.Outcome != "failed" || !strings.Contains(a.Error, "503") || a.Attempt != 1 || a.RetryAt == nil || !a.RetryAt.After(a.At) || a.ReceiptID != st.Head.ReceiptID || st.Depth != 2 {
		t.Errorf("after a failed delivery: %+v, attempt %+v", st, *a)
	}
	// The receiver recovers: delivered, the queue empties.
	r.mu.Lock()
	r.status = 200
	r.mu.Unlock()
	deadline = time.Now().Add(15 * time.Second)
	for {
		st = status{}
		s.adminJSON(t, "GET", path, nil, &st)
		if st.Depth == 0 && st.LastAttempt != nil && st.LastAttempt.Outcome == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never delivered: %+v %+v", st, st.LastAttempt)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st.Head != nil || st.LastAttempt.Error != "" {
		t.Errorf("after delivery: %+v %+v", st, st.LastAttempt)
	}
}

// TestAdminLinkingAndPictures: pairing codes, log-out, group pictures and
// any chat's avatar, through the admin API as the console uses them.
func TestAdminLinkingAndPictures(t *testing.T) {
	s := start(t)
	wa := fmt.Sprintf("/admin/instances/%d", s.WhatsApp.ID)
	mx := fmt.Sprintf("/admin/instances/%d", s.MAX.ID)

	// Any chat's avatar, with the outcome in words and both pictures.
	type lookup struct {
		ChatID     string `json:"chatId"`
		Outcome    string `json:"outcome"`
		URLAvatar  string `json:"urlAvatar"`
		PreviewURL string `json:"previewUrl"`
		Available  bool   `json:"available"`
	}
	for chat, want := range map[string]string{"11001230001@c.us": "picture", "11001230003@c.us": "hidden", "11001230004@c.us": "none", "11001230005@c.us": "none"} {
		var l lookup
		if code := s.adminJSON(t, "POST", wa+"/avatar", map[string]string{"chatId": chat}, &l); code != 200 {
			t.Errorf("lookup %s: %d", chat, code)
			continue
		}
		if l.Outcome != want || l.ChatID != chat {
			t.Errorf("lookup %s: %+v, want outcome %s", chat, l, want)
		}
		if want == "picture" {
			fetchPicture(t, l.URLAvatar, 640)
			fetchPicture(t, l.PreviewURL, 96)
		} else if l.URLAvatar != "" || l.PreviewURL != "" {
			t.Errorf("lookup %s: pictures %q %q for no picture", chat, l.URLAvatar, l.PreviewURL)
		}
	}
	var l lookup
	if code := s.adminJSON(t, "POST", mx+"/avatar", map[string]string{"chatId": "-10000000000001"}, &l); code != 200 || l.Outcome != "picture" {
		t.Errorf("lookup of a MAX group: %d %+v", code, l)
	}
	var e errorBody
	if code := s.adminJSON(t, "POST", wa+"/avatar", map[string]string{"chatId": "not a chat"}, &e); code != 400 {
		t.Errorf("lookup of a malformed chat id: %d", code)
	}
	if code := s.adminJSON(t, "POST", wa+"/avatar", map[string]string{"chatId": "11001230006@c.us"}, &e); code != 504 {
		t.Errorf("lookup that times out: %d %q, want 504", code, e.Message)
	}

	// A group's picture: set where the account may, refused where not.
	ct, body := multipartBody(t, [4]string{"file", "g.png", "image/png", string(encodePNG(t, testImage(200, 120, false)))}, [4]string{"groupId", "", "", "120363000000000001@g.us"})
	code, _, b := raw(t, "POST", s.URL+wa+"/group-picture", ct, body, "Authorization", "Bearer "+s.Admin)
	var set struct {
		SetGroupPicture bool   `json:"setGroupPicture"`
		URLAvatar       string `json:"urlAvatar"`
		Reason          string `json:"reason"`
	}
	if code != 200 || json.Unmarshal(b, &set) != nil || !set.SetGroupPicture {
		t.Fatalf("setting a group picture: %d %s", code, b)
	}
	fetchPicture(t, set.URLAvatar, 640)
	if code := s.adminJSON(t, "POST", wa+"/avatar", map[string]string{"chatId": "120363000000000001@g.us"}, &l); code != 200 || l.URLAvatar != set.URLAvatar {
		t.Errorf("the group's avatar after setting it: %+v, want %s", l, set.URLAvatar)
	}
	ct, body = multipartBody(t, [4]string{"file", "g.png", "image/png", string(encodePNG(t, testImage(200, 120, false)))}, [4]string{"groupId", "", "", "120363000000000002@g.us"})
	code, _, b = raw(t, "POST", s.URL+wa+"/group-picture", ct, body, "Authorization", "Bearer "+s.Admin)
	set.SetGroupPicture, set.Reason = true, ""
	if code != 200 || json.Unmarshal(b, &set) != nil || set.SetGroupPicture || !strings.Contains(set.Reason, "admin") {
		t.Errorf("a group where only admins may: %d %s", code, b)
	}

	// Pairing code: not while linked; a code once logged out; 404 on MAX.
	var pc struct {
		Status bool   `json:"status"`
		Code   string `json:"code"`
		Reason string `json:"reason"`
	}
	if code := s.adminJSON(t, "POST", wa+"/pairing-code", map[string]any{"phoneNumber": 11001234567}, &pc); code != 200 || pc.Status || pc.Reason == "" {
		t.Errorf("pairing code while linked: %d %+v", code, pc)
	}
	var out struct {
		IsLogout bool `json:"isLogout"`
	}
	if code := s.adminJSON(t, "POST", wa+"/logout", nil, &out); code != 200 || !out.IsLogout {
		t.Fatalf("log out: %d %+v", code, out)
	}
	if code := s.adminJSON(t, "POST", wa+"/avatar", map[string]string{"chatId": "11001230001@c.us"}, &e); code != 400 {
		t.Errorf("lookup while not linked: %d, want 400", code)
	}
	if code := s.adminJSON(t, "POST", wa+"/pairing-code", map[string]any{"phoneNumber": 11001234567}, &pc); code != 200 || !pc.Status || !regexp.MustCompile(`^[A-Z0-9]{4}-[A-Z0-9]{4}$`).MatchString(pc.Code) {
		t.Errorf("pairing code while not linked: %d %+v", code, pc)
	}
	if code := s.adminJSON(t, "POST", wa+"/pairing-code", map[string]any{"phoneNumber": "12"}, &e); code != 400 {
		t.Errorf("pairing code for a malformed number: %d", code)
	}
	if code := s.adminJSON(t, "POST", mx+"/pairing-code", map[string]any{"phoneNumber": 11001234567}, &e); code != 404 || !strings.Contains(e.Message, "qr") {
		t.Errorf("pairing code on MAX: %d %q, want 404 pointing to the QR code", code, e.Message)
	}
	// The simulated scan links it again.
	if code, b := s.admin(t, "POST", wa+"/sandbox/scan", nil); code != 200 {
		t.Fatalf("scan: %d %s", code, b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code := s.adminJSON(t, "POST", wa+"/avatar", map[string]string{"chatId": "11001230001@c.us"}, &l)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lookup after the scan: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAdminConsoleRoutesNeedAuth: every new admin route answers 401
// without credentials and 404 with the admin side off.
func TestAdminConsoleRoutesNeedAuth(t *testing.T) {
	s := start(t)
	off := startIn(t, t.TempDir(), append(append([]string{}, fastArgs...), "--admin-token", "off")...)
	id := s.WhatsApp.ID
	for _, r := range []struct{ method, path string }{
		{"GET", "/admin/engines"},
		{"GET", fmt.Sprintf("/admin/instances/%d/settings", id)},
		{"POST", fmt.Sprintf("/admin/instances/%d/settings", id)},
		{"POST", fmt.Sprintf("/admin/instances/%d/webhook-test", id)},
		{"GET", fmt.Sprintf("/admin/instances/%d/notifications", id)},
		{"POST", fmt.Sprintf("/admin/instances/%d/pairing-code", id)},
		{"POST", fmt.Sprintf("/admin/instances/%d/logout", id)},
		{"POST", fmt.Sprintf("/admin/instances/%d/group-picture", id)},
		{"POST", fmt.Sprintf("/admin/instances/%d/avatar", id)},
	} {
		if code, _, _ := raw(t, r.method, s.URL+r.path, "application/json", strings.NewReader("{}")); code != 401 {
			t.Errorf("%s %s without credentials: %d, want 401", r.method, r.path, code)
		}
		if code, _, _ := raw(t, r.method, s.URL+r.path, "application/json", strings.NewReader("{}"), "Authorization", "Bearer "+s.Admin, "Sec-Fetch-Site", "cross-site"); code != 403 && r.method == "POST" {
			t.Errorf("cross-site %s %s: %d, want 403", r.method, r.path, code)
		}
		if code, _, _ := raw(t, r.method, off.URL+r.path, "application/json", strings.NewReader("{}"), "Authorization", "Bearer "+adminToken); code != 404 {
			t.Errorf("%s %s with the admin side off: %d, want 404", r.method, r.path, code)
		}
	}
}
