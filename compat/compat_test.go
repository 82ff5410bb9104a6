package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The stub below answers as GREEN-API documents its wire format and
// records what the SDKs send. It is not portrait: it pins the SDKs' wire
// behaviour documented in README.md and checks that compat.mjs and Run work.

const (
	stubID    = "1101000001"
	stubGroup = "120363043968066561@g.us"
)

var stubToken = strings.Repeat("0f", 25) // 50 lowercase hex characters

type part struct {
	Name, Filename, ContentType string
	Size                        int
	Value                       string // form values only
}

type request struct {
	Method, URI, ContentType string
	JSON                     map[string]any
	Parts                    []part
}

type stub struct {
	mu       sync.Mutex
	reqs     []request
	group429 bool // answer the first setGroupPicture with 429
}

var stubPath = regexp.MustCompile(`^/+(?:v3/)?waInstance(\d+)/([^/]+)/([^/?]+)`)

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := request{Method: r.Method, URI: strings.ReplaceAll(r.RequestURI, stubToken, "{token}"), ContentType: r.Header.Get("Content-Type")}
	mt, _, _ := mime.ParseMediaType(rec.ContentType)
	switch mt {
	case "application/json":
		_ = json.NewDecoder(r.Body).Decode(&rec.JSON)
	case "multipart/form-data":
		mr, err := r.MultipartReader()
		if err == nil {
			for {
				p, err := mr.NextPart()
				if err != nil {
					break
				}
				b, _ := io.ReadAll(p)
				pp := part{Name: p.FormName(), Filename: p.FileName(), ContentType: p.Header.Get("Content-Type"), Size: len(b)}
				if pp.Filename == "" {
					pp.Value = string(b)
				}
				rec.Parts = append(rec.Parts, pp)
			}
		}
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, rec)
	first429 := false
	m := stubPath.FindStringSubmatch(r.URL.Path)
	if m != nil && strings.EqualFold(m[2], "setGroupPicture") && s.group429 {
		s.group429 = false
		first429 = true
	}
	s.mu.Unlock()

	reply := func(status int, body any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
	switch {
	case m == nil:
		reply(404, map[string]any{"message": "not found"})
	case m[1] != stubID:
		reply(403, map[string]any{"code": 403, "description": "Forbidden"})
	case m[3] != stubToken:
		reply(401, map[string]any{"code": 401, "description": "Unauthorized"})
	case first429:
		w.Header().Set("Retry-After", "0")
		reply(429, map[string]any{"statusCode": 429, "message": "Too Many Requests"})
	default:
		switch strings.ToLower(m[2]) {
		case "getavatar":
			chat, _ := rec.JSON["chatId"].(string)
			if n, ok := rec.JSON["phoneNumber"].(float64); ok && chat == "" {
				chat = fmt.Sprintf("%.0f@c.us", n)
			}
			switch chat {
			case "11001234567@c.us":
				reply(200, map[string]any{"urlAvatar": "http://stub/a.jpg", "available": true})
			case "11001234568@c.us":
				reply(200, map[string]any{"urlAvatar": "", "available": false})
			default:
				reply(200, map[string]any{"urlAvatar": "", "available": true})
			}
		case "setprofilepicture":
			reply(200, map[string]any{"reason": nil, "urlAvatar": "http://stub/me.jpg", "setProfilePicture": true})
		case "setgrouppicture":
			reply(200, map[string]any{"setGroupPicture": true, "urlAvatar": "http://stub/g.jpg", "reason": ""})
		default:
			reply(404, map[string]any{"message": "unknown method"})
		}
	}
}

func (s *stub) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

