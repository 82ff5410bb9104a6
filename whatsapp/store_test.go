package whatsapp

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/portrait-dev/portrait"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"
	_ "modernc.org/sqlite"
)

// openDB opens a SQLite database in t.TempDir with the pragmas portrait uses.
func openDB(t *testing.T) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portrait.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func tableExists(t *testing.T, db *sql.DB, name string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// saveDevice stores a paired device as whatsmeow does after PairSuccess.
func saveDevice(t *testing.T, e *Engine, jid types.JID) {
	t.Helper()
	dev := e.container.NewDevice()
	dev.ID = &jid
	dev.LID = ownLID
	dev.PushName = "Portrait Test"
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details:             []byte("details"),
		AccountSignature:    bytes.Repeat([]byte{1}, 64),
		AccountSignatureKey: bytes.Repeat([]byte{2}, 32),
		DeviceSignature:     bytes.Repeat([]byte{3}, 64),
	}
	if err := dev.Save(context.Background()); err != nil {
		t.Fatalf("saving a device: %v", err)
	}
}

func TestStoreTablesAndDevices(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	kv := newMemKV()
	e, err := New(ctx, db, kv, Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"whatsmeow_version", "whatsmeow_device", "whatsmeow_identity_keys", "whatsmeow_sessions", "whatsmeow_lid_map"} {
		if !tableExists(t, db, table) {
			t.Errorf("table %s missing", table)
		}
	}
	// Upgrading again is a no-op.
	if _, err := New(ctx, db, kv, Options{Logger: testLogger()}); err != nil {
		t.Fatalf("second New on the same database: %v", err)
	}

	// Two instances, two devices, one database.
	other := types.JID{User: "79007654321", Device: 3, Server: types.DefaultUserServer}
	saveDevice(t, e, ownJID)
	saveDevice(t, e, other)
	if err := e.saveJID(ctx, testInstance, ownJID); err != nil {
		t.Fatal(err)
	}
	if err := e.saveJID(ctx, testInstance+1, other); err != nil {
		t.Fatal(err)
	}

	for id, want := range map[portrait.InstanceID]types.JID{testInstance: ownJID, testInstance + 1: other} {
		got, err := e.loadJID(ctx, id)
		if err != nil || got != want {
			t.Fatalf("loadJID(%d) = %v, %v; want %v", id, got, err, want)
		}
		dev, err := e.device(ctx, got)
		if err != nil {
			t.Fatal(err)
		}
		if dev.ID == nil || *dev.ID != want || dev.PushName != "Portrait Test" || dev.LID != ownLID {
			t.Fatalf("device %v: ID %v, push name %q, LID %v", want, dev.ID, dev.PushName, dev.LID)
		}
		// The real client wraps it without connecting.
		c, err := e.realClient(ctx, got, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		if c.IsConnected() || c.IsLoggedIn() || c.OwnLID() != ownLID {
			t.Fatalf("client: connected %v, logged in %v, LID %v", c.IsConnected(), c.IsLoggedIn(), c.OwnLID())
		}
	}

	// A device deleted from the store is reported as such.
	missing := types.JID{User: "79000000000", Device: 1, Server: types.DefaultUserServer}
	if _, err := e.realClient(ctx, missing, testLogger()); !errors.Is(err, errNoDevice) {
		t.Fatalf("client of a missing device: %v", err)
	}
	c, err := e.realClient(ctx, other, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteDevice(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.device(ctx, other); !errors.Is(err, errNoDevice) {
		t.Fatalf("deleted device: %v", err)
	}
	// A new device is not stored until it pairs.
	if c, err := e.realClient(ctx, types.EmptyJID, testLogger()); err != nil {
		t.Fatal(err)
	} else if err := c.DeleteDevice(ctx); err != nil {
		t.Fatalf("deleting an unpaired device: %v", err)
	}
}

func TestNewRequiresForeignKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nofk.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := New(context.Background(), db, newMemKV(), Options{Logger: testLogger()}); err == nil {
		t.Fatal("New accepted a database without foreign keys")
	}
}

// Sessions on the real device store reach their state without touching
// the network: an unlinked instance waits for a QR request, and one whose
// KV names a device the store no longer has is unlinked.
func TestOpenOnRealStore(t *testing.T) {
	ctx := context.Background()
	kv := newMemKV()
	e, err := New(ctx, openDB(t), kv, Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	sink := &recSink{}
	fresh, err := e.Open(ctx, portrait.Instance{ID: testInstance, Type: portrait.TypeWhatsApp, Engine: Name}, sink)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.State() != portrait.StateNotAuthorized {
		t.Fatalf("unlinked instance: %s", fresh.State())
	}
	const staleID = testInstance + 1
	if err := e.saveJID(ctx, staleID, types.JID{User: "79000000000", Device: 2, Server: types.DefaultUserServer}); err != nil {
		t.Fatal(err)
	}
	stale, err := e.Open(ctx, portrait.Instance{ID: staleID, Type: portrait.TypeWhatsApp, Engine: Name}, sink)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stale device to be forgotten", func() bool {
		return device(kv, staleID) == "" && stale.State() == portrait.StateNotAuthorized
	})
	if _, err := e.Open(ctx, portrait.Instance{ID: 3100000001, Type: portrait.TypeMAX}, sink); err == nil {
		t.Fatal("a MAX instance opened")
	}
}
