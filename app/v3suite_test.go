package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/app"
	"github.com/portrait-dev/portrait/client"
	"github.com/portrait-dev/portrait/config"
	"github.com/portrait-dev/portrait/maxbot"
	"github.com/portrait-dev/portrait/maxbot/botfake"
	"github.com/portrait-dev/portrait/maxweb"
	"github.com/portrait-dev/portrait/maxweb/maxfake"
	"github.com/portrait-dev/portrait/sandbox"
)

// The shared GREEN-API suite of the /v3 (MAX) form runs against every
// engine that serves MAX instances: the sandbox, the max engine on its fake
// MAX server and the maxbot engine on its fake Bot API. Each engine's world
// holds the same chats where the engine can express them; where an engine
// answers differently by design (a bot sees only some users, and cannot set
// its own picture), its expectations say so.

// v3Chats are a MAX world's chats, by what they hold.
type v3Chats struct {
	self            string // the account itself, with a picture
	jpeg, png       string // contacts with a JPEG and a PNG picture
	noPicture       string // a contact without a picture
	unknown         string // nobody the engine knows
	groupAdmin      string // a group the account administers, with a picture
	groupMemberOnly string // a group with a picture the account may not change
}

// v3Case is one engine under the suite.
type v3Case struct {
	name  string
	s     *server
	c     *client.Client
	token string
	chats v3Chats
	// unknownStatus and unknownBody are getAvatar's answer for chats.unknown.
	unknownStatus int
	unknownBody   string
	// ownPicture: the engine can set the account's own picture.
	ownPicture bool
	// removes: the engine can remove pictures.
	removes bool
	// changePicture changes chats.jpeg's picture upstream; nil when the
	// engine gets no change events (the Bot API has none).
	changePicture func(t *testing.T)
}

func TestV3Suite(t *testing.T) {
	for _, mk := range []func(t *testing.T) v3Case{v3Sandbox, v3Max, v3MaxBot} {
		tc := mk(t)
		t.Run(tc.name, func(t *testing.T) { runV3Suite(t, tc) })
	}
}

