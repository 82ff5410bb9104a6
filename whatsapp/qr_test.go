package whatsapp

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"
)

// linkingClient waits for the next client made for a new device, with its
// QR channel ready.
func linkingClient(t *testing.T, h *harness) *fakeClient {
	t.Helper()
	for {
		c := h.client()
		if !c.jid.IsEmpty() {
			continue
		}
		waitFor(t, "the QR channel", func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.qr != nil && len(c.connectTimes) > 0
		})
		return c
	}
}

func code(s string) whatsmeow.QRChannelItem {
	return whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: s, Timeout: 20 * time.Second}
}

// startQR asks s for a QR code, playing WhatsApp's first code.
func startQR(t *testing.T, h *harness, s *session) portrait.QR {
	t.Helper()
	type result struct {
		qr  portrait.QR
		err error
	}
	ch := make(chan result, 1)
	go func() {
		q, err := s.QR(context.Background())
		ch <- result{q, err}
	}()
	c := linkingClient(t, h)
	c.qr <- code("2@first")
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.qr
}

func TestQRRotationAndSuccess(t *testing.T) {
	h := newHarness(t)
	s := h.open()
	q := startQR(t, h, s)
	if q != (portrait.QR{Kind: portrait.QRCode, Code: "2@first"}) {
		t.Fatalf("first QR = %+v", q)
	}
	c := h.clientAt(0)
	// WhatsApp rotates the code: QR returns the latest.
	c.qr <- code("2@second")
	c.qr <- code("2@third")
	waitFor(t, "the latest code", func() bool {
		q, err := s.QR(context.Background())
		return err == nil && q.Code == "2@third"
	})
	if n := h.clientCount(); n != 1 {
		t.Fatalf("%d clients for one linking attempt", n)
	}

	// The phone scans it: whatsmeow emits PairSuccess, then the channel's
	// success, then reconnects (515) and logs in.
	c.emit(&events.PairSuccess{ID: ownJID, LID: ownLID, Platform: "android"})
	c.qr <- whatsmeow.QRChannelSuccess
	close(c.qr)
	if s.State() != portrait.StateAuthorized {
		t.Fatalf("state after PairSuccess = %s", s.State())
	}
	if got := device(h.kv, testInstance); got != ownJID.String() {
		t.Fatalf("KV device = %q, want %q", got, ownJID.String())
	}
	c.login()
	if q, _ := s.QR(context.Background()); q != (portrait.QR{Kind: portrait.QRAlreadyLogged}) {
		t.Fatalf("QR when linked = %+v", q)
	}
	if a := s.Account(); a.Wid != "79001234567@c.us" || a.DeviceID != "79001234567:8@s.whatsapp.net" {
		t.Fatalf("Account = %+v", a)
	}
	// The linking client stays the session's client.
	time.Sleep(20 * time.Millisecond)
	if !c.IsConnected() || h.clientCount() != 1 {
		t.Fatalf("connected %v, %d clients", c.IsConnected(), h.clientCount())
	}
	waitStates(t, h.sink, portrait.StateNotAuthorized, portrait.StateAuthorized)
}

func TestQRExpiredStartsNewAttempt(t *testing.T) {
	h := newHarness(t)
	s := h.open()
	startQR(t, h, s)
	c := h.clientAt(0)
	// The codes run out: whatsmeow sends "timeout", closes the channel and
	// disconnects.
	c.qr <- whatsmeow.QRChannelTimeout
	close(c.qr)
	waitFor(t, "the attempt to end", func() bool { return !c.IsConnected() })
	q := startQR(t, h, s)
	if q.Kind != portrait.QRCode || h.clientCount() != 2 {
		t.Fatalf("QR after expiry = %+v with %d clients", q, h.clientCount())
	}
	if c2 := h.clientAt(1); c2 == c {
		t.Fatal("the expired client was reused")
	}
}

func TestQRWhenStarting(t *testing.T) {
	h := newHarness(t)
	block := make(chan struct{})
	defer close(block)
	h.setPrepare(func(c *fakeClient) { c.connectBlock = block })
	h.linked()
	s := h.open()
	q, err := s.QR(context.Background())
	if err != nil || q != (portrait.QR{Kind: portrait.QRError, Err: portrait.ErrStarting}) {
		t.Fatalf("QR while starting = %+v, %v", q, err)
	}
	if _, err := s.PairingCode(context.Background(), "79001234567"); !errors.Is(err, portrait.ErrStarting) {
		t.Fatalf("PairingCode while starting = %v", err)
	}
}

