// Package storetest is the behaviour every portrait.Store implementation must
// show, as a test suite. An implementation's tests call Run:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) portrait.Store {
//			db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "portrait.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			return db
//		})
//	}
//
// A store that also implements portrait.Queue runs RunQueue as well (see
// QueueStore).
//
// The suite only relies on what any store can provide: instance times are
// compared at microsecond precision (PostgreSQL's), the empty and the nil
// Extra map are the same, and so are an empty and a nil byte slice.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
)

// Run runs the suite as subtests of t. open must return a new, empty store
// for each call; Run closes every store it gets, so open must not, though it
// may register cleanups of its own (they run after the store is closed).
func Run(t *testing.T, open func(t *testing.T) portrait.Store) {
	runStores(t, open, []subtest[portrait.Store]{
		{"CreateAndGet", testCreateAndGet},
		{"CreatedAtUTC", testCreatedAtUTC},
		{"ListOrderedByID", testListOrdered},
		{"Delete", testDelete},
		{"DeleteCascadesToKV", testDeleteCascades},
		{"DuplicateID", testDuplicateID},
		{"SettingsRoundTrip", testSettingsRoundTrip},
		{"SetTokenHash", testSetTokenHash},
		{"NotFound", testNotFound},
		{"KV", testKV},
		{"KVIsolation", testKVIsolation},
		{"KVDeleteKey", testKVDeleteKey},
		{"KVValues", testKVValues},
		{"CallerSlicesNotRetained", testCallerSlices},
		{"Generation", testGeneration},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ContextCanceled", testContextCanceled},
	})
}

// subtest is one named test of a suite on a store of type S.
type subtest[S any] struct {
	name string
	fn   func(t *testing.T, s S)
}

// runStores runs each test as a subtest of t on a store of its own from
// open, and closes that store when the subtest ends.
func runStores[S interface{ Close() error }](t *testing.T, open func(t *testing.T) S, tests []subtest[S]) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

// baseTime is a creation time at microsecond precision.
var baseTime = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

// newInstance returns a complete instance with id, every field set.
func newInstance(id portrait.InstanceID) portrait.Instance {
	s := portrait.DefaultSettings()
	s.WebhookURL = fmt.Sprintf("https://hooks.example.com/%d", id)
	s.WebhookURLToken = "Bearer secret"
	s.Extra = map[string]string{"incomingWebhook": `"yes"`, "delaySendMessagesMilliseconds": "5000"}
	return portrait.Instance{
		ID:        id,
		Type:      portrait.TypeWhatsApp,
		Engine:    "sandbox",
		TokenHash: bytes.Repeat([]byte{byte(id), 0, 0xff}, 11)[:32],
		Settings:  s,
		CreatedAt: baseTime.Add(time.Duration(id%1000) * time.Second),
	}
}

func create(t *testing.T, s portrait.Store, inst portrait.Instance) {
	t.Helper()
	if err := s.CreateInstance(t.Context(), inst); err != nil {
		t.Fatalf("CreateInstance(%d): %v", inst.ID, err)
	}
}

func get(t *testing.T, s portrait.Store, id portrait.InstanceID) portrait.Instance {
	t.Helper()
	inst, err := s.Instance(t.Context(), id)
	if err != nil {
		t.Fatalf("Instance(%d): %v", id, err)
	}
	return inst
}

func generation(t *testing.T, s portrait.Store) int64 {
	t.Helper()
	g, err := s.Generation(t.Context())
	if err != nil {
		t.Fatalf("Generation: %v", err)
	}
	return g
}

func put(t *testing.T, s portrait.Store, id portrait.InstanceID, key string, value []byte) {
	t.Helper()
	if err := s.Put(t.Context(), id, key, value); err != nil {
		t.Fatalf("Put(%d, %q): %v", id, key, err)
	}
}

func wantValue(t *testing.T, s portrait.Store, id portrait.InstanceID, key string, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), id, key)
	if err != nil {
		t.Fatalf("Get(%d, %q): %v", id, key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%d, %q) = %s, want %s", id, key, abbrev(got), abbrev(want))
	}
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, portrait.ErrNotFound) {
		t.Errorf("%s: error %v, want one wrapping portrait.ErrNotFound", what, err)
	}
}