func runV3Suite(t *testing.T, tc v3Case) {
	ctx := context.Background()
	ch := tc.chats
	waitAuthorized(t, tc.c)

	t.Run("getAvatar", func(t *testing.T) {
		for _, chat := range []string{ch.self, ch.jpeg, ch.png, ch.groupAdmin, ch.groupMemberOnly} {
			av, err := tc.c.GetAvatar(ctx, chat)
			if err != nil || !av.Available || av.URLAvatar == "" {
				t.Errorf("getAvatar %s: %+v, %v; want a picture", chat, av, err)
				continue
			}
			checkJPEG(t, av.URLAvatar, 640)
		}
		if code, _, b := tc.s.call(t, creds{ID: tc.c.IDInstance(), Token: tokenOf(tc)}, true, "POST", "getAvatar", `{"chatId":"`+ch.noPicture+`"}`); code != 200 || string(b) != `{"urlAvatar":"","available":true}` {
			t.Errorf("getAvatar of a contact without a picture: %d %s", code, b)
		}
		code, _, b := tc.s.call(t, creds{ID: tc.c.IDInstance(), Token: tokenOf(tc)}, true, "POST", "getAvatar", `{"chatId":"`+ch.unknown+`"}`)
		if code != tc.unknownStatus || !strings.Contains(string(b), tc.unknownBody) {
			t.Errorf("getAvatar of an unknown chat: %d %s; want %d with %q", code, b, tc.unknownStatus, tc.unknownBody)
		}
	})

	t.Run("getAccountSettings and qr", func(t *testing.T) {
		acc, err := tc.c.GetAccountSettings(ctx)
		if err != nil || acc.StateInstance != client.StateAuthorized || acc.ChatID != ch.self {
			t.Errorf("getAccountSettings: %+v, %v", acc, err)
		}
		if q, err := tc.c.QR(ctx); err != nil || q.Type != "alreadyLogged" {
			t.Errorf("qr of a linked instance: %+v, %v", q, err)
		}
	})

	pic := func(seed string) string {
		b, err := sandbox.GeneratePicture(seed, sandbox.FormatJPEG)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	upload := func(t *testing.T, method string, parts ...[4]string) map[string]any {
		t.Helper()
		ct, body := multipartBody(t, parts...)
		code, _, b := raw(t, "POST", fmt.Sprintf("%s/v3/waInstance%d/%s/%s", tc.s.URL, tc.c.IDInstance(), method, tokenOf(tc)), ct, body)
		var m map[string]any
		if code != 200 || json.Unmarshal(b, &m) != nil {
			t.Fatalf("%s: %d %s", method, code, b)
		}
		return m
	}

	t.Run("setProfilePicture", func(t *testing.T) {
		m := upload(t, "setProfilePicture", [4]string{"file", "me.jpg", "image/jpeg", pic("new-me")})
		if tc.ownPicture {
			if m["setProfilePicture"] != true || m["reason"] != "" || m["urlAvatar"] == nil {
				t.Errorf("setProfilePicture: %v", m)
			}
			return
		}
		if m["setProfilePicture"] != false || m["reason"] == "" || m["reason"] == nil {
			t.Errorf("setProfilePicture where the engine cannot: %v; want false with a reason", m)
		}
	})

	t.Run("removeGroupPicture", func(t *testing.T) {
		code, _, b := tc.s.call(t, creds{ID: tc.c.IDInstance(), Token: tokenOf(tc)}, true, "POST", "removeGroupPicture", `{"chatId":"`+ch.groupAdmin+`"}`)
		var m map[string]any
		if code != 200 || json.Unmarshal(b, &m) != nil {
			t.Fatalf("removeGroupPicture: %d %s", code, b)
		}
		if tc.removes && (m["removeGroupPicture"] != true || m["reason"] != "") || !tc.removes && (m["removeGroupPicture"] != false || m["reason"] == "") {
			t.Errorf("removeGroupPicture (engine removes: %v): %v", tc.removes, m)
		}
	})

	t.Run("setGroupPicture", func(t *testing.T) {
		// GREEN-API's MAX SDK sends groupId and labels every upload
		// image/jpeg; the MAX documentation names the field chatId.
		for _, field := range []string{"groupId", "chatId"} {
			m := upload(t, "setGroupPicture", [4]string{field, "", "", ch.groupAdmin}, [4]string{"file", "g.jpg", "image/jpeg", pic("group-" + field)})
			if m["setGroupPicture"] != true || m["urlAvatar"] == nil || m["reason"] != "" {
				t.Errorf("setGroupPicture by %s of a group the account administers: %v", field, m)
			}
		}
		m := upload(t, "setGroupPicture", [4]string{"chatId", "", "", ch.groupMemberOnly}, [4]string{"file", "g.jpg", "image/jpeg", pic("nope")})
		if m["setGroupPicture"] != false || m["reason"] == "" || m["reason"] == nil {
			t.Errorf("setGroupPicture of a group the account may not change: %v; want false with a reason", m)
		}
	})

	t.Run("avatarChanged", func(t *testing.T) {
		if tc.changePicture == nil {
			t.Skip("the engine gets no picture-change events from its messenger (documented)")
		}
		before, _ := tc.c.GetAvatar(ctx, ch.jpeg)
		tc.changePicture(t)
		n := next(t, tc.c)
		for i := 0; i < 10 && (n.AvatarChanged == nil || n.AvatarChanged.ChatID != ch.jpeg); i++ {
			n = next(t, tc.c) // notifications of earlier steps (the own and group pictures set above)
		}
		if n.TypeWebhook != "avatarChanged" || n.AvatarChanged == nil || n.AvatarChanged.ChatID != ch.jpeg || n.AvatarChanged.URLAvatar == "" || n.AvatarChanged.URLAvatar == before.URLAvatar {
			t.Errorf("avatarChanged: %+v", n)
		}
	})
}

// tokenOf returns the case's apiTokenInstance.
func tokenOf(tc v3Case) string { return tc.token }

func waitAuthorized(t *testing.T, c *client.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.GetStateInstance(context.Background())
		if err == nil && st == client.StateAuthorized {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %d never authorized: %q, %v", c.IDInstance(), st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkJPEG fetches a picture URL and checks it is a JPEG of side px.
func checkJPEG(t *testing.T, url string, side int) {
	t.Helper()
	code, h, b := raw(t, "GET", url, "", nil)
	if code != 200 || h.Get("Content-Type") != "image/jpeg" {
		t.Errorf("GET %s: %d %s, %d bytes", url, code, h.Get("Content-Type"), len(b))
		return
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width != side || cfg.Height != side {
		t.Errorf("GET %s: %d×%d JPEG (%v), want %d×%d", url, cfg.Width, cfg.Height, err, side, side)
	}
}

func v3Sandbox(t *testing.T) v3Case {
	s := start(t)
	return v3Case{
		name: "sandbox", s: s, c: s.max(), token: s.MAX.Token,
		chats: v3Chats{self: "10000000", jpeg: "10000001", png: "10000002", noPicture: "10000004", unknown: "10000005",
			groupAdmin: "-10000000000001", groupMemberOnly: "-10000000000002"},
		unknownStatus: 200, unknownBody: `{"urlAvatar":"","available":true}`,
		ownPicture: true,
		removes:    true,
		changePicture: func(t *testing.T) {
			b, _ := sandbox.GeneratePicture("alice-2", sandbox.FormatJPEG)
			if code, body := s.admin(t, "POST", fmt.Sprintf("/admin/instances/%d/sandbox/chats/10000001", s.MAX.ID), map[string]any{"picture": b}); code != 200 {
				t.Fatalf("sandbox picture change: %d %s", code, body)
			}
		},
	}
}

// writeCA writes a fake server's certificate as a root CA file.
func writeCA(t *testing.T, pem []byte) string {
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func gen(t *testing.T, seed, format string) []byte {
	b, err := sandbox.GeneratePicture(seed, format)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func v3Max(t *testing.T) v3Case {
	const me, other = 10000000, 10000099
	fake := maxfake.New(maxfake.Account{ID: me, Phone: "11001234567", FirstName: "Me", Picture: gen(t, "me", sandbox.FormatJPEG)})
	t.Cleanup(fake.Close)
	fake.AddUser(maxfake.User{ID: 10000001, Name: "Alice", Picture: gen(t, "alice", sandbox.FormatJPEG)})
	fake.AddUser(maxfake.User{ID: 10000002, Name: "Bob", Picture: gen(t, "bob", sandbox.FormatPNG)})
	fake.AddUser(maxfake.User{ID: 10000004, Name: "Dave"})
	fake.AddUser(maxfake.User{ID: other, Name: "Owner"})
	fake.AddChat(maxfake.Chat{ID: -10000000000001, Title: "Admins' room", Owner: me, Admins: []int64{me}, Members: []int64{me}, Picture: gen(t, "admins-room", sandbox.FormatJPEG)})
	fake.AddChat(maxfake.Chat{ID: -10000000000002, Title: "Announcements", Owner: other, Admins: []int64{other}, Members: []int64{me, other}, OnlyOwnerEdits: true, Picture: gen(t, "announcements", sandbox.FormatJPEG)})
	s := start(t, "--max-url", fake.URL(), "--max-root-ca", writeCA(t, fake.CertPEM()), "--max-picture-hosts", fake.Host())
	c, token := createV3(t, s, map[string]string{"typeInstance": "v3", "engine": "max"})
	q, err := c.QR(context.Background())
	if err != nil || q.Type != "qrCode" || q.Message == "" {
		t.Fatalf("qr before linking: %+v, %v", q, err)
	}
	if !fake.Scan() {
		t.Fatal("the fake saw no QR code to scan")
	}
	return v3Case{
		name: "max", s: s, c: c, token: token,
		chats: v3Chats{self: "10000000", jpeg: "10000001", png: "10000002", noPicture: "10000004", unknown: "10000005",
			groupAdmin: "-10000000000001", groupMemberOnly: "-10000000000002"},
		unknownStatus: 200, unknownBody: `{"urlAvatar":"","available":true}`,
		ownPicture:    true,
		changePicture: func(t *testing.T) { fake.SetUserPicture(10000001, gen(t, "alice-2", sandbox.FormatJPEG)) },
	}
}

func v3MaxBot(t *testing.T) v3Case {
	const botToken = "f9LHodD0cOJ3I9hRi5Zw-test-bot-token"
	fake := botfake.New(botToken, botfake.Bot{ID: 10000000, Name: "portrait bot", Picture: gen(t, "me", sandbox.FormatJPEG)}, 30)
	t.Cleanup(fake.Close)
	fake.AddUser(botfake.User{ID: 10000001, Name: "Alice", Picture: gen(t, "alice", sandbox.FormatJPEG)}, true)
	fake.AddUser(botfake.User{ID: 10000002, Name: "Bob", Picture: gen(t, "bob", sandbox.FormatPNG)}, true)
	fake.AddUser(botfake.User{ID: 10000004, Name: "Dave"}, true)
	fake.AddChat(botfake.Chat{ID: -10000000000001, Title: "Admins' room", Picture: gen(t, "admins-room", sandbox.FormatJPEG), BotMember: true, BotAdmin: true, BotCanEdit: true})
	fake.AddChat(botfake.Chat{ID: -10000000000002, Title: "Announcements", Picture: gen(t, "announcements", sandbox.FormatJPEG), BotMember: true})
	s := start(t, "--maxbot-url", fake.URL(), "--maxbot-root-ca", writeCA(t, fake.CertPEM()), "--maxbot-picture-hosts", fake.Host())
	c, token := createV3(t, s, map[string]string{"typeInstance": "v3", "engine": "maxbot", "credential": botToken})
	return v3Case{
		name: "maxbot", s: s, c: c, token: token,
		chats: v3Chats{self: "10000000", jpeg: "10000001", png: "10000002", noPicture: "10000004", unknown: "10000005",
			groupAdmin: "-10000000000001", groupMemberOnly: "-10000000000002"},
		// A bot sees its dialog partners and the members of chats it
		// administers; anyone else is an honest 422, not "no picture".
		unknownStatus: http.StatusUnprocessableEntity, unknownBody: "cannot see",
	}
}

// createV3 creates an instance through the admin API and returns its
// client and token.
func createV3(t *testing.T, s *server, body map[string]string) (*client.Client, string) {
	t.Helper()
	code, b := s.admin(t, "POST", "/admin/instances", body)
	var info struct {
		IDInstance       int64  `json:"idInstance"`
		APITokenInstance string `json:"apiTokenInstance"`
	}
	if code != http.StatusCreated || json.Unmarshal(b, &info) != nil {
		t.Fatalf("creating %v: %d %s", body, code, b)
	}
	return newClient(s.URL, info.IDInstance, info.APITokenInstance, client.WithMAX()), info.APITokenInstance
}

// TestMAXDefaults: the configuration's defaults for the MAX engines are the
// engines' own.
func TestMAXDefaults(t *testing.T) {
	c, err := config.Parse(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxURL != maxweb.DefaultURL || c.MaxAppVersion != maxweb.DefaultAppVersion ||
		fmt.Sprint(c.MaxPictureHosts) != fmt.Sprint(maxweb.DefaultPictureHosts) {
		t.Errorf("max: %q %q %v", c.MaxURL, c.MaxAppVersion, c.MaxPictureHosts)
	}
	if c.MaxBotURL != maxbot.DefaultBaseURL || c.MaxBotRateLimit != maxbot.DefaultRateLimit ||
		fmt.Sprint(c.MaxBotPictureHosts) != fmt.Sprint(maxbot.DefaultPictureHosts) {
		t.Errorf("maxbot: %q %v %v", c.MaxBotURL, c.MaxBotRateLimit, c.MaxBotPictureHosts)
	}
}

// TestSetCredentialCLI: the CLI gives a maxbot instance its bot token from
// standard input and refuses one for an engine that takes none.
func TestSetCredentialCLI(t *testing.T) {
	dir := t.TempDir()
	run := func(stdin string, args ...string) (string, error) {
		var out syncBuffer
		err := app.Run(context.Background(), app.Env{Args: append(args, "--data-dir", dir), Getenv: func(string) string { return "" },
			Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &out})
		return out.String(), err
	}
	out, err := run("", "instance", "create", "--type", "v3", "--engine", "maxbot")
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	var id string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "idInstance:"); ok {
			id = strings.TrimSpace(v)
		}
	}
	if out, err := run("f9LHodD0cOJ3I9hRi5Zw\n", "instance", "set-credential", id); err != nil || strings.Contains(out, "f9LHodD0") {
		t.Errorf("set-credential: %v\n%s", err, out)
	}
	if out, err := run("not a token with spaces\n", "instance", "set-credential", id); err == nil {
		t.Errorf("a malformed token was accepted:\n%s", out)
	}
	out, _ = run("", "instance", "create", "--type", "v3", "--engine", "sandbox")
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "idInstance:"); ok {
			id = strings.TrimSpace(v)
		}
	}
	if out, err := run("secret\n", "instance", "set-credential", id); err == nil || !strings.Contains(err.Error(), "takes no credential") {
		t.Errorf("set-credential on the sandbox: %v\n%s", err, out)
	}
}
