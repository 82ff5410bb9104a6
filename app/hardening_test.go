package app_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/picture"
)

// TestSlowBodies: a client that sends its body a byte at a time cannot
// hold a connection longer than the body timeout, whether its request is
// refused (wrong token: the connection is closed without reading the
// body), served (the read fails) or for another route.
func TestSlowBodies(t *testing.T) {
	s := start(t, "--body-timeout", "300ms")
	u, _ := url.Parse(s.URL)
	for name, target := range map[string]string{
		"wrong token":   fmt.Sprintf("/waInstance%d/getAvatar/%s", s.WhatsApp.ID, strings.Repeat("0", 50)),
		"right token":   fmt.Sprintf("/waInstance%d/getAvatar/%s", s.WhatsApp.ID, s.WhatsApp.Token),
		"console login": "/console/login",
		"healthz":       "/healthz",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", target, u.Host)
			start := time.Now()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			// Keep trickling; the server must end the connection.
			go func() {
				for i := 0; i < 20; i++ {
					time.Sleep(200 * time.Millisecond)
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}()
			reply, err := io.ReadAll(bufio.NewReader(c))
			if err != nil && !isReset(err) {
				t.Fatalf("reading until the server closes: %v", err)
			}
			if name == "right token" && !strings.Contains(string(reply), "PORTRAIT_BODY_TIMEOUT") {
				t.Errorf("the reply to a body that came too slowly does not name the setting:\n%s", reply)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("the connection stayed open %v", took)
			}
		})
	}
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe")
}

