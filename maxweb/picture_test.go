package maxweb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/maxweb/maxfake"
)

var (
	alicePic = []byte("\xff\xd8\xff alice")
	teamPic  = []byte("\xff\xd8\xff team")
	ownPic   = []byte("\xff\xd8\xff own")
)

// pictureRig is a linked, authorized session with users and groups.
func pictureRig(t *testing.T, tune ...func(*Options)) *rig {
	t.Helper()
	acc := testAccount
	acc.Picture = ownPic
	r := newRig(t, acc, true, tune...)
	r.srv.AddUser(maxfake.User{ID: 10000001, Name: "Alice", Picture: alicePic})
	r.srv.AddUser(maxfake.User{ID: 10000004, Name: "Dan"}) // no picture
	r.srv.AddChat(maxfake.Chat{ID: -10000000000001, Title: "Team", Owner: 10000000, Members: []int64{10000000, 10000001}, Picture: teamPic})
	r.srv.AddChat(maxfake.Chat{ID: -10000000000002, Title: "Club", Owner: 10000001, Members: []int64{10000000, 10000001}})
	r.srv.AddChat(maxfake.Chat{ID: -10000000000003, Title: "Owners", Owner: 10000001, Admins: []int64{10000000}, OnlyOwnerEdits: true, Members: []int64{10000000, 10000001}})
	r.open()
	r.waitState(portrait.StateAuthorized)
	return r
}

func chatID(s string) portrait.ChatID { return portrait.MustChatID(portrait.TypeMAX, s) }

func TestPictureOutcomes(t *testing.T) {
	r := pictureRig(t, func(o *Options) { o.RequestTimeout = 300 * time.Millisecond })
	s := r.s
	tests := []struct {
		name   string
		chat   string
		fault  *maxfake.Fault
		opcode int
		want   []byte
		err    error
	}{
		{name: "contact", chat: "10000001", want: alicePic},
		{name: "own", chat: "10000000", want: ownPic},
		{name: "group", chat: "-10000000000001", want: teamPic},
		{name: "contact without picture", chat: "10000004", err: portrait.ErrPictureNotSet},
		{name: "group without picture", chat: "-10000000000002", err: portrait.ErrPictureNotSet},
		{name: "no such user", chat: "10000099", err: portrait.ErrNoAccount},
		{name: "no such group", chat: "-10000000000099", err: portrait.ErrGroupNotFound},
		{name: "rate limit", chat: "10000001", opcode: maxfake.OpContactInfo, fault: &maxfake.Fault{Code: "too.many.requests"}, err: portrait.ErrUpstreamRateLimit},
		{name: "group rate limit", chat: "-10000000000001", opcode: maxfake.OpChatInfo, fault: &maxfake.Fault{Code: "error.limit.violate"}, err: portrait.ErrUpstreamRateLimit},
		{name: "no answer", chat: "10000001", opcode: maxfake.OpContactInfo, fault: &maxfake.Fault{Stall: true}, err: portrait.ErrUpstreamTimeout},
		{name: "denied", chat: "10000001", opcode: maxfake.OpContactInfo, fault: &maxfake.Fault{Code: "access.denied"}, err: portrait.ErrPictureHidden},
		{name: "not found reply", chat: "10000001", opcode: maxfake.OpContactInfo, fault: &maxfake.Fault{Code: "user.not.found"}, err: portrait.ErrNoAccount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				r.srv.Fail(tc.opcode, *tc.fault)
			}
			rp, err := s.Picture(ctx(t), chatID(tc.chat), "")
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rp.Data, tc.want) || rp.ID == "" || rp.Unchanged {
				t.Fatalf("picture = %+v", rp)
			}
		})
	}
}

