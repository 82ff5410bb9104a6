package maxweb

import (
	"strconv"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/maxweb/maxfake"
)

func TestPushesBecomePictureChanges(t *testing.T) {
	r := pictureRig(t)
	r.srv.SetUserName(10000001, "Alice B") // not a picture change
	r.srv.SetUserPicture(10000001, []byte("\xff\xd8\xff a2"))
	eventually(t, func() bool { return len(r.sink.Changes()) >= 1 }, "a picture change")
	c := r.sink.Changes()[0]
	if c.Chat.String() != "10000001" || c.Kind != portrait.SubjectContact || c.PictureID == "" || c.Removed {
		t.Fatalf("first change = %+v; want Alice's new picture (a name change is not a picture change)", c)
	}

	r.srv.SetChatPicture(-10000000000001, []byte("\xff\xd8\xff t2"))
	r.srv.SetOwnPicture([]byte("\xff\xd8\xff o2"))
	r.srv.SetUserPicture(10000001, nil)
	eventually(t, func() bool { return len(r.sink.Changes()) >= 4 }, "three more changes")
	got := r.sink.Changes()[1:4]
	want := []struct {
		chat    string
		kind    portrait.SubjectKind
		removed bool
	}{
		{"-10000000000001", portrait.SubjectGroup, false},
		{"10000000", portrait.SubjectSelf, false},
		{"10000001", portrait.SubjectContact, true},
	}
	for i, w := range want {
		if got[i].Chat.String() != w.chat || got[i].Kind != w.kind || got[i].Removed != w.removed || got[i].At.IsZero() {
			t.Errorf("change %d = %+v, want %+v", i+1, got[i], w)
		}
	}
	// The own profile's push updates the name used to set the picture.
	if _, err := r.s.SetPicture(ctx(t), portrait.ChatID{}, []byte("\xff\xd8\xff x"), nil); err != nil {
		t.Fatal(err)
	}
}

func TestPushesBeforeLoginAreIgnored(t *testing.T) {
	r := newRig(t, testAccount, false)
	s := r.open()
	if _, err := s.QR(ctx(t)); err != nil {
		t.Fatal(err)
	}
	r.srv.AddUser(struct2user())
	r.srv.SetUserPicture(10000001, []byte("x"))
	time.Sleep(50 * time.Millisecond)
	if n := len(r.sink.Changes()); n != 0 {
		t.Fatalf("%d changes reported by an unlinked instance", n)
	}
}

func struct2user() maxfake.User { return maxfake.User{ID: 10000001, Name: "Alice"} }

func TestChangesWhileDisconnectedAreReportedAtLogin(t *testing.T) {
	r := pictureRig(t)
	r.srv.RefuseConnections(true)
	r.srv.DropConnections()
	r.waitState(portrait.StateStarting)
	r.srv.SetUserPicture(10000001, []byte("\xff\xd8\xff while away")) // no push: nobody is connected
	r.srv.SetChatPicture(-10000000000001, nil)
	r.srv.RefuseConnections(false)
	r.waitState(portrait.StateAuthorized)
	eventually(t, func() bool { return len(r.sink.Changes()) >= 2 }, "the changes made while disconnected")
	got := map[string]portrait.PictureChange{}
	for _, c := range r.sink.Changes() {
		got[c.Chat.String()] = c
	}
	if c := got["10000001"]; c.Kind != portrait.SubjectContact || c.Removed || c.PictureID == "" {
		t.Errorf("Alice's change = %+v", c)
	}
	if c := got["-10000000000001"]; c.Kind != portrait.SubjectGroup || !c.Removed {
		t.Errorf("Team's change = %+v", c)
	}
	if _, ok := got["10000004"]; ok {
		t.Error("an unchanged contact was reported")
	}
}

func TestPushesWithCmdOneAreStillPushes(t *testing.T) {
	r := pictureRig(t)
	r.srv.SetPushCmd(1)
	r.srv.SetUserPicture(10000001, []byte("\xff\xd8\xff c1"))
	eventually(t, func() bool { return len(r.sink.Changes()) == 1 }, "a change pushed with cmd 1")
	if c := r.sink.Changes()[0]; c.Chat.String() != "10000001" {
		t.Fatalf("change = %+v", c)
	}
}

// A full memory of picture ids makes room for one chat at a time: a
// push for a chat it still knows is not taken for a change.
func TestRememberAtCapacity(t *testing.T) {
	s := &session{known: map[string]string{}}
	for i := range maxKnown {
		s.rememberLocked(strconv.Itoa(i), "p")
	}
	s.rememberLocked("7", "q") // known already: nothing is forgotten
	if len(s.known) != maxKnown || s.known["7"] != "q" {
		t.Fatalf("after updating a known chat: %d remembered, 7 → %q", len(s.known), s.known["7"])
	}
	s.rememberLocked("new", "p")
	if len(s.known) != maxKnown || s.known["new"] != "p" {
		t.Fatalf("after a new chat at capacity: %d remembered (want %d), new → %q", len(s.known), maxKnown, s.known["new"])
	}
}