func abbrev(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%q… (%d bytes)", b[:40], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// diff describes how got differs from want, or returns "".
func diff(got, want portrait.Instance) string {
	var d []string
	if got.ID != want.ID {
		d = append(d, fmt.Sprintf("ID %d, want %d", got.ID, want.ID))
	}
	if got.Type != want.Type {
		d = append(d, fmt.Sprintf("Type %q, want %q", got.Type, want.Type))
	}
	if got.Engine != want.Engine {
		d = append(d, fmt.Sprintf("Engine %q, want %q", got.Engine, want.Engine))
	}
	if !bytes.Equal(got.TokenHash, want.TokenHash) {
		d = append(d, fmt.Sprintf("TokenHash %x, want %x", got.TokenHash, want.TokenHash))
	}
	if !settingsEqual(got.Settings, want.Settings) {
		d = append(d, fmt.Sprintf("Settings %+v, want %+v", got.Settings, want.Settings))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		d = append(d, fmt.Sprintf("CreatedAt %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	if got.CreatedAt.Location() != time.UTC {
		d = append(d, fmt.Sprintf("CreatedAt in %v, want UTC", got.CreatedAt.Location()))
	}
	return strings.Join(d, "; ")
}

func settingsEqual(a, b portrait.Settings) bool {
	ea, eb := a.Extra, b.Extra
	a.Extra, b.Extra = nil, nil
	return reflect.DeepEqual(a, b) && maps.Equal(ea, eb)
}

func wantInstance(t *testing.T, s portrait.Store, want portrait.Instance) {
	t.Helper()
	if d := diff(get(t, s, want.ID), want); d != "" {
		t.Errorf("Instance(%d): %s", want.ID, d)
	}
}

func testCreateAndGet(t *testing.T, s portrait.Store) {
	a := newInstance(1101000001)
	b := newInstance(3302000002)
	b.Type = portrait.TypeMAX
	b.Engine = "whatsapp"
	b.Settings = portrait.Settings{}
	create(t, s, a)
	create(t, s, b)
	wantInstance(t, s, a)
	wantInstance(t, s, b)
}

func testCreatedAtUTC(t *testing.T, s portrait.Store) {
	inst := newInstance(1101000001)
	inst.CreatedAt = time.Date(2031, 12, 31, 23, 59, 59, 999999000, time.FixedZone("UTC+5:30", 5*3600+1800))
	create(t, s, inst)
	got := get(t, s, inst.ID)
	if !got.CreatedAt.Equal(inst.CreatedAt) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, inst.CreatedAt.UTC())
	}
}

func testListOrdered(t *testing.T, s portrait.Store) {
	list, err := s.Instances(t.Context())
	if err != nil {
		t.Fatalf("Instances on an empty store: %v", err)
	}
	if len(list) != 0 {
		t.Fatalf("Instances on an empty store = %d instances, want none", len(list))
	}
	ids := []portrait.InstanceID{7700000005, 1101000001, 9999999999, 3302000002, 1101000002, 1000000000}
	want := map[portrait.InstanceID]portrait.Instance{}
	for _, id := range ids {
		inst := newInstance(id)
		create(t, s, inst)
		want[id] = inst
	}
	list, err = s.Instances(t.Context())
	if err != nil {
		t.Fatalf("Instances: %v", err)
	}
	if len(list) != len(ids) {
		t.Fatalf("Instances = %d instances, want %d", len(list), len(ids))
	}
	for i, got := range list {
		if i > 0 && got.ID <= list[i-1].ID {
			t.Errorf("Instances: %d after %d, want ascending ids", got.ID, list[i-1].ID)
		}
		if d := diff(got, want[got.ID]); d != "" {
			t.Errorf("Instances[%d]: %s", i, d)
		}
	}
}

func testDelete(t *testing.T, s portrait.Store) {
	a, b := newInstance(1101000001), newInstance(1101000002)
	create(t, s, a)
	create(t, s, b)
	if err := s.DeleteInstance(t.Context(), a.ID); err != nil {
		t.Fatalf("DeleteInstance: %v", err)
	}
	_, err := s.Instance(t.Context(), a.ID)
	wantNotFound(t, "Instance after DeleteInstance", err)
	wantNotFound(t, "second DeleteInstance", s.DeleteInstance(t.Context(), a.ID))
	list, err := s.Instances(t.Context())
	if err != nil {
		t.Fatalf("Instances: %v", err)
	}
	if len(list) != 1 || list[0].ID != b.ID {
		t.Errorf("Instances after DeleteInstance(%d): %v, want only %d", a.ID, list, b.ID)
	}
	wantInstance(t, s, b)
	// The id can be used again.
	create(t, s, a)
	wantInstance(t, s, a)
}

func testDeleteCascades(t *testing.T, s portrait.Store) {
	a, b := newInstance(1101000001), newInstance(1101000002)
	create(t, s, a)
	create(t, s, b)
	put(t, s, a.ID, "world", []byte("a's world"))
	put(t, s, b.ID, "world", []byte("b's world"))
	if err := s.DeleteInstance(t.Context(), a.ID); err != nil {
		t.Fatalf("DeleteInstance: %v", err)
	}
	_, err := s.Get(t.Context(), a.ID, "world")
	wantNotFound(t, "Get of a deleted instance", err)
	// A new instance with the same id starts with nothing.
	create(t, s, a)
	_, err = s.Get(t.Context(), a.ID, "world")
	wantNotFound(t, "Get after deleting and creating the instance again", err)
	wantValue(t, s, b.ID, "world", []byte("b's world"))
}

func testDuplicateID(t *testing.T, s portrait.Store) {
	a := newInstance(1101000001)
	create(t, s, a)
	dup := newInstance(a.ID)
	dup.Engine = "whatsapp"
	dup.TokenHash = []byte("other")
	err := s.CreateInstance(t.Context(), dup)
	if err == nil {
		t.Fatalf("CreateInstance with a taken id succeeded")
	}
	if !strings.Contains(err.Error(), "exist") {
		t.Errorf("CreateInstance with a taken id: %q does not say that it exists", err)
	}
	if errors.Is(err, portrait.ErrNotFound) {
		t.Errorf("CreateInstance with a taken id: %v wraps ErrNotFound", err)
	}
	wantInstance(t, s, a)
}

func testSettingsRoundTrip(t *testing.T, s portrait.Store) {
	a := newInstance(1101000001)
	a.Settings = portrait.DefaultSettings()
	create(t, s, a)
	wantInstance(t, s, a)

	for i, set := range []portrait.Settings{
		{
			WebhookURL:           "https://example.com/hook?a=1&b=ü",
			WebhookURLToken:      `tok"en\`,
			StateWebhook:         false,
			AvatarInfoWebhook:    true,
			AvatarChangedWebhook: false,
			Extra: map[string]string{
				"incomingWebhook":               `"yes"`,
				"delaySendMessagesMilliseconds": "15000",
				"markIncomingMessagesReaded":    `"no"`,
				"nested":                        `{"a":[1,2,{"b":null}]}`,
				"emoji":                         `"🙂"`,
			},
		},
		// Extra is replaced, not merged.
		{StateWebhook: true, Extra: map[string]string{"outgoingWebhook": `"no"`}},
		{},
		portrait.DefaultSettings(),
	} {
		if err := s.SetSettings(t.Context(), a.ID, set); err != nil {
			t.Fatalf("SetSettings #%d: %v", i, err)
		}
		a.Settings = set
		wantInstance(t, s, a)
	}
}

func testSetTokenHash(t *testing.T, s portrait.Store) {
	a, b := newInstance(1101000001), newInstance(1101000002)
	create(t, s, a)
	create(t, s, b)
	a.TokenHash = bytes.Repeat([]byte{0xab}, 32)
	if err := s.SetTokenHash(t.Context(), a.ID, a.TokenHash); err != nil {
		t.Fatalf("SetTokenHash: %v", err)
	}
	wantInstance(t, s, a)
	wantInstance(t, s, b)
	// Settings and the token hash are independent.
	a.Settings.WebhookURL = "https://example.com/new"
	if err := s.SetSettings(t.Context(), a.ID, a.Settings); err != nil {
		t.Fatalf("SetSettings: %v", err)
	}
	wantInstance(t, s, a)
}

func testNotFound(t *testing.T, s portrait.Store) {
	ctx := t.Context()
	const missing = portrait.InstanceID(1101000009)
	a := newInstance(1101000001)
	create(t, s, a)

	_, err := s.Instance(ctx, missing)
	wantNotFound(t, "Instance", err)
	wantNotFound(t, "DeleteInstance", s.DeleteInstance(ctx, missing))
	wantNotFound(t, "SetTokenHash", s.SetTokenHash(ctx, missing, []byte("x")))
	wantNotFound(t, "SetSettings", s.SetSettings(ctx, missing, portrait.DefaultSettings()))
	_, err = s.Get(ctx, missing, "world")
	wantNotFound(t, "Get of a missing instance", err)
	wantNotFound(t, "Put to a missing instance", s.Put(ctx, missing, "world", []byte("x")))
	_, err = s.Get(ctx, a.ID, "world")
	wantNotFound(t, "Get of a missing key", err)

	// None of that created anything.
	_, err = s.Instance(ctx, missing)
	wantNotFound(t, "Instance after the failed writes", err)
	_, err = s.Get(ctx, missing, "world")
	wantNotFound(t, "Get after the failed Put", err)
	list, err := s.Instances(ctx)
	if err != nil {
		t.Fatalf("Instances: %v", err)
	}
	if len(list) != 1 {
		t.Errorf("Instances = %d instances, want 1", len(list))
	}
	wantInstance(t, s, a)
}

func testKV(t *testing.T, s portrait.Store) {
	a := newInstance(1101000001)
	create(t, s, a)
	put(t, s, a.ID, "world", []byte("v1"))
	wantValue(t, s, a.ID, "world", []byte("v1"))
	put(t, s, a.ID, "world", []byte("version two, longer"))
	wantValue(t, s, a.ID, "world", []byte("version two, longer"))
	put(t, s, a.ID, "world", []byte("3"))
	wantValue(t, s, a.ID, "world", []byte("3"))
	// KV writes do not touch the instance.
	wantInstance(t, s, a)
}

func testKVIsolation(t *testing.T, s portrait.Store) {
	a, b := newInstance(1101000001), newInstance(1101000002)
	create(t, s, a)
	create(t, s, b)
	put(t, s, a.ID, "world", []byte("a world"))
	put(t, s, a.ID, "World", []byte("a World"))
	put(t, s, a.ID, "world2", []byte("a world2"))
	put(t, s, b.ID, "world", []byte("b world"))
	wantValue(t, s, a.ID, "world", []byte("a world"))
	wantValue(t, s, a.ID, "World", []byte("a World"))
	wantValue(t, s, a.ID, "world2", []byte("a world2"))
	wantValue(t, s, b.ID, "world", []byte("b world"))
	_, err := s.Get(t.Context(), b.ID, "world2")
	wantNotFound(t, "Get of a key only another instance has", err)
	put(t, s, b.ID, "world", []byte("b world, again"))
	wantValue(t, s, a.ID, "world", []byte("a world"))
}

func testKVDeleteKey(t *testing.T, s portrait.Store) {
	a, b := newInstance(1101000001), newInstance(1101000002)
	create(t, s, a)
	create(t, s, b)
	put(t, s, a.ID, "device", []byte("a"))
	put(t, s, a.ID, "other", []byte("kept"))
	put(t, s, b.ID, "device", []byte("b"))
	if err := s.DeleteKey(t.Context(), a.ID, "device"); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	_, err := s.Get(t.Context(), a.ID, "device")
	wantNotFound(t, "Get after DeleteKey", err)
	wantValue(t, s, a.ID, "other", []byte("kept"))
	wantValue(t, s, b.ID, "device", []byte("b"))
	if err := s.DeleteKey(t.Context(), a.ID, "device"); err != nil {
		t.Errorf("DeleteKey of a missing key: %v", err)
	}
	if err := s.DeleteKey(t.Context(), 1101999999, "device"); err != nil {
		t.Errorf("DeleteKey of an unknown instance: %v", err)
	}
	put(t, s, a.ID, "device", []byte("again"))
	wantValue(t, s, a.ID, "device", []byte("again"))
}

func testKVValues(t *testing.T, s portrait.Store) {
	a := newInstance(1101000001)
	create(t, s, a)
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7 % 251)
	}
	for _, kv := range []struct {
		key   string
		value []byte
	}{
		{"binary", []byte{0, 1, 2, 0xff, 0, 0xfe, '\n', 0}},
		{"empty", []byte{}},
		{"nil", nil},
		{"big", big},
		{"json", []byte(`{"contacts":[{"id":"11001234567@c.us"}]}`)},
		{"a/b:c d", []byte("punctuation in the key")},
		{"ключ 🙂", []byte("unicode key")},
		{"'; DROP TABLE kv; --", []byte("quotes in the key")},
	} {
		put(t, s, a.ID, kv.key, kv.value)
		wantValue(t, s, a.ID, kv.key, kv.value)
	}
}

func testCallerSlices(t *testing.T, s portrait.Store) {
	ctx := t.Context()
	const id = portrait.InstanceID(1101000001)
	// Changing what the caller passed, or what it got back, does not change
	// what is stored.
	in := newInstance(id)
	create(t, s, in)
	in.TokenHash[0] ^= 0xff
	in.Settings.Extra["incomingWebhook"] = `"changed"`
	wantInstance(t, s, newInstance(id))

	got := get(t, s, id)
	got.TokenHash[0] ^= 0xff
	if got.Settings.Extra != nil {
		got.Settings.Extra["incomingWebhook"] = `"changed"`
	}
	wantInstance(t, s, newInstance(id))

	want := newInstance(id)
	want.TokenHash = []byte("new hash")
	want.Settings.Extra = map[string]string{"a": "1"}
	hash := bytes.Clone(want.TokenHash)
	set := want.Settings
	set.Extra = maps.Clone(want.Settings.Extra)
	if err := s.SetTokenHash(ctx, id, hash); err != nil {
		t.Fatalf("SetTokenHash: %v", err)
	}
	if err := s.SetSettings(ctx, id, set); err != nil {
		t.Fatalf("SetSettings: %v", err)
	}
	hash[0] = 'X'
	set.Extra["a"] = "2"
	wantInstance(t, s, want)

	v := []byte("value")
	put(t, s, id, "k", v)
	v[0] = 'X'
	wantValue(t, s, id, "k", []byte("value"))
	gotV, err := s.Get(ctx, id, "k")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	gotV[0] = 'Y'
	wantValue(t, s, id, "k", []byte("value"))
}

func testGeneration(t *testing.T, s portrait.Store) {
	ctx := t.Context()
	a, b := newInstance(1101000001), newInstance(1101000002)
	g := generation(t, s)
	step := func(what string, change bool, fn func() error) {
		t.Helper()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		n := generation(t, s)
		if change && n == g {
			t.Errorf("Generation stayed %d after %s", g, what)
		}
		if !change && n != g {
			t.Errorf("Generation changed from %d to %d after %s", g, n, what)
		}
		g = n
	}
	step("CreateInstance", true, func() error { return s.CreateInstance(ctx, a) })
	step("a second CreateInstance", true, func() error { return s.CreateInstance(ctx, b) })
	step("Put", false, func() error { return s.Put(ctx, a.ID, "world", []byte("1")) })
	step("Put overwriting", false, func() error { return s.Put(ctx, a.ID, "world", []byte("2")) })
	step("reads", false, func() error {
		if _, err := s.Instance(ctx, a.ID); err != nil {
			return err
		}
		if _, err := s.Instances(ctx); err != nil {
			return err
		}
		_, err := s.Get(ctx, a.ID, "world")
		return err
	})
	step("SetTokenHash", true, func() error { return s.SetTokenHash(ctx, a.ID, []byte("new hash")) })
	step("SetTokenHash again", true, func() error { return s.SetTokenHash(ctx, a.ID, []byte("newer hash")) })
	step("SetSettings", true, func() error { return s.SetSettings(ctx, b.ID, portrait.Settings{WebhookURL: "https://x"}) })
	step("DeleteInstance", true, func() error { return s.DeleteInstance(ctx, a.ID) })
	step("CreateInstance of a deleted id", true, func() error { return s.CreateInstance(ctx, a) })
}

func testConcurrentWriters(t *testing.T, s portrait.Store) {
	const workers, writes = 8, 50
	ctx := t.Context()
	g0 := generation(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, workers*writes)
	for w := range workers {
		wg.Go(func() {
			inst := newInstance(portrait.InstanceID(2200000000 + w))
			if err := s.CreateInstance(ctx, inst); err != nil {
				errs <- fmt.Errorf("worker %d: CreateInstance: %w", w, err)
				return
			}
			for i := range writes {
				var err error
				switch i % 4 {
				case 0:
					set := inst.Settings
					set.WebhookURL = fmt.Sprintf("https://example.com/%d/%d", w, i)
					err = s.SetSettings(ctx, inst.ID, set)
				case 1:
					err = s.SetTokenHash(ctx, inst.ID, []byte(fmt.Sprintf("hash %d %d", w, i)))
				default:
					err = s.Put(ctx, inst.ID, fmt.Sprintf("key%d", i%5), []byte(fmt.Sprintf("value %d %d", w, i)))
				}
				if err != nil {
					errs <- fmt.Errorf("worker %d, write %d: %w", w, i, err)
				}
				if i%10 == 0 {
					if _, err := s.Instances(ctx); err != nil {
						errs <- fmt.Errorf("worker %d, read %d: %w", w, i, err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 10 {
			t.Error(err)
		}
	}
	if n > 10 {
		t.Errorf("… %d errors in all", n)
	}
	if t.Failed() {
		return
	}
	// Each worker's last write of each kind is what is stored.
	for w := range workers {
		id := portrait.InstanceID(2200000000 + w)
		var url, hash string
		kv := map[string]string{}
		for i := range writes {
			switch i % 4 {
			case 0:
				url = fmt.Sprintf("https://example.com/%d/%d", w, i)
			case 1:
				hash = fmt.Sprintf("hash %d %d", w, i)
			default:
				kv[fmt.Sprintf("key%d", i%5)] = fmt.Sprintf("value %d %d", w, i)
			}
		}
		inst := get(t, s, id)
		if inst.Settings.WebhookURL != url {
			t.Errorf("instance %d: WebhookURL %q, want %q", id, inst.Settings.WebhookURL, url)
		}
		if string(inst.TokenHash) != hash {
			t.Errorf("instance %d: TokenHash %q, want %q", id, inst.TokenHash, hash)
		}
		for k, v := range kv {
			wantValue(t, s, id, k, []byte(v))
		}
	}
	if generation(t, s) == g0 {
		t.Errorf("Generation did not change")
	}
}

func testContextCanceled(t *testing.T, s portrait.Store) {
	a := newInstance(1101000001)
	create(t, s, a)
	put(t, s, a.ID, "world", []byte("before"))
	g := generation(t, s)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	b := newInstance(1101000002)
	calls := []struct {
		name string
		fn   func(ctx context.Context) error
	}{
		{"CreateInstance", func(ctx context.Context) error { return s.CreateInstance(ctx, b) }},
		{"Instance", func(ctx context.Context) error { _, err := s.Instance(ctx, a.ID); return err }},
		{"Instances", func(ctx context.Context) error { _, err := s.Instances(ctx); return err }},
		{"SetTokenHash", func(ctx context.Context) error { return s.SetTokenHash(ctx, a.ID, []byte("canceled")) }},
		{"SetSettings", func(ctx context.Context) error { return s.SetSettings(ctx, a.ID, portrait.Settings{}) }},
		{"Put", func(ctx context.Context) error { return s.Put(ctx, a.ID, "world", []byte("canceled")) }},
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, a.ID, "world"); return err }},
		{"Generation", func(ctx context.Context) error { _, err := s.Generation(ctx); return err }},
		{"DeleteInstance", func(ctx context.Context) error { return s.DeleteInstance(ctx, a.ID) }},
	}
	for _, c := range calls {
		if err := c.fn(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: error %v, want one wrapping context.Canceled", c.name, err)
		}
	}
	dctx, dcancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer dcancel()
	for _, c := range calls {
		if err := c.fn(dctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s with an expired context: error %v, want one wrapping context.DeadlineExceeded", c.name, err)
		}
	}

	// Nothing changed, and the store still works.
	wantInstance(t, s, a)
	wantValue(t, s, a.ID, "world", []byte("before"))
	_, err := s.Instance(t.Context(), b.ID)
	wantNotFound(t, "Instance of an instance created with a canceled context", err)
	if n := generation(t, s); n != g {
		t.Errorf("Generation changed from %d to %d by canceled calls", g, n)
	}
	put(t, s, a.ID, "world", []byte("after"))
	wantValue(t, s, a.ID, "world", []byte("after"))
}
