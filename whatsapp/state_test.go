package whatsapp

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"
)

func TestOpenRefusesMAX(t *testing.T) {
	h := newHarness(t)
	_, err := h.e.Open(context.Background(), portrait.Instance{ID: 3100000001, Type: portrait.TypeMAX, Engine: Name}, h.sink)
	if err == nil || !strings.Contains(err.Error(), "WhatsApp accounts only") {
		t.Fatalf("Open(MAX) = %v, want a clear refusal", err)
	}
	if h.clientCount() != 0 {
		t.Fatal("a client was made for a MAX instance")
	}
}

func TestOpenTwiceFails(t *testing.T) {
	h := newHarness(t)
	h.open()
	if _, err := h.e.Open(context.Background(), portrait.Instance{ID: testInstance, Type: portrait.TypeWhatsApp}, h.sink); err == nil {
		t.Fatal("second Open of the same instance succeeded")
	}
}

func TestUnlinkedOpenDoesNotConnect(t *testing.T) {
	h := newHarness(t)
	s := h.open()
	waitStates(t, h.sink, portrait.StateNotAuthorized)
	time.Sleep(20 * time.Millisecond)
	if n := h.clientCount(); n != 0 {
		t.Fatalf("%d clients made for an unlinked instance before any QR", n)
	}
	if a := s.Account(); a != (portrait.Account{}) {
		t.Fatalf("Account = %+v, want zero", a)
	}
}

func TestConnectAuthorized(t *testing.T) {
	h := newHarness(t)
	s, c := h.authorized()
	waitStates(t, h.sink, portrait.StateStarting, portrait.StateAuthorized)
	if c.jid != ownJID {
		t.Fatalf("client made for %v, want %v", c.jid, ownJID)
	}
	want := portrait.Account{Wid: "79001234567@c.us", Phone: "79001234567", DeviceID: "79001234567:8@s.whatsapp.net"}
	if a := s.Account(); a != want {
		t.Fatalf("Account = %+v, want %+v", a, want)
	}
}

func TestInitialConnectFailureIsRetriedWithBackoff(t *testing.T) {
	h := newHarness(t)
	const failures = 4
	h.setPrepare(func(c *fakeClient) {
		c.connectErr = func(n int) error {
			if n <= failures {
				return errors.New("dial tcp: connect: connection refused")
			}
			return nil
		}
	})
	h.linked()
	s := h.open()
	c := h.client()
	waitFor(t, "authorized", func() bool { return s.State() == portrait.StateAuthorized })
	// Failed attempts keep the state starting: one change each way.
	waitStates(t, h.sink, portrait.StateStarting, portrait.StateAuthorized)

	c.mu.Lock()
	times := append([]time.Time(nil), c.connectTimes...)
	c.mu.Unlock()
	if len(times) != failures+1 {
		t.Fatalf("%d connection attempts, want %d", len(times), failures+1)
	}
	min := h.e.opts.ReconnectMin
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < min-time.Millisecond {
			t.Errorf("attempt %d came %v after the previous one, want at least ReconnectMin %v", i+1, gap, min)
		}
	}
	// Backoff grows: 4 waits of at least min, 1.5min, 3min, 6min (jitter ≥ 0.75).
	if total, want := times[len(times)-1].Sub(times[0]), min+min*3/2+min*3+min*6-4*time.Millisecond; total < want {
		t.Errorf("the retries took %v, want at least %v (exponential backoff)", total, want)
	}
}

func TestBackoffBounds(t *testing.T) {
	e := newEngine(newMemKV(), Options{ReconnectMin: time.Second, ReconnectMax: 2 * time.Minute})
	for n := 1; n < 40; n++ {
		d := e.backoff(n)
		if d < time.Second || d > 2*time.Minute {
			t.Fatalf("backoff(%d) = %v, outside [1s, 2m]", n, d)
		}
	}
	if d := e.backoff(30); d < 90*time.Second {
		t.Fatalf("backoff(30) = %v, want near the maximum", d)
	}
}

