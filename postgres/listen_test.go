package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/pgtest"
)

// listener runs Listen on db until the test ends and hands its events out
// on a channel.
func listener(t *testing.T, db *DB) <-chan Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan Event, 100)
	done := make(chan error, 1)
	go func() {
		done <- db.Listen(ctx, func(e Event) { events <- e })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Listen after its context ended: %v, want an error wrapping context.Canceled", err)
		}
	})
	wantEvent(t, events, Event{Kind: EventResync})
	return events
}

// wantEvent waits for the next event and checks it.
func wantEvent(t *testing.T, events <-chan Event, want Event) {
	t.Helper()
	select {
	case got := <-events:
		if got != want {
			t.Errorf("event %+v, want %+v", got, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no event, want %+v", want)
	}
}

// TestListen: what one process commits, a listener in another hears
// about; what is rolled back, it does not.
func TestListen(t *testing.T) {
	dsn := pgtest.DB(t)
	db, other := mustOpen(t, dsn), mustOpen(t, dsn)
	events := listener(t, db)
	ctx := t.Context()
	a, b := instance(1101000001), instance(1101000002)

	// Instances.
	for _, inst := range []portrait.Instance{a, b} {
		if err := other.CreateInstance(ctx, inst); err != nil {
			t.Fatal(err)
		}
		wantEvent(t, events, Event{Kind: EventInstance, Instance: inst.ID})
	}
	if err := other.SetSettings(ctx, a.ID, portrait.Settings{WebhookURL: "https://example.com"}); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, Event{Kind: EventInstance, Instance: a.ID})
	if err := other.SetTokenHash(ctx, b.ID, []byte("hash")); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, Event{Kind: EventInstance, Instance: b.ID})

	// Notifications and jobs. A failed Enqueue (one instance is missing)
	// commits nothing and tells nothing: the next event is the next
	// change's.
	note := func(id portrait.InstanceID) portrait.Notification {
		return portrait.Notification{Instance: id, Body: []byte(`{}`), CreatedAt: time.Now()}
	}
	if _, err := other.Enqueue(ctx, []portrait.Notification{note(a.ID), note(1101999999)}); !errors.Is(err, portrait.ErrNotFound) {
		t.Fatalf("Enqueue with a missing instance: %v", err)
	}
	if _, err := other.Enqueue(ctx, []portrait.Notification{note(b.ID)}); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, Event{Kind: EventQueue, Instance: b.ID})
	jobID, err := other.AddJob(ctx, portrait.Job{Instance: a.ID, Kind: "avatarInfo", DueAt: time.Now(), CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, Event{Kind: EventJob, Instance: a.ID})
	n := note(a.ID)
	if _, err := other.FinishJob(ctx, portrait.Job{ID: jobID, Instance: a.ID}, &n); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, Event{Kind: EventQueue, Instance: a.ID})
	// Finishing it again enqueues nothing, and tells nothing.
	if _, err := other.FinishJob(ctx, portrait.Job{ID: jobID, Instance: a.ID}, &n); err != nil {
		t.Fatal(err)
	}
	if err := other.DeleteInstance(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, Event{Kind: EventInstance, Instance: b.ID})

	// Cache changes, with their node (an id may hold spaces) and chat; ""
	// names every chat.
	changes := []CacheChange{{Instance: a.ID, Chat: "11001230001@c.us"}, {Instance: a.ID}}
	if err := other.AnnounceCache(ctx, "host:/data dir", changes); err != nil {
		t.Fatal(err)
	}
	got := []Event{<-events, <-events}
	slices.SortFunc(got, func(x, y Event) int { return strings.Compare(y.Chat, x.Chat) })
	for i, c := range changes {
		if got[i].Kind != EventCache || got[i].Instance != a.ID || got[i].Chat != c.Chat || got[i].Node != "host:/data dir" {
			t.Errorf("cache event %+v, want instance %d, node %q, chat %q", got[i], a.ID, "host:/data dir", c.Chat)
		}
	}
	select {
	case e := <-events:
		t.Errorf("unexpected event %+v", e)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestListenReconnects: when the listener's connection is cut, Listen
// connects again, says so with EventResync, and goes on.
func TestListenReconnects(t *testing.T) {
	db := mustOpen(t, pgtest.DB(t))
	events := listener(t, db)
	ctx := t.Context()
	var cut int
	err := db.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'portrait listen' AND datname = current_database()`).Scan(&cut)
	if err != nil || cut != 1 {
		t.Fatalf("cutting the listener's connection: %d cut, %v", cut, err)
	}
	wantEvent(t, events, Event{Kind: EventResync})
	if err := db.CreateInstance(ctx, instance(1101000001)); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, Event{Kind: EventInstance, Instance: 1101000001})
}

// TestExclusive: two processes taking the same lock run one after the
// other; another name does not wait.
func TestExclusive(t *testing.T) {
	dsn := pgtest.DB(t)
	db, other := mustOpen(t, dsn), mustOpen(t, dsn)
	ctx := t.Context()
	inside := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.Exclusive(ctx, "first", func(context.Context) error {
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside
	if err := other.Exclusive(ctx, "another", func(context.Context) error { return nil }); err != nil {
		t.Fatalf("another lock: %v", err)
	}
	got := make(chan time.Time, 1)
	go func() {
		_ = other.Exclusive(ctx, "first", func(context.Context) error { got <- time.Now(); return nil })
	}()
	select {
	case <-got:
		t.Fatal("the same lock was taken twice at once")
	case <-time.After(300 * time.Millisecond):
	}
	released := time.Now()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-got:
		if at.Before(released) {
			t.Error("taken before it was released")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lock was not taken after its release")
	}
}

// TestConsoleSessions: a session one process starts is live in another,
// until it is idle or old or ended; EndSessions ends them all.
func TestConsoleSessions(t *testing.T) {
	dsn := pgtest.DB(t)
	db, other := mustOpen(t, dsn), mustOpen(t, dsn)
	ctx := t.Context()
	key := func(s string) [32]byte { return sha256.Sum256([]byte(s)) }
	if err := db.StartSession(ctx, key("a")); err != nil {
		t.Fatal(err)
	}
	if ok, err := other.UseSession(ctx, key("a"), time.Minute, time.Hour); !ok || err != nil {
		t.Fatalf("a session started in one process, used in another: %v, %v", ok, err)
	}
	if ok, _ := other.UseSession(ctx, key("unknown"), time.Minute, time.Hour); ok {
		t.Error("an unknown session is live")
	}
	time.Sleep(300 * time.Millisecond)
	if ok, _ := other.UseSession(ctx, key("a"), 200*time.Millisecond, time.Hour); ok {
		t.Error("an idle session is live")
	}
	if ok, _ := other.UseSession(ctx, key("a"), time.Minute, time.Hour); ok {
		t.Error("an ended session came back")
	}
	for _, k := range []string{"b", "c"} {
		if err := db.StartSession(ctx, key(k)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if ok, _ := other.UseSession(ctx, key("b"), time.Minute, 200*time.Millisecond); ok {
		t.Error("a session past its absolute timeout is live")
	}
	if err := other.EndSession(ctx, key("c")); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.UseSession(ctx, key("c"), time.Minute, time.Hour); ok {
		t.Error("an ended session is live")
	}
	if err := db.StartSession(ctx, key("d")); err != nil {
		t.Fatal(err)
	}
	if err := other.EndSessions(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.UseSession(ctx, key("d"), time.Minute, time.Hour); ok {
		t.Error("a session outlived EndSessions")
	}
}
