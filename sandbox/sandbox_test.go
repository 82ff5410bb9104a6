package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
)

var types = []portrait.InstanceType{portrait.TypeWhatsApp, portrait.TypeMAX}

// TestDemoChats checks every demo chat of both types: its id is valid, and
// Picture and (for groups) SetPicture have the advertised outcome.
func TestDemoChats(t *testing.T) {
	getWant := map[string]error{
		OutcomePicture:               nil,
		OutcomePicturePNG:            nil,
		OutcomeHidden:                portrait.ErrPictureHidden,
		OutcomeNoPicture:             portrait.ErrPictureNotSet,
		OutcomeNoAccount:             portrait.ErrNoAccount,
		OutcomeTimeout:               portrait.ErrUpstreamTimeout,
		OutcomeRateLimit:             portrait.ErrUpstreamRateLimit,
		OutcomeGroupAdmin:            nil,
		OutcomeGroupMemberAdminsOnly: nil,
		OutcomeGroupMember:           portrait.ErrPictureNotSet,
		OutcomeGroupNotMember:        portrait.ErrPictureHidden,
		OutcomeGroupNotFound:         portrait.ErrGroupNotFound,
	}
	setWant := map[string]error{
		OutcomeGroupAdmin:            nil,
		OutcomeGroupMemberAdminsOnly: portrait.ErrNotGroupAdmin,
		OutcomeGroupMember:           nil,
		OutcomeGroupNotMember:        portrait.ErrNotGroupMember,
		OutcomeGroupNotFound:         portrait.ErrGroupNotFound,
	}
	const hang = 30 * time.Millisecond
	for _, typ := range types {
		t.Run(string(typ), func(t *testing.T) {
			e := New(newMemKV(), nil, Options{Faults: true, FaultTimeout: hang, UnknownGroupTimeout: hang})
			s := open(t, e, typ, nil)
			chats := DemoChats(typ)
			seen := map[string]bool{}
			for _, dc := range chats {
				seen[dc.Outcome] = true
				t.Run(dc.ChatID, func(t *testing.T) {
					c := chat(t, typ, dc.ChatID)
					wantKind := portrait.KindContact
					if dc.Kind == portrait.SubjectGroup {
						wantKind = portrait.KindGroup
					}
					if c.Kind() != wantKind {
						t.Fatalf("kind of %s = %v, want %v", dc.ChatID, c.Kind(), wantKind)
					}
					want, ok := getWant[dc.Outcome]
					if !ok {
						t.Fatalf("unknown outcome %q", dc.Outcome)
					}
					start := time.Now()
					pic, err := s.Picture(context.Background(), c, "")
					took := time.Since(start)
					if !errors.Is(err, want) || (want == nil && err != nil) {
						t.Fatalf("Picture: err = %v, want %v", err, want)
					}
					if want == portrait.ErrUpstreamTimeout || want == portrait.ErrGroupNotFound {
						if took < hang {
							t.Errorf("Picture answered %v after %v, want a hang of %v", err, took, hang)
						}
					}
					if want == nil {
						if len(pic.Data) == 0 || pic.ID == "" || pic.Unchanged {
							t.Fatalf("Picture = id %q, %d bytes, unchanged %v", pic.ID, len(pic.Data), pic.Unchanged)
						}
						if _, err := strconv.ParseInt(pic.ID, 10, 64); err != nil {
							t.Errorf("picture id %q is not numeric", pic.ID)
						}
						mime := http.DetectContentType(pic.Data)
						wantMIME := "image/jpeg"
						if dc.Outcome == OutcomePicturePNG {
							wantMIME = "image/png"
						}
						if mime != wantMIME {
							t.Errorf("picture is %s, want %s", mime, wantMIME)
						}
					}
					if dc.Kind != portrait.SubjectGroup {
						return
					}
					swant := setWant[dc.Outcome]
					id, err := s.SetPicture(context.Background(), c, mustPicture(t, "new-"+dc.ChatID), nil)
					if !errors.Is(err, swant) || (swant == nil && err != nil) {
						t.Fatalf("SetPicture: err = %v, want %v", err, swant)
					}
					if swant == nil {
						got, err := s.Picture(context.Background(), c, "")
						if err != nil || got.ID != id || !bytes.Equal(got.Data, mustPicture(t, "new-"+dc.ChatID)) {
							t.Fatalf("after SetPicture: Picture = %q, %v; want id %q and the new bytes", got.ID, err, id)
						}
					}
				})
			}
			for o := range getWant {
				if !seen[o] {
					t.Errorf("no demo chat with outcome %q", o)
				}
			}
		})
	}
}

