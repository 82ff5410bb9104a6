package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/client"
	"github.com/portrait-dev/portrait/sandbox"
)

// testImage draws a w×h picture with a gradient, so that it is not flat.
func testImage(w, h int, alpha bool) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			a := uint8(255)
			if alpha && x < w/2 {
				a = 0
			}
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, a})
		}
	}
	return img
}

func encodeJPEG(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodePNG(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeGIF(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	if err := gif.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fetchPicture GETs a urlAvatar and checks it is a JPEG of the given size.
func fetchPicture(t *testing.T, url string, size int) []byte {
	t.Helper()
	code, h, b := raw(t, "GET", url, "", nil)
	if code != 200 || h.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("GET %s: %d %s", url, code, h.Get("Content-Type"))
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil || format != "jpeg" || cfg.Width != size || cfg.Height != size {
		t.Fatalf("GET %s: %s %dx%d (%v); want a %dx%d JPEG", url, format, cfg.Width, cfg.Height, err, size, size)
	}
	return b
}

// wantAvatar is what getAvatar must answer for each demo outcome.
func wantAvatar(outcome string) (status int, picture, available bool) {
	switch outcome {
	case sandbox.OutcomePicture, sandbox.OutcomePicturePNG, sandbox.OutcomeGroupAdmin, sandbox.OutcomeGroupMemberAdminsOnly:
		return 200, true, true
	case sandbox.OutcomeHidden, sandbox.OutcomeGroupNotMember:
		return 200, false, false
	case sandbox.OutcomeNoPicture, sandbox.OutcomeNoAccount, sandbox.OutcomeGroupMember, sandbox.OutcomeGroupNotFound:
		return 200, false, true
	case sandbox.OutcomeTimeout:
		return 504, false, false
	case sandbox.OutcomeRateLimit:
		return 429, false, false
	}
	panic("unknown demo outcome " + outcome)
}

// TestGetAvatarEveryOutcome asks for every chat of the demo world, on both
// instance types, and checks the documented answer for each.
func TestGetAvatarEveryOutcome(t *testing.T) {
	s := start(t)
	for _, tc := range []struct {
		name string
		typ  portrait.InstanceType
		c    *client.Client
	}{{"whatsapp", portrait.TypeWhatsApp, s.wa()}, {"max", portrait.TypeMAX, s.max()}} {
		for _, d := range sandbox.DemoChats(tc.typ) {
			t.Run(tc.name+"/"+d.Outcome+"/"+d.ChatID, func(t *testing.T) {
				status, pic, available := wantAvatar(d.Outcome)
				if d.Kind == portrait.SubjectSelf {
					status, pic, available = 200, true, true
				}
				got, err := tc.c.GetAvatar(context.Background(), d.ChatID)
				if status != 200 {
					var ce *client.Error
					if !errors.As(err, &ce) || ce.StatusCode != status {
						t.Fatalf("GetAvatar = %+v, %v; want HTTP %d", got, err, status)
					}
					if ce.Message == "" || strings.Contains(string(ce.Body), s.WhatsApp.Token) {
						t.Errorf("error body %q: no message, or the token leaks", ce.Body)
					}
					if status == 429 && ce.RetryAfter <= 0 {
						t.Error("429 without Retry-After")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got.Available != available || (got.URLAvatar != "") != pic {
					t.Fatalf("GetAvatar = %+v; want picture %v, available %v", got, pic, available)
				}
				if pic {
					if !strings.HasPrefix(got.URLAvatar, s.URL+"/avatars/") {
						t.Errorf("urlAvatar %q is not an absolute portrait URL", got.URLAvatar)
					}
					fetchPicture(t, got.URLAvatar, 640)
					fetchPicture(t, strings.TrimSuffix(got.URLAvatar, ".jpg")+"-96.jpg", 96)
				}
			})
		}
	}
}

// TestStableURLs: the same picture keeps its URL, a changed picture gets a
// new one at once (the change event drops the cache), and the old URL goes
// on serving the old picture.
func TestStableURLs(t *testing.T) {
	s := start(t, "--cache-ttl", "1h")
	ctx := context.Background()
	c := s.wa()
	const alice = "11001230001@c.us"
	first, err := c.GetAvatar(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.GetAvatar(ctx, alice)
	if err != nil || again.URLAvatar != first.URLAvatar {
		t.Fatalf("second lookup: %+v, %v; want the same URL %s", again, err, first.URLAvatar)
	}
	old := fetchPicture(t, first.URLAvatar, 640)

	// Conditional and HEAD requests.
	code, h, _ := raw(t, "GET", first.URLAvatar, "", nil)
	etag := h.Get("ETag")
	if code != 200 || etag == "" || !strings.Contains(h.Get("Cache-Control"), "immutable") {
		t.Fatalf("GET: %d ETag %q Cache-Control %q", code, etag, h.Get("Cache-Control"))
	}
	if code, _, _ := raw(t, "GET", first.URLAvatar, "", nil, "If-None-Match", etag); code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", code)
	}
	if code, h, b := raw(t, "HEAD", first.URLAvatar, "", nil); code != 200 || len(b) != 0 || h.Get("Content-Length") != fmt.Sprint(len(old)) {
		t.Errorf("HEAD: %d, %d bytes, Content-Length %s", code, len(b), h.Get("Content-Length"))
	}

	// The contact changes her picture on the messenger's side.
	if code, b := s.admin(t, "POST", fmt.Sprintf("/admin/instances/%d/sandbox/chats/%s", s.WhatsApp.ID, alice),
		map[string]any{"picture": encodePNG(t, testImage(300, 200, false))}); code != 200 {
		t.Fatalf("sandbox update: %d %s", code, b)
	}
	changed, err := c.GetAvatar(ctx, alice)
	if err != nil || changed.URLAvatar == first.URLAvatar || changed.URLAvatar == "" {
		t.Fatalf("after the change: %+v, %v; want a new URL (old %s)", changed, err, first.URLAvatar)
	}
	if !bytes.Equal(fetchPicture(t, first.URLAvatar, 640), old) {
		t.Error("the old URL no longer serves the old picture")
	}

	// Unknown and malformed picture addresses.
	for _, p := range []string{"/avatars/0000000000000000000000000000000000000000.jpg", "/avatars/..%2f..%2fportrait.db", "/avatars/url.key", "/avatars/" + strings.Repeat("a", 40) + ".png"} {
		if code, _, _ := raw(t, "GET", s.URL+p, "", nil); code != 404 {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
}

// TestURLsSurviveRestart: after a restart the same unchanged picture is
// answered with the same URL, without a download (revalidated by id).
func TestURLsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := startIn(t, dir, fastArgs...)
	ctx := context.Background()
	first, err := s.wa().GetAvatar(ctx, "11001230001@c.us")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s2 := startIn(t, dir, fastArgs...)
	if !strings.Contains(s2.Stdout.String(), "serving 2 instance(s)") || !strings.Contains(s2.Stdout.String(), "rotate-token") {
		t.Errorf("second start does not say how to list instances and rotate a token:\n%s", s2.Stdout)
	}
	c := newClient(s2.URL, s.WhatsApp.ID, s.WhatsApp.Token)
	again, err := c.GetAvatar(ctx, "11001230001@c.us")
	if err != nil {
		t.Fatal(err)
	}
	// The port differs; the picture's address must not.
	if avatarPath(first.URLAvatar) != avatarPath(again.URLAvatar) {
		t.Errorf("after restart %s, before %s", again.URLAvatar, first.URLAvatar)
	}
	if n := s2.metric(t, `portrait_avatar_lookups_total{outcome="unchanged"}`); n != 1 {
		t.Errorf("lookups with outcome unchanged = %v, want 1 (revalidated by picture id, not downloaded)", n)
	}
}

// TestConcurrentLookupsCoalesce: many identical lookups at once reach the
// engine once.
func TestConcurrentLookupsCoalesce(t *testing.T) {
	s := start(t, "--sandbox-latency", "300ms")
	c := s.wa()
	var wg sync.WaitGroup
	urls := make([]string, 20)
	for i := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.GetAvatar(context.Background(), "11001230001@c.us")
			if err != nil {
				t.Error(err)
			}
			urls[i] = got.URLAvatar
		}()
	}
	wg.Wait()
	for _, u := range urls {
		if u != urls[0] || u == "" {
			t.Fatalf("answers differ: %q vs %q", u, urls[0])
		}
	}
	if n := s.metric(t, `portrait_avatar_lookups_total{outcome="picture"}`); n != 1 {
		t.Errorf("engine lookups = %v, want 1", n)
	}
	if n := s.metric(t, `portrait_avatar_cache_requests_total{result="miss"}`); n != 20 {
		t.Errorf("cache misses = %v, want 20", n)
	}
	if _, err := c.GetAvatar(context.Background(), "11001230001@c.us"); err != nil {
		t.Fatal(err)
	}
	if n := s.metric(t, `portrait_avatar_cache_requests_total{result="hit"}`); n != 1 {
		t.Errorf("cache hits = %v, want 1", n)
	}
}

// multipartBody builds a multipart body; parts are name, filename (""
// for a field), content type, data.
func multipartBody(t *testing.T, parts ...[4]string) (string, *bytes.Buffer) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, p := range parts {
		if p[1] == "" {
			w.WriteField(p[0], p[3])
			continue
		}
		h := make(map[string][]string)
		h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name=%q; filename=%q`, p[0], p[1])}
		if p[2] != "" {
			h["Content-Type"] = []string{p[2]}
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write([]byte(p[3]))
	}
	w.Close()
	return w.FormDataContentType(), &b
}

// TestSetProfilePicture: every accepted format (judged by its bytes, not
// its name or part type), the stable URL, the documented errors.
func TestSetProfilePicture(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	url := fmt.Sprintf("%s/waInstance%d/setProfilePicture/%s", s.URL, s.WhatsApp.ID, s.WhatsApp.Token)
	pics := map[string][]byte{
		"jpeg": encodeJPEG(t, testImage(800, 600, false)),
		"png":  encodePNG(t, testImage(300, 500, true)),
		"gif":  encodeGIF(t, testImage(100, 100, false)),
	}
	for name, data := range pics {
		t.Run(name, func(t *testing.T) {
			// The official SDKs label everything avatar.jpg / image/jpeg.
			ct, body := multipartBody(t, [4]string{"file", "avatar.jpg", "image/jpeg", string(data)})
			code, _, b := raw(t, "POST", url, ct, body)
			if code != 200 || !strings.Contains(string(b), `"reason":null`) || !strings.Contains(string(b), `"setProfilePicture":true`) {
				t.Fatalf("%d %s", code, b)
			}
			var got client.SetProfilePictureResponse
			mustJSON(t, b, &got)
			fetchPicture(t, *got.URLAvatar, 640)
			self, err := s.wa().GetAvatar(ctx, "11001234567@c.us")
			if err != nil || self.URLAvatar != *got.URLAvatar {
				t.Errorf("own picture after set: %+v, %v; want %s", self, err, *got.URLAvatar)
			}
			wa, err := s.wa().GetWaSettings(ctx)
			if err != nil || wa.Avatar != *got.URLAvatar || wa.Phone != "11001234567" || wa.StateInstance != "authorized" || wa.DeviceID == "" {
				t.Errorf("getWaSettings = %+v, %v", wa, err)
			}
		})
	}
	for _, tc := range []struct {
		name, filename, data, msg string
		status                    int
	}{
		{"empty", "avatar.jpg", "", "File is empty", 400},
		{"text", "avatar.jpg", "hello, this is not a picture", "Unsupported media type", 400},
		{"pdf", "photo.png", "%PDF-1.4 fake", "Unsupported media type", 400},
		{"truncated png", "x.png", string(pics["png"][:60]), "Unsupported media type", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct, body := multipartBody(t, [4]string{"file", tc.filename, "image/jpeg", tc.data})
			code, _, b := raw(t, "POST", url, ct, body)
			e := decodeError(t, b)
			if code != tc.status || e.StatusCode != tc.status || !strings.HasPrefix(e.Message, tc.msg) {
				t.Fatalf("%d %s; want %d %q", code, b, tc.status, tc.msg)
			}
			if e.Path != fmt.Sprintf("/waInstance%d/setProfilePicture/{apiTokenInstance}", s.WhatsApp.ID) {
				t.Errorf("path %q", e.Path)
			}
		})
	}
	t.Run("no file part", func(t *testing.T) {
		ct, body := multipartBody(t, [4]string{"picture", "a.jpg", "image/jpeg", string(pics["jpeg"])})
		code, _, b := raw(t, "POST", url, ct, body)
		if e := decodeError(t, b); code != 400 || !strings.Contains(e.Message, "'file'") {
			t.Fatalf("%d %s", code, b)
		}
	})
	t.Run("not multipart", func(t *testing.T) {
		code, _, b := raw(t, "POST", url, "application/json", strings.NewReader(`{"file":"x"}`))
		if e := decodeError(t, b); code != 400 || !strings.Contains(e.Message, "multipart/form-data") {
			t.Fatalf("%d %s", code, b)
		}
	})
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}

// TestUploadLimits: 413 from Content-Length before the body is read, 413
// for a chunked body that grows past the limit, 400 for too many pixels.
func TestUploadLimits(t *testing.T) {
	s := start(t, "--max-upload-bytes", "100000", "--max-pixels", "1000000")
	url := fmt.Sprintf("%s/waInstance%d/setProfilePicture/%s", s.URL, s.WhatsApp.ID, s.WhatsApp.Token)
	big := bytes.Repeat([]byte{0xff}, 200000)
	ct, body := multipartBody(t, [4]string{"file", "a.jpg", "image/jpeg", string(big)})
	code, _, b := raw(t, "POST", url, ct, body)
	if e := decodeError(t, b); code != 413 || e.StatusCode != 413 || !strings.Contains(e.Message, "PORTRAIT_MAX_UPLOAD_BYTES") {
		t.Fatalf("Content-Length over the limit: %d %s", code, b)
	}
	// Without Content-Length (chunked), the limit still holds.
	ct, body = multipartBody(t, [4]string{"file", "a.jpg", "image/jpeg", string(big)})
	code, _, b = raw(t, "POST", url, ct, io.MultiReader(body))
	if code != 413 {
		t.Fatalf("chunked body over the limit: %d %s", code, b)
	}
	// 2000×1000 = 2 MP, over the 1 MP limit, though the file is small.
	ct, body = multipartBody(t, [4]string{"file", "a.png", "image/png", string(encodePNG(t, image.NewGray(image.Rect(0, 0, 2000, 1000))))})
	code, _, b = raw(t, "POST", url, ct, body)
	if e := decodeError(t, b); code != 400 || !strings.Contains(e.Message, "pixels") {
		t.Fatalf("too many pixels: %d %s", code, b)
	}
}

// TestSetGroupPicture: both field names on both routes, every group
// outcome.
func TestSetGroupPicture(t *testing.T) {
	s := start(t)
	pic := string(encodeJPEG(t, testImage(640, 480, false)))
	for _, tc := range []struct {
		name   string
		v3     bool
		field  string
		group  string
		ok     bool
		reason string
	}{
		{"admin groupId", false, "groupId", "120363000000000001@g.us", true, ""},
		{"admin chatId", false, "chatId", "120363000000000001@g.us", true, ""},
		{"member anyone may", false, "groupId", "120363000000000003@g.us", true, ""},
		{"member admins only", false, "groupId", "120363000000000002@g.us", false, portrait.ErrNotGroupAdmin.Error()},
		{"not member", false, "groupId", "120363000000000004@g.us", false, portrait.ErrNotGroupMember.Error()},
		{"unknown group", false, "groupId", "120363000000000099@g.us", false, "Timed Out"},
		{"contact id", false, "groupId", "11001230001@c.us", false, "Timed Out"},
		{"max chatId", true, "chatId", "-10000000000001", true, ""},
		{"max groupId", true, "groupId", "-10000000000001", true, ""},
		{"max unknown", true, "chatId", "-10000000000099", false, "Timed Out"},
		{"max user id", true, "chatId", "10000001", false, "Timed Out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := s.WhatsApp
			if tc.v3 {
				c = s.MAX
			}
			prefix := ""
			if tc.v3 {
				prefix = "/v3"
			}
			ct, body := multipartBody(t, [4]string{"file", "green-api-logo.png", "image/png", pic}, [4]string{tc.field, "", "", tc.group})
			code, _, b := raw(t, "POST", fmt.Sprintf("%s%s/waInstance%d/setGroupPicture/%s", s.URL, prefix, c.ID, c.Token), ct, body)
			if code != 200 {
				t.Fatalf("%d %s", code, b)
			}
			var got client.SetGroupPictureResponse
			mustJSON(t, b, &got)
			if got.SetGroupPicture != tc.ok || got.Reason == nil || *got.Reason != tc.reason {
				t.Fatalf("%s; want ok %v reason %q", b, tc.ok, tc.reason)
			}
			if tc.ok {
				fetchPicture(t, *got.URLAvatar, 640)
			} else if got.URLAvatar != nil {
				t.Errorf("urlAvatar %q on failure, want null", *got.URLAvatar)
			}
		})
	}
	for _, tc := range []struct{ name, field, value, msg string }{
		{"missing", "other", "x", "'groupId' is required"},
		{"malformed", "groupId", "0202221234@g.us", "'groupId' must be a group id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct, body := multipartBody(t, [4]string{"file", "a.jpg", "image/jpeg", pic}, [4]string{tc.field, "", "", tc.value})
			code, _, b := raw(t, "POST", fmt.Sprintf("%s/waInstance%d/setGroupPicture/%s", s.URL, s.WhatsApp.ID, s.WhatsApp.Token), ct, body)
			if e := decodeError(t, b); code != 400 || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("%d %s; want 400 %q", code, b, tc.msg)
			}
		})
	}
}

// TestMessengerRateOverlimit: a second own-picture change within the
// messenger's 10 s window is WhatsApp's rate-overlimit, a 200.
func TestMessengerRateOverlimit(t *testing.T) {
	s := start(t, "--sandbox-picture-cooldown", "10s")
	ctx := context.Background()
	pic := encodeJPEG(t, testImage(100, 100, false))
	first, err := s.wa().SetProfilePicture(ctx, "a.jpg", bytes.NewReader(pic))
	if err != nil || !first.SetProfilePicture {
		t.Fatalf("first: %+v, %v", first, err)
	}
	ct, body := multipartBody(t, [4]string{"file", "a.jpg", "image/jpeg", string(pic)})
	code, _, b := raw(t, "POST", fmt.Sprintf("%s/waInstance%d/setProfilePicture/%s", s.URL, s.WhatsApp.ID, s.WhatsApp.Token), ct, body)
	if code != 200 || string(b) != `{"reason":"rate-overlimit","urlAvatar":null,"setProfilePicture":false}` {
		t.Fatalf("second: %d %s", code, b)
	}
	// MAX answers reason "" on success.
	got, err := s.max().SetProfilePicture(ctx, "a.jpg", bytes.NewReader(pic))
	if err != nil || !got.SetProfilePicture || got.Reason == nil || *got.Reason != "" {
		t.Fatalf("MAX: %+v, %v", got, err)
	}
}
