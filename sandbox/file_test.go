package sandbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portrait-dev/portrait"
)

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadWorldFile(t *testing.T) {
	dir := t.TempDir()
	photo := mustPicture(t, "photo-on-disk")
	writeFile(t, dir, "photos/alice.jpg", photo)
	png, err := GeneratePicture("inline", FormatPNG)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(png)
	path := writeFile(t, dir, "world.json", []byte(`{
  "comment": "test world",
  "whatsapp": {
    "account": {"phone": "15550001111", "picture": "generated:me.png"},
    "contacts": [
      {"chatId": "15550002222@c.us", "name": "Alice", "picture": "photos/alice.jpg"},
      {"chatId": "15550003333@c.us", "picture": "data:image/png;base64,`+b64+`"},
      {"chatId": "15550004444@c.us", "picture": "base64:`+b64+`", "hidden": true},
      {"chatId": "15550005555@c.us", "hasAccount": false},
      {"chatId": "15550006666@c.us", "fault": "rate-limit", "picture": "generated:f"},
      {"chatId": "12345@lid"}
    ],
    "groups": [
      {"chatId": "15550001111-1700000000@g.us", "name": "Old style", "role": "admin"},
      {"chatId": "120363999999999999@g.us", "onlyAdminsEditInfo": true}
    ]
  },
  "v3": {
    "account": {"id": "777", "linked": false},
    "contacts": [{"chatId": "778", "picture": "generated:max-contact"}],
    "groups": [{"chatId": "-779", "role": "none"}]
  }
}`))
	seeder, err := LoadWorldFile(path)
	if err != nil {
		t.Fatal(err)
	}

	w, err := seeder.Seed(portrait.TypeWhatsApp)
	if err != nil {
		t.Fatal(err)
	}
	if !w.Account.Linked || w.Account.Picture == nil || w.Account.Picture.MIME != "image/png" {
		t.Errorf("account = %+v", w.Account)
	}
	if c := w.contact("15550002222@c.us"); c == nil || !bytes.Equal(c.Picture.Data, photo) || !c.HasAccount || c.Picture.Source != "photos/alice.jpg" {
		t.Errorf("Alice = %+v", c)
	}
	if c := w.contact("15550003333@c.us"); c == nil || !bytes.Equal(c.Picture.Data, png) {
		t.Error("data URL picture not decoded")
	}
	if c := w.contact("15550005555@c.us"); c == nil || c.HasAccount {
		t.Error("hasAccount false not applied")
	}
	if g := w.group("120363999999999999@g.us"); g == nil || g.Role != RoleMember || !g.OnlyAdminsEditInfo {
		t.Errorf("group defaults = %+v", g)
	}

	// The seeded worlds behave as the file says.
	ctx := context.Background()
	e := New(newMemKV(), seeder, Options{Faults: true})
	s := open(t, e, portrait.TypeWhatsApp, nil)
	wa := func(s string) portrait.ChatID { return chat(t, portrait.TypeWhatsApp, s) }
	for id, want := range map[string]error{
		"15550002222@c.us":            nil,
		"15550004444@c.us":            portrait.ErrPictureHidden,
		"15550005555@c.us":            portrait.ErrNoAccount,
		"15550006666@c.us":            portrait.ErrUpstreamRateLimit,
		"12345@lid":                   portrait.ErrPictureNotSet,
		"15550009999@c.us":            portrait.ErrNoAccount, // not in the file
		"15550001111-1700000000@g.us": portrait.ErrPictureNotSet,
		"15550001111@c.us":            nil, // own
	} {
		if _, err := s.Picture(ctx, wa(id), ""); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("Picture(%s) = %v, want %v", id, err, want)
		}
	}
	if _, err := s.SetPicture(ctx, wa("120363999999999999@g.us"), mustPicture(t, "x"), nil); !errors.Is(err, portrait.ErrNotGroupAdmin) {
		t.Errorf("SetPicture on an admins-only group: %v", err)
	}

	// The "v3" section is the MAX world; it is not linked.
	m := open(t, e, portrait.TypeMAX, nil)
	if st := m.State(); st != portrait.StateNotAuthorized {
		t.Errorf("MAX state = %q", st)
	}
	mw, err := e.World(ctx, maxID)
	if err != nil || mw.Account.ID != "777" || len(mw.Contacts) != 1 || mw.Groups[0].ChatID != "-779" {
		t.Errorf("MAX world = %+v, %v", mw, err)
	}
}

func TestLoadWorldFileFallsBackToDemo(t *testing.T) {
	path := writeFile(t, t.TempDir(), "w.json", []byte(`{"max": {"account": {"id": "5"}}}`))
	seeder, err := LoadWorldFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := seeder.Seed(portrait.TypeWhatsApp)
	if err != nil || w.Account.Phone != "11001234567" {
		t.Fatalf("WhatsApp world from a MAX-only file: %+v, %v", w.Account, err)
	}
}

func TestLoadWorldFileErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "notes.txt", []byte("just text"))
	tests := []struct {
		name, json string
		want       []string // substrings of the error
	}{
		{"syntax", "{\n  \"whatsapp\": {\n    \"account\": {\"phone\": \"1\",}\n  }\n}",
			[]string{"invalid JSON at line 3"}},
		{"unknown field", `{"whatsapp": {"account": {"phone": "11001234567"}, "contacts": [{"chatId": "11001230001@c.us", "fualt": "timeout"}]}}`,
			[]string{`unknown field "fualt"`, "line 1"}},
		{"wrong type", `{"whatsapp": {"account": {"phone": 11001234567}}}`,
			[]string{"invalid JSON", "account.phone"}},
		{"empty", `{}`, []string{`no "whatsapp" or "max" section`}},
		{"both max and v3", `{"max": {"account": {"id": "1"}}, "v3": {"account": {"id": "1"}}}`, []string{`both "max" and "v3"`}},
		{"trailing data", `{"max": {"account": {"id": "1"}}} {}`, []string{"after the top-level"}},
		{"missing phone", `{"whatsapp": {"account": {}}}`, []string{"whatsapp.account: phone:"}},
		{"bad phone", `{"whatsapp": {"account": {"phone": "0123"}}}`, []string{"whatsapp.account: phone:", `"0123"`}},
		{"id on whatsapp", `{"whatsapp": {"account": {"phone": "11001234567", "id": "5"}}}`, []string{"whatsapp.account: id:"}},
		{"missing MAX id", `{"max": {"account": {"phone": "11001234567"}}}`, []string{"max.account: id:"}},
		{"negative MAX id", `{"max": {"account": {"id": "-5"}}}`, []string{"max.account: id:", "group id"}},
		{"bad contact id", `{"whatsapp": {"account": {"phone": "11001234567"}, "contacts": [{"chatId": "11001230001@c.us"}, {"chatId": "123@c.us"}]}}`,
			[]string{`whatsapp.contacts[1] ("123@c.us"): chatId: invalid WhatsApp chat id "123@c.us"`}},
		{"missing contact id", `{"whatsapp": {"account": {"phone": "11001234567"}, "contacts": [{"name": "x"}]}}`,
			[]string{`whatsapp.contacts[0] (""): chatId: missing`}},
		{"group as contact", `{"whatsapp": {"account": {"phone": "11001234567"}, "contacts": [{"chatId": "120363000000000001@g.us"}]}}`,
			[]string{`whatsapp.contacts[0] ("120363000000000001@g.us"): chatId:`, "group id, not a contact id"}},
		{"whatsapp id in max", `{"max": {"account": {"id": "1"}, "contacts": [{"chatId": "11001230001@c.us"}]}}`,
			[]string{`max.contacts[0] ("11001230001@c.us"): chatId: invalid MAX chat id`}},
		{"contact as group", `{"max": {"account": {"id": "1"}, "groups": [{"chatId": "5"}]}}`,
			[]string{`max.groups[0] ("5"): chatId:`, "contact id, not a group id"}},
		{"duplicate", `{"whatsapp": {"account": {"phone": "11001234567"}, "contacts": [{"chatId": "11001230001@c.us"}, {"chatId": "11001230001@c.us"}]}}`,
			[]string{`whatsapp.contacts[1] ("11001230001@c.us"): chatId: already used by contacts[0]`}},
		{"own id as contact", `{"whatsapp": {"account": {"phone": "11001234567"}, "contacts": [{"chatId": "11001234567@c.us"}]}}`,
			[]string{`already used by the account's own id`}},
		{"bad fault", `{"whatsapp": {"account": {"phone": "11001234567"}, "contacts": [{"chatId": "11001230001@c.us", "fault": "slow"}]}}`,
			[]string{`whatsapp.contacts[0] ("11001230001@c.us"): fault: unknown fault "slow"`}},
		{"bad role", `{"whatsapp": {"account": {"phone": "11001234567"}, "groups": [{"chatId": "120363000000000001@g.us", "role": "owner"}]}}`,
			[]string{`whatsapp.groups[0] ("120363000000000001@g.us"): role: unknown role "owner"`}},
		{"missing picture file", `{"whatsapp": {"account": {"phone": "11001234567"}, "contacts": [{"chatId": "11001230001@c.us", "picture": "nope.jpg"}]}}`,
			[]string{`whatsapp.contacts[0] ("11001230001@c.us"): picture:`, "nope.jpg"}},
		{"picture not an image", `{"whatsapp": {"account": {"phone": "11001234567", "picture": "notes.txt"}}}`,
			[]string{`whatsapp.account: picture: notes.txt: not an image`}},
		{"bad base64", `{"max": {"account": {"id": "1"}, "groups": [{"chatId": "-2", "picture": "base64:!!!"}]}}`,
			[]string{`max.groups[0] ("-2"): picture: base64: invalid base64`}},
		{"bad data URL", `{"max": {"account": {"id": "1", "picture": "data:image/png,abc"}}}`,
			[]string{`max.account: picture: data URL must have the form`}},
		{"empty seed", `{"max": {"account": {"id": "1", "picture": "generated:"}}}`,
			[]string{`max.account: picture: "generated:": empty seed`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, dir, "world.json", []byte(tt.json))
			_, err := LoadWorldFile(path)
			if err == nil {
				t.Fatal("LoadWorldFile succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
	if _, err := LoadWorldFile(filepath.Join(dir, "absent.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}

// TestWorldDocExample checks that the example in WORLD.md parses once its
// placeholders are filled in.
func TestWorldDocExample(t *testing.T) {
	md, err := os.ReadFile("WORLD.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(md), "```json\n")
	if !ok {
		t.Fatal("no JSON example in WORLD.md")
	}
	example, _, _ := strings.Cut(rest, "```")
	png, _ := GeneratePicture("doc", FormatPNG)
	example = strings.Replace(example, "iVBORw0KGgo...", base64.StdEncoding.EncodeToString(png), 1)
	dir := t.TempDir()
	writeFile(t, dir, "photos/alice.jpg", mustPicture(t, "doc-alice"))
	path := writeFile(t, dir, "world.json", []byte(example))
	if _, err := LoadWorldFile(path); err != nil {
		t.Fatalf("WORLD.md example: %v", err)
	}
}
