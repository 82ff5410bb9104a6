package maxweb

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/maxweb/maxfake"
)

func TestLinkByQRCode(t *testing.T) {
	r := newRig(t, testAccount, false)
	r.srv.QRTTL = 300 * time.Millisecond
	s := r.open()
	if st := s.State(); st != portrait.StateNotAuthorized {
		t.Fatalf("state of an unlinked instance = %s, want notAuthorized", st)
	}
	if r.srv.Connections() != 0 {
		t.Fatal("an unlinked instance connected before a QR code was asked for")
	}
	q, err := s.QR(ctx(t))
	if err != nil || q.Kind != portrait.QRCode || !strings.HasPrefix(q.Code, "https://max.ru/:auth/") {
		t.Fatalf("QR = %+v, %v; want a code with MAX's login link", q, err)
	}
	// MAX rotates the code when it expires; QR shows the new one.
	first := q.Code
	eventually(t, func() bool {
		q, err := s.QR(ctx(t))
		return err == nil && q.Kind == portrait.QRCode && q.Code != first
	}, "a rotated QR code")
	if !r.srv.Scan() {
		t.Fatal("no live code to scan")
	}
	r.waitState(portrait.StateAuthorized)

	a, ok := r.storedAuth()
	if !ok || a.UserID != "10000000" || a.Phone != "79001234567" {
		t.Fatalf("stored login = %v, want the token of user 10000000", a)
	}
	if got := s.Account(); got.Wid != "10000000" || got.Phone != "79001234567" || got.DeviceID != a.DeviceID {
		t.Fatalf("Account = %+v", got)
	}
	if q, err := s.QR(ctx(t)); err != nil || q.Kind != portrait.QRAlreadyLogged {
		t.Fatalf("QR after linking = %+v, %v; want alreadyLogged", q, err)
	}
	if strings.Contains(r.logs.String(), a.Token) {
		t.Fatal("the login token appears in the logs")
	}
	if strings.Contains(r.logs.String(), first) {
		t.Fatal("a QR link appears in the logs")
	}
	if got := r.sink.States(); !slices.Equal(got, []portrait.State{portrait.StateNotAuthorized, portrait.StateAuthorized}) {
		t.Fatalf("state events = %v", got)
	}
	// The linking connection is the session's: no second login.
	if n := r.srv.Count(maxfake.OpLogin); n != 1 {
		t.Fatalf("%d logins, want 1 on the linking connection", n)
	}
}

func TestCloudPasswordIsAnError(t *testing.T) {
	acc := testAccount
	acc.CloudPassword = true
	r := newRig(t, acc, false)
	s := r.open()
	if q, err := s.QR(ctx(t)); err != nil || q.Kind != portrait.QRCode {
		t.Fatalf("QR = %+v, %v", q, err)
	}
	r.srv.Scan()
	eventually(t, func() bool {
		q, err := s.QR(ctx(t))
		return err == nil && q.Kind == portrait.QRError && strings.Contains(qrText(q), "cloud password") && strings.Contains(qrText(q), "switch it off")
	}, "a QR error about the cloud password")
	if st := s.State(); st != portrait.StateNotAuthorized {
		t.Fatalf("state = %s, want notAuthorized", st)
	}
	if _, ok := r.storedAuth(); ok {
		t.Fatal("a login was stored")
	}
	if n := r.srv.Count(maxfake.OpQRPassword); n != 0 {
		t.Fatalf("portrait sent the password opcode %d times", n)
	}
}

func TestStartsWithStoredToken(t *testing.T) {
	r := newRig(t, testAccount, true, func(o *Options) { o.AppVersion = "26.9.9" })
	s := r.open()
	if st := s.State(); st != portrait.StateStarting {
		t.Fatalf("first state = %s, want starting", st)
	}
	r.waitState(portrait.StateAuthorized)
	h := r.srv.Hellos()
	if len(h) != 1 {
		t.Fatalf("%d handshakes, want 1", len(h))
	}
	ua, _ := h[0]["userAgent"].(map[string]any)
	if ua["appVersion"] != "26.9.9" || ua["deviceType"] != "WEB" {
		t.Fatalf("handshake userAgent = %v", ua)
	}
	a, _ := r.storedAuth()
	if h[0]["deviceId"] != a.DeviceID {
		t.Fatalf("handshake device id %v, stored %s", h[0]["deviceId"], a.DeviceID)
	}
	if got := s.Account().Wid; got != "10000000" {
		t.Fatalf("Account().Wid = %q", got)
	}
}

