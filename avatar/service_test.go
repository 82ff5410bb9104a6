package avatar_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/avatar"
	"github.com/portrait-dev/portrait/blobdir"
	"github.com/portrait-dev/portrait/picture"
	"github.com/portrait-dev/portrait/sqlite"
)

// messenger is a stand-in at the messenger boundary: it answers Picture
// with what the test sets, and counts the calls.
type messenger struct {
	mu      sync.Mutex
	id      string
	data    []byte
	url     string
	err     error
	delay   time.Duration
	calls   atomic.Int32
	lastExt string
}

// source is a messenger as the picture source of instance id.
type source struct {
	*messenger
	id portrait.InstanceID
}

func (s source) ID() portrait.InstanceID { return s.id }

func at(m *messenger, id portrait.InstanceID) source { return source{m, id} }

func (m *messenger) State() portrait.State     { return portrait.StateAuthorized }
func (m *messenger) Account() portrait.Account { return portrait.Account{Wid: "11001234567@c.us"} }
func (m *messenger) Picture(ctx context.Context, chat portrait.ChatID, existing string) (portrait.RemotePicture, error) {
	m.calls.Add(1)
	if m.delay > 0 {
		select {
		case <-time.After(m.delay):
		case <-ctx.Done():
			return portrait.RemotePicture{}, ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastExt = existing
	if m.err != nil {
		return portrait.RemotePicture{}, m.err
	}
	if existing != "" && existing == m.id {
		return portrait.RemotePicture{ID: m.id, Unchanged: true}, nil
	}
	return portrait.RemotePicture{ID: m.id, Data: m.data, URL: m.url}, nil
}
func (m *messenger) SetPicture(ctx context.Context, chat portrait.ChatID, jpeg, preview []byte) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return "", m.err
	}
	m.id, m.data = fmt.Sprint(time.Now().UnixNano()), jpeg
	return m.id, nil
}
func (m *messenger) QR(context.Context) (portrait.QR, error)             { return portrait.QR{}, nil }
func (m *messenger) PairingCode(context.Context, string) (string, error) { return "", nil }
func (m *messenger) Logout(context.Context) error                        { return nil }
func (m *messenger) Reboot(context.Context) error                        { return nil }
func (m *messenger) Close() error                                        { return nil }
func (m *messenger) set(id string, data []byte, url string, err error) {
	m.mu.Lock()
	m.id, m.data, m.url, m.err = id, data, url, err
	m.mu.Unlock()
}
func (m *messenger) existing() string { m.mu.Lock(); defer m.mu.Unlock(); return m.lastExt }

