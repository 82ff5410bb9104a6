package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/client"
)

// receive polls once and decodes what came.
func receive(t *testing.T, c *client.Client, timeout time.Duration) (*client.Notification, client.NotificationBody) {
	t.Helper()
	n, err := c.ReceiveNotification(context.Background(), timeout)
	if err != nil {
		t.Fatalf("receiveNotification: %v", err)
	}
	if n == nil {
		return nil, client.NotificationBody{}
	}
	b, err := n.Decode()
	if err != nil {
		t.Fatal(err)
	}
	return n, b
}

// next receives and deletes the next notification, failing when none comes.
func next(t *testing.T, c *client.Client) client.NotificationBody {
	t.Helper()
	n, b := receive(t, c, 20*time.Second)
	if n == nil {
		t.Fatal("no notification within 20 s")
	}
	if ok, err := c.DeleteNotification(context.Background(), n.ReceiptID); !ok || err != nil {
		t.Fatalf("deleteNotification(%d): %v, %v", n.ReceiptID, ok, err)
	}
	return b
}

// TestGetAvatarAsyncByPolling: getAvatarAsync answers 200 with no body and
// its avatarInfo notification arrives by receiveNotification.
func TestGetAvatarAsyncByPolling(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	c := s.wa()
	code, h, b := s.call(t, s.WhatsApp, false, "POST", "getAvatarAsync", `{"chatId":"11001230001@c.us"}`)
	if code != 200 || len(b) != 0 || h.Get("Content-Length") != "0" {
		t.Fatalf("getAvatarAsync: %d %q", code, b)
	}
	n, body := receive(t, c, 20*time.Second)
	if n == nil || body.TypeWebhook != "avatarInfo" || body.AvatarInfo == nil {
		t.Fatalf("notification: %+v %+v", n, body)
	}
	want, err := c.GetAvatar(ctx, "11001230001@c.us")
	if err != nil {
		t.Fatal(err)
	}
	if got := *body.AvatarInfo; got.ChatID != "11001230001@c.us" || got.URLAvatar != want.URLAvatar || !got.Available || got.Reason != "" {
		t.Errorf("avatarInfo %+v; want the getAvatar answer %+v", got, want)
	}
	if body.InstanceData.IDInstance != s.WhatsApp.ID || body.InstanceData.Wid != "11001234567@c.us" || body.InstanceData.TypeInstance != "whatsapp" || body.Timestamp < time.Now().Add(-time.Minute).Unix() {
		t.Errorf("envelope %+v", body)
	}
	// The same head until it is deleted.
	again, _ := receive(t, c, 5*time.Second)
	if again == nil || again.ReceiptID != n.ReceiptID {
		t.Fatalf("second receive: %+v, want receipt %d again", again, n.ReceiptID)
	}
	if ok, err := c.DeleteNotification(ctx, n.ReceiptID); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	url := fmt.Sprintf("%s/waInstance%d/deleteNotification/%s/%d", s.URL, s.WhatsApp.ID, s.WhatsApp.Token, n.ReceiptID)
	if code, _, b := raw(t, "DELETE", url, "", nil); code != 200 || !strings.Contains(string(b), `"result":false`) || strings.Contains(string(b), `"reason":""`) {
		t.Errorf("deleting twice: %d %s", code, b)
	}
	// Empty: null after the timeout.
	start := time.Now()
	url = fmt.Sprintf("%s/waInstance%d/receiveNotification/%s?receiveTimeout=5", s.URL, s.WhatsApp.ID, s.WhatsApp.Token)
	if code, _, b := raw(t, "GET", url, "", nil); code != 200 || string(b) != "null" || time.Since(start) < 4*time.Second {
		t.Errorf("empty queue: %d %s after %s", code, b, time.Since(start))
	}

	// Failures carry a reason.
	s.call(t, s.WhatsApp, false, "POST", "getAvatarAsync", `{"chatId":"11001230006@c.us"}`)
	if b := next(t, c); b.AvatarInfo == nil || b.AvatarInfo.Reason != "get avatar timeout limit exceeded" || b.AvatarInfo.URLAvatar != "" {
		t.Errorf("timeout: %+v", b.AvatarInfo)
	}
	s.call(t, s.WhatsApp, false, "POST", "getAvatarAsync", `{"chatId":"11001230003@c.us"}`)
	if b := next(t, c); b.AvatarInfo == nil || b.AvatarInfo.Available || b.AvatarInfo.Reason != "" {
		t.Errorf("hidden: %+v", b.AvatarInfo)
	}

	for _, tc := range []struct {
		name, method, path, body, msg string
		status                        int
	}{
		{"bad chat", "POST", "getAvatarAsync/%s", `{"chatId":"123"}`, "'chatId' must be one of", 400},
		{"receipt not a number", "DELETE", "deleteNotification/%s/abc", "", "Parameter receiptId must be a Number", 400},
		{"receipt missing", "DELETE", "deleteNotification/%s", "", "{receiptId}", 404},
		{"timeout too short", "GET", "receiveNotification/%s?receiveTimeout=3", "", "'receiveTimeout' must be", 400},
		{"timeout too long", "GET", "receiveNotification/%s?receiveTimeout=61", "", "'receiveTimeout' must be", 400},
	} {
		url := fmt.Sprintf("%s/waInstance%d/"+tc.path, s.URL, s.WhatsApp.ID, s.WhatsApp.Token)
		code, _, b := raw(t, tc.method, url, "application/json", strings.NewReader(tc.body))
		if code != tc.status || !strings.Contains(string(b), tc.msg) {
			t.Errorf("%s: %d %s", tc.name, code, b)
		}
	}
	// getAvatarAsync is WhatsApp only.
	if code, _, b := s.call(t, s.MAX, true, "POST", "getAvatarAsync", `{"chatId":"10000001"}`); code != 404 {
		t.Errorf("getAvatarAsync on MAX: %d %s", code, b)
	}
	// Switched off: no lookup, no notification.
	if ok, err := c.SetSettings(ctx, client.Settings{AvatarInfoWebhook: client.No}); !ok || err != nil {
		t.Fatal(err)
	}
	s.call(t, s.WhatsApp, false, "POST", "getAvatarAsync", `{"chatId":"11001230001@c.us"}`)
	if n, b := receive(t, c, 5*time.Second); n != nil {
		t.Errorf("avatarInfoWebhook off, yet: %+v", b)
	}
}