func TestReconnectsAfterADrop(t *testing.T) {
	r := newRig(t, testAccount, true)
	s := r.open()
	r.waitState(portrait.StateAuthorized)
	r.srv.DropConnections()
	eventually(t, func() bool { return r.srv.Count(maxfake.OpLogin) >= 2 }, "a second login")
	r.waitState(portrait.StateAuthorized)
	want := []portrait.State{portrait.StateStarting, portrait.StateAuthorized, portrait.StateStarting, portrait.StateAuthorized}
	if got := r.sink.States(); !slices.Equal(got, want) {
		t.Fatalf("state events = %v, want %v", got, want)
	}
	if _, err := s.Picture(ctx(t), portrait.MustChatID(portrait.TypeMAX, "10000000"), ""); err != nil && !errors.Is(err, portrait.ErrPictureNotSet) {
		t.Fatalf("Picture after reconnecting: %v", err)
	}
}

func TestBacksOffWhileMAXRefusesConnections(t *testing.T) {
	r := newRig(t, testAccount, true)
	r.srv.RefuseConnections(true)
	s := r.open()
	time.Sleep(300 * time.Millisecond)
	if st := s.State(); st != portrait.StateStarting {
		t.Fatalf("state while MAX refuses = %s, want starting", st)
	}
	if _, err := s.Picture(ctx(t), portrait.MustChatID(portrait.TypeMAX, "10000001"), ""); !errors.Is(err, portrait.ErrStarting) {
		t.Fatalf("Picture while starting: %v, want ErrStarting", err)
	}
	r.srv.RefuseConnections(false)
	r.waitState(portrait.StateAuthorized)
}

func TestRevokedTokenUnlinks(t *testing.T) {
	r := newRig(t, testAccount, true)
	s := r.open()
	r.waitState(portrait.StateAuthorized)
	r.srv.RevokeTokens()
	r.waitState(portrait.StateNotAuthorized)
	if _, ok := r.storedAuth(); ok {
		t.Fatal("the revoked token is still stored")
	}
	if s.Account() != (portrait.Account{}) {
		t.Fatalf("Account after unlinking = %+v", s.Account())
	}
	if q, err := s.QR(ctx(t)); err != nil || q.Kind != portrait.QRCode {
		t.Fatalf("QR after unlinking = %+v, %v; want a new code", q, err)
	}
}