func TestDisconnectedReconnects(t *testing.T) {
	h := newHarness(t)
	s, c := h.authorized()
	c.drop()
	waitFor(t, "reconnection", func() bool { return c.connects() == 2 && s.State() == portrait.StateAuthorized })
	waitStates(t, h.sink, portrait.StateStarting, portrait.StateAuthorized, portrait.StateStarting, portrait.StateAuthorized)
}

// A server that logs the device in and drops it at once is retried with
// growing backoff, not in a tight loop.
func TestFlappingConnectionBacksOff(t *testing.T) {
	h := newHarness(t)
	h.setPrepare(func(c *fakeClient) {
		c.connectErr = func(int) error {
			go func() {
				time.Sleep(time.Millisecond)
				c.drop()
			}()
			return nil
		}
	})
	h.linked()
	h.open()
	c := h.client()
	waitFor(t, "five connections", func() bool { return c.connects() >= 5 })
	c.mu.Lock()
	times := append([]time.Time(nil), c.connectTimes[:5]...)
	c.mu.Unlock()
	min := h.e.opts.ReconnectMin
	if total, want := times[4].Sub(times[0]), min+min*3/2+min*3+min*6-4*time.Millisecond; total < want {
		t.Errorf("5 connections in %v, want at least %v (backoff)", total, want)
	}
}

// A connection lost after it was stable for a while is made again at once.
func TestStableConnectionLostReconnectsAtOnce(t *testing.T) {
	h := newHarness(t)
	h.e.opts.ReconnectMin = 100 * time.Millisecond
	h.e.opts.ReconnectMax = 100 * time.Millisecond
	s, c := h.authorized()
	time.Sleep(120 * time.Millisecond) // stable
	lost := time.Now()
	c.drop()
	waitFor(t, "reconnection", func() bool { return c.connects() == 2 && s.State() == portrait.StateAuthorized })
	c.mu.Lock()
	gap := c.connectTimes[1].Sub(lost)
	c.mu.Unlock()
	if gap > 50*time.Millisecond {
		t.Fatalf("reconnected %v after losing a stable connection, want at once", gap)
	}
}