func TestUnchangedPictureIsNotDownloaded(t *testing.T) {
	r := pictureRig(t)
	for _, id := range []string{"10000001", "-10000000000001"} {
		first, err := r.s.Picture(ctx(t), chatID(id), "")
		if err != nil {
			t.Fatal(err)
		}
		n := r.srv.Downloads()
		again, err := r.s.Picture(ctx(t), chatID(id), first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Unchanged || again.ID != first.ID || again.Data != nil {
			t.Fatalf("%s: second lookup = %+v, want unchanged", id, again)
		}
		if r.srv.Downloads() != n {
			t.Fatalf("%s: an unchanged picture was downloaded", id)
		}
	}
	// A changed picture has a new id and is downloaded.
	first, _ := r.s.Picture(ctx(t), chatID("10000001"), "")
	r.srv.SetUserPicture(10000001, []byte("\xff\xd8\xff new"))
	rp, err := r.s.Picture(ctx(t), chatID("10000001"), first.ID)
	if err != nil || rp.Unchanged || rp.ID == first.ID || string(rp.Data) != "\xff\xd8\xff new" {
		t.Fatalf("changed picture = %+v, %v", rp, err)
	}
}

func TestPictureBeforeLogin(t *testing.T) {
	r := newRig(t, testAccount, false)
	s := r.open()
	if _, err := s.Picture(ctx(t), chatID("10000001"), ""); !errors.Is(err, portrait.ErrNotAuthorized) {
		t.Fatalf("Picture of an unlinked instance: %v", err)
	}
	if _, err := s.SetPicture(ctx(t), portrait.ChatID{}, ownPic, nil); !errors.Is(err, portrait.ErrNotAuthorized) {
		t.Fatalf("SetPicture of an unlinked instance: %v", err)
	}
}

func TestDownloadLimits(t *testing.T) {
	r := pictureRig(t, func(o *Options) { o.MaxPictureBytes = 4 })
	if _, err := r.s.Picture(ctx(t), chatID("10000001"), ""); !errors.Is(err, ErrPictureTooLarge) {
		t.Fatalf("err = %v, want ErrPictureTooLarge", err)
	}
	// Only the configured hosts, over https.
	for _, raw := range []string{
		"http://" + r.srv.Host() + "/i?r=x",
		"https://example.org/i?r=x",
		"https://user:pw@" + r.srv.Host() + "/i",
		"https://i.oneme.ru.example.org/i",
	} {
		if _, err := r.e.download(ctx(t), raw); !errors.Is(err, ErrRefusedURL) {
			t.Errorf("download(%s) = %v, want ErrRefusedURL", raw, err)
		}
		if _, err := r.e.upload(ctx(t), raw, ownPic); !errors.Is(err, ErrRefusedURL) {
			t.Errorf("upload(%s) = %v, want ErrRefusedURL", raw, err)
		}
	}
}

func TestDownloadErrorsHideTheAddress(t *testing.T) {
	r := pictureRig(t)
	raw := "https://" + r.srv.Host() + "/i?r=missing&sig=SECRET"
	_, err := r.e.download(ctx(t), raw)
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("err = %v; want an error without the signed address", err)
	}
}

// TestAllowedURL: the engine downloads pictures from MAX's hosts only.
func TestAllowedURL(t *testing.T) {
	e := New(newMemKV(), Options{})
	u, _ := url.Parse("https://i.oneme.ru/i?r=abc")
	if !e.allowedURL(u) {
		t.Fatal("the default hosts refuse i.oneme.ru")
	}
	for _, raw := range []string{"https://oneme.ru.evil.com/i", "http://i.oneme.ru/i", "https://i.oneme.ru:8443/i"} {
		if u, _ := url.Parse(raw); e.allowedURL(u) {
			t.Errorf("the default hosts accept %s", raw)
		}
	}
}

func TestSetOwnPicture(t *testing.T) {
	r := pictureRig(t)
	newPic := []byte("\xff\xd8\xff mine")
	id, err := r.s.SetPicture(ctx(t), portrait.ChatID{}, newPic, []byte("preview"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.srv.OwnPicture(), newPic) || id == "" {
		t.Fatalf("own picture on MAX = %q, id %q", r.srv.OwnPicture(), id)
	}
	rp, err := r.s.Picture(ctx(t), chatID("10000000"), id)
	if err != nil || !rp.Unchanged {
		t.Fatalf("own picture after setting it = %+v, %v; want unchanged with the returned id", rp, err)
	}
	// By the own id, too.
	if _, err := r.s.SetPicture(ctx(t), chatID("10000000"), newPic, nil); err != nil {
		t.Fatal(err)
	}
	// Not another user's.
	if _, err := r.s.SetPicture(ctx(t), chatID("10000001"), newPic, nil); !errors.Is(err, portrait.ErrUnsupported) {
		t.Fatalf("setting another user's picture: %v", err)
	}
	r.srv.Fail(maxfake.OpProfile, maxfake.Fault{Code: "too.many.requests"})
	if _, err := r.s.SetPicture(ctx(t), portrait.ChatID{}, newPic, nil); !errors.Is(err, portrait.ErrUpstreamRateLimit) {
		t.Fatalf("rate-limited profile change: %v", err)
	}
	r.srv.Fail(maxfake.OpPhotoUpload, maxfake.Fault{Code: "photo.upload.failed", Message: "nope"})
	_, err = r.s.SetPicture(ctx(t), portrait.ChatID{}, newPic, nil)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "photo.upload.failed") {
		t.Fatalf("refused upload: %v", err)
	}
}