// TestLongPolling: receiveNotification returns as soon as a notification
// arrives, to every poller waiting.
func TestLongPolling(t *testing.T) {
	s := start(t)
	c := s.wa()
	type got struct {
		n   *client.Notification
		err error
		at  time.Time
	}
	res := make(chan got, 3)
	for i := 0; i < 3; i++ {
		go func() {
			n, err := c.ReceiveNotification(context.Background(), 60*time.Second)
			res <- got{n, err, time.Now()}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	sent := time.Now()
	if code, _, b := s.call(t, s.WhatsApp, false, "POST", "getAvatarAsync", `{"chatId":"11001230004@c.us"}`); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	var receipt int64
	for i := 0; i < 3; i++ {
		g := <-res
		if g.err != nil || g.n == nil {
			t.Fatalf("poller %d: %+v", i, g)
		}
		if receipt == 0 {
			receipt = g.n.ReceiptID
		} else if g.n.ReceiptID != receipt {
			t.Errorf("pollers got different heads: %d and %d", receipt, g.n.ReceiptID)
		}
		// Well before the 60 s timeout.
		if d := g.at.Sub(sent); d > 30*time.Second {
			t.Errorf("poller %d returned %s after the notification", i, d)
		}
	}
}

// TestStateAndChangeNotifications: stateInstanceChanged on state changes
// (when switched on), and one avatarChanged per burst of picture changes.
func TestStateAndChangeNotifications(t *testing.T) {
	s := start(t, "--avatar-changed-debounce", "300ms", "--avatar-changed-debounce-max", "3s")
	ctx := context.Background()
	c := s.wa()
	if _, err := c.SetSettings(ctx, client.Settings{StateWebhook: client.Yes}); err != nil {
		t.Fatal(err)
	}
	c.Logout(ctx)
	if b := next(t, c); b.TypeWebhook != "stateInstanceChanged" || b.StateInstance != "notAuthorized" {
		t.Fatalf("after logout: %+v", b)
	}
	s.admin(t, "POST", fmt.Sprintf("/admin/instances/%d/sandbox/scan", s.WhatsApp.ID), nil)
	if b := next(t, c); b.TypeWebhook != "stateInstanceChanged" || b.StateInstance != "authorized" {
		t.Fatalf("after scan: %+v", b)
	}

	// A burst of three changes to Alice's picture: one notification, with
	// the last picture's stable URL.
	update := func(chat string, body map[string]any) {
		t.Helper()
		if code, b := s.admin(t, "POST", fmt.Sprintf("/admin/instances/%d/sandbox/chats/%s", s.WhatsApp.ID, chat), body); code != 200 {
			t.Fatalf("update %s: %d %s", chat, code, b)
		}
	}
	for i := 0; i < 3; i++ {
		update("11001230001@c.us", map[string]any{"picture": encodePNG(t, testImage(200+i*10, 200, false))})
		time.Sleep(50 * time.Millisecond)
	}
	b := next(t, c)
	if b.TypeWebhook != "avatarChanged" || b.AvatarChanged == nil {
		t.Fatalf("notification %+v", b)
	}
	now, err := c.GetAvatar(ctx, "11001230001@c.us")
	if err != nil {
		t.Fatal(err)
	}
	if ch := *b.AvatarChanged; ch.ChatID != "11001230001@c.us" || ch.Kind != "contact" || ch.Removed || ch.URLAvatar != now.URLAvatar || !ch.Available {
		t.Errorf("avatarChanged %+v; getAvatar now says %+v", ch, now)
	}
	if n, b := receive(t, c, 5*time.Second); n != nil {
		t.Fatalf("a burst gave more than one notification: %+v", b)
	}

	// A group's picture changed by a member; the account's own picture
	// changed from the phone; a picture removed.
	update("120363000000000001@g.us", map[string]any{"picture": encodePNG(t, testImage(120, 120, false)), "author": "11001230002@c.us"})
	if b := next(t, c); b.AvatarChanged == nil || b.AvatarChanged.Kind != "group" || b.AvatarChanged.Author != "11001230002@c.us" || b.AvatarChanged.URLAvatar == "" {
		t.Errorf("group change: %+v", b.AvatarChanged)
	}
	update("11001234567@c.us", map[string]any{"picture": encodePNG(t, testImage(90, 90, false))})
	if b := next(t, c); b.AvatarChanged == nil || b.AvatarChanged.Kind != "self" || b.AvatarChanged.URLAvatar == "" {
		t.Errorf("own change: %+v", b.AvatarChanged)
	}
	update("11001230002@c.us", map[string]any{"removePicture": true})
	if b := next(t, c); b.AvatarChanged == nil || !b.AvatarChanged.Removed || b.AvatarChanged.URLAvatar != "" {
		t.Errorf("removal: %+v", b.AvatarChanged)
	}
	if got, err := c.GetAvatar(ctx, "11001230002@c.us"); err != nil || got.URLAvatar != "" || !got.Available {
		t.Errorf("after removal getAvatar = %+v, %v", got, err)
	}
	// Switched off: nothing.
	c.SetSettings(ctx, client.Settings{AvatarChangedWebhook: client.No})
	update("11001230001@c.us", map[string]any{"removePicture": true})
	if n, b := receive(t, c, 5*time.Second); n != nil {
		t.Errorf("avatarChangedWebhook off, yet: %+v", b)
	}
}

// receiver is a webhook receiver on loopback that records what it gets.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []delivery
	respond func(n int) int // status for the n-th request (from 0)
	calls   int
	arrived chan struct{}
}

type delivery struct {
	auth, contentType string
	body              client.NotificationBody
	raw               []byte
}

func newReceiver(t *testing.T, respond func(n int) int) *receiver {
	r := &receiver{respond: respond, arrived: make(chan struct{}, 1000)}
	quit := make(chan struct{})
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := r.calls
		r.calls++
		status := 200
		if r.respond != nil {
			status = r.respond(n)
		}
		if status == 200 {
			var body client.NotificationBody
			json.Unmarshal(b, &body)
			r.got = append(r.got, delivery{req.Header.Get("Authorization"), req.Header.Get("Content-Type"), body, b})
		}
		r.mu.Unlock()
		if status == 0 { // hang until the client gives up
			select {
			case <-req.Context().Done():
			case <-quit:
			}
			return
		}
		w.WriteHeader(status)
		if status == 200 {
			r.arrived <- struct{}{}
		}
	}))
	t.Cleanup(func() { close(quit); r.Close() })
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func (r *receiver) waitFor(t *testing.T, n int) []delivery {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for len(r.deliveries()) < n {
		select {
		case <-r.arrived:
		case <-deadline:
			t.Fatalf("%d of %d notifications arrived", len(r.deliveries()), n)
		}
	}
	return r.deliveries()
}