func TestConnectedButNoLoginIsRetried(t *testing.T) {
	h := newHarness(t)
	h.e.loginTimeout = 20 * time.Millisecond
	h.setPrepare(func(c *fakeClient) {
		c.connectErr = func(n int) error {
			c.mu.Lock()
			c.autoLogin = n >= 2 // the first connection never logs in
			c.mu.Unlock()
			return nil
		}
	})
	h.linked()
	s := h.open()
	c := h.client()
	waitFor(t, "authorized", func() bool { return s.State() == portrait.StateAuthorized })
	if n := c.connects(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestLoggedOutEvent(t *testing.T) {
	h := newHarness(t)
	s, c := h.authorized()
	c.emit(&events.LoggedOut{OnConnect: false, Reason: events.ConnectFailureLoggedOut})
	waitStates(t, h.sink, portrait.StateStarting, portrait.StateAuthorized, portrait.StateNotAuthorized)
	waitFor(t, "the KV to forget the device", func() bool { return device(h.kv, testInstance) == "" })
	waitFor(t, "the old client to be disposed of", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.removedHandlers > 0
	})
	if a := s.Account(); a != (portrait.Account{}) {
		t.Fatalf("Account after logout = %+v", a)
	}
	// A new QR code can be shown: a new device links.
	qr := startQR(t, h, s)
	if qr.Kind != portrait.QRCode {
		t.Fatalf("QR after logout = %+v", qr)
	}
}

func TestDeviceGoneFromStore(t *testing.T) {
	h := newHarness(t)
	if err := h.e.saveJID(context.Background(), testInstance, ownJID); err != nil {
		t.Fatal(err)
	}
	// The KV names a device the store does not have (deleted by a logout).
	s := h.open()
	waitStates(t, h.sink, portrait.StateStarting, portrait.StateNotAuthorized)
	waitFor(t, "the KV to forget the device", func() bool { return device(h.kv, testInstance) == "" })
	if s.State() != portrait.StateNotAuthorized {
		t.Fatalf("state %s", s.State())
	}
}

func TestReboot(t *testing.T) {
	h := newHarness(t)
	s, c := h.authorized()
	if err := s.Reboot(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reconnection", func() bool { return c.connects() == 2 && s.State() == portrait.StateAuthorized })
	waitStates(t, h.sink, portrait.StateStarting, portrait.StateAuthorized, portrait.StateStarting, portrait.StateAuthorized)
	c.mu.Lock()
	d := c.disconnects
	c.mu.Unlock()
	if d == 0 {
		t.Fatal("Reboot did not disconnect")
	}
}

func TestRebootUnlinked(t *testing.T) {
	h := newHarness(t)
	s := h.open()
	startQR(t, h, s)
	c := h.clientAt(0)
	if err := s.Reboot(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitStates(t, h.sink, portrait.StateNotAuthorized, portrait.StateStarting, portrait.StateNotAuthorized)
	waitFor(t, "the linking client to be dropped", func() bool { return !c.IsConnected() })
}

func TestTemporaryBanBlocksThenRetries(t *testing.T) {
	h := newHarness(t)
	s, c := h.authorized()
	// whatsmeow: a 402 connect failure, an expected disconnect (no
	// events.Disconnected) and the ban event.
	c.set(func(c *fakeClient) { c.connected, c.loggedIn = false, false })
	c.emit(&events.TemporaryBan{Code: events.TempBanSentToTooManyPeople, Expire: 60 * time.Millisecond})
	if s.State() != portrait.StateBlocked {
		t.Fatalf("state after a ban = %s", s.State())
	}
	if _, err := s.Picture(context.Background(), portrait.MustChatID(portrait.TypeWhatsApp, "79001230001@c.us"), ""); !errors.Is(err, portrait.ErrNotAuthorized) {
		t.Fatalf("Picture while blocked = %v", err)
	}
	if q, _ := s.QR(context.Background()); q.Kind != portrait.QRError || !strings.Contains(errText(q), "blocked") {
		t.Fatalf("QR while blocked = %+v", q)
	}
	waitFor(t, "the retry after the ban", func() bool { return s.State() == portrait.StateAuthorized })
	if n := c.connects(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	waitStates(t, h.sink, portrait.StateStarting, portrait.StateAuthorized, portrait.StateBlocked, portrait.StateAuthorized)
}

func TestClientOutdatedBlocks(t *testing.T) {
	h := newHarness(t)
	s, c := h.authorized()
	c.set(func(c *fakeClient) { c.connected, c.loggedIn = false, false })
	c.emit(&events.ClientOutdated{})
	if s.State() != portrait.StateBlocked {
		t.Fatalf("state = %s, want blocked", s.State())
	}
}

func TestStreamReplacedWaits(t *testing.T) {
	h := newHarness(t)
	h.e.opts.ReconnectMax = 80 * time.Millisecond
	s, c := h.authorized()
	c.set(func(c *fakeClient) { c.connected, c.loggedIn = false, false })
	replaced := time.Now()
	c.emit(&events.StreamReplaced{})
	if s.State() != portrait.StateStarting {
		t.Fatalf("state = %s, want starting", s.State())
	}
	waitFor(t, "reconnection", func() bool { return s.State() == portrait.StateAuthorized })
	c.mu.Lock()
	last := c.connectTimes[len(c.connectTimes)-1]
	c.mu.Unlock()
	if gap := last.Sub(replaced); gap < 75*time.Millisecond {
		t.Fatalf("reconnected %v after being replaced, want ReconnectMax", gap)
	}
}

func TestKeepAliveFailureReconnects(t *testing.T) {
	h := newHarness(t)
	s, c := h.authorized()
	c.emit(&events.KeepAliveTimeout{ErrorCount: 1, LastSuccess: time.Now()})
	if s.State() != portrait.StateAuthorized {
		t.Fatalf("one keep-alive time-out changed the state to %s", s.State())
	}
	c.emit(&events.KeepAliveTimeout{ErrorCount: 9, LastSuccess: time.Now().Add(-whatsmeow.KeepAliveMaxFailTime - time.Second)})
	waitFor(t, "reconnection", func() bool { return c.connects() == 2 && s.State() == portrait.StateAuthorized })
}

func TestEventsOfOldClientsAreIgnored(t *testing.T) {
	h := newHarness(t)
	s, c := h.authorized()
	if err := s.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.emit(&events.Connected{})
	c.emit(&events.Picture{JID: ownJID.ToNonAD()})
	time.Sleep(20 * time.Millisecond)
	if s.State() != portrait.StateNotAuthorized || len(h.sink.changeList()) != 0 {
		t.Fatalf("state %s, changes %v after events of a logged-out client", s.State(), h.sink.changeList())
	}
}

func TestLogout(t *testing.T) {
	h := newHarness(t)
	s, c := h.authorized()
	if err := s.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	logouts, deleted := c.logouts, c.deleted
	c.mu.Unlock()
	if logouts != 1 || deleted != 1 {
		t.Fatalf("Logout: %d logout requests, %d deletions; want 1, 1", logouts, deleted)
	}
	if device(h.kv, testInstance) != "" {
		t.Fatal("the KV still names the device")
	}
	waitStates(t, h.sink, portrait.StateStarting, portrait.StateAuthorized, portrait.StateNotAuthorized)
	if q := startQR(t, h, s); q.Kind != portrait.QRCode {
		t.Fatalf("QR after logout = %+v", q)
	}
}

func TestLogoutWhenWhatsAppDoesNotConfirm(t *testing.T) {
	h := newHarness(t)
	s, c := h.authorized()
	c.set(func(c *fakeClient) { c.logoutErr = whatsmeow.ErrIQTimedOut })
	if err := s.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	deleted := c.deleted
	c.mu.Unlock()
	if deleted != 1 {
		t.Fatalf("the device was deleted %d times, want 1 (locally)", deleted)
	}
	if s.State() != portrait.StateNotAuthorized || device(h.kv, testInstance) != "" {
		t.Fatal("logout did not unlink locally")
	}
}

func TestLogoutWhileStarting(t *testing.T) {
	h := newHarness(t)
	block := make(chan struct{})
	defer close(block)
	h.setPrepare(func(c *fakeClient) { c.connectBlock = block })
	h.linked()
	s := h.open()
	c := h.client()
	waitFor(t, "a connection attempt", func() bool { return c.connects() == 1 })
	if err := s.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	deleted := c.deleted
	c.mu.Unlock()
	if deleted != 1 || device(h.kv, testInstance) != "" || s.State() != portrait.StateNotAuthorized {
		t.Fatalf("deleted %d, kv %q, state %s", deleted, device(h.kv, testInstance), s.State())
	}
}

func TestCloseEndsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	h := newHarness(t)
	// One authorized, one unlinked showing a QR code, one that cannot
	// connect, one stuck connecting.
	h.linked()
	s1 := h.open()
	waitFor(t, "authorized", func() bool { return s1.State() == portrait.StateAuthorized })

	open := func(id portrait.InstanceID) *session {
		s, err := h.e.Open(context.Background(), portrait.Instance{ID: id, Type: portrait.TypeWhatsApp}, h.sink)
		if err != nil {
			t.Fatal(err)
		}
		return s.(*session)
	}
	s2 := open(testInstance + 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = s2.QR(context.Background())
	}()
	c2 := h.client() // s1's
	if !c2.jid.IsEmpty() {
		c2 = h.client()
	}
	waitFor(t, "the QR channel", func() bool {
		c2.mu.Lock()
		defer c2.mu.Unlock()
		return c2.qr != nil
	})
	c2.qr <- whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@x"}
	<-done

	block := make(chan struct{})
	defer close(block)
	h.setPrepare(func(c *fakeClient) {
		c.connectErr = func(int) error { return errors.New("network unreachable") }
	})
	_ = h.e.saveJID(context.Background(), testInstance+2, ownJID)
	open(testInstance + 2)
	h.setPrepare(func(c *fakeClient) { c.connectBlock = block })
	_ = h.e.saveJID(context.Background(), testInstance+3, ownJID)
	open(testInstance + 3)
	time.Sleep(30 * time.Millisecond)

	if err := h.e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.Open(context.Background(), portrait.Instance{ID: testInstance + 9, Type: portrait.TypeWhatsApp}, h.sink); !errors.Is(err, ErrClosed) {
		t.Fatalf("Open after Close = %v", err)
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	if q, err := s1.QR(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("QR after Close = %+v, %v", q, err)
	}
}