func TestSetGroupPicture(t *testing.T) {
	r := pictureRig(t)
	newPic := []byte("\xff\xd8\xff group")
	id, err := r.s.SetPicture(ctx(t), chatID("-10000000000001"), newPic, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.srv.ChatPicture(-10000000000001), newPic) || id == "" {
		t.Fatalf("group picture on MAX = %q, id %q", r.srv.ChatPicture(-10000000000001), id)
	}
	if rp, err := r.s.Picture(ctx(t), chatID("-10000000000001"), id); err != nil || !rp.Unchanged {
		t.Fatalf("group picture after setting it = %+v, %v", rp, err)
	}
	tests := []struct {
		name  string
		chat  string
		fault *maxfake.Fault
		err   error
	}{
		{name: "not admin", chat: "-10000000000002", err: portrait.ErrNotGroupAdmin},
		{name: "only the owner", chat: "-10000000000003", err: portrait.ErrNotGroupAdmin},
		{name: "unknown group", chat: "-10000000000099", err: portrait.ErrGroupNotFound},
		{name: "rate limit", chat: "-10000000000001", fault: &maxfake.Fault{Code: "too.many.requests"}, err: portrait.ErrUpstreamRateLimit},
		{name: "refused for another reason", chat: "-10000000000001", fault: &maxfake.Fault{Code: "chat.update.unsupported", Message: "no"}, err: ErrRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				r.srv.Fail(maxfake.OpChatUpdate, *tc.fault)
			}
			_, err := r.s.SetPicture(ctx(t), chatID(tc.chat), newPic, nil)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
	r.srv.Fail(maxfake.OpChatUpdate, maxfake.Fault{Code: "chat.update.unsupported", Message: "no"})
	_, err = r.s.SetPicture(ctx(t), chatID("-10000000000001"), newPic, nil)
	if err == nil || !strings.Contains(err.Error(), "chat.update.unsupported") || !strings.Contains(err.Error(), "experimental") {
		t.Fatalf("a refusal must name MAX's code and say the call is experimental: %v", err)
	}
}

func TestPictureHonoursTheCallersContext(t *testing.T) {
	r := pictureRig(t)
	r.srv.Fail(maxfake.OpContactInfo, maxfake.Fault{Stall: true})
	c, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := r.s.Picture(c, chatID("10000001"), ""); err == nil {
		t.Fatal("a stalled lookup succeeded")
	}
	if time.Since(start) > time.Second {
		t.Fatal("Picture did not return when its context ended")
	}
}

func TestOwnPictureFromTheProfile(t *testing.T) {
	r := pictureRig(t)
	r.srv.OmitSelf(true)
	rp, err := r.s.Picture(ctx(t), chatID("10000000"), "")
	if err != nil || !bytes.Equal(rp.Data, ownPic) {
		t.Fatalf("own picture when MAX does not list the account = %+v, %v", rp, err)
	}
	if _, err := r.s.Picture(ctx(t), chatID("10000099"), ""); !errors.Is(err, portrait.ErrNoAccount) {
		t.Fatalf("another missing user: %v", err)
	}
}

func TestConcurrentRequestsGetTheirOwnReplies(t *testing.T) {
	r := pictureRig(t)
	const n = 20
	for i := range n {
		r.srv.AddUser(maxfake.User{ID: int64(20000000 + i), Name: "U", Picture: []byte(fmt.Sprintf("\xff\xd8\xff %d", i))})
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rp, err := r.s.Picture(ctx(t), chatID(fmt.Sprint(20000000+i)), "")
			if err == nil && string(rp.Data) != fmt.Sprintf("\xff\xd8\xff %d", i) {
				err = fmt.Errorf("user %d got %q", i, rp.Data)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestStrayFramesAreIgnored(t *testing.T) {
	r := pictureRig(t)
	for _, raw := range []string{
		`not json`,
		`{"ver":11,"cmd":9,"seq":1,"opcode":1}`,
		`{"ver":11,"cmd":1,"seq":987654,"opcode":32,"payload":{"contacts":[]}}`,
		`{"ver":11,"cmd":0,"seq":5,"opcode":131,"payload":{"contact":{"id":"bad"}}}`,
		`{"ver":11,"cmd":0,"seq":6,"opcode":128,"payload":{"message":{"text":"hi"}}}`,
	} {
		r.srv.Inject(raw)
	}
	rp, err := r.s.Picture(ctx(t), chatID("10000001"), "")
	if err != nil || !bytes.Equal(rp.Data, alicePic) {
		t.Fatalf("lookup after stray frames = %+v, %v", rp, err)
	}
	if r.s.State() != portrait.StateAuthorized || len(r.sink.Changes()) != 0 {
		t.Fatalf("state %s, %d changes after stray frames", r.s.State(), len(r.sink.Changes()))
	}
}