func TestLogoutForgetsTheToken(t *testing.T) {
	r := newRig(t, testAccount, true)
	s := r.open()
	r.waitState(portrait.StateAuthorized)
	before, _ := r.storedAuth()
	if err := s.Logout(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if st := s.State(); st != portrait.StateNotAuthorized {
		t.Fatalf("state after logout = %s", st)
	}
	if _, ok := r.storedAuth(); ok {
		t.Fatal("the token is still stored after logout")
	}
	if n := r.srv.Count(maxfake.OpLogout); n != 1 {
		t.Fatalf("MAX was told %d times, want 1", n)
	}
	eventually(t, func() bool { return r.srv.Connections() == 0 }, "the connection to close")
	q, err := s.QR(ctx(t))
	if err != nil || q.Kind != portrait.QRCode {
		t.Fatalf("QR after logout = %+v, %v", q, err)
	}
	// A new link is a new device.
	if h := r.srv.Hellos(); h[len(h)-1]["deviceId"] == before.DeviceID {
		t.Fatal("the linking after logout reuses the old device id")
	}
}

func TestRebootReconnects(t *testing.T) {
	r := newRig(t, testAccount, true)
	s := r.open()
	r.waitState(portrait.StateAuthorized)
	if err := s.Reboot(ctx(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return r.srv.Count(maxfake.OpLogin) == 2 }, "a new login after reboot")
	r.waitState(portrait.StateAuthorized)
	if got := r.sink.States(); len(got) < 4 || got[2] != portrait.StateStarting {
		t.Fatalf("state events = %v, want starting between the logins", got)
	}
}

func TestOutdatedAppVersionBlocks(t *testing.T) {
	r := newRig(t, testAccount, true, func(o *Options) { o.AppVersion = "25.1.0" })
	r.srv.MinAppVersion = "25.12.13"
	s := r.open()
	r.waitState(portrait.StateBlocked)
	q, err := s.QR(ctx(t))
	if err != nil || q.Kind != portrait.QRError || !strings.Contains(qrText(q), "25.1.0") {
		t.Fatalf("QR when blocked = %+v, %v; want an error naming the app version", q, err)
	}
	if _, err := s.Picture(ctx(t), portrait.MustChatID(portrait.TypeMAX, "10000001"), ""); !errors.Is(err, portrait.ErrNotAuthorized) {
		t.Fatalf("Picture when blocked: %v", err)
	}
}

func TestKeepAliveFailureReconnects(t *testing.T) {
	r := newRig(t, testAccount, true, func(o *Options) {
		o.PingInterval = 30 * time.Millisecond
		o.RequestTimeout = 150 * time.Millisecond
	})
	r.open()
	r.waitState(portrait.StateAuthorized)
	r.srv.Fail(maxfake.OpPing, maxfake.Fault{Stall: true})
	eventually(t, func() bool { return r.srv.Count(maxfake.OpLogin) >= 2 }, "a new login after a lost keep-alive")
	r.waitState(portrait.StateAuthorized)
}

func TestCloseStopsEverything(t *testing.T) {
	r := newRig(t, testAccount, true)
	s := r.open()
	r.waitState(portrait.StateAuthorized)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return r.srv.Connections() == 0 }, "the connection to close")
	n := len(r.sink.Changes())
	r.srv.AddUser(maxfake.User{ID: 10000001, Name: "B"})
	r.srv.SetUserPicture(10000001, []byte("x"))
	if _, err := s.Picture(context.Background(), portrait.MustChatID(portrait.TypeMAX, "10000001"), ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("Picture after Close: %v", err)
	}
	if _, err := s.QR(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("QR after Close: %v", err)
	}
	if len(r.sink.Changes()) != n {
		t.Fatal("an event reached the sink after Close")
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	// The instance may be opened again.
	r.open()
	r.waitState(portrait.StateAuthorized)
}

func TestOpenRefusesOtherTypesAndTwice(t *testing.T) {
	r := newRig(t, testAccount, false)
	if _, err := r.e.Open(ctx(t), portrait.Instance{ID: 2, Type: portrait.TypeWhatsApp}, nil); err == nil {
		t.Fatal("opened a WhatsApp instance")
	}
	r.open()
	if _, err := r.e.Open(ctx(t), portrait.Instance{ID: testInstance, Type: portrait.TypeMAX}, nil); err == nil {
		t.Fatal("opened the same instance twice")
	}
	if got := r.e.Types(); !slices.Equal(got, []portrait.InstanceType{portrait.TypeMAX}) {
		t.Fatalf("Types = %v", got)
	}
	if _, err := r.s.PairingCode(ctx(t), "79001234567"); !errors.Is(err, portrait.ErrUnsupported) {
		t.Fatalf("PairingCode: %v", err)
	}
}

// qrText is the text of a qr reply's error; "" when it has none.
func qrText(q portrait.QR) string {
	if q.Err == nil {
		return ""
	}
	return q.Err.Error()
}

func TestLinkingAttemptEnds(t *testing.T) {
	r := newRig(t, testAccount, false, func(o *Options) { o.LinkTimeout = 150 * time.Millisecond })
	s := r.open()
	if q, err := s.QR(ctx(t)); err != nil || q.Kind != portrait.QRCode {
		t.Fatalf("QR = %+v, %v", q, err)
	}
	eventually(t, func() bool { return r.srv.Connections() == 0 }, "the linking connection to close after LinkTimeout")
	q, err := s.QR(ctx(t))
	if err != nil || q.Kind != portrait.QRCode {
		t.Fatalf("QR after an expired attempt = %+v, %v; want a code of a new attempt", q, err)
	}
	if r.srv.Count(maxfake.OpHello) != 2 {
		t.Fatalf("%d handshakes, want 2 (one per attempt)", r.srv.Count(maxfake.OpHello))
	}
}
