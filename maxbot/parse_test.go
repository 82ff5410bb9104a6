package maxbot

import (
	"strings"
	"testing"
)

func TestParseAPIError(t *testing.T) {
	tests := []struct {
		status        int
		body          string
		code, message string
	}{
		{401, `{"code":"verify.token","message":"Invalid access_token"}`, "verify.token", "Invalid access_token"},
		{400, `{"code":"attachment.not.ready","message":""}`, "attachment.not.ready", ""},
		{403, `{"error":"chat.denied","message":"no"}`, "chat.denied", "no"},
		{502, `<html>bad gateway</html>`, "", ""},
		{429, ``, "", ""},
	}
	for _, tc := range tests {
		e := parseAPIError(tc.status, []byte(tc.body))
		if e.Status != tc.status || e.Code != tc.code || e.Message != tc.message {
			t.Errorf("parseAPIError(%d, %s) = %+v", tc.status, tc.body, e)
		}
		if !strings.Contains(e.Error(), "MAX Bot API answered") {
			t.Errorf("Error() = %q", e.Error())
		}
	}
}

func TestParseReplies(t *testing.T) {
	c, err := parseChat([]byte(`{"chat_id":-70000000000005,"type":"chat","status":"active","title":"t","icon":{"url":"https://i.oneme.ru/i?r=x"},"participants":{"1":2}}`))
	if err != nil || c.ChatID != -70000000000005 || c.iconURL() != "https://i.oneme.ru/i?r=x" {
		t.Errorf("parseChat = %+v, %v", c, err)
	}
	c, err = parseChat([]byte(`{"chat_id":182182182,"type":"dialog","icon":null,"dialog_with_user":{"user_id":123,"avatar_url":"a","full_avatar_url":"f"}}`))
	if err != nil || c.iconURL() != "" || c.DialogWithUser == nil || c.DialogWithUser.pictureURL() != "f" {
		t.Errorf("parseChat(dialog) = %+v, %v", c, err)
	}
	l, err := parseChatList([]byte(`{"chats":[{"chat_id":1}],"marker":5}`))
	if err != nil || len(l.Chats) != 1 || l.Marker == nil || *l.Marker != 5 {
		t.Errorf("parseChatList = %+v, %v", l, err)
	}
	l, err = parseChatList([]byte(`{"chats":[],"marker":null}`))
	if err != nil || l.Marker != nil {
		t.Errorf("parseChatList(end) = %+v, %v", l, err)
	}
	m, err := parseMembers([]byte(`{"members":[{"user_id":229229229,"is_admin":true,"permissions":["change_chat_info","write"]}]}`))
	if err != nil || len(m.Members) != 1 || !m.Members[0].can("change_chat_info") || m.Members[0].can("add_admins") {
		t.Errorf("parseMembers = %+v, %v", m, err)
	}
	if _, err := parseUser([]byte(`{"first_name":"x"}`)); err == nil {
		t.Error("parseUser accepted a user without id")
	}
	if u, err := parseUser([]byte(`{"user_id":5,"avatar_url":"a"}`)); err != nil || u.pictureURL() != "a" {
		t.Errorf("parseUser = %+v, %v", u, err)
	}
	for _, tc := range []struct {
		body string
		ok   bool
	}{
		{`{"photos":{"k":{"token":"t"}}}`, true},
		{`{"photos":{}}`, false},
		{`{"photos":{"k":{}}}`, false},
		{`{"token":"t"}`, false},
		{`x`, false},
	} {
		p, err := parseUploadReply([]byte(tc.body))
		if (err == nil) != tc.ok || (tc.ok && p["k"].Token != "t") {
			t.Errorf("parseUploadReply(%s) = %v, %v", tc.body, p, err)
		}
	}
}

func FuzzParseReplies(f *testing.F) {
	f.Add([]byte(`{"chat_id":-1,"type":"chat","icon":{"url":"u"},"dialog_with_user":{"user_id":1}}`))
	f.Add([]byte(`{"chats":[{"chat_id":1}],"marker":5,"members":[{"user_id":2,"permissions":["x"]}]}`))
	f.Add([]byte(`{"photos":{"k":{"token":"t"}},"code":"c","message":"m"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := parseChat(b); err == nil {
			c.iconURL()
			if c.DialogWithUser != nil {
				c.DialogWithUser.pictureURL()
			}
		}
		_, _ = parseChatList(b)
		if m, err := parseMembers(b); err == nil {
			for _, u := range m.Members {
				u.can("change_chat_info")
			}
		}
		if u, err := parseUser(b); err == nil && u.UserID == 0 {
			t.Fatal("parseUser accepted a user without id")
		}
		if p, err := parseUploadReply(b); err == nil {
			for k, v := range p {
				if k == "" || v.Token == "" {
					t.Fatal("parseUploadReply accepted an empty token")
				}
			}
		}
		e := parseAPIError(400, b)
		if len(e.Code) > 110 || len(e.Message) > 310 {
			t.Fatal("parseAPIError kept an unbounded text")
		}
	})
}

// FuzzCheckToken: a token the admin gives is accepted only if it is safe
// in a header: printable ASCII without spaces, at most 512 bytes.
func FuzzCheckToken(f *testing.F) {
	f.Add("f9LHodD0cOKLM3i0Ls5gTRm5e9s0tm7b4z9vfd7yQ6c")
	f.Add("a\r\nX-Evil: 1")
	f.Fuzz(func(t *testing.T, tok string) {
		if checkToken(tok) != nil {
			return
		}
		if len(tok) > 512 {
			t.Fatal("accepted a long token")
		}
		for i := 0; i < len(tok); i++ {
			if tok[i] <= ' ' || tok[i] >= 0x7f {
				t.Fatalf("accepted byte %#x", tok[i])
			}
		}
	})
}

// A full memory of where users were seen makes room for one user at a
// time instead of forgetting everyone.
func TestSawAtCapacity(t *testing.T) {
	s := &session{seen: map[int64]int64{}}
	for i := range int64(maxSeen) {
		s.saw(i, -1)
	}
	s.saw(7, -2) // seen already: nobody is forgotten
	if len(s.seen) != maxSeen || s.seen[7] != -2 {
		t.Fatalf("after a known user: %d remembered, 7 → %d", len(s.seen), s.seen[7])
	}
	s.saw(maxSeen+1, -3)
	if len(s.seen) != maxSeen || s.seen[maxSeen+1] != -3 {
		t.Fatalf("after a new user at capacity: %d remembered (want %d)", len(s.seen), maxSeen)
	}
}
