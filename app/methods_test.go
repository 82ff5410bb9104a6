package app_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/client"
	"github.com/portrait-dev/portrait/greenapi"
	"github.com/portrait-dev/portrait/sandbox"
)

// TestRemovePictures: removeProfilePicture and removeGroupPicture remove
// the picture (the next getAvatar says there is none) and an avatarChanged
// with removed: true follows; a group the account may not change, or an
// id that is not a group, is false with the reason.
func TestRemovePictures(t *testing.T) {
	s := start(t, "--avatar-changed-debounce", "50ms")
	ctx := context.Background()
	c := s.wa()
	if code, _, b := s.call(t, s.WhatsApp, false, "POST", "removeProfilePicture", ""); code != 200 || string(b) != `{"removeProfilePicture":true,"reason":""}` {
		t.Fatalf("removeProfilePicture: %d %s", code, b)
	}
	if av, err := c.GetAvatar(ctx, "11001234567@c.us"); err != nil || av.URLAvatar != "" || !av.Available {
		t.Errorf("own picture after removal: %+v, %v", av, err)
	}
	n := next(t, c)
	if n.TypeWebhook != "avatarChanged" || n.AvatarChanged == nil || !n.AvatarChanged.Removed || n.AvatarChanged.ChatID != "11001234567@c.us" || n.AvatarChanged.Kind != "self" {
		t.Errorf("notification after removeProfilePicture: %+v", n)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"groupId":"120363000000000001@g.us"}`, `{"removeGroupPicture":true,"reason":""}`},
		{`{"chatId":"120363000000000002@g.us"}`, `{"removeGroupPicture":false,"reason":"only group admins may change the group picture and the account is not an admin"}`},
		{`{"groupId":"11001230001@c.us"}`, `{"removeGroupPicture":false,"reason":"Timed Out"}`},
	} {
		if code, _, b := s.call(t, s.WhatsApp, false, "POST", "removeGroupPicture", tc.body); code != 200 || string(b) != tc.want {
			t.Errorf("removeGroupPicture %s: %d %s, want %s", tc.body, code, b, tc.want)
		}
	}
	if av, err := c.GetAvatar(ctx, "120363000000000001@g.us"); err != nil || av.URLAvatar != "" {
		t.Errorf("group picture after removal: %+v, %v", av, err)
	}
	code, _, b := s.call(t, s.WhatsApp, false, "POST", "removeGroupPicture", `{}`)
	if e := decodeError(t, b); code != 400 || !strings.Contains(e.Message, "'groupId' is required") {
		t.Errorf("removeGroupPicture without a group: %d %s", code, b)
	}
}

// TestGetAvatars: one entry per chat in order, with getAvatar's answers,
// errors for the chats that failed, "changed" for the chats whose picture
// the client named, and the rate limit counting each chat.
func TestGetAvatars(t *testing.T) {
	s := start(t)
	c := s.wa()
	alice, err := c.GetAvatar(context.Background(), "11001230001@c.us")
	if err != nil {
		t.Fatal(err)
	}
	body := `{"chatIds":["11001230001@c.us","11001230003@c.us","11001230004@c.us","nope","11001230007@c.us","11001230002@c.us"],
		"known":{"11001230001@c.us":"` + alice.URLAvatar + `","11001230002@c.us":"https://old.example/x.jpg"}}`
	code, _, b := s.call(t, s.WhatsApp, false, "POST", "getAvatars", body)
	if code != 200 {
		t.Fatalf("getAvatars: %d %s", code, b)
	}
	var got []struct {
		ChatID    string `json:"chatId"`
		URLAvatar string `json:"urlAvatar"`
		Available bool   `json:"available"`
		Changed   *bool  `json:"changed"`
		Error     *struct {
			Status  int    `json:"status"`
			Message string `json:"message"`
		} `json:"error"`
	}
	mustJSON(t, b, &got)
	if len(got) != 6 {
		t.Fatalf("%d entries: %s", len(got), b)
	}
	check := func(i int, ok bool, what string) {
		t.Helper()
		if !ok {
			t.Errorf("entry %d (%s): %+v", i, what, got[i])
		}
	}
	check(0, got[0].ChatID == "11001230001@c.us" && got[0].URLAvatar == alice.URLAvatar && got[0].Changed != nil && !*got[0].Changed, "known and unchanged")
	check(1, !got[1].Available && got[1].URLAvatar == "" && got[1].Error == nil && got[1].Changed == nil, "hidden")
	check(2, got[2].Available && got[2].URLAvatar == "" && got[2].Error == nil, "no picture")
	check(3, got[3].Error != nil && got[3].Error.Status == 400, "malformed id")
	check(4, got[4].Error != nil && got[4].Error.Status == 429 && strings.Contains(got[4].Error.Message, "rate-overlimit"), "the messenger's rate limit")
	check(5, got[5].URLAvatar != "" && got[5].Changed != nil && *got[5].Changed, "known and changed")

	for _, bad := range []string{`{"chatIds":[]}`, `{"chatIds":"x"}`, `{"chatIds":[` + strings.Repeat(`"11001230001@c.us",`, 100) + `"11001230001@c.us"]}`} {
		if code, _, b := s.call(t, s.WhatsApp, false, "POST", "getAvatars", bad); code != 400 {
			t.Errorf("getAvatars %.40s…: %d %s", bad, code, b)
		}
	}

	// Each chat counts against getAvatar's limit: at 2 per second, 6
	// chats take about 2 seconds, and none fails.
	limited := start(t, "--rate-limits", "getAvatar=2")
	start := time.Now()
	code, _, b = limited.call(t, limited.WhatsApp, false, "POST", "getAvatars", `{"chatIds":["11001230001@c.us","11001230002@c.us","11001230004@c.us","11001230001@c.us","11001230002@c.us","11001230004@c.us"]}`)
	if took := time.Since(start); code != 200 || strings.Contains(string(b), `"error"`) || took < 1500*time.Millisecond {
		t.Errorf("6 chats at getAvatar=2/s: %d in %v: %s", code, took, b)
	}
}

// TestPictureFromURL: setProfilePicture and setGroupPicture take
// {"urlFile"}: the picture is fetched (through the webhook address rules),
// judged by its bytes, and every failure is a 400 that says what went wrong
// with the URL.
func TestPictureFromURL(t *testing.T) {
	jpeg := gen(t, "from-url", sandbox.FormatJPEG)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/pic.txt": // the extension and the type lie; the bytes are a JPEG
			w.Header().Set("Content-Type", "text/plain")
			w.Write(jpeg)
		case "/big":
			w.Write(bytes.Repeat([]byte{0xFF}, 300_000))
		case "/text":
			w.Write([]byte("not a picture at all"))
		case "/slow":
			time.Sleep(2 * time.Second)
			w.Write(jpeg)
		case "/redirect-out":
			http.Redirect(w, r, "http://10.0.0.1/x.jpg", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer files.Close()
	s := start(t, "--webhook-allow", "127.0.0.0/8", "--max-upload-bytes", "200000", "--fetch-timeout", "500ms")
	set := func(method, body string) (int, string) {
		code, _, b := s.call(t, s.WhatsApp, false, "POST", method, body)
		return code, string(b)
	}
	if code, b := set("setProfilePicture", `{"urlFile":"`+files.URL+`/pic.txt"}`); code != 200 || !strings.Contains(b, `"setProfilePicture":true`) {
		t.Errorf("setProfilePicture by URL: %d %s", code, b)
	}
	if code, b := set("setGroupPicture", `{"urlFile":"`+files.URL+`/pic.txt","groupId":"120363000000000001@g.us"}`); code != 200 || !strings.Contains(b, `"setGroupPicture":true`) {
		t.Errorf("setGroupPicture by URL: %d %s", code, b)
	}
	for _, tc := range []struct{ url, want string }{
		{files.URL + "/missing", "the server answered 404"},
		{files.URL + "/big", "larger than the limit"},
		{files.URL + "/slow", "within 500ms"},
		{files.URL + "/redirect-out", "not public"},
		{"http://10.0.0.1/x.jpg", "not public"},
		{"ftp://example.com/x.jpg", "http:// or https://"},
		{"", "'urlFile' is required"},
	} {
		code, b := set("setProfilePicture", `{"urlFile":"`+tc.url+`"}`)
		if code != 400 || !strings.Contains(b, tc.want) {
			t.Errorf("urlFile %q: %d %s; want 400 with %q", tc.url, code, b, tc.want)
		}
	}
	if code, b := set("setProfilePicture", `{"urlFile":"`+files.URL+`/text"}`); code != 400 || !strings.Contains(b, "Unsupported media type") {
		t.Errorf("urlFile of a text file: %d %s", code, b)
	}
}

// TestClientCoversEveryMethod: the Go client has a method for every
// GREEN-API method the server serves, and the ones added last work against
// the server.
func TestClientCoversEveryMethod(t *testing.T) {
	ct := reflect.TypeOf(&client.Client{})
	for _, m := range greenapi.Methods {
		if _, ok := ct.MethodByName(strings.ToUpper(m.Name[:1]) + m.Name[1:]); !ok {
			if _, ok := ct.MethodByName(strings.ToUpper(m.Name)); !ok { // qr → QR
				t.Errorf("the client has no method for %s", m.Name)
			}
		}
	}

	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(gen(t, "by-url", sandbox.FormatPNG))
	}))
	defer files.Close()
	s := start(t, "--webhook-allow", "127.0.0.0/8")
	ctx := context.Background()
	c := s.wa()
	if r, err := c.GetAuthorizationCode(ctx, 11001234567); err != nil || r.Status || r.Reason == "" {
		t.Errorf("getAuthorizationCode of a linked instance: %+v, %v", r, err)
	}
	if r, err := c.SetProfilePictureFromURL(ctx, files.URL+"/p"); err != nil || !r.SetProfilePicture {
		t.Errorf("SetProfilePictureFromURL: %+v, %v", r, err)
	}
	if r, err := c.SetGroupPictureFromURL(ctx, "120363000000000001@g.us", files.URL+"/p"); err != nil || !r.SetGroupPicture {
		t.Errorf("SetGroupPictureFromURL: %+v, %v", r, err)
	}
	if r, err := c.RemoveGroupPicture(ctx, "120363000000000001@g.us"); err != nil || !r.OK {
		t.Errorf("RemoveGroupPicture: %+v, %v", r, err)
	}
	if r, err := c.RemoveProfilePicture(ctx); err != nil || !r.OK {
		t.Errorf("RemoveProfilePicture: %+v, %v", r, err)
	}
	if r, err := c.GetAvatars(ctx, []string{"11001230001@c.us", "11001234567@c.us"}, nil); err != nil || len(r) != 2 || r[0].URLAvatar == "" || r[1].URLAvatar != "" {
		t.Errorf("GetAvatars: %+v, %v", r, err)
	}
	m := s.max()
	if r, err := m.RemoveGroupPicture(ctx, "-10000000000001"); err != nil || !r.OK {
		t.Errorf("RemoveGroupPicture on MAX: %+v, %v", r, err)
	}
}