func setWebhook(t *testing.T, c *client.Client, url, token string) {
	t.Helper()
	if ok, err := c.SetSettings(context.Background(), client.Settings{WebhookURL: &url, WebhookURLToken: &token}); !ok || err != nil {
		t.Fatalf("setSettings: %v %v", ok, err)
	}
}

var loopbackAllowed = []string{"--webhook-allow", "127.0.0.0/8", "--webhook-backoff-min", "100ms", "--webhook-backoff-max", "500ms", "--webhook-timeout", "2s"}

// TestWebhookDelivery: the header, the order, and retries after a 500, a
// time-out and a refused connection.
func TestWebhookDelivery(t *testing.T) {
	s := start(t, loopbackAllowed...)
	// Fail the 1st request with 500, hang on the 2nd, then accept.
	r := newReceiver(t, func(n int) int {
		switch n {
		case 0:
			return 500
		case 1:
			return 0
		case 2:
			return 204 // only 200 counts
		}
		return 200
	})
	c := s.wa()
	setWebhook(t, c, r.URL+"/hook", "s3cret")
	var chats []string
	for i := 0; i < 20; i++ {
		chat := fmt.Sprintf("1100999%04d@c.us", i)
		chats = append(chats, chat)
		if code, _, b := s.call(t, s.WhatsApp, false, "POST", "getAvatarAsync", fmt.Sprintf(`{"chatId":%q}`, chat)); code != 200 {
			t.Fatalf("%d %s", code, b)
		}
	}
	got := r.waitFor(t, 20)
	for i, d := range got {
		if d.auth != "Bearer s3cret" || !strings.HasPrefix(d.contentType, "application/json") {
			t.Fatalf("delivery %d: Authorization %q, Content-Type %q", i, d.auth, d.contentType)
		}
	}
	// Order kept; a retried head may arrive again, but never out of order.
	var order []string
	seen := map[string]bool{}
	for _, d := range got {
		if !seen[d.body.AvatarInfo.ChatID] {
			seen[d.body.AvatarInfo.ChatID] = true
			order = append(order, d.body.AvatarInfo.ChatID)
		}
	}
	if strings.Join(order, ",") != strings.Join(chats, ",") {
		t.Errorf("order:\n got %v\nwant %v", order, chats)
	}
	if n := s.metric(t, `portrait_webhook_deliveries_total{outcome="failed"}`); n < 3 {
		t.Errorf("failed attempts = %v, want ≥ 3 (500, time-out, 204)", n)
	}
	// Polling is refused while the webhook is set.
	url := fmt.Sprintf("%s/waInstance%d/receiveNotification/%s", s.URL, s.WhatsApp.ID, s.WhatsApp.Token)
	if code, _, b := raw(t, "GET", url, "", nil); code != 400 || !strings.Contains(string(b), "webhookUrl") {
		t.Errorf("receiveNotification with a webhook: %d %s", code, b)
	}

	// Connection refused: a port nobody listens on, then a live receiver.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String() + "/hook"
	ln.Close()
	setWebhook(t, c, dead, "")
	s.call(t, s.WhatsApp, false, "POST", "getAvatarAsync", `{"chatId":"11009990100@c.us"}`)
	time.Sleep(time.Second) // a few refused attempts
	r2 := newReceiver(t, nil)
	setWebhook(t, c, r2.URL, "")
	if got := r2.waitFor(t, 1); got[0].body.AvatarInfo.ChatID != "11009990100@c.us" || got[0].auth != "" {
		t.Errorf("after refused connections: %+v (Authorization %q)", got[0].body.AvatarInfo, got[0].auth)
	}
}

