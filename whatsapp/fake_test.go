package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/memkv"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// fakeClient stands in for *whatsmeow.Client at the seam. It returns
// whatsmeow's real error values and emits its real event types, on the
// caller's goroutine as whatsmeow's dispatchEvent does.
type fakeClient struct {
	jid types.JID // the device it was made for; empty for a new device

	mu       sync.Mutex
	handlers map[uint32]whatsmeow.EventHandler
	nextID   uint32

	connected, loggedIn bool
	connectTimes        []time.Time
	disconnects         int
	removedHandlers     int

	// connectErr decides attempt n (1-based); nil or a nil result connects.
	connectErr func(n int) error
	// connectBlock, when set, makes ConnectContext wait for it (or ctx).
	connectBlock chan struct{}
	// autoLogin logs in (events.Connected) right after a connection.
	autoLogin bool

	lid  types.JID
	lids map[types.JID]types.JID // LID → phone number

	qr     chan whatsmeow.QRChannelItem
	qrErr  error
	qrCtx  context.Context
	pairFn func(phone string, show bool, typ whatsmeow.PairClientType, name string) (string, error)

	logoutErr error
	logouts   int
	deleted   int

	pictureFn    func(ctx context.Context, jid types.JID, p whatsmeow.GetProfilePictureParams) (*types.ProfilePictureInfo, error)
	pictureCalls []pictureCall
	setFn        func(ctx context.Context, jid types.JID, b []byte) (string, error)
	setCalls     []types.JID
	groupFn      func(ctx context.Context, jid types.JID) (*types.GroupInfo, error)
	groupCalls   int
}

type pictureCall struct {
	JID    types.JID
	Params whatsmeow.GetProfilePictureParams
}

var _ waClient = (*fakeClient)(nil)

func newFake(jid types.JID) *fakeClient {
	return &fakeClient{jid: jid, handlers: map[uint32]whatsmeow.EventHandler{}, autoLogin: true}
}

func (f *fakeClient) ConnectContext(ctx context.Context) error {
	f.mu.Lock()
	if f.connected {
		f.mu.Unlock()
		return whatsmeow.ErrAlreadyConnected
	}
	f.connectTimes = append(f.connectTimes, time.Now())
	n := len(f.connectTimes)
	block, connectErr := f.connectBlock, f.connectErr
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if connectErr != nil {
		if err := connectErr(n); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.connected = true
	login := f.autoLogin && !f.jid.IsEmpty()
	f.mu.Unlock()
	if login {
		f.login()
	}
	return nil
}

// login is whatsmeow's successful authentication.
func (f *fakeClient) login() {
	f.mu.Lock()
	f.connected, f.loggedIn = true, true
	f.mu.Unlock()
	f.emit(&events.Connected{})
}

// drop is the server closing the connection.
func (f *fakeClient) drop() {
	f.mu.Lock()
	f.connected, f.loggedIn = false, false
	f.mu.Unlock()
	f.emit(&events.Disconnected{})
}

func (f *fakeClient) Disconnect() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected, f.loggedIn = false, false
	f.disconnects++
}

func (f *fakeClient) IsConnected() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected
}

func (f *fakeClient) IsLoggedIn() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loggedIn
}

func (f *fakeClient) GetQRChannel(ctx context.Context) (<-chan whatsmeow.QRChannelItem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.qrErr != nil {
		return nil, f.qrErr
	}
	if !f.jid.IsEmpty() {
		return nil, whatsmeow.ErrQRStoreContainsID
	}
	if f.qr == nil {
		f.qr = make(chan whatsmeow.QRChannelItem, 8)
	}
	f.qrCtx = ctx
	return f.qr, nil
}

func (f *fakeClient) PairPhone(ctx context.Context, phone string, show bool, typ whatsmeow.PairClientType, name string) (string, error) {
	f.mu.Lock()
	fn := f.pairFn
	f.mu.Unlock()
	if fn == nil {
		return "ABCD-EFGH", nil
	}
	return fn(phone, show, typ, name)
}

func (f *fakeClient) Logout(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logouts++
	if f.logoutErr != nil {
		return fmt.Errorf("error sending logout request: %w", f.logoutErr)
	}
	f.connected, f.loggedIn = false, false
	f.deleted++
	return nil
}

func (f *fakeClient) GetProfilePictureInfo(ctx context.Context, jid types.JID, p *whatsmeow.GetProfilePictureParams) (*types.ProfilePictureInfo, error) {
	f.mu.Lock()
	f.pictureCalls = append(f.pictureCalls, pictureCall{jid, *p})
	fn := f.pictureFn
	f.mu.Unlock()
	if fn == nil {
		return nil, whatsmeow.ErrProfilePictureNotSet
	}
	return fn(ctx, jid, *p)
}

func (f *fakeClient) SetGroupPhoto(ctx context.Context, jid types.JID, b []byte) (string, error) {
	f.mu.Lock()
	f.setCalls = append(f.setCalls, jid)
	fn := f.setFn
	f.mu.Unlock()
	if fn == nil {
		return "1700000000", nil
	}
	return fn(ctx, jid, b)
}

func (f *fakeClient) GetGroupInfo(ctx context.Context, jid types.JID) (*types.GroupInfo, error) {
	f.mu.Lock()
	f.groupCalls++
	fn := f.groupFn
	f.mu.Unlock()
	if fn == nil {
		return nil, wrapIQ(whatsmeow.ErrGroupNotFound, whatsmeow.ErrIQNotFound)
	}
	return fn(ctx, jid)
}

func (f *fakeClient) AddEventHandler(h whatsmeow.EventHandler) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.handlers[f.nextID] = h
	return f.nextID
}

