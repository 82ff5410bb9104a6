package maxweb

import (
	"testing"
)

// FuzzParseFrame: any bytes from the WebSocket either parse into a frame
// with a sane header or fail with errBadFrame; never a panic.
func FuzzParseFrame(f *testing.F) {
	f.Add([]byte(`{"ver":11,"cmd":1,"seq":7,"opcode":32,"payload":{"contacts":[]}}`))
	f.Add([]byte(`{"ver":11,"cmd":0,"seq":3,"opcode":131,"payload":{"contact":{"id":1}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := parseFrame(b)
		if err != nil {
			return
		}
		if fr.Cmd < cmdRequest || fr.Cmd > cmdError || fr.Opcode < 0 || fr.Opcode >= maxOpcode || fr.Seq < 0 {
			t.Fatalf("parseFrame accepted a bad header: %+v", fr)
		}
	})
}

// FuzzParsePayload feeds one payload to every parser of MAX's replies and
// pushes; none may panic, and what they accept must hold together.
func FuzzParsePayload(f *testing.F) {
	f.Add(uint16(opContactInfo), []byte(`{"contacts":[{"id":1,"photoId":2,"baseRawUrl":"https://i.oneme.ru/i?r=x"}]}`))
	f.Add(uint16(opChatInfo), []byte(`{"chats":[{"id":-1,"type":"CHAT","admins":[1],"participants":{"1":0},"options":{"ONLY_OWNER_CAN_CHANGE_ICON_TITLE":true}}]}`))
	f.Add(uint16(opLogin), []byte(`{"profile":{"contact":{"id":10000000,"names":[{"firstName":"A"}]}},"contacts":[],"chats":[]}`))
	f.Add(uint16(opQRStart), []byte(`{"qrLink":"https://max.ru/:auth/x","trackId":"t","pollingInterval":5000,"expiresAt":1}`))
	f.Add(uint16(opQRLogin), []byte(`{"tokenAttrs":{},"passwordChallenge":{"trackId":"t"}}`))
	f.Add(uint16(opNotifProfile), []byte(`{"profile":{"contact":{"id":"3"}}}`))
	f.Add(uint16(3), []byte(`{"error":"login.token","message":"x"}`))
	f.Fuzz(func(t *testing.T, op uint16, b []byte) {
		if cs, err := parseContacts(b); err == nil {
			for _, c := range cs {
				c.pictureID()
				c.firstName()
			}
		}
		if chs, err := parseChats(b); err == nil {
			for _, c := range chs {
				c.pictureID()
				c.onlyOwnerEdits()
				c.isAdmin("1")
				c.member("1")
			}
		}
		if info, err := parseLogin(b); err == nil && info.Profile.ID == "" {
			t.Fatal("parseLogin accepted a profile without id")
		}
		if q, err := parseQRStart(b); err == nil && (q.Link == "" || q.TrackID == "") {
			t.Fatal("parseQRStart accepted a code without link or track")
		}
		_, _ = parseQRStatus(b)
		if tok, err := parseQRLogin(b); err == nil && tok == "" {
			t.Fatal("parseQRLogin accepted an empty token")
		}
		if u, err := parseUploadURL(b); err == nil && u == "" {
			t.Fatal("parseUploadURL accepted an empty address")
		}
		_, _, _ = parsePush(int(op), b)
		e := parseError(int(op), cmdError, b)
		if e.Code == "" || len(e.Code) > 110 {
			t.Fatalf("parseError code %q", e.Code)
		}
		errorKind(e.Code)
	})
}

// FuzzParseUploadReply: the upload server's reply.
func FuzzParseUploadReply(f *testing.F) {
	f.Add([]byte(`{"photos":{"5":{"token":"A"}}}`), "5")
	f.Add([]byte(`{"photos":{"1":{"token":"A"},"2":{"token":"B"}}}`), "3")
	f.Fuzz(func(t *testing.T, b []byte, id string) {
		if tok, err := parseUploadReply(b, id); err == nil && tok == "" {
			t.Fatal("accepted an empty token")
		}
	})
}
