package whatsapp

import (
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

func TestPictureEvents(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	knownLID := jid("555000111@lid")
	cases := []struct {
		name string
		ev   events.Picture
		want *portrait.PictureChange // nil: dropped
	}{
		{name: "contact", ev: events.Picture{JID: jid("79001230001@s.whatsapp.net"), Timestamp: at, PictureID: "1700000001"},
			want: &portrait.PictureChange{Chat: chat("79001230001@c.us"), Kind: portrait.SubjectContact, PictureID: "1700000001", At: at}},
		{name: "contact removes the picture", ev: events.Picture{JID: jid("79001230001@s.whatsapp.net"), Timestamp: at, Remove: true},
			want: &portrait.PictureChange{Chat: chat("79001230001@c.us"), Kind: portrait.SubjectContact, Removed: true, At: at}},
		{name: "contact by a LID the store maps", ev: events.Picture{JID: knownLID, Timestamp: at, PictureID: "7"},
			want: &portrait.PictureChange{Chat: chat("79001230002@c.us"), Kind: portrait.SubjectContact, PictureID: "7", At: at}},
		{name: "contact by an unknown LID", ev: events.Picture{JID: jid("999888777@lid"), Timestamp: at, PictureID: "8"},
			want: &portrait.PictureChange{Chat: chat("999888777@lid"), Kind: portrait.SubjectContact, PictureID: "8", At: at}},
		{name: "group with author", ev: events.Picture{JID: jid("120363043968066561@g.us"), Author: jid("79001230003:5@s.whatsapp.net"), Timestamp: at, PictureID: "9"},
			want: &portrait.PictureChange{Chat: chat("120363043968066561@g.us"), Kind: portrait.SubjectGroup, Author: "79001230003@c.us", PictureID: "9", At: at}},
		{name: "group with a LID author the store maps", ev: events.Picture{JID: jid("79001230009-1600000000@g.us"), Author: knownLID, Timestamp: at, PictureID: "10"},
			want: &portrait.PictureChange{Chat: chat("79001230009-1600000000@g.us"), Kind: portrait.SubjectGroup, Author: "79001230002@c.us", PictureID: "10", At: at}},
		{name: "group with an unknown LID author", ev: events.Picture{JID: jid("120363043968066561@g.us"), Author: jid("999888777@lid"), Timestamp: at, PictureID: "11"},
			want: &portrait.PictureChange{Chat: chat("120363043968066561@g.us"), Kind: portrait.SubjectGroup, Author: "999888777@lid", PictureID: "11", At: at}},
		{name: "group picture removed", ev: events.Picture{JID: jid("120363043968066561@g.us"), Author: jid("79001230003@s.whatsapp.net"), Timestamp: at, Remove: true},
			want: &portrait.PictureChange{Chat: chat("120363043968066561@g.us"), Kind: portrait.SubjectGroup, Author: "79001230003@c.us", Removed: true, At: at}},
		{name: "own, from another device (no id)", ev: events.Picture{JID: ownJID.ToNonAD(), Timestamp: at},
			want: &portrait.PictureChange{Chat: chat("79001234567@c.us"), Kind: portrait.SubjectSelf, At: at}},
		{name: "own, by LID", ev: events.Picture{JID: ownLID, Timestamp: at, PictureID: "12"},
			want: &portrait.PictureChange{Chat: chat("79001234567@c.us"), Kind: portrait.SubjectSelf, PictureID: "12", At: at}},
		{name: "a channel", ev: events.Picture{JID: jid("120363000000000001@newsletter"), Timestamp: at, PictureID: "13"}},
		{name: "broadcast", ev: events.Picture{JID: types.StatusBroadcastJID, Timestamp: at}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			s, c := h.authorized()
			c.set(func(c *fakeClient) { c.lids = map[types.JID]types.JID{knownLID: jid("79001230002@s.whatsapp.net")} })
			c.emit(&tc.ev)
			// A marker after it: the outbox keeps order.
			c.emit(&events.Picture{JID: jid("79001239999@s.whatsapp.net"), PictureID: "marker", Timestamp: at})
			waitFor(t, "the marker", func() bool {
				cs := h.sink.changeList()
				return len(cs) > 0 && cs[len(cs)-1].PictureID == "marker"
			})
			got := h.sink.changeList()
			got = got[:len(got)-1]
			switch {
			case tc.want == nil && len(got) != 0:
				t.Fatalf("reported %+v, want nothing", got)
			case tc.want != nil && (len(got) != 1 || got[0] != *tc.want):
				t.Fatalf("reported %+v, want %+v", got, *tc.want)
			}
			_ = s
		})
	}
}

func chat(s string) portrait.ChatID { return portrait.MustChatID(portrait.TypeWhatsApp, s) }

func TestPictureEventWithoutTimestamp(t *testing.T) {
	h := newHarness(t)
	_, c := h.authorized()
	before := time.Now()
	c.emit(&events.Picture{JID: jid("79001230001@s.whatsapp.net"), PictureID: "1"})
	waitFor(t, "the change", func() bool { return len(h.sink.changeList()) == 1 })
	if at := h.sink.changeList()[0].At; at.Before(before) {
		t.Fatalf("At = %v, want about now", at)
	}
}

// A picture change reaches the sink before whatsmeow's handler returns:
// the client acks WhatsApp's notification only after that (SynchronousAck),
// so a change is committed before WhatsApp counts it as received.
func TestPictureChangeReachesSinkBeforeAck(t *testing.T) {
	h := newHarness(t)
	_, c := h.authorized()
	for i := range 5 {
		c.emit(&events.Picture{JID: jid("79001230001@s.whatsapp.net"), PictureID: string(rune('a' + i))})
		if n := len(h.sink.changeList()); n != i+1 {
			t.Fatalf("after the handler returned, the sink had %d changes, want %d", n, i+1)
		}
	}
}

// A slow sink does not hold up whatsmeow's event goroutine for the
// session's own state events, which go through the outbox.
func TestSlowSinkDoesNotBlockStateEvents(t *testing.T) {
	h := newHarness(t)
	_, c := h.authorized()
	release := make(chan struct{})
	h.sink.mu.Lock()
	h.sink.block = release
	h.sink.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			c.emit(&events.Disconnected{})
			c.emit(&events.Connected{})
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("emitting state events blocked on the sink")
	}
	close(release)
}

func TestNoPictureEventsWhileLinking(t *testing.T) {
	h := newHarness(t)
	s := h.open()
	startQR(t, h, s)
	h.clientAt(0).emit(&events.Picture{JID: jid("79001230001@s.whatsapp.net"), PictureID: "1"})
	time.Sleep(20 * time.Millisecond)
	if n := len(h.sink.changeList()); n != 0 {
		t.Fatalf("%d changes reported by an unlinked session", n)
	}
}