// TestAuthFailuresLimited: past its failed authentications a client
// address gets 429 with Retry-After, whether the id is unknown or the token
// wrong (so ids cannot be enumerated), while valid requests are still
// served; the admin API counts against the same limit.
func TestAuthFailuresLimited(t *testing.T) {
	s := start(t, "--auth-failures", "3")
	wrong := strings.Repeat("1", 50)
	codes := []int{}
	for _, id := range []int64{s.WhatsApp.ID, s.WhatsApp.ID + 1, s.WhatsApp.ID, 1101999999} {
		code, h, _ := raw(t, "GET", fmt.Sprintf("%s/waInstance%d/getStateInstance/%s", s.URL, id, wrong), "", nil)
		codes = append(codes, code)
		if code == 429 && h.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if fmt.Sprint(codes) != "[401 403 401 429]" {
		t.Errorf("codes %v, want [401 403 401 429]", codes)
	}
	if code, _, b := s.call(t, s.WhatsApp, false, "GET", "getStateInstance", ""); code != 200 {
		t.Errorf("the right token while limited: %d %s", code, b)
	}
	if code, _, _ := raw(t, "GET", s.URL+"/admin/instances", "", nil, "Authorization", "Bearer nope"); code != 429 {
		t.Errorf("a wrong admin token while limited: %d", code)
	}
	if code, _ := s.admin(t, "GET", "/admin/instances", nil); code != 200 {
		t.Errorf("the right admin token while limited: %d", code)
	}
}

// TestRequestIDs: every reply carries X-Request-Id (the client's own when
// it sent a usable one), and a 5xx error message names it.
func TestRequestIDs(t *testing.T) {
	s := start(t)
	_, h, _ := raw(t, "GET", s.URL+"/healthz", "", nil)
	if len(h.Get("X-Request-Id")) != 16 {
		t.Errorf("X-Request-Id %q", h.Get("X-Request-Id"))
	}
	_, h, _ = s.call(t, s.WhatsApp, false, "GET", "getStateInstance", "")
	if h.Get("X-Request-Id") == "" {
		t.Error("a GREEN-API reply has no X-Request-Id")
	}
	_, h, _ = raw(t, "GET", s.URL+"/healthz", "", nil, "X-Request-Id", "trace-42")
	if h.Get("X-Request-Id") != "trace-42" {
		t.Errorf("the client's id was not kept: %q", h.Get("X-Request-Id"))
	}
	_, h, _ = raw(t, "GET", s.URL+"/healthz", "", nil, "X-Request-Id", "bad id\twith <html>")
	if v := h.Get("X-Request-Id"); len(v) != 16 {
		t.Errorf("an unusable client id was kept: %q", v)
	}
}

// TestTokensNotLogged: whatever the path, a token in it never reaches the
// log, also for paths the GREEN-API parser refuses.
func TestTokensNotLogged(t *testing.T) {
	s := start(t, "--log-level", "debug")
	tok := s.WhatsApp.Token
	for _, p := range []string{
		fmt.Sprintf("/api/waInstance%d/getSettings/%s", s.WhatsApp.ID, tok),
		fmt.Sprintf("/waInstance%d/%s", s.WhatsApp.ID, tok),
		fmt.Sprintf("/waInstance%d/%s/getSettings", s.WhatsApp.ID, tok),
		"/console/" + tok,
		"/" + tok,
	} {
		raw(t, "GET", s.URL+p, "", nil)
	}
	raw(t, "GET", s.URL+"/healthz", "", nil) // a marker: the requests before are logged
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(s.Stderr.String(), "/healthz") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if log := s.Stderr.String(); strings.Contains(log, tok) {
		t.Fatalf("the token is in the log:\n%s", log)
	}
}

// TestReadyz: ready when the store and the data directory accept writes.
func TestReadyz(t *testing.T) {
	s := start(t)
	if code, _, b := raw(t, "GET", s.URL+"/readyz", "", nil); code != http.StatusOK {
		t.Errorf("readyz: %d %s", code, b)
	}
}

// TestHonestAnswers: a malformed chatId of getAvatarAsync names the
// documented error id; a messenger picture portrait cannot process is the
// messenger's problem (502), not the caller's (400), while the caller's own
// oversized upload still is a 400.
func TestHonestAnswers(t *testing.T) {
	s := start(t, "--max-pixels", "10000") // 100×100: the demo pictures are larger
	code, _, b := s.call(t, s.WhatsApp, false, "POST", "getAvatarAsync", `{"chatId":"not-a-chat"}`)
	if e := decodeError(t, b); code != 400 || !strings.Contains(e.Message, "bad request data") {
		t.Errorf("getAvatarAsync with a malformed chatId: %d %s", code, b)
	}
	code, h, b := s.call(t, s.WhatsApp, false, "POST", "getAvatar", `{"chatId":"11001230001@c.us"}`)
	e := decodeError(t, b)
	if code != http.StatusBadGateway || !strings.Contains(e.Message, "the messenger's picture could not be processed") ||
		!strings.Contains(e.Message, "request id "+h.Get("X-Request-Id")) {
		t.Errorf("getAvatar of a picture over --max-pixels: %d %s", code, b)
	}
	if !strings.Contains(s.Stderr.String(), "request failed") {
		t.Errorf("the failure is not logged:\n%s", s.Stderr)
	}
}

// TestSandboxChangesSeenAtOnce: a privacy change made through the admin
// API shows in the next getAvatar, not only after the cache TTL, and (as on
// WhatsApp) sends no notification.
func TestSandboxChangesSeenAtOnce(t *testing.T) {
	s := start(t, "--cache-ttl", "1h")
	chat := `{"chatId":"11001230001@c.us"}`
	if code, _, b := s.call(t, s.WhatsApp, false, "POST", "getAvatar", chat); code != 200 || !strings.Contains(string(b), `"available":true`) || strings.Contains(string(b), `"urlAvatar":""`) {
		t.Fatalf("before: %d %s", code, b)
	}
	if code, b := s.admin(t, "POST", fmt.Sprintf("/admin/instances/%d/sandbox/chats/11001230001@c.us", s.WhatsApp.ID), map[string]bool{"hidden": true}); code != 200 {
		t.Fatalf("privacy change: %d %s", code, b)
	}
	if code, _, b := s.call(t, s.WhatsApp, false, "POST", "getAvatar", chat); code != 200 || string(b) != `{"urlAvatar":"","available":false}` {
		t.Errorf("right after the change: %d %s", code, b)
	}
}

// TestPolledQueuesAreBounded: an instance without a webhook that nobody
// polls keeps at most --queue-max notifications, none older than the
// retention window, and what is dropped is counted.
func TestPolledQueuesAreBounded(t *testing.T) {
	s := start(t, "--queue-max", "2", "--queue-trim-interval", "50ms", "--webhook-retention", "1h")
	for _, chat := range []string{"11001230001@c.us", "11001230002@c.us", "11001230004@c.us"} {
		if code, _, b := s.call(t, s.WhatsApp, false, "POST", "getAvatarAsync", `{"chatId":"`+chat+`"}`); code != 200 {
			t.Fatalf("getAvatarAsync: %d %s", code, b)
		}
	}
	eventually(t, func() error {
		if n := s.metric(t, `portrait_notifications_dropped_total{reason="cap"}`); n != 1 {
			return fmt.Errorf("dropped for the cap: %v", n)
		}
		return nil
	})
	c := s.wa()
	first, second := next(t, c), next(t, c)
	if first.AvatarInfo == nil || second.AvatarInfo == nil || first.AvatarInfo.ChatID != "11001230002@c.us" || second.AvatarInfo.ChatID != "11001230004@c.us" {
		t.Errorf("kept %+v and %+v; want the newest two", first.AvatarInfo, second.AvatarInfo)
	}

	s2 := start(t, "--queue-trim-interval", "50ms", "--webhook-retention", "300ms")
	s2.call(t, s2.WhatsApp, false, "POST", "getAvatarAsync", `{"chatId":"11001230001@c.us"}`)
	eventually(t, func() error {
		if n := s2.metric(t, `portrait_notifications_dropped_total{reason="retention"}`); n != 1 {
			return fmt.Errorf("dropped for age: %v", n)
		}
		return nil
	})
	if n, err := s2.wa().ReceiveNotification(context.Background(), 5*time.Second); err != nil || n != nil {
		t.Errorf("after the retention window: %+v, %v; want nothing", n, err)
	}
}

// TestDecodeMemory: an upload whose decoding needs more memory than
// --decode-memory is refused with 413 before it is decoded, however small
// the file.
func TestDecodeMemory(t *testing.T) {
	img := image.NewNRGBA64(image.Rect(0, 0, 4000, 4000))
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > 1<<20 {
		t.Fatalf("the test picture is %d bytes; it should be small", buf.Len())
	}
	// Half of what the pipeline says it needs (however well it streams).
	_, need, err := picture.Estimate(buf.Bytes(), picture.Limits{})
	if err != nil || need < 2 {
		t.Fatalf("Estimate: %d, %v", need, err)
	}
	s := start(t, "--decode-memory", strconv.FormatInt(need/2, 10))
	ct, body := multipartBody(t, [4]string{"file", "big.png", "image/png", buf.String()})
	code, _, b := raw(t, "POST", fmt.Sprintf("%s/waInstance%d/setProfilePicture/%s", s.URL, s.WhatsApp.ID, s.WhatsApp.Token), ct, body)
	if e := decodeError(t, b); code != http.StatusRequestEntityTooLarge || !strings.Contains(e.Message, "PORTRAIT_DECODE_MEMORY") {
		t.Errorf("a picture needing %d bytes under a budget of %d: %d %s", need, need/2, code, b)
	}
}

// TestMetrics: /metrics counts instances by state, engine and type, and a
// metrics token closes it to anyone without the token.
func TestMetrics(t *testing.T) {
	s := start(t)
	if n := s.metric(t, `portrait_instances{engine="sandbox",state="authorized",type="whatsapp"}`); n != 1 {
		t.Errorf("WhatsApp sandbox instances authorized: %v", n)
	}
	if n := s.metric(t, `portrait_instances{engine="sandbox",state="authorized",type="v3"}`); n != 1 {
		t.Errorf("MAX sandbox instances authorized: %v", n)
	}
	s.call(t, s.WhatsApp, false, "GET", "logout", "")
	if n := s.metric(t, `portrait_instances{engine="sandbox",state="notAuthorized",type="whatsapp"}`); n != 1 {
		t.Errorf("after logout: %v", n)
	}

	locked := start(t, "--metrics-token", "m-secret")
	if code, _, _ := raw(t, "GET", locked.URL+"/metrics", "", nil); code != 401 {
		t.Errorf("/metrics without the token: %d", code)
	}
	if code, _, b := raw(t, "GET", locked.URL+"/metrics", "", nil, "Authorization", "Bearer m-secret"); code != 200 || !strings.Contains(string(b), "portrait_instances") {
		t.Errorf("/metrics with the token: %d", code)
	}
}

// TestDecodersLogged: the decoders of HEIC, AVIF and WebP in use are said
// at start.
func TestDecodersLogged(t *testing.T) {
	s := start(t, "--log-level", "info")
	log := s.Stderr.String()
	i := strings.Index(log, "picture decoders")
	if i < 0 {
		t.Fatalf("no line about the picture decoders:\n%s", log)
	}
	line, _, _ := strings.Cut(log[i:], "\n")
	for _, want := range []string{"HEIC and AVIF: ", "; WebP: "} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
}