// TestNoHeadOfLineBlockingAcrossInstances: one instance's hanging receiver
// does not hold up another instance's deliveries.
func TestNoHeadOfLineBlockingAcrossInstances(t *testing.T) {
	s := start(t, append(loopbackAllowed, "--webhook-timeout", "30s", "--webhook-concurrency", "4")...)
	stuck := newReceiver(t, func(int) int { return 0 }) // never answers
	fast := newReceiver(t, nil)
	setWebhook(t, s.wa(), stuck.URL, "")
	// A second WhatsApp instance with the fast receiver.
	code, b := s.admin(t, "POST", "/admin/instances", map[string]string{"typeInstance": "whatsapp"})
	var other struct {
		IDInstance       int64  `json:"idInstance"`
		APITokenInstance string `json:"apiTokenInstance"`
	}
	mustJSON(t, b, &other)
	if code != 201 {
		t.Fatalf("%d %s", code, b)
	}
	oc := creds{ID: other.IDInstance, Token: other.APITokenInstance}
	eventually(t, func() error {
		st, err := newClient(s.URL, oc.ID, oc.Token).GetStateInstance(context.Background())
		if err == nil && st != "authorized" {
			err = errors.New(st)
		}
		return err
	})
	setWebhook(t, newClient(s.URL, oc.ID, oc.Token), fast.URL, "")
	for i := 0; i < 5; i++ {
		s.call(t, s.WhatsApp, false, "POST", "getAvatarAsync", `{"chatId":"11001230004@c.us"}`)
	}
	for i := 0; i < 10; i++ {
		s.call(t, oc, false, "POST", "getAvatarAsync", `{"chatId":"11001230004@c.us"}`)
	}
	fast.waitFor(t, 10)
	if n := len(stuck.deliveries()); n != 0 {
		t.Errorf("the hanging receiver recorded %d deliveries", n)
	}
}

