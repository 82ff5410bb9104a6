package maxbot

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/maxbot/botfake"
)

func TestTokenStates(t *testing.T) {
	r := newRig(t, false)
	s := r.open()
	if st := s.State(); st != portrait.StateNotAuthorized {
		t.Fatalf("state without a token = %s", st)
	}
	q, err := s.QR(ctx(t))
	if err != nil || q.Kind != portrait.QRError || !strings.Contains(qrText(q), "bot token") {
		t.Fatalf("QR without a token = %+v, %v", q, err)
	}
	if _, err := s.Picture(ctx(t), chatID("-10000000000001"), ""); !errors.Is(err, portrait.ErrNotAuthorized) {
		t.Fatalf("Picture without a token: %v", err)
	}
	if err := r.e.SetToken(ctx(t), testInstance, "wrong-token"); err != nil {
		t.Fatal(err)
	}
	r.waitState(portrait.StateNotAuthorized)
	eventually(t, func() bool {
		q, _ := s.QR(ctx(t))
		return strings.Contains(qrText(q), "refused the bot token")
	}, "QR to say the token was refused")
	if err := r.e.SetToken(ctx(t), testInstance, " "+testToken+"\n"); err != nil {
		t.Fatal(err)
	}
	r.waitState(portrait.StateAuthorized)
	if got := s.Account(); got.Wid != "229229229" {
		t.Fatalf("Account = %+v, want the bot's id", got)
	}
	if q, err := s.QR(ctx(t)); err != nil || q.Kind != portrait.QRAlreadyLogged {
		t.Fatalf("QR with a valid token = %+v, %v", q, err)
	}
	if b, _ := r.kv.Get(ctx(t), testInstance, KeyToken); string(b) != testToken {
		t.Fatalf("stored token = %q", b)
	}
	if strings.Contains(r.logs.String(), testToken) || strings.Contains(r.logs.String(), "wrong-token") {
		t.Fatal("a token appears in the logs")
	}
	if r.srv.QueryTokens() != 0 {
		t.Fatal("the token was sent in an address")
	}
	want := []portrait.State{portrait.StateNotAuthorized, portrait.StateStarting, portrait.StateNotAuthorized, portrait.StateStarting, portrait.StateAuthorized}
	eventually(t, func() bool { return slices.Equal(r.sink.States(), want) }, "the state events "+stateList(want))
}

func stateList(s []portrait.State) string {
	var b strings.Builder
	for _, x := range s {
		b.WriteString(string(x) + " ")
	}
	return b.String()
}

func TestSetTokenRefusesBadValues(t *testing.T) {
	kv := newMemKV()
	for _, bad := range []string{"a b", "tok\x00en", "тoken", strings.Repeat("a", 600)} {
		if err := SetToken(ctx(t), kv, testInstance, bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("SetToken(%q) = %v", bad, err)
		}
	}
	if err := SetToken(ctx(t), kv, testInstance, "ok"); err != nil {
		t.Fatal(err)
	}
	if err := SetToken(ctx(t), kv, testInstance, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx(t), testInstance, KeyToken); !errors.Is(err, portrait.ErrNotFound) {
		t.Fatal("an empty token did not forget the stored one")
	}
}

// brokenKV is a store that fails every call, as a full disk would.
type brokenKV struct{}

var errDisk = errors.New("disk I/O error")

func (brokenKV) Get(context.Context, portrait.InstanceID, string) ([]byte, error) {
	return nil, errDisk
}
func (brokenKV) Put(context.Context, portrait.InstanceID, string, []byte) error { return errDisk }
func (brokenKV) DeleteKey(context.Context, portrait.InstanceID, string) error   { return errDisk }

// TestSetTokenStorageFailure: a token that could not be stored is the
// server's failure (ErrStorage), not a refused token.
func TestSetTokenStorageFailure(t *testing.T) {
	for _, token := range []string{"ok", ""} {
		err := SetToken(ctx(t), brokenKV{}, testInstance, token)
		if !errors.Is(err, portrait.ErrStorage) || !errors.Is(err, errDisk) || errors.Is(err, ErrBadToken) {
			t.Errorf("SetToken(%q) on a failing store = %v; want ErrStorage wrapping the store's error", token, err)
		}
	}
}

func TestStartsWithStoredTokenAndRetries(t *testing.T) {
	r := newRig(t, true)
	r.srv.Fail("GET /me", botfake.Fault{Status: 502, Code: "internal"}, botfake.Fault{Status: 503, Code: "internal"})
	s := r.open()
	if st := s.State(); st != portrait.StateStarting {
		t.Fatalf("first state = %s", st)
	}
	r.waitState(portrait.StateAuthorized)
	if n := r.srv.Requests("GET /me"); n != 3 {
		t.Fatalf("GET /me %d times, want 3 (two failures, then success)", n)
	}
}