func writePNG(t *testing.T) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for i := range img.Pix {
		img.Pix[i] = 0x80
	}
	img.Set(0, 0, color.RGBA{255, 0, 0, 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "picture.png")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRunAgainstStub(t *testing.T) {
	if testing.Short() {
		t.Skip("runs npm ci and node; skipped in -short mode")
	}
	s := &stub{group429: true}
	srv := httptest.NewServer(s)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Run(ctx, map[string]string{
		EnvAPIURL:          srv.URL + "/", // the script strips it and adds it back for the TrailingSlash calls
		EnvIDInstance:      stubID,
		EnvToken:           stubToken,
		EnvChatWithPicture: "11001234567@c.us",
		EnvChatHidden:      "11001234568@c.us",
		EnvChatNoPicture:   "11001234569@c.us",
		EnvGroupAdmin:      stubGroup,
		EnvPicturePath:     writePNG(t),
	})
	if errors.Is(err, ErrNoNode) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}

	wantAvatar := map[string]string{
		EnvChatWithPicture: `{"urlAvatar":"http://stub/a.jpg","available":true}`,
		EnvChatHidden:      `{"urlAvatar":"","available":false}`,
		EnvChatNoPicture:   `{"urlAvatar":"","available":true}`,
	}
	avatarPath := "/waInstance" + stubID + "/getAvatar/{apiTokenInstance}"
	for _, sdk := range []string{SDKv1, SDKv2} {
		r, ok := res[sdk]
		if !ok {
			t.Fatalf("no result for %s in %v", sdk, res)
		}
		for chat, want := range wantAvatar {
			o := r.GetAvatar[chat]
			if !o.OK() || !jsonEqual(t, o.Data, want) {
				t.Errorf("%s getAvatar %s = %s, want data %s", sdk, chat, o, want)
			}
			if o.Wire == nil || o.Wire.Method != "POST" || o.Wire.Path != avatarPath || o.Wire.ContentType != "application/json" {
				t.Errorf("%s getAvatar %s wire = %+v", sdk, chat, o.Wire)
			}
		}
		if o := r.GetAvatarTrailingSlash; !o.OK() || o.Wire == nil || o.Wire.Path != "/"+avatarPath {
			t.Errorf("%s getAvatar with trailing slash = %s, want a call to /%s", sdk, o, avatarPath)
		}
		if o := r.SetGroupPicture; !o.OK() || !jsonEqual(t, o.Data, `{"setGroupPicture":true,"urlAvatar":"http://stub/g.jpg","reason":""}`) {
			t.Errorf("%s setGroupPicture = %s", sdk, o)
		}
	}
	if v := res[SDKv1].Version; v != "0.4.4" {
		t.Errorf("%s version %q, want 0.4.4", SDKv1, v)
	}
	if v := res[SDKv2].Version; v != "1.0.3" {
		t.Errorf("%s version %q, want 1.0.3", SDKv2, v)
	}
	if o := res[SDKv1].GetAvatarPhoneNumber; !o.OK() || !jsonEqual(t, o.Data, wantAvatar[EnvChatWithPicture]) {
		t.Errorf("%s getAvatar by phoneNumber = %s", SDKv1, o)
	}
	if o := res[SDKv2].GetAvatarPhoneNumber; o.Skipped == "" {
		t.Errorf("%s getAvatar by phoneNumber = %s, want skipped", SDKv2, o)
	}
	if o := res[SDKv1].SetProfilePicture; o.Skipped == "" {
		t.Errorf("%s setProfilePicture = %s, want skipped (0.4.4 has no such method)", SDKv1, o)
	}
	if o := res[SDKv2].SetProfilePicture; !o.OK() || !jsonEqual(t, o.Data, `{"reason":null,"urlAvatar":"http://stub/me.jpg","setProfilePicture":true}`) {
		t.Errorf("%s setProfilePicture = %s", SDKv2, o)
	}
	if o := res[SDKv1].SetGroupPicture; o.Attempts != 2 {
		t.Errorf("%s setGroupPicture attempts = %d, want 2 (one 429, retried)", SDKv1, o.Attempts)
	}

	// What went over the wire, in order: v1 then v2.
	var got []string
	for _, r := range s.requests() {
		line := r.Method + " " + r.URI
		if r.JSON != nil {
			b, _ := json.Marshal(r.JSON)
			line += " " + string(b)
		}
		if r.Parts != nil {
			mt, _, _ := mime.ParseMediaType(r.ContentType)
			line += " " + mt
			for _, p := range r.Parts {
				if p.Filename == "" {
					line += fmt.Sprintf(" [%s=%s]", p.Name, p.Value)
				} else {
					line += fmt.Sprintf(" [%s file=%s type=%s nonempty=%v]", p.Name, p.Filename, p.ContentType, p.Size > 0)
				}
			}
		}
		got = append(got, line)
	}
	pre := "/waInstance" + stubID
	want := []string{
		`POST ` + pre + `/getAvatar/{token} {"chatId":"11001234567@c.us"}`,
		`POST ` + pre + `/getAvatar/{token} {"chatId":"11001234568@c.us"}`,
		`POST ` + pre + `/getAvatar/{token} {"chatId":"11001234569@c.us"}`,
		`POST ` + pre + `/getAvatar/{token} {"phoneNumber":11001234567}`,
		`POST /` + pre + `/getAvatar/{token} {"chatId":"11001234567@c.us"}`,
		`POST ` + pre + `/setGroupPicture/{token} multipart/form-data [groupId=` + stubGroup + `] [file file=group_avatar.jpg type=image/jpeg nonempty=true]`,
		`POST ` + pre + `/setGroupPicture/{token} multipart/form-data [groupId=` + stubGroup + `] [file file=group_avatar.jpg type=image/jpeg nonempty=true]`,
		`POST ` + pre + `/getAvatar/{token} {"chatId":"11001234567@c.us"}`,
		`POST ` + pre + `/getAvatar/{token} {"chatId":"11001234568@c.us"}`,
		`POST ` + pre + `/getAvatar/{token} {"chatId":"11001234569@c.us"}`,
		`POST /` + pre + `/getAvatar/{token} {"chatId":"11001234567@c.us"}`,
		`POST ` + pre + `/setProfilePicture/{token} multipart/form-data [file file=blob type=application/octet-stream nonempty=true]`,
		`POST ` + pre + `/setGroupPicture/{token} multipart/form-data [file file=blob type=application/octet-stream nonempty=true] [groupId=` + stubGroup + `]`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests on the wire:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRunWrongToken(t *testing.T) {
	if testing.Short() {
		t.Skip("runs npm ci and node; skipped in -short mode")
	}
	srv := httptest.NewServer(&stub{})
	defer srv.Close()
	wrong := strings.Repeat("ab", 25)
	res, err := Run(context.Background(), map[string]string{
		EnvAPIURL: srv.URL, EnvIDInstance: stubID, EnvToken: wrong,
		EnvChatWithPicture: "11001234567@c.us", EnvChatHidden: "11001234568@c.us", EnvChatNoPicture: "11001234569@c.us",
		EnvGroupAdmin: stubGroup, EnvPicturePath: writePNG(t),
	})
	if errors.Is(err, ErrNoNode) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, sdk := range []string{SDKv1, SDKv2} {
		o := res[sdk].GetAvatar[EnvChatWithPicture]
		if o.Error == nil || o.Error.Status != 401 || !jsonEqual(t, o.Error.Body, `{"code":401,"description":"Unauthorized"}`) {
			t.Errorf("%s getAvatar with a wrong token = %s, want error 401", sdk, o)
		}
		b, _ := json.Marshal(res[sdk])
		if bytes.Contains(b, []byte(wrong)) {
			t.Errorf("%s result contains the token: %s", sdk, b)
		}
	}
}

func TestOutcome(t *testing.T) {
	var r Result
	in := `{"x":{"version":"1","getAvatar":{"CHAT_HIDDEN":{"data":{"urlAvatar":"","available":false},"wire":{"method":"POST","path":"/p","contentType":"application/json","status":200}}},
		"setProfilePicture":{"skipped":"no method"},
		"setGroupPicture":{"error":{"status":429,"body":{"message":"slow down"},"message":"Request failed"},"attempts":4}}}`
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	var av struct {
		URLAvatar string `json:"urlAvatar"`
		Available bool   `json:"available"`
	}
	o := r["x"].GetAvatar[EnvChatHidden]
	if err := o.Decode(&av); err != nil || av.Available || av.URLAvatar != "" {
		t.Errorf("Decode = %+v, %v", av, err)
	}
	if s := o.String(); !strings.Contains(s, `POST /p "application/json" → 200`) {
		t.Errorf("String = %s", s)
	}
	if o := r["x"].SetProfilePicture; o.OK() || o.Decode(&av) == nil || o.String() != "skipped (no method)" {
		t.Errorf("skipped outcome: OK=%v String=%s", o.OK(), o)
	}
	if o := r["x"].SetGroupPicture; o.OK() || o.Error.Status != 429 || !strings.Contains(o.String(), "after 4 attempts") {
		t.Errorf("error outcome: %s", o)
	}
}

func TestInputsDigest(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "empty-fs"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("package.json", "{}")
	write("package-lock.json", `{"a":1}`)
	write(filepath.Join("empty-fs", "package.json"), `{"name":"fs"}`)
	d1, err := inputsDigest(dir)
	if err != nil {
		t.Fatal(err)
	}
	write("package-lock.json", `{"a":2}`)
	d2, _ := inputsDigest(dir)
	if d1 == d2 {
		t.Error("digest did not change with package-lock.json")
	}
	if err := os.Remove(filepath.Join(dir, "package.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := inputsDigest(dir); err == nil {
		t.Error("no error for a missing package.json")
	}
}

func TestRedact(t *testing.T) {
	if got := redact("/waInstance1/getAvatar/secret", "secret"); got != "/waInstance1/getAvatar/{apiTokenInstance}" {
		t.Errorf("redact = %q", got)
	}
	if got := redact("abc", ""); got != "abc" {
		t.Errorf("redact with no token = %q", got)
	}
}

func jsonEqual(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		return false
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
