package app_test

import (
	"context"
	"strings"
	"testing"
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