func TestDemoWorldValid(t *testing.T) {
	for _, typ := range types {
		w, err := DemoWorld(typ)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Validate(); err != nil {
			t.Errorf("%s demo world: %v", typ, err)
		}
	}
	if _, err := DemoWorld("telegram"); err == nil {
		t.Error("DemoWorld(telegram) succeeded")
	}
	if n := len(DemoChats(portrait.TypeMAX)); n != len(DemoChats(portrait.TypeWhatsApp))-1 {
		t.Errorf("MAX has %d demo chats; want all but the @lid one", n)
	}
}

func TestAccount(t *testing.T) {
	tests := []struct {
		typ  portrait.InstanceType
		want portrait.Account
	}{
		{portrait.TypeWhatsApp, portrait.Account{Wid: "11001234567@c.us", Phone: "11001234567", DeviceID: "11001234567:1@s.whatsapp.net"}},
		{portrait.TypeMAX, portrait.Account{Wid: "10000000", Phone: "11001234567"}},
	}
	for _, tt := range tests {
		e := New(newMemKV(), nil, Options{})
		s := open(t, e, tt.typ, nil)
		if got := s.Account(); got != tt.want {
			t.Errorf("%s: Account = %+v, want %+v", tt.typ, got, tt.want)
		}
		if got := s.State(); got != portrait.StateAuthorized {
			t.Errorf("%s: State = %q", tt.typ, got)
		}
		if err := s.Logout(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := s.Account(); got != (portrait.Account{}) {
			t.Errorf("%s: Account after logout = %+v, want zero", tt.typ, got)
		}
	}
}

func TestExistingIDUnchanged(t *testing.T) {
	e := New(newMemKV(), nil, Options{})
	s := open(t, e, portrait.TypeWhatsApp, nil)
	alice := chat(t, portrait.TypeWhatsApp, "11001230001@c.us")
	first, err := s.Picture(context.Background(), alice, "")
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Picture(context.Background(), alice, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Unchanged || again.ID != first.ID || again.Data != nil {
		t.Fatalf("Picture with the current id = %+v, want Unchanged without data", again)
	}
	stale, err := s.Picture(context.Background(), alice, "1")
	if err != nil || stale.Unchanged || !bytes.Equal(stale.Data, first.Data) {
		t.Fatalf("Picture with a stale id: unchanged %v, %d bytes, err %v", stale.Unchanged, len(stale.Data), err)
	}

	// A change upstream gives a new, larger id.
	if err := e.Update(context.Background(), waID, alice.String(), Update{Picture: mustPicture(t, "alice-2")}); err != nil {
		t.Fatal(err)
	}
	changed, err := s.Picture(context.Background(), alice, first.ID)
	if err != nil || changed.Unchanged {
		t.Fatalf("after an update: %+v, %v", changed.Unchanged, err)
	}
	if a, b := mustAtoi(t, first.ID), mustAtoi(t, changed.ID); b <= a {
		t.Errorf("new picture id %d is not larger than %d", b, a)
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("picture id %q: %v", s, err)
	}
	return n
}

func TestLatency(t *testing.T) {
	const latency = 80 * time.Millisecond
	e := New(newMemKV(), nil, Options{Latency: latency})
	s := open(t, e, portrait.TypeWhatsApp, nil)
	alice := chat(t, portrait.TypeWhatsApp, "11001230001@c.us")

	start := time.Now()
	if _, err := s.Picture(context.Background(), alice, ""); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < latency {
		t.Errorf("Picture took %v, want at least the latency %v", took, latency)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err := s.Picture(ctx, alice, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Picture with a short deadline: %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took >= latency {
		t.Errorf("cancelled Picture took %v, want < %v", took, latency)
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := s.SetPicture(ctx, portrait.ChatID{}, mustPicture(t, "x"), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("SetPicture with a cancelled context: %v", err)
	}
}

func TestHangsCappedByContext(t *testing.T) {
	e := New(newMemKV(), nil, Options{Faults: true, FaultTimeout: time.Minute, UnknownGroupTimeout: time.Minute})
	s := open(t, e, portrait.TypeWhatsApp, nil)
	for _, id := range []string{"11001230006@c.us", "120363000000000099@g.us"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		start := time.Now()
		_, err := s.Picture(ctx, chat(t, portrait.TypeWhatsApp, id), "")
		cancel()
		if time.Since(start) > time.Second {
			t.Errorf("%s: the hang was not cut by the context", id)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !(errors.Is(err, portrait.ErrUpstreamTimeout) || errors.Is(err, portrait.ErrGroupNotFound)) {
			t.Errorf("%s: err = %v, want the outcome and DeadlineExceeded", id, err)
		}
	}
	// Close ends a hang too.
	done := make(chan error, 1)
	go func() {
		_, err := s.Picture(context.Background(), chat(t, portrait.TypeWhatsApp, "11001230006@c.us"), "")
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	_ = s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("hang ended by Close: %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not end the hang")
	}
}

func TestFaultsOff(t *testing.T) {
	e := New(newMemKV(), nil, Options{Faults: false, FaultTimeout: time.Minute})
	s := open(t, e, portrait.TypeWhatsApp, nil)
	for _, dc := range DemoChats(portrait.TypeWhatsApp) {
		if dc.Outcome != OutcomeTimeout && dc.Outcome != OutcomeRateLimit {
			continue
		}
		pic, err := s.Picture(context.Background(), chat(t, portrait.TypeWhatsApp, dc.ChatID), "")
		if err != nil || len(pic.Data) == 0 {
			t.Errorf("%s (%s) with faults off: %v", dc.ChatID, dc.Outcome, err)
		}
	}
}

func TestCooldown(t *testing.T) {
	clock := newFakeClock()
	e := New(newMemKV(), nil, Options{PictureCooldown: 10 * time.Second, Clock: clock.Now})
	s := open(t, e, portrait.TypeWhatsApp, nil)
	ctx := context.Background()
	group := chat(t, portrait.TypeWhatsApp, "120363000000000001@g.us")
	pic := mustPicture(t, "cooldown")

	set := func(c portrait.ChatID) error {
		_, err := s.SetPicture(ctx, c, pic, nil)
		return err
	}
	if err := set(portrait.ChatID{}); err != nil {
		t.Fatalf("first own picture: %v", err)
	}
	if err := set(group); err != nil {
		t.Fatalf("a group is another target: %v", err)
	}
	clock.Advance(5 * time.Second)
	if err := set(portrait.ChatID{}); !errors.Is(err, portrait.ErrUpstreamRateLimit) {
		t.Fatalf("second own picture after 5s: %v, want rate limit", err)
	}
	// The own id names the same target as the zero ChatID.
	if err := set(chat(t, portrait.TypeWhatsApp, "11001234567@c.us")); !errors.Is(err, portrait.ErrUpstreamRateLimit) {
		t.Fatalf("own id after 5s: %v, want rate limit", err)
	}
	clock.Advance(5 * time.Second) // 10s after the first success; refusals did not restart the window
	if err := set(portrait.ChatID{}); err != nil {
		t.Fatalf("own picture after 10s: %v", err)
	}
	if err := set(group); err != nil {
		t.Fatalf("group after 10s: %v", err)
	}
	if err := set(group); !errors.Is(err, portrait.ErrUpstreamRateLimit) {
		t.Fatalf("group again at once: %v, want rate limit", err)
	}

	// Off when 0.
	e2 := New(newMemKV(), nil, Options{Clock: clock.Now})
	s2 := open(t, e2, portrait.TypeWhatsApp, nil)
	for i := range 3 {
		if _, err := s2.SetPicture(ctx, portrait.ChatID{}, pic, nil); err != nil {
			t.Fatalf("set %d without cooldown: %v", i, err)
		}
	}
}

func TestOwnPictureRoundTrip(t *testing.T) {
	for _, typ := range types {
		e := New(newMemKV(), nil, Options{})
		s := open(t, e, typ, nil)
		own := chat(t, typ, s.Account().Wid)
		before, err := s.Picture(context.Background(), own, "")
		if err != nil {
			t.Fatal(err)
		}
		pic := mustPicture(t, "roundtrip")
		id, err := s.SetPicture(context.Background(), portrait.ChatID{}, pic, mustPicture(t, "preview"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Picture(context.Background(), own, "")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != id || !bytes.Equal(got.Data, pic) {
			t.Errorf("%s: own picture after set: id %q (want %q), same bytes %v", typ, got.ID, id, bytes.Equal(got.Data, pic))
		}
		if mustAtoi(t, id) <= mustAtoi(t, before.ID) {
			t.Errorf("%s: new id %s not above %s", typ, id, before.ID)
		}
	}
}

func TestSetPictureRefusals(t *testing.T) {
	e := New(newMemKV(), nil, Options{})
	s := open(t, e, portrait.TypeWhatsApp, nil)
	ctx := context.Background()
	if _, err := s.SetPicture(ctx, chat(t, portrait.TypeWhatsApp, "11001230001@c.us"), mustPicture(t, "x"), nil); err == nil {
		t.Error("setting a contact's picture succeeded")
	}
	if _, err := s.SetPicture(ctx, portrait.ChatID{}, []byte("not an image"), nil); err == nil {
		t.Error("setting a non-image succeeded")
	}
}

func TestNoSetEventForOwnChanges(t *testing.T) {
	sink := newRecSink()
	e := New(newMemKV(), nil, Options{})
	s := open(t, e, portrait.TypeWhatsApp, sink)
	sink.expectStates(t, portrait.StateAuthorized)
	ctx := context.Background()
	if _, err := s.SetPicture(ctx, portrait.ChatID{}, mustPicture(t, "a"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetPicture(ctx, chat(t, portrait.TypeWhatsApp, "120363000000000001@g.us"), mustPicture(t, "b"), nil); err != nil {
		t.Fatal(err)
	}
	sink.expectNone(t, 50*time.Millisecond)
}

func TestPersistence(t *testing.T) {
	kv := newMemKV()
	ctx := context.Background()
	e1 := New(kv, nil, Options{})
	s1 := open(t, e1, portrait.TypeWhatsApp, nil)
	own := mustPicture(t, "persisted-own")
	ownID, err := s1.SetPicture(ctx, portrait.ChatID{}, own, nil)
	if err != nil {
		t.Fatal(err)
	}
	newcomer := "11009999999@c.us"
	if err := e1.Update(ctx, waID, newcomer, Update{Picture: mustPicture(t, "newcomer"), Name: ptr("Newcomer")}); err != nil {
		t.Fatal(err)
	}
	if err := e1.Update(ctx, waID, "11001230001@c.us", Update{Hidden: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if err := s1.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	// A second engine on the same KV sees it all, and does not reseed.
	e2 := New(kv, SeedFunc(func(portrait.InstanceType) (World, error) {
		return World{}, errors.New("must not seed")
	}), Options{})
	s2 := open(t, e2, portrait.TypeWhatsApp, nil)
	if st := s2.State(); st != portrait.StateNotAuthorized {
		t.Fatalf("state after reopen = %q, want notAuthorized", st)
	}
	if err := e2.Scan(ctx, waID); err != nil {
		t.Fatal(err)
	}
	got, err := s2.Picture(ctx, chat(t, portrait.TypeWhatsApp, "11001234567@c.us"), "")
	if err != nil || got.ID != ownID || !bytes.Equal(got.Data, own) {
		t.Fatalf("own picture in the second engine: id %q (want %q), %v", got.ID, ownID, err)
	}
	if _, err := s2.Picture(ctx, chat(t, portrait.TypeWhatsApp, newcomer), ""); err != nil {
		t.Fatalf("new contact: %v", err)
	}
	if _, err := s2.Picture(ctx, chat(t, portrait.TypeWhatsApp, "11001230001@c.us"), ""); !errors.Is(err, portrait.ErrPictureHidden) {
		t.Fatalf("hidden contact: %v", err)
	}
	w, err := e2.World(ctx, waID)
	if err != nil {
		t.Fatal(err)
	}
	c := w.contact(newcomer)
	if c == nil || c.Name != "Newcomer" || c.Picture == nil || c.Picture.Data != nil || c.Picture.MIME != "image/jpeg" {
		t.Fatalf("World contact = %+v", c)
	}
	// The world document holds no picture bytes.
	if n := len(kv.Value(waID, keyWorld)); n > 8<<10 {
		t.Errorf("world document is %d bytes; pictures leaked into it?", n)
	}
	// The instance type is fixed by the stored world.
	if _, err := e2.Open(ctx, portrait.Instance{ID: waID, Type: portrait.TypeMAX}, nil); err == nil {
		t.Error("opening a WhatsApp world as MAX succeeded")
	}
}

func TestAdminWithoutWorld(t *testing.T) {
	e := New(newMemKV(), nil, Options{})
	ctx := context.Background()
	if _, err := e.World(ctx, 42); !errors.Is(err, portrait.ErrNotFound) {
		t.Fatalf("World of an unknown instance: %v, want ErrNotFound", err)
	}
	if err := e.Update(ctx, 42, "11001230001@c.us", Update{Hidden: ptr(true)}); !errors.Is(err, portrait.ErrNotFound) {
		t.Fatalf("Update of an unknown instance: %v, want ErrNotFound", err)
	}
	if err := e.EnsureWorld(ctx, portrait.Instance{ID: 42, Type: portrait.TypeMAX}); err != nil {
		t.Fatal(err)
	}
	if err := e.Update(ctx, 42, "10000001", Update{Hidden: ptr(true)}); err != nil {
		t.Fatalf("Update after EnsureWorld: %v", err)
	}
	w, err := e.World(ctx, 42)
	if err != nil || w.Type != portrait.TypeMAX || !w.contact("10000001").Hidden {
		t.Fatalf("World = %+v, %v", w, err)
	}
}

func TestUpdate(t *testing.T) {
	sink := newRecSink()
	clock := newFakeClock()
	e := New(newMemKV(), nil, Options{Clock: clock.Now})
	s := open(t, e, portrait.TypeWhatsApp, sink)
	sink.expectStates(t, portrait.StateAuthorized)
	ctx := context.Background()
	wa := func(s string) portrait.ChatID { return chat(t, portrait.TypeWhatsApp, s) }

	// A contact's new picture.
	if err := e.Update(ctx, waID, "11001230004@c.us", Update{Picture: mustPicture(t, "dave")}); err != nil {
		t.Fatal(err)
	}
	c := sink.expectPicture(t)
	pic, err := s.Picture(ctx, wa("11001230004@c.us"), "")
	if err != nil {
		t.Fatal(err)
	}
	want := portrait.PictureChange{Chat: wa("11001230004@c.us"), Kind: portrait.SubjectContact, PictureID: pic.ID, At: clock.Now()}
	if c != want {
		t.Errorf("change = %+v, want %+v", c, want)
	}

	// A group's picture removed by someone.
	if err := e.Update(ctx, waID, "120363000000000001@g.us", Update{RemovePicture: true, Author: "11001230001@c.us"}); err != nil {
		t.Fatal(err)
	}
	c = sink.expectPicture(t)
	want = portrait.PictureChange{Chat: wa("120363000000000001@g.us"), Kind: portrait.SubjectGroup, Author: "11001230001@c.us", Removed: true, At: clock.Now()}
	if c != want {
		t.Errorf("change = %+v, want %+v", c, want)
	}
	if _, err := s.Picture(ctx, wa("120363000000000001@g.us"), ""); !errors.Is(err, portrait.ErrPictureNotSet) {
		t.Errorf("removed group picture: %v", err)
	}

	// The account's own picture changed from the phone.
	if err := e.Update(ctx, waID, "11001234567@c.us", Update{Picture: mustPicture(t, "phone")}); err != nil {
		t.Fatal(err)
	}
	c = sink.expectPicture(t)
	if c.Kind != portrait.SubjectSelf || c.Chat != wa("11001234567@c.us") || c.Removed || c.PictureID == "" {
		t.Errorf("own change = %+v", c)
	}

	// Privacy, account and fault changes report nothing but take effect.
	for _, u := range []struct {
		chat string
		u    Update
		err  error
	}{
		{"11001230001@c.us", Update{Hidden: ptr(true)}, portrait.ErrPictureHidden},
		{"11001230002@c.us", Update{HasAccount: ptr(false)}, portrait.ErrNoAccount},
		{"11001230004@c.us", Update{Fault: ptr(FaultRateLimit)}, nil}, // faults are off
		{"120363000000000001@g.us", Update{Role: ptr(RoleNone)}, portrait.ErrPictureHidden},
	} {
		if err := e.Update(ctx, waID, u.chat, u.u); err != nil {
			t.Fatalf("Update %s: %v", u.chat, err)
		}
		if _, err := s.Picture(ctx, wa(u.chat), ""); !errors.Is(err, u.err) || (u.err == nil && err != nil) {
			t.Errorf("after update of %s: %v, want %v", u.chat, err, u.err)
		}
	}
	// Removing a picture that is not there changes nothing.
	if err := e.Update(ctx, waID, "11001230003@c.us", Update{RemovePicture: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.Update(ctx, waID, "11001230003@c.us", Update{RemovePicture: true}); err != nil {
		t.Fatal(err)
	}
	_ = sink.expectPicture(t)
	sink.expectNone(t, 50*time.Millisecond)

	// A new group can be created.
	if err := e.Update(ctx, waID, "120363000000000099@g.us", Update{Name: ptr("New"), Role: ptr(RoleAdmin)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetPicture(ctx, wa("120363000000000099@g.us"), mustPicture(t, "new"), nil); err != nil {
		t.Errorf("SetPicture on the new group: %v", err)
	}

	// Invalid updates.
	for name, u := range map[string]struct {
		chat string
		u    Update
	}{
		"bad chat id":          {"12345", Update{Hidden: ptr(true)}},
		"picture and removal":  {"11001230001@c.us", Update{Picture: mustPicture(t, "x"), RemovePicture: true}},
		"unknown fault":        {"11001230001@c.us", Update{Fault: ptr("boom")}},
		"unknown role":         {"120363000000000001@g.us", Update{Role: ptr("owner")}},
		"contact field group":  {"120363000000000001@g.us", Update{Hidden: ptr(true)}},
		"group field contact":  {"11001230001@c.us", Update{OnlyAdminsEditInfo: ptr(true)}},
		"privacy of self":      {"11001234567@c.us", Update{Hidden: ptr(true)}},
		"picture not an image": {"11001230001@c.us", Update{Picture: []byte("hello")}},
	} {
		if err := e.Update(ctx, waID, u.chat, u.u); err == nil {
			t.Errorf("%s: Update succeeded", name)
		}
	}
	sink.expectNone(t, 20*time.Millisecond)
}

func TestUpdateNotReportedWhenNotAuthorized(t *testing.T) {
	sink := newRecSink()
	e := New(newMemKV(), nil, Options{})
	s := open(t, e, portrait.TypeWhatsApp, sink)
	sink.expectStates(t, portrait.StateAuthorized)
	if err := s.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	sink.expectStates(t, portrait.StateNotAuthorized)
	if err := e.Update(context.Background(), waID, "11001230001@c.us", Update{Picture: mustPicture(t, "x")}); err != nil {
		t.Fatal(err)
	}
	sink.expectNone(t, 50*time.Millisecond)
}

func TestStates(t *testing.T) {
	const delay = 60 * time.Millisecond
	sink := newRecSink()
	e := New(newMemKV(), nil, Options{StartDelay: delay})
	ctx := context.Background()
	s := open(t, e, portrait.TypeWhatsApp, sink)
	alice := chat(t, portrait.TypeWhatsApp, "11001230001@c.us")

	// Starting.
	if st := s.State(); st != portrait.StateStarting {
		t.Fatalf("state after Open = %q", st)
	}
	if _, err := s.Picture(ctx, alice, ""); !errors.Is(err, portrait.ErrStarting) {
		t.Errorf("Picture while starting: %v", err)
	}
	if _, err := s.SetPicture(ctx, portrait.ChatID{}, mustPicture(t, "x"), nil); !errors.Is(err, portrait.ErrStarting) {
		t.Errorf("SetPicture while starting: %v", err)
	}
	if qr, err := s.QR(ctx); err != nil || qr != (portrait.QR{Kind: portrait.QRError, Err: portrait.ErrStarting}) {
		t.Errorf("QR while starting = %+v, %v", qr, err)
	}
	sink.expectStates(t, portrait.StateStarting, portrait.StateAuthorized)
	if st := s.State(); st != portrait.StateAuthorized {
		t.Fatalf("state after the delay = %q", st)
	}
	if qr, err := s.QR(ctx); err != nil || qr != (portrait.QR{Kind: portrait.QRAlreadyLogged}) {
		t.Errorf("QR when linked = %+v, %v", qr, err)
	}

	// Logout.
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	sink.expectStates(t, portrait.StateNotAuthorized)
	if _, err := s.Picture(ctx, alice, ""); !errors.Is(err, portrait.ErrNotAuthorized) {
		t.Errorf("Picture when not authorized: %v", err)
	}
	if qr, err := s.QR(ctx); err != nil || qr.Kind != portrait.QRCode || qr.Code == "" {
		t.Errorf("QR when not linked = %+v, %v", qr, err)
	}
	if err := s.Logout(ctx); err != nil {
		t.Errorf("second logout: %v", err)
	}

	// Scan.
	if err := e.Scan(ctx, waID); err != nil {
		t.Fatal(err)
	}
	sink.expectStates(t, portrait.StateAuthorized)
	if err := e.Scan(ctx, waID); err != nil {
		t.Fatal(err)
	}

	// Reboot, twice in a row: one starting, one authorized.
	if err := s.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.State(); st != portrait.StateStarting {
		t.Fatalf("state after Reboot = %q", st)
	}
	sink.expectStates(t, portrait.StateStarting, portrait.StateAuthorized)
	sink.expectNone(t, delay+30*time.Millisecond)

	// Close: no more events, calls fail.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := e.Update(ctx, waID, alice.String(), Update{Picture: mustPicture(t, "after-close")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Picture(ctx, alice, ""); !errors.Is(err, ErrClosed) {
		t.Errorf("Picture after Close: %v", err)
	}
	if err := s.Reboot(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Reboot after Close: %v", err)
	}
	sink.expectNone(t, 30*time.Millisecond)
}

func TestStatesWithoutDelay(t *testing.T) {
	sink := newRecSink()
	e := New(newMemKV(), nil, Options{})
	s := open(t, e, portrait.TypeMAX, sink)
	sink.expectStates(t, portrait.StateAuthorized)
	if err := s.Reboot(context.Background()); err != nil {
		t.Fatal(err)
	}
	sink.expectStates(t, portrait.StateStarting, portrait.StateAuthorized)
	sink.expectNone(t, 20*time.Millisecond)
}

func TestNotLinkedWorld(t *testing.T) {
	seed := SeedFunc(func(typ portrait.InstanceType) (World, error) {
		w, err := DemoWorld(typ)
		w.Account.Linked = false
		return w, err
	})
	sink := newRecSink()
	e := New(newMemKV(), seed, Options{})
	s := open(t, e, portrait.TypeWhatsApp, sink)
	sink.expectStates(t, portrait.StateNotAuthorized)
	if a := s.Account(); a != (portrait.Account{}) {
		t.Errorf("Account = %+v, want zero", a)
	}
	if err := e.Scan(context.Background(), waID); err != nil {
		t.Fatal(err)
	}
	sink.expectStates(t, portrait.StateAuthorized)
	if a := s.Account(); a.Wid != "11001234567@c.us" {
		t.Errorf("Account after scan = %+v", a)
	}
}

func TestQRRotation(t *testing.T) {
	for _, typ := range types {
		clock := newFakeClock()
		seed := SeedFunc(func(typ portrait.InstanceType) (World, error) {
			w, err := DemoWorld(typ)
			w.Account.Linked = false
			return w, err
		})
		e := New(newMemKV(), seed, Options{QRRotate: 20 * time.Second, Clock: clock.Now})
		s := open(t, e, typ, nil)
		code := func() string {
			qr, err := s.QR(context.Background())
			if err != nil || qr.Kind != portrait.QRCode {
				t.Fatalf("QR = %+v, %v", qr, err)
			}
			return qr.Code
		}
		first := code()
		clock.Advance(19 * time.Second)
		if c := code(); c != first {
			t.Errorf("%s: code changed within the period", typ)
		}
		clock.Advance(time.Second)
		second := code()
		if second == first {
			t.Errorf("%s: code did not change after 20s", typ)
		}
		clock.Advance(20 * time.Second)
		if c := code(); c == second || c == first {
			t.Errorf("%s: third code repeats an earlier one", typ)
		}
		if typ == portrait.TypeWhatsApp && (len(first) < 40 || first[:2] != "2@") {
			t.Errorf("WhatsApp code %q does not look like one", first)
		}
	}
}

func TestCloseReleasesGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	e := New(newMemKV(), nil, Options{StartDelay: time.Hour})
	for range 20 {
		s, err := e.Open(context.Background(), instanceOf(portrait.TypeWhatsApp), newRecSink())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after closing, %d before", n, before)
	}
}

func TestSeveralSessions(t *testing.T) {
	e := New(newMemKV(), nil, Options{})
	a, b := newRecSink(), newRecSink()
	s1 := open(t, e, portrait.TypeWhatsApp, a)
	_ = open(t, e, portrait.TypeWhatsApp, b)
	a.expectStates(t, portrait.StateAuthorized)
	b.expectStates(t, portrait.StateAuthorized)
	if err := s1.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.expectStates(t, portrait.StateNotAuthorized)
	b.expectStates(t, portrait.StateNotAuthorized)
}

// TestConcurrentUse is mostly for the race detector.
func TestConcurrentUse(t *testing.T) {
	e := New(newMemKV(), nil, Options{Latency: time.Millisecond, PictureCooldown: time.Millisecond, Faults: true})
	sink := newRecSink()
	go func() { // drain
		for range sink.ch {
		}
	}()
	s, err := e.Open(context.Background(), instanceOf(portrait.TypeWhatsApp), sink)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pics := [][]byte{mustPicture(t, "c0"), mustPicture(t, "c1")}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 10 {
				for _, dc := range DemoChats(portrait.TypeWhatsApp) {
					if dc.Outcome == OutcomeTimeout || dc.Outcome == OutcomeGroupNotFound {
						continue
					}
					_, _ = s.Picture(ctx, chat(t, portrait.TypeWhatsApp, dc.ChatID), "")
				}
				_, _ = s.SetPicture(ctx, portrait.ChatID{}, pics[0], nil)
				_ = e.Update(ctx, waID, "11001230001@c.us", Update{Picture: pics[(i+j)%2]})
				_ = s.State()
				_ = s.Account()
				_, _ = s.QR(ctx)
				if j == 5 && i == 0 {
					_ = s.Reboot(ctx)
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	close(sink.ch)
}

func TestGeneratePicture(t *testing.T) {
	a1, err := GeneratePicture("alice", FormatJPEG)
	if err != nil {
		t.Fatal(err)
	}
	renderAgain := renderAvatar("alice")
	if !bytes.Equal(renderAgain.Pix, renderAvatar("alice").Pix) {
		t.Error("rendering is not deterministic")
	}
	b, _ := GeneratePicture("bob", FormatJPEG)
	if bytes.Equal(a1, b) {
		t.Error("different seeds give the same picture")
	}
	p, err := GeneratePicture("alice", FormatPNG)
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{a1, p} {
		img, format, err := image.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if r := img.Bounds(); r.Dx() != GeneratedSize || r.Dy() != GeneratedSize {
			t.Errorf("%s is %v", format, r)
		}
	}
	if _, err := GeneratePicture("x", "gif"); err == nil {
		t.Error("unknown format accepted")
	}
}

// countSink counts picture changes as they are handed over.
type countSink struct{ n atomic.Int32 }

func (c *countSink) StateChanged(portrait.InstanceID, portrait.State) {}
func (c *countSink) PictureChanged(portrait.InstanceID, portrait.PictureChange) {
	time.Sleep(20 * time.Millisecond) // a sink that commits takes a moment
	c.n.Add(1)
}

// TestUpdateWaitsForTheSink: Update returns only once the sink has taken
// the change, as a messenger acknowledges a notification only once it was
// handled, so that a change the caller saw succeed is committed.
func TestUpdateWaitsForTheSink(t *testing.T) {
	sink := &countSink{}
	e := New(newMemKV(), nil, Options{})
	s := open(t, e, portrait.TypeWhatsApp, sink)
	deadline := time.Now().Add(5 * time.Second)
	for s.State() != portrait.StateAuthorized && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	for i := 1; i <= 3; i++ {
		if err := e.Update(context.Background(), waID, "11001230001@c.us", Update{Picture: mustPicture(t, fmt.Sprint("alice-", i))}); err != nil {
			t.Fatal(err)
		}
		if n := sink.n.Load(); n != int32(i) {
			t.Fatalf("after Update %d returned the sink had %d changes", i, n)
		}
	}
}

// TestDemoPicturesStoredOnce: a demo world stores its generated pictures as
// references to their seeds, not as copies, yet lookups return the
// pictures themselves; a picture set later is stored whole.
func TestDemoPicturesStoredOnce(t *testing.T) {
	kv := newMemKV()
	e := New(kv, nil, Options{})
	s := open(t, e, portrait.TypeWhatsApp, nil)
	total := 0
	kv.Each(func(k string, v []byte) {
		if strings.Contains(k, keyPicture) {
			total += len(v)
		}
	})
	if total == 0 || total > 1000 {
		t.Errorf("the demo world's pictures take %d bytes of the store; want a few references", total)
	}
	got, err := s.Picture(context.Background(), chat(t, portrait.TypeWhatsApp, "11001230001@c.us"), "")
	if err != nil || !bytes.Equal(got.Data, mustPicture(t, "alice")) {
		t.Fatalf("Alice's picture: %d bytes, %v", len(got.Data), err)
	}
	png, err := GeneratePicture("bob", FormatPNG)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Picture(context.Background(), chat(t, portrait.TypeWhatsApp, "11001230002@c.us"), ""); err != nil || !bytes.Equal(got.Data, png) {
		t.Fatalf("Bob's PNG: %d bytes, %v", len(got.Data), err)
	}
	own := mustPicture(t, "someone else")
	if _, err := s.SetPicture(context.Background(), portrait.ChatID{}, own, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := kv.Get(context.Background(), waID, keyPicture+ownPictureKey); !bytes.Equal(b, own) {
		t.Errorf("a set picture is stored as %d bytes, want the picture itself", len(b))
	}
}