func pngOf(t *testing.T, w, h int, c color.Color) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// newService returns a Service on a real store and picture directory, and
// an instance in the store for its records.
func newService(t *testing.T, opts avatar.Options, metrics ...avatar.Metrics) (*avatar.Service, portrait.InstanceID, *sqlite.DB) {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := blobdir.Open(filepath.Join(dir, "pictures"))
	if err != nil {
		t.Fatal(err)
	}
	id := portrait.InstanceID(1101000001)
	if err := db.CreateInstance(context.Background(), portrait.Instance{ID: id, Type: portrait.TypeWhatsApp, Engine: "sandbox", TokenHash: []byte("h"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if opts.PublicURL == "" {
		opts.PublicURL = "https://avatars.example.com/"
	}
	if opts.Secret == nil {
		opts.Secret = []byte("0123456789abcdef0123456789abcdef")
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = time.Hour
	}
	var m avatar.Metrics
	if len(metrics) > 0 {
		m = metrics[0]
	}
	return avatar.New(blobs, db, opts, m), id, db
}

var alice = portrait.MustChatID(portrait.TypeWhatsApp, "11001230001@c.us")

func TestOutcomes(t *testing.T) {
	ctx := context.Background()
	svc, id, _ := newService(t, avatar.Options{CacheTTL: time.Nanosecond})
	m := &messenger{}
	for _, tc := range []struct {
		err       error
		url       bool
		available bool
		fails     error
	}{
		{portrait.ErrPictureHidden, false, false, nil},
		{portrait.ErrPictureNotSet, false, true, nil},
		{portrait.ErrNoAccount, false, true, nil},
		{fmt.Errorf("sandbox: %w", portrait.ErrGroupNotFound), false, true, nil},
		{portrait.ErrUpstreamRateLimit, false, false, portrait.ErrUpstreamRateLimit},
		{portrait.ErrUpstreamTimeout, false, false, portrait.ErrUpstreamTimeout},
		{portrait.ErrNotAuthorized, false, false, portrait.ErrNotAuthorized},
		{errors.New("socket closed"), false, false, errors.New("")},
	} {
		m.set("", nil, "", tc.err)
		av, err := svc.Get(ctx, at(m, id), alice)
		if tc.fails != nil {
			if err == nil || (tc.fails.Error() != "" && !errors.Is(err, tc.fails)) {
				t.Errorf("%v: got %+v, %v; want an error %v", tc.err, av, err, tc.fails)
			}
			continue
		}
		if err != nil || (av.URL != "") != tc.url || av.Available != tc.available {
			t.Errorf("%v: got %+v, %v", tc.err, av, err)
		}
	}
}

func TestPictureStoredAndRevalidated(t *testing.T) {
	ctx := context.Background()
	svc, id, _ := newService(t, avatar.Options{CacheTTL: time.Nanosecond})
	m := &messenger{}
	m.set("100", pngOf(t, 300, 200, color.RGBA{200, 10, 10, 255}), "", nil)
	first, err := svc.Get(ctx, at(m, id), alice)
	if err != nil || !first.Available || !strings.HasPrefix(first.URL, "https://avatars.example.com/avatars/") || !strings.HasSuffix(first.URL, ".jpg") {
		t.Fatalf("first: %+v, %v", first, err)
	}
	if svc.PreviewURL(first.Key) != strings.TrimSuffix(first.URL, ".jpg")+"-96.jpg" {
		t.Errorf("preview URL %q", svc.PreviewURL(first.Key))
	}
	for _, name := range []string{first.Key + ".jpg", first.Key + "-96.jpg"} {
		b, _, err := svc.Open(ctx, name)
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		cfg, _, err := image.DecodeConfig(b)
		b.Close()
		if err != nil || (cfg.Width != 640 && cfg.Width != 96) {
			t.Errorf("%s: %+v %v", name, cfg, err)
		}
	}
	// Expired: asked again with the known id; unchanged → the same URL.
	again, err := svc.Get(ctx, at(m, id), alice)
	if err != nil || again.URL != first.URL || m.existing() != "100" {
		t.Fatalf("again: %+v, %v (existing id sent %q)", again, err, m.existing())
	}
	// Changed picture → new URL, old one still stored.
	m.set("101", pngOf(t, 300, 200, color.RGBA{10, 200, 10, 255}), "", nil)
	changed, err := svc.Get(ctx, at(m, id), alice)
	if err != nil || changed.URL == first.URL {
		t.Fatalf("changed: %+v, %v", changed, err)
	}
	if b, _, err := svc.Open(ctx, first.Key+".jpg"); err != nil {
		t.Errorf("old picture gone: %v", err)
	} else {
		b.Close()
	}
	for _, bad := range []string{"../p.db", first.Key, first.Key + ".png", strings.ToUpper(first.Key) + ".jpg", "x.jpg"} {
		if _, _, err := svc.Open(ctx, bad); !errors.Is(err, portrait.ErrNotFound) {
			t.Errorf("Open(%q) = %v, want ErrNotFound", bad, err)
		}
	}
}

func TestSameBytesSameURL(t *testing.T) {
	ctx := context.Background()
	svc, id, _ := newService(t, avatar.Options{})
	pic := pngOf(t, 100, 100, color.RGBA{1, 2, 3, 255})
	bob := portrait.MustChatID(portrait.TypeWhatsApp, "11001230002@c.us")
	m1, m2 := &messenger{}, &messenger{}
	m1.set("1", pic, "", nil)
	m2.set("9", pic, "", nil)
	a, err1 := svc.Get(ctx, at(m1, id), alice)
	b, err2 := svc.Get(ctx, at(m2, id), bob)
	if err1 != nil || err2 != nil || a.URL != b.URL {
		t.Fatalf("same picture, different URLs: %+v %+v (%v %v)", a, b, err1, err2)
	}
	// Another secret gives other addresses.
	other, id2, _ := newService(t, avatar.Options{Secret: []byte("another secret, another address!")})
	c, err := other.Get(ctx, at(m1, id2), alice)
	if err != nil || c.URL == a.URL {
		t.Fatalf("the address does not depend on the secret: %+v, %v", c, err)
	}
}

func TestCoalescingAndCache(t *testing.T) {
	ctx := context.Background()
	svc, id, _ := newService(t, avatar.Options{})
	m := &messenger{delay: 100 * time.Millisecond}
	m.set("1", pngOf(t, 64, 64, color.White), "", nil)
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := svc.Get(ctx, at(m, id), alice); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := m.calls.Load(); n != 1 {
		t.Errorf("engine called %d times for 16 concurrent lookups", n)
	}
	svc.Get(ctx, at(m, id), alice)
	if n := m.calls.Load(); n != 1 {
		t.Errorf("a cached lookup reached the engine")
	}
	svc.Invalidate(id, alice.String())
	svc.Get(ctx, at(m, id), alice)
	if n := m.calls.Load(); n != 2 {
		t.Errorf("after Invalidate the engine was called %d times in all, want 2", n)
	}
	// Another instance's invalidation leaves this one's entry; its own
	// drops it.
	svc.Get(ctx, at(m, id), alice)
	svc.InvalidateInstances(map[portrait.InstanceID]bool{id + 1: true})
	svc.Get(ctx, at(m, id), alice)
	if n := m.calls.Load(); n != 2 {
		t.Errorf("another instance's InvalidateInstances dropped the entry: %d engine calls, want 2", n)
	}
	svc.InvalidateInstances(map[portrait.InstanceID]bool{id: true})
	svc.Get(ctx, at(m, id), alice)
	if n := m.calls.Load(); n != 3 {
		t.Errorf("after InvalidateInstances the engine was called %d times in all, want 3", n)
	}
	// A caller that gives up gets its own error; the lookup goes on for
	// the others.
	svc.Invalidate(id, alice.String())
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := svc.Get(short, at(m, id), alice); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("impatient caller: %v", err)
	}
}

func TestLookupTimeout(t *testing.T) {
	svc, id, _ := newService(t, avatar.Options{LookupTimeout: 50 * time.Millisecond})
	m := &messenger{delay: time.Second}
	_, err := svc.Get(context.Background(), at(m, id), alice)
	if !errors.Is(err, portrait.ErrUpstreamTimeout) {
		t.Fatalf("got %v, want ErrUpstreamTimeout", err)
	}
}

func TestUpstreamURLs(t *testing.T) {
	ctx := context.Background()
	svc, id, _ := newService(t, avatar.Options{UpstreamURLs: true, CacheTTL: time.Nanosecond})
	m := &messenger{}
	const up = "https://pps.whatsapp.net/v/t61/1.jpg?oe=6946B8E0"
	m.set("5", pngOf(t, 64, 64, color.White), up, nil)
	av, err := svc.Get(ctx, at(m, id), alice)
	if err != nil || av.URL != up || av.Key == "" {
		t.Fatalf("got %+v, %v; want the upstream URL and a stored copy", av, err)
	}
	again, err := svc.Get(ctx, at(m, id), alice) // revalidated: unchanged
	if err != nil || again.URL != up {
		t.Fatalf("unchanged: %+v, %v", again, err)
	}
	m.set("6", pngOf(t, 64, 64, color.Black), "", nil)
	if av, _ := svc.Get(ctx, at(m, id), alice); av.URL != svc.URL(av.Key) {
		t.Errorf("no upstream URL: got %q, want the stable one", av.URL)
	}
}

func TestSetAndLimits(t *testing.T) {
	ctx := context.Background()
	svc, id, _ := newService(t, avatar.Options{Limits: picture.Limits{MaxPixels: 10_000}})
	m := &messenger{}
	self := portrait.MustChatID(portrait.TypeWhatsApp, "11001234567@c.us")
	av, err := svc.Set(ctx, at(m, id), portrait.ChatID{}, self, pngOf(t, 90, 90, color.White))
	if err != nil || av.URL == "" {
		t.Fatalf("set: %+v, %v", av, err)
	}
	got, err := svc.Get(ctx, at(m, id), self)
	if err != nil || got.URL != av.URL {
		t.Errorf("own picture after set: %+v, %v; want %s", got, err, av.URL)
	}
	if _, err := svc.Set(ctx, at(m, id), portrait.ChatID{}, self, pngOf(t, 200, 200, color.White)); !errors.Is(err, picture.ErrTooLarge) {
		t.Errorf("over the pixel limit: %v", err)
	}
	if _, err := svc.Set(ctx, at(m, id), portrait.ChatID{}, self, nil); !errors.Is(err, picture.ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
	m.set("", nil, "", portrait.ErrUpstreamRateLimit)
	if _, err := svc.Set(ctx, at(m, id), portrait.ChatID{}, self, pngOf(t, 50, 50, color.Black)); !errors.Is(err, portrait.ErrUpstreamRateLimit) {
		t.Errorf("messenger refusal: %v", err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	svc, id, _ := newService(t, avatar.Options{CacheEntries: 640})
	m := &messenger{}
	m.set("", nil, "", portrait.ErrNoAccount)
	for i := 0; i < 5000; i++ {
		chat := portrait.MustChatID(portrait.TypeWhatsApp, fmt.Sprintf("1100%07d@c.us", i))
		if _, err := svc.Get(ctx, at(m, id), chat); err != nil {
			t.Fatal(err)
		}
	}
	if n := svc.CacheLen(); n > 640 || n < 320 {
		t.Errorf("cache holds %d entries, want at most 640 (and not emptied)", n)
	}
}

// TestSameSourceProcessedOnce: the same picture bytes seen by several
// instances go through the pipeline once.
func TestSameSourceProcessedOnce(t *testing.T) {
	var processed atomic.Int32
	svc, id, db := newService(t, avatar.Options{}, avatar.Metrics{Process: func(time.Duration, error) { processed.Add(1) }})
	m := &messenger{id: "p1", data: pngOf(t, 300, 300, color.White)}
	for i := 1; i < 3; i++ {
		if err := db.CreateInstance(context.Background(), portrait.Instance{ID: id + portrait.InstanceID(i), Type: portrait.TypeWhatsApp, Engine: "sandbox", TokenHash: []byte("h"), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		av, err := svc.Get(context.Background(), at(m, id+portrait.InstanceID(i)), alice)
		if err != nil || av.URL == "" {
			t.Fatalf("instance %d: %+v, %v", i, av, err)
		}
	}
	if n := processed.Load(); n != 1 {
		t.Errorf("the pipeline ran %d times for one source picture, want 1", n)
	}
}

// TestLearnedAnswers: a node that does not own an instance answers from
// what it learned from the owner until the owner announces a change; an
// answer asked for before a change is not learned after it; the owner
// announces what changes (a new picture found by a lookup, Invalidate)
// and not what stays the same.
func TestLearnedAnswers(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var announced []string
	owner, id, _ := newService(t, avatar.Options{CacheTTL: time.Nanosecond, Changed: func(id portrait.InstanceID, chat string) {
		mu.Lock()
		announced = append(announced, chat)
		mu.Unlock()
	}})
	m := &messenger{}
	m.set("1", pngOf(t, 64, 64, color.White), "", nil)
	av, err := owner.Get(ctx, at(m, id), alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Get(ctx, at(m, id), alice); err != nil { // the same picture again
		t.Fatal(err)
	}
	m.set("2", pngOf(t, 64, 64, color.Black), "", nil)
	if _, err := owner.Get(ctx, at(m, id), alice); err != nil { // a new one
		t.Fatal(err)
	}
	owner.Invalidate(id, "11001230002@c.us")
	mu.Lock()
	if want := []string{alice.String(), alice.String(), "11001230002@c.us"}; !slices.Equal(announced, want) {
		t.Errorf("announced %q, want %q (the first answer, the change, the invalidation)", announced, want)
	}
	mu.Unlock()

	other, _, _ := newService(t, avatar.Options{CacheTTL: time.Hour})
	if _, ok := other.Cached(id, alice.String()); ok {
		t.Fatal("an answer cached before any was learned")
	}
	mark := other.Mark(id)
	other.Learn(id, alice.String(), av, mark)
	if got, ok := other.Cached(id, alice.String()); !ok || got != av {
		t.Fatalf("learned answer: %+v, %v; want %+v", got, ok, av)
	}
	other.Forget(id, alice.String())
	if _, ok := other.Cached(id, alice.String()); ok {
		t.Fatal("a forgotten answer is still served")
	}
	// Asked before a change, answered after it: not learned.
	mark = other.Mark(id)
	other.Forget(id, "")
	other.Learn(id, alice.String(), av, mark)
	if _, ok := other.Cached(id, alice.String()); ok {
		t.Fatal("an answer that predates a change was learned")
	}
	other.Learn(id, alice.String(), av, other.Mark(id))
	other.Forget(id, "")
	if _, ok := other.Cached(id, alice.String()); ok {
		t.Fatal("Forget of the whole instance left an answer")
	}
}