func TestQRConnectFailure(t *testing.T) {
	h := newHarness(t)
	h.e.opts.ReconnectMin = time.Hour // a failed attempt is shown, not retried, for this long
	h.setPrepare(func(c *fakeClient) {
		c.connectErr = func(int) error { return errors.New("dial tcp: lookup web.whatsapp.com: no such host") }
	})
	s := h.open()
	for range 3 {
		q, err := s.QR(context.Background())
		if err != nil || q.Kind != portrait.QRError || !strings.Contains(errText(q), "cannot connect to WhatsApp") {
			t.Fatalf("QR = %+v, %v", q, err)
		}
	}
	if n := h.clientCount(); n != 1 {
		t.Fatalf("%d linking attempts, want 1 (failures are not retried at once)", n)
	}
}

func TestQRPairError(t *testing.T) {
	h := newHarness(t)
	s := h.open()
	startQR(t, h, s)
	c := h.clientAt(0)
	c.qr <- whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventError, Error: whatsmeow.ErrPairInvalidDeviceSignature}
	close(c.qr)
	waitFor(t, "the error", func() bool {
		q, _ := s.QR(context.Background())
		return q.Kind == portrait.QRError && strings.Contains(errText(q), "invalid device signature")
	})
}

func TestQRContextEnds(t *testing.T) {
	h := newHarness(t)
	s := h.open()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	// WhatsApp sends no code in time.
	if _, err := s.QR(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("QR = %v, want the deadline", err)
	}
	// The attempt goes on: the next call gets its code.
	if q := func() portrait.QR {
		c := h.clientAt(0)
		waitFor(t, "the QR channel", func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.qr != nil
		})
		c.qr <- code("2@late")
		q, err := s.QR(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return q
	}(); q.Code != "2@late" {
		t.Fatalf("QR = %+v", q)
	}
}

func TestPairingCode(t *testing.T) {
	h := newHarness(t)
	var gotPhone, gotName string
	var gotShow bool
	var gotType whatsmeow.PairClientType
	h.setPrepare(func(c *fakeClient) {
		c.pairFn = func(phone string, show bool, typ whatsmeow.PairClientType, name string) (string, error) {
			gotPhone, gotShow, gotType, gotName = phone, show, typ, name
			return "WXYZ-1234", nil
		}
	})
	s := h.open()
	type result struct {
		code string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		code, err := s.PairingCode(context.Background(), "79001234567")
		ch <- result{code, err}
	}()
	c := linkingClient(t, h)
	c.qr <- code("2@first") // the linking connection is up
	r := <-ch
	if r.err != nil || r.code != "WXYZ-1234" {
		t.Fatalf("PairingCode = %q, %v", r.code, r.err)
	}
	if gotPhone != "79001234567" || !gotShow || gotType != whatsmeow.PairClientChrome || gotName != "Chrome (Linux)" {
		t.Fatalf("PairPhone(%q, %v, %v, %q)", gotPhone, gotShow, gotType, gotName)
	}
	// The code is entered on the phone.
	c.emit(&events.PairSuccess{ID: ownJID})
	if _, err := s.PairingCode(context.Background(), "79001234567"); !errors.Is(err, portrait.ErrAlreadyLinked) {
		t.Fatalf("PairingCode when linked = %v", err)
	}
}

func TestPairingCodeRateLimited(t *testing.T) {
	h := newHarness(t)
	h.setPrepare(func(c *fakeClient) {
		c.pairFn = func(string, bool, whatsmeow.PairClientType, string) (string, error) {
			return "", whatsmeow.ErrIQRateOverLimit
		}
	})
	s := h.open()
	ch := make(chan error, 1)
	go func() {
		_, err := s.PairingCode(context.Background(), "79001234567")
		ch <- err
	}()
	linkingClient(t, h).qr <- code("2@first")
	if err := <-ch; !errors.Is(err, portrait.ErrUpstreamRateLimit) {
		t.Fatalf("PairingCode = %v", err)
	}
}

func TestQRWhatsAppSlow(t *testing.T) {
	h := newHarness(t)
	h.e.opts.RequestTimeout = 20 * time.Millisecond
	s := h.open()
	q, err := s.QR(context.Background())
	if err != nil || q.Kind != portrait.QRError || !strings.Contains(errText(q), "not sent a QR code yet") {
		t.Fatalf("QR = %+v, %v", q, err)
	}
	if _, err := s.PairingCode(context.Background(), "79001234567"); !errors.Is(err, portrait.ErrUpstreamTimeout) {
		t.Fatalf("PairingCode = %v", err)
	}
	if n := h.clientCount(); n != 1 {
		t.Fatalf("%d linking attempts, want the one still running", n)
	}
}

// errText is the text of a QR reply's error; "" when it has none.
func errText(q portrait.QR) string {
	if q.Err == nil {
		return ""
	}
	return q.Err.Error()
}