// TestDropAfterRetention: a notification nobody accepts is dropped after
// the (shortened) retention window and counted.
func TestDropAfterRetention(t *testing.T) {
	s := start(t, append(loopbackAllowed, "--webhook-retention", "1s")...)
	r := newReceiver(t, func(int) int { return 503 })
	setWebhook(t, s.wa(), r.URL, "")
	s.call(t, s.WhatsApp, false, "POST", "getAvatarAsync", `{"chatId":"11001230004@c.us"}`)
	eventually(t, func() error {
		if n := s.metric(t, `portrait_webhook_deliveries_total{outcome="dropped"}`); n != 1 {
			return fmt.Errorf("dropped = %v", n)
		}
		if d := s.metric(t, "portrait_notification_queue_depth"); d != 0 {
			return fmt.Errorf("queue depth %v", d)
		}
		return nil
	})
}

// TestWebhookRefusesInternalAddresses: without an allow-list, a loopback
// webhookUrl is refused when it is saved (the message names the setting to
// change) and, when it was saved under an allow-list that is gone since,
// when it is delivered; with an allow-list, a redirect to an address
// outside it is refused too.
func TestWebhookRefusesInternalAddresses(t *testing.T) {
	r := newReceiver(t, nil)
	dir := t.TempDir()
	s := startIn(t, dir, append(append([]string{}, fastArgs...), "--webhook-allow", "127.0.0.0/8")...)
	for _, u := range []string{"http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://[::127.0.0.1]:9/hook", "http://localhost:9/hook", "http://10.0.0.1/hook"} {
		code, _, b := s.call(t, s.MAX, true, "POST", "setSettings", `{"webhookUrl":"`+u+`"}`)
		allowed := strings.Contains(u, "127.0.0.1:9") || strings.Contains(u, "localhost") // localhost resolves to an allowed address
		if allowed && code != 200 || !allowed && (code != 400 || !strings.Contains(string(b), "PORTRAIT_WEBHOOK_ALLOW")) {
			t.Errorf("setSettings webhookUrl %s under 127.0.0.0/8: %d %s", u, code, b)
		}
	}
	setWebhook(t, s.wa(), r.URL, "")
	s.Stop()
	first := s.Server
	s = startIn(t, dir, append(append([]string{}, fastArgs...), "--webhook-backoff-min", "100ms", "--webhook-backoff-max", "200ms")...)
	s.WhatsApp, s.MAX = first.WhatsApp, first.MAX
	if code, _, b := s.call(t, s.WhatsApp, false, "POST", "setSettings", `{"webhookUrl":"`+r.URL+`"}`); code != 400 || !strings.Contains(string(b), "PORTRAIT_WEBHOOK_ALLOW") {
		t.Errorf("setSettings with a loopback webhookUrl and no allow-list: %d %s", code, b)
	}
	s.call(t, s.WhatsApp, false, "POST", "getAvatarAsync", `{"chatId":"11001230004@c.us"}`)
	eventually(t, func() error {
		if n := s.metric(t, `portrait_webhook_deliveries_total{outcome="failed"}`); n < 2 {
			return fmt.Errorf("failed = %v", n)
		}
		return nil
	})
	r.mu.Lock()
	calls := r.calls
	r.mu.Unlock()
	if calls != 0 {
		t.Fatalf("the loopback receiver was reached %d times without an allow-list", calls)
	}
	if !strings.Contains(s.Stderr.String(), "address is not public") {
		t.Errorf("the log does not say why:\n%s", s.Stderr)
	}

	// 127.0.0.1 is allowed; it redirects to 127.0.0.2, which is not.
	target := newReceiverOn(t, "127.0.0.2:0")
	redirector := newReceiver(t, nil)
	redirector.Config.Handler = http.RedirectHandler(target.URL+"/hook", http.StatusTemporaryRedirect)
	s2 := start(t, "--webhook-allow", "127.0.0.1/32", "--webhook-backoff-min", "100ms", "--webhook-backoff-max", "200ms")
	setWebhook(t, s2.wa(), redirector.URL, "")
	s2.call(t, s2.WhatsApp, false, "POST", "getAvatarAsync", `{"chatId":"11001230004@c.us"}`)
	eventually(t, func() error {
		if n := s2.metric(t, `portrait_webhook_deliveries_total{outcome="failed"}`); n < 2 {
			return fmt.Errorf("failed = %v", n)
		}
		return nil
	})
	if n := len(target.deliveries()); n != 0 {
		t.Fatalf("the redirect target outside the allow-list got %d deliveries", n)
	}
}

// newReceiverOn is a receiver listening on addr.
func newReceiverOn(t *testing.T, addr string) *receiver {
	r := &receiver{arrived: make(chan struct{}, 100)}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, delivery{raw: b})
		r.mu.Unlock()
	}))
	r.Server.Listener.Close()
	r.Server.Listener = ln
	r.Server.Start()
	t.Cleanup(r.Close)
	return r
}