func (f *fakeClient) RemoveEventHandlers() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers = map[uint32]whatsmeow.EventHandler{}
	f.removedHandlers++
}

func (f *fakeClient) OwnLID() types.JID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lid
}

func (f *fakeClient) PhoneForLID(ctx context.Context, lid types.JID) (types.JID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lids[lid], nil
}

func (f *fakeClient) DeleteDevice(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted++
	return nil
}

// emit dispatches evt to the handlers, in the order they were added.
func (f *fakeClient) emit(evt any) {
	f.mu.Lock()
	ids := make([]uint32, 0, len(f.handlers))
	for id := range f.handlers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	hs := make([]whatsmeow.EventHandler, 0, len(ids))
	for _, id := range ids {
		hs = append(hs, f.handlers[id])
	}
	f.mu.Unlock()
	for _, h := range hs {
		h(evt)
	}
}

func (f *fakeClient) connects() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.connectTimes)
}

func (f *fakeClient) set(fn func(f *fakeClient)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// wrappedIQ mimics whatsmeow's unexported wrappedIQError: errors.Is matches
// the human error, Unwrap gives the *IQError.
type wrappedIQ struct{ human, iq error }

func (w *wrappedIQ) Error() string        { return w.human.Error() }
func (w *wrappedIQ) Is(target error) bool { return errors.Is(w.human, target) }
func (w *wrappedIQ) Unwrap() error        { return w.iq }

func wrapIQ(human, iq error) error { return &wrappedIQ{human, iq} }

// memKV is the engines' in-memory KV.
type memKV = memkv.KV

func newMemKV() *memKV { return memkv.New() }

// device is the device JID the KV holds for id; "" when none.
func device(kv *memKV, id portrait.InstanceID) string { return string(kv.Value(id, keyDevice)) }

// recSink records what a session reports.
type recSink struct {
	mu      sync.Mutex
	states  []portrait.State
	changes []portrait.PictureChange
	block   chan struct{} // when set, PictureChanged waits for it
}

func (r *recSink) StateChanged(id portrait.InstanceID, st portrait.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, st)
}

func (r *recSink) PictureChanged(id portrait.InstanceID, c portrait.PictureChange) {
	r.mu.Lock()
	block := r.block
	r.mu.Unlock()
	if block != nil {
		<-block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, c)
}

func (r *recSink) stateList() []portrait.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.states)
}

func (r *recSink) changeList() []portrait.PictureChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.changes)
}

// harness is an engine whose clients are fakes.
type harness struct {
	t    *testing.T
	e    *Engine
	kv   *memKV
	sink *recSink

	mu      sync.Mutex
	clients []*fakeClient
	devices map[types.JID]bool // devices "in the whatsmeow store"
	prepare func(*fakeClient)  // adjusts each new client
	made    chan *fakeClient
}

const testInstance portrait.InstanceID = 1101000001

var (
	ownJID = types.JID{User: "79001234567", Device: 8, Server: types.DefaultUserServer}
	ownLID = types.JID{User: "123456789012345", Server: types.HiddenUserServer}
)

func testLogger() *slog.Logger {
	if os.Getenv("WHATSAPP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{
		t:       t,
		kv:      newMemKV(),
		sink:    &recSink{},
		devices: map[types.JID]bool{},
		made:    make(chan *fakeClient, 64),
	}
	h.e = newEngine(h.kv, Options{
		ReconnectMin:    5 * time.Millisecond,
		ReconnectMax:    40 * time.Millisecond,
		RequestTimeout:  2 * time.Second,
		DownloadTimeout: 2 * time.Second,
		Logger:          testLogger(),
	})
	h.e.loginTimeout = 300 * time.Millisecond
	h.e.healthEvery = 50 * time.Millisecond
	h.e.newClient = h.factory
	t.Cleanup(func() { _ = h.e.Close() })
	return h
}

func (h *harness) factory(ctx context.Context, jid types.JID, log *slog.Logger) (waClient, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !jid.IsEmpty() && !h.devices[jid] {
		return nil, fmt.Errorf("device %s: %w", jid, errNoDevice)
	}
	c := newFake(jid)
	c.lid = ownLID
	if h.prepare != nil {
		h.prepare(c)
	}
	h.clients = append(h.clients, c)
	h.made <- c
	return c, nil
}

// linked stores a linked device for the test instance.
func (h *harness) linked() {
	h.mu.Lock()
	h.devices[ownJID] = true
	h.mu.Unlock()
	if err := h.e.saveJID(context.Background(), testInstance, ownJID); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) open() *session {
	h.t.Helper()
	s, err := h.e.Open(context.Background(), portrait.Instance{ID: testInstance, Type: portrait.TypeWhatsApp, Engine: Name}, h.sink)
	if err != nil {
		h.t.Fatal(err)
	}
	return s.(*session)
}

// client waits for the next client the factory makes.
func (h *harness) client() *fakeClient {
	h.t.Helper()
	select {
	case c := <-h.made:
		return c
	case <-time.After(5 * time.Second):
		h.t.Fatal("no client was made")
		return nil
	}
}

func (h *harness) setPrepare(fn func(*fakeClient)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.prepare = fn
}

func (h *harness) clientAt(i int) *fakeClient {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.clients[i]
}

func (h *harness) clientCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// authorized opens a linked session and waits until it is authorized.
func (h *harness) authorized() (*session, *fakeClient) {
	h.t.Helper()
	h.linked()
	s := h.open()
	c := h.client()
	waitFor(h.t, "authorized", func() bool { return s.State() == portrait.StateAuthorized })
	return s, c
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitStates waits until the sink has seen exactly want.
func waitStates(t *testing.T, sink *recSink, want ...portrait.State) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := sink.stateList()
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("states = %v, want %v", got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