func TestRevokedTokenAndLogout(t *testing.T) {
	r := newRig(t, true)
	s := r.open()
	r.waitState(portrait.StateAuthorized)
	r.srv.SetToken("another")
	if _, err := s.Picture(ctx(t), chatID("-10000000000001"), ""); !errors.Is(err, portrait.ErrNotAuthorized) {
		t.Fatalf("Picture with a revoked token: %v", err)
	}
	r.waitState(portrait.StateNotAuthorized)
	r.srv.SetToken(testToken)
	if err := s.Reboot(ctx(t)); err != nil {
		t.Fatal(err)
	}
	r.waitState(portrait.StateAuthorized)
	if err := s.Logout(ctx(t)); err != nil {
		t.Fatal(err)
	}
	r.waitState(portrait.StateNotAuthorized)
	if _, err := r.kv.Get(ctx(t), testInstance, KeyToken); !errors.Is(err, portrait.ErrNotFound) {
		t.Fatal("Logout did not forget the token")
	}
	if s.Account() != (portrait.Account{}) {
		t.Fatal("Account after logout is not empty")
	}
}

func TestPictureOutcomes(t *testing.T) {
	r := newRig(t, true)
	s := r.open()
	r.waitState(portrait.StateAuthorized)
	tests := []struct {
		name  string
		chat  string
		route string
		fault *botfake.Fault
		want  []byte
		err   error
	}{
		{name: "group icon", chat: "-10000000000001", want: teamPic},
		{name: "the bot itself", chat: "229229229", want: botPic},
		{name: "dialog partner", chat: "10000001", want: alicePic},
		{name: "member of an administered chat", chat: "10000002", want: bobPic},
		{name: "group without icon", chat: "-10000000000002", err: portrait.ErrPictureNotSet},
		{name: "visible user without picture", chat: "10000003", err: portrait.ErrPictureNotSet},
		{name: "member of a chat the bot does not administer", chat: "10000004", err: ErrNotVisible},
		{name: "user the bot never met", chat: "10000005", err: portrait.ErrUnsupported},
		{name: "group the bot is not in", chat: "-10000000000004", err: ErrNotVisible},
		{name: "rate limit", chat: "-10000000000001", route: "GET /chats/{id}", fault: &botfake.Fault{Status: 429, Code: "too.many.requests"}, err: portrait.ErrUpstreamRateLimit},
		{name: "forbidden", chat: "-10000000000001", route: "GET /chats/{id}", fault: &botfake.Fault{Status: 403, Code: "chat.denied"}, err: ErrNotVisible},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				r.srv.Fail(tc.route, *tc.fault)
			}
			rp, err := s.Picture(ctx(t), chatID(tc.chat), "")
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				if errors.Is(err, portrait.ErrUnsupported) && errors.Is(err, portrait.ErrPictureNotSet) {
					t.Fatal("an invisible user is reported as having no picture")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rp.Data, tc.want) || rp.ID == "" {
				t.Fatalf("picture = %+v", rp)
			}
		})
	}
}

func TestFoundUserIsRemembered(t *testing.T) {
	r := newRig(t, true)
	s := r.open()
	r.waitState(portrait.StateAuthorized)
	first, err := s.Picture(ctx(t), chatID("10000002"), "")
	if err != nil {
		t.Fatal(err)
	}
	lists, dl := r.srv.Requests("GET /chats"), r.srv.Downloads()
	again, err := s.Picture(ctx(t), chatID("10000002"), first.ID)
	if err != nil || !again.Unchanged {
		t.Fatalf("second lookup = %+v, %v; want unchanged", again, err)
	}
	if r.srv.Requests("GET /chats") != lists {
		t.Fatal("the second lookup listed the chats again instead of asking where the user was seen")
	}
	if r.srv.Downloads() != dl {
		t.Fatal("an unchanged picture was downloaded")
	}
}

func TestGroupIconChangeIsSeenOnTheNextLookup(t *testing.T) {
	r := newRig(t, true)
	s := r.open()
	r.waitState(portrait.StateAuthorized)
	first, _ := s.Picture(ctx(t), chatID("-10000000000001"), "")
	r.srv.SetChatPicture(-10000000000001, []byte("\xff\xd8\xff new"))
	rp, err := s.Picture(ctx(t), chatID("-10000000000001"), first.ID)
	if err != nil || rp.Unchanged || string(rp.Data) != "\xff\xd8\xff new" {
		t.Fatalf("after the change = %+v, %v", rp, err)
	}
	if r.sink.changes != 0 {
		t.Fatal("the bot engine reported a picture change: the Bot API has no such event")
	}
}

