package maxweb

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseFrame(t *testing.T) {
	tests := []struct {
		in      string
		ok      bool
		cmd     int
		seq     int64
		opcode  int
		payload string
	}{
		{in: `{"ver":11,"cmd":1,"seq":7,"opcode":32,"payload":{"contacts":[]}}`, ok: true, cmd: 1, seq: 7, opcode: 32, payload: `{"contacts":[]}`},
		{in: `{"ver":11,"cmd":0,"seq":3,"opcode":131,"payload":{"contact":{"id":1}}}`, ok: true, cmd: 0, seq: 3, opcode: 131, payload: `{"contact":{"id":1}}`},
		{in: `{"ver":11,"cmd":3,"seq":2,"opcode":19,"payload":{"error":"login.token"}}`, ok: true, cmd: 3, seq: 2, opcode: 19, payload: `{"error":"login.token"}`},
		{in: `{"ver":11,"cmd":1,"seq":1,"opcode":1,"payload":null}`, ok: true, cmd: 1, seq: 1, opcode: 1},
		{in: `{"cmd":1,"seq":1,"opcode":1}`, ok: true, cmd: 1, seq: 1, opcode: 1},
		{in: `{"ver":11,"cmd":4,"seq":1,"opcode":1}`},
		{in: `{"ver":11,"cmd":-1,"seq":1,"opcode":1}`},
		{in: `{"ver":11,"cmd":1,"seq":-5,"opcode":1}`},
		{in: `{"ver":11,"cmd":1,"seq":1,"opcode":70000}`},
		{in: `{"ver":11,"cmd":"1","seq":1,"opcode":1}`},
		{in: `[1,2,3]`},
		{in: `not json`},
		{in: ``},
	}
	for _, tc := range tests {
		f, err := parseFrame([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("parseFrame(%s): err = %v, want ok %v", tc.in, err, tc.ok)
			continue
		}
		if !tc.ok {
			if !errors.Is(err, errBadFrame) {
				t.Errorf("parseFrame(%s): %v does not wrap errBadFrame", tc.in, err)
			}
			continue
		}
		if f.Cmd != tc.cmd || f.Seq != tc.seq || f.Opcode != tc.opcode || string(f.Payload) != tc.payload {
			t.Errorf("parseFrame(%s) = %+v", tc.in, f)
		}
	}
}

func TestEncodeFrame(t *testing.T) {
	b, err := encodeFrame(9, opContactInfo, map[string]any{"contactIds": []int64{5}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ver":11,"cmd":0,"seq":9,"opcode":32,"payload":{"contactIds":[5]}}`
	if string(b) != want {
		t.Fatalf("encodeFrame = %s, want %s", b, want)
	}
	if _, err := encodeFrame(1, 1, map[string]any{"bad": func() {}}); err == nil {
		t.Fatal("encoded an unencodable payload")
	}
}

func TestParseErrorAndKinds(t *testing.T) {
	tests := []struct {
		cmd     int
		payload string
		code    string
		message string
		kind    errKind
	}{
		{cmdError, `{"error":"login.token","message":"Invalid token"}`, "login.token", "Invalid token", kindBadToken},
		{cmdError, `{"error":"too.many.requests","localizedMessage":"Слишком часто"}`, "too.many.requests", "Слишком часто", kindRateLimit},
		{cmdError, `{"error":"error.limit.violate"}`, "error.limit.violate", "", kindRateLimit},
		{cmdError, `{"error":"chat.not.found"}`, "chat.not.found", "", kindNotFound},
		{cmdError, `{"error":"chat.access.denied"}`, "chat.access.denied", "", kindDenied},
		{cmdError, `{"error":"io.timeout"}`, "io.timeout", "", kindTimeout},
		{cmdError, `{"error":"something.else"}`, "something.else", "", kindOther},
		{cmdNotFound, `{}`, "not.found", "", kindNotFound},
		{cmdError, `garbage`, "unknown", "", kindOther},
		{cmdError, ``, "unknown", "", kindOther},
	}
	for _, tc := range tests {
		e := parseError(48, tc.cmd, []byte(tc.payload))
		if e.Code != tc.code || e.Message != tc.message || e.Opcode != 48 {
			t.Errorf("parseError(%s) = %+v", tc.payload, e)
		}
		if k := errorKind(e.Code); k != tc.kind {
			t.Errorf("errorKind(%q) = %d, want %d", e.Code, k, tc.kind)
		}
		if !strings.Contains(e.Error(), e.Code) {
			t.Errorf("Error() = %q lacks the code", e.Error())
		}
	}
	long := `{"error":"` + strings.Repeat("x", 500) + `"}`
	if e := parseError(1, cmdError, []byte(long)); len(e.Code) > 110 {
		t.Errorf("a long code is kept whole (%d bytes)", len(e.Code))
	}
}

func TestFlexID(t *testing.T) {
	tests := []struct {
		in   string
		want flexID
		ok   bool
	}{
		{`123`, "123", true},
		{`"123"`, "123", true},
		{`-10000000000001`, "-10000000000001", true},
		{`null`, "", true},
		{`""`, "", true},
		{`1.5`, "", false},
		{`"abc"`, "", false},
		{`true`, "", false},
		{`99999999999999999999`, "", false},
	}
	for _, tc := range tests {
		var f flexID
		err := json.Unmarshal([]byte(tc.in), &f)
		if (err == nil) != tc.ok || (tc.ok && f != tc.want) {
			t.Errorf("flexID(%s) = %q, %v", tc.in, f, err)
		}
	}
}

func TestParseContactsAndChats(t *testing.T) {
	cs, err := parseContacts([]byte(`{"contacts":[
		{"id":10000001,"names":[{"name":"A B","firstName":"A","lastName":"B"}],"photoId":42,"baseUrl":"https://i.oneme.ru/i?r=s","baseRawUrl":"https://i.oneme.ru/i?r=r","phone":79001234567},
		{"id":"10000002","names":[{"name":"Only"}],"baseUrl":"https://i.oneme.ru/i?r=x"},
		{"id":10000003}]}`))
	if err != nil || len(cs) != 3 {
		t.Fatalf("parseContacts = %v, %v", cs, err)
	}
	if cs[0].pictureID() != "42" || cs[0].pictureURL() != "https://i.oneme.ru/i?r=r" || cs[0].Phone != "79001234567" {
		t.Errorf("contact 0 = %+v", cs[0])
	}
	if f, l := cs[0].firstName(); f != "A" || l != "B" {
		t.Errorf("names = %q %q", f, l)
	}
	if id := cs[1].pictureID(); id == "" || id != urlID("https://i.oneme.ru/i?r=x") || strings.Contains(id, "oneme") {
		t.Errorf("a picture without photoId gets id %q; want a hash of its address", id)
	}
	if f, _ := cs[1].firstName(); f != "Only" {
		t.Errorf("first name from name = %q", f)
	}
	if cs[2].pictureID() != "" {
		t.Errorf("a contact without picture has id %q", cs[2].pictureID())
	}
	if _, err := parseContacts([]byte(`{"contacts":[{"id":"x"}]}`)); err == nil {
		t.Error("accepted a non-numeric id")
	}

	ch, err := parseChats([]byte(`{"chats":[{"id":-10000000000001,"type":"CHAT","status":"ACTIVE","owner":5,"admins":[6],
		"participants":{"5":1,"6":1,"7":1},"baseRawIconUrl":"https://i.oneme.ru/i?r=c","options":{"ONLY_OWNER_CAN_CHANGE_ICON_TITLE":true}}]}`))
	if err != nil || len(ch) != 1 {
		t.Fatalf("parseChats = %v, %v", ch, err)
	}
	c := ch[0]
	if !c.isAdmin("5") || !c.isAdmin("6") || c.isAdmin("7") || !c.member("7") || c.member("8") || !c.onlyOwnerEdits() || c.pictureID() == "" {
		t.Errorf("chat = %+v", c)
	}
	if (chat{Options: json.RawMessage(`3`)}).onlyOwnerEdits() {
		t.Error("options as a number read as true")
	}
}

func TestParseLogin(t *testing.T) {
	info, err := parseLogin([]byte(`{"profile":{"contact":{"id":10000000,"phone":79001234567,"names":[{"firstName":"A"}]}},
		"contacts":[{"id":1}],"chats":[{"id":-1}],"token":"secret"}`))
	if err != nil || info.Profile.ID != "10000000" || len(info.Contacts) != 1 || len(info.Chats) != 1 {
		t.Fatalf("parseLogin = %+v, %v", info, err)
	}
	for _, bad := range []string{`{}`, `{"profile":{}}`, `{"profile":{"contact":{}}}`, `{"profile":null}`, `[]`} {
		if _, err := parseLogin([]byte(bad)); err == nil {
			t.Errorf("parseLogin(%s) accepted", bad)
		}
	}
}

func TestParseQR(t *testing.T) {
	q, err := parseQRStart([]byte(`{"qrLink":"https://max.ru/:auth/x","trackId":"t","pollingInterval":5000,"expiresAt":1}`))
	if err != nil || q.Link != "https://max.ru/:auth/x" || q.TrackID != "t" || q.PollingInterval != 5000 {
		t.Fatalf("parseQRStart = %+v, %v", q, err)
	}
	for _, bad := range []string{`{}`, `{"qrLink":"x"}`, `{"trackId":"t"}`, `{"qrLink":"` + strings.Repeat("a", 3000) + `","trackId":"t"}`} {
		if _, err := parseQRStart([]byte(bad)); err == nil {
			t.Errorf("parseQRStart(%.40s) accepted", bad)
		}
	}
	if ok, err := parseQRStatus([]byte(`{"status":{"loginAvailable":true}}`)); !ok || err != nil {
		t.Errorf("parseQRStatus(true) = %v, %v", ok, err)
	}
	if ok, err := parseQRStatus([]byte(`{"status":{}}`)); ok || err != nil {
		t.Errorf("parseQRStatus({}) = %v, %v", ok, err)
	}
	if tok, err := parseQRLogin([]byte(`{"tokenAttrs":{"LOGIN":{"token":"T"}}}`)); tok != "T" || err != nil {
		t.Errorf("parseQRLogin(token) = %q, %v", tok, err)
	}
	if _, err := parseQRLogin([]byte(`{"tokenAttrs":{},"passwordChallenge":{"trackId":"t","hint":"h"}}`)); !errors.Is(err, errCloudPassword) {
		t.Errorf("parseQRLogin(password) = %v", err)
	}
	if _, err := parseQRLogin([]byte(`{"tokenAttrs":{}}`)); err == nil || errors.Is(err, errCloudPassword) {
		t.Errorf("parseQRLogin(nothing) = %v", err)
	}
}

func TestParseUpload(t *testing.T) {
	if u, err := parseUploadURL([]byte(`{"url":"https://iu.oneme.ru/upload?photoIds=5"}`)); err != nil || u == "" {
		t.Errorf("parseUploadURL = %q, %v", u, err)
	}
	if _, err := parseUploadURL([]byte(`{}`)); err == nil {
		t.Error("parseUploadURL({}) accepted")
	}
	tests := []struct {
		body, id, want string
	}{
		{`{"photos":{"5":{"token":"A"}}}`, "5", "A"},
		{`{"photos":{"9":{"token":"B"}}}`, "", "B"},
		{`{"photos":{"9":{"token":"B"}}}`, "5", "B"},
		{`{"photos":{"1":{"token":"A"},"2":{"token":"B"}}}`, "5", ""},
		{`{"photos":{"5":{}}}`, "5", ""},
		{`{"photos":{}}`, "5", ""},
		{`nope`, "5", ""},
		{`{"photos":[{"token":"L"}]}`, "5", "L"},
		{`{"photos":[{"token":"L"},{"token":"M"}]}`, "5", ""},
		{`{"photos":"x"}`, "5", ""},
	}
	for _, tc := range tests {
		got, err := parseUploadReply([]byte(tc.body), tc.id)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("parseUploadReply(%s, %s) = %q, %v", tc.body, tc.id, got, err)
		}
	}
}

func TestParsePush(t *testing.T) {
	cs, chs, err := parsePush(opNotifContact, []byte(`{"contact":{"id":1,"photoId":2}}`))
	if err != nil || len(cs) != 1 || len(chs) != 0 || cs[0].PhotoID != "2" {
		t.Errorf("contact push = %v %v %v", cs, chs, err)
	}
	cs, chs, err = parsePush(opNotifChat, []byte(`{"chat":{"id":-1,"type":"CHAT"}}`))
	if err != nil || len(cs) != 0 || len(chs) != 1 {
		t.Errorf("chat push = %v %v %v", cs, chs, err)
	}
	cs, _, err = parsePush(opNotifProfile, []byte(`{"profile":{"contact":{"id":3}}}`))
	if err != nil || len(cs) != 1 || cs[0].ID != "3" {
		t.Errorf("profile push = %v %v", cs, err)
	}
	if cs, chs, err := parsePush(128, []byte(`{"message":{}}`)); cs != nil || chs != nil || err != nil {
		t.Error("a message push was read as a picture change")
	}
	if _, _, err := parsePush(opNotifContact, []byte(`{"contact":{"id":"x"}}`)); err == nil {
		t.Error("a push with a bad id was accepted")
	}
}

func TestClip(t *testing.T) {
	if got := clip("абв", 3); got != "а…" {
		t.Errorf("clip cut a rune: %q", got)
	}
}