func TestSetGroupPicture(t *testing.T) {
	r := newRig(t, true)
	s := r.open()
	r.waitState(portrait.StateAuthorized)
	pic := []byte("\xff\xd8\xff set")
	r.srv.NotReady(2)
	id, err := s.SetPicture(ctx(t), chatID("-10000000000001"), pic, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.srv.ChatPicture(-10000000000001), pic) || id == "" {
		t.Fatalf("icon on MAX = %q, id %q", r.srv.ChatPicture(-10000000000001), id)
	}
	if n := r.srv.Requests("PATCH /chats/{id}"); n != 3 {
		t.Fatalf("PATCH %d times, want 3 (two not ready)", n)
	}
	if rp, err := s.Picture(ctx(t), chatID("-10000000000001"), id); err != nil || !rp.Unchanged {
		t.Fatalf("icon after setting it = %+v, %v", rp, err)
	}
	tests := []struct {
		name   string
		chat   string
		setup  func()
		err    error
		reason string
	}{
		{name: "not admin", chat: "-10000000000002", err: portrait.ErrNotGroupAdmin, reason: "not an admin"},
		{name: "admin without the right", chat: "-10000000000003", err: portrait.ErrNotGroupAdmin, reason: "change_chat_info"},
		{name: "not a member", chat: "-10000000000004", err: portrait.ErrGroupNotFound},
		{name: "never ready", chat: "-10000000000001", setup: func() { r.srv.NotReady(10) }, err: ErrRefused, reason: "attachment.not.ready"},
		{name: "rate limit", chat: "-10000000000001", setup: func() { r.srv.Fail("POST /uploads", botfake.Fault{Status: 429, Code: "too.many.requests"}) }, err: portrait.ErrUpstreamRateLimit},
		{name: "own picture", chat: "229229229", err: portrait.ErrUnsupported, reason: "own picture"},
		{name: "a user's", chat: "10000001", err: portrait.ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			_, err := s.SetPicture(ctx(t), chatID(tc.chat), pic, nil)
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err = %v, want %v with %q", err, tc.err, tc.reason)
			}
		})
	}
	r.srv.NotReady(0)
	if _, err := s.SetPicture(ctx(t), portrait.ChatID{}, pic, nil); !errors.Is(err, portrait.ErrUnsupported) {
		t.Fatalf("own picture: %v", err)
	}
}

func TestRateLimitIsRespected(t *testing.T) {
	r := newRig(t, true, func(o *Options) { o.RateLimit = 30 })
	s := r.open()
	r.waitState(portrait.StateAuthorized)
	time.Sleep(time.Second) // the fake's window forgets the check
	var wg sync.WaitGroup
	errs := make(chan error, 45)
	start := time.Now()
	for range 45 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Picture(context.Background(), chatID("-10000000000002"), "")
			if !errors.Is(err, portrait.ErrPictureNotSet) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a lookup failed (the fake allows 30 a second): %v", err)
	}
	if d := time.Since(start); d < 1300*time.Millisecond {
		t.Fatalf("45 requests took %v; at 30 a second they need about 1.5 s", d)
	}
}

func TestCloseAndOpen(t *testing.T) {
	r := newRig(t, true)
	s := r.open()
	r.waitState(portrait.StateAuthorized)
	if _, err := r.e.Open(ctx(t), portrait.Instance{ID: testInstance, Type: portrait.TypeMAX}, nil); err == nil {
		t.Fatal("opened twice")
	}
	if _, err := r.e.Open(ctx(t), portrait.Instance{ID: 7, Type: portrait.TypeWhatsApp}, nil); err == nil {
		t.Fatal("opened a WhatsApp instance")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Picture(ctx(t), chatID("-10000000000001"), ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("Picture after Close: %v", err)
	}
	if _, err := s.PairingCode(ctx(t), "1"); !errors.Is(err, portrait.ErrUnsupported) {
		t.Fatalf("PairingCode: %v", err)
	}
	r.open()
	r.waitState(portrait.StateAuthorized)
	if got := r.e.Types(); !slices.Equal(got, []portrait.InstanceType{portrait.TypeMAX}) {
		t.Fatalf("Types = %v", got)
	}
}

func TestDownloadAndUploadHosts(t *testing.T) {
	r := newRig(t, true, func(o *Options) { o.MaxPictureBytes = 4 })
	s := r.open()
	r.waitState(portrait.StateAuthorized)
	if _, err := s.Picture(ctx(t), chatID("-10000000000001"), ""); !errors.Is(err, ErrPictureTooLarge) {
		t.Fatalf("a large picture: %v", err)
	}
	for _, raw := range []string{"http://" + r.srv.Host() + "/pic/x", "https://example.org/pic/x", "https://u:p@" + r.srv.Host() + "/x"} {
		if _, err := r.e.download(ctx(t), raw); !errors.Is(err, ErrRefusedURL) {
			t.Errorf("download(%s) = %v", raw, err)
		}
		if _, err := s.upload(ctx(t), testToken, raw, []byte("x")); !errors.Is(err, ErrRefusedURL) {
			t.Errorf("upload(%s) = %v", raw, err)
		}
	}
}

func TestUntrustedCertificateFails(t *testing.T) {
	r := newRig(t, true, func(o *Options) { o.RootCAs = nil }) // the system pool lacks the test CA
	s := r.open()
	time.Sleep(100 * time.Millisecond)
	if st := s.State(); st != portrait.StateStarting {
		t.Fatalf("state with an untrusted certificate = %s, want starting (retrying)", st)
	}
	if _, err := RootCAsFromPEM([]byte("not a certificate")); err == nil {
		t.Fatal("RootCAsFromPEM accepted garbage")
	}
}

// qrText is the text of a qr reply's error; "" when it has none.
func qrText(q portrait.QR) string {
	if q.Err == nil {
		return ""
	}
	return q.Err.Error()
}
