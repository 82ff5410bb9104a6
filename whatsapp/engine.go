package whatsapp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/internal/sessions"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCompanionReg"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// Name is the engine's name, as stored on instances.
const Name = "whatsapp"

// keyDevice is the KV key under which an instance's device JID is kept
// ("79001234567:8@s.whatsapp.net"); an empty value means "not linked".
const keyDevice = "whatsapp/device"

// sqlDialect is the default go.mau.fi/util/dbutil dialect of portrait's database
// (modernc.org/sqlite registers itself as "sqlite").
const sqlDialect = "sqlite"

// Defaults of Options.
const (
	DefaultDownloadTimeout = 20 * time.Second
	DefaultMaxPictureBytes = 5 << 20
	DefaultReconnectMin    = time.Second
	DefaultReconnectMax    = 2 * time.Minute
	DefaultRequestTimeout  = 20 * time.Second
	DefaultDeviceName      = "portrait"
	DefaultPairingClient   = "Chrome (Linux)"
)

var (
	// ErrClosed is returned by the methods of a session after Close, and by
	// Open after Engine.Close.
	ErrClosed = errors.New("whatsapp: session closed")
	// ErrPictureTooLarge is returned (wrapped) by Session.Picture when the
	// picture on WhatsApp's CDN is larger than Options.MaxPictureBytes.
	ErrPictureTooLarge = errors.New("whatsapp: picture larger than the download limit")
	// ErrRefusedURL is returned (wrapped) by Session.Picture when WhatsApp
	// hands out a picture URL that is not https on one of its CDN hosts
	// (*.whatsapp.net).
	ErrRefusedURL = errors.New("whatsapp: picture URL is not on WhatsApp's CDN")

	// errNoDevice: the whatsmeow store has no device with the JID the KV names.
	errNoDevice = errors.New("no such device in the whatsmeow store")
)

// Options tune the engine. Zero fields take the defaults above.
type Options struct {
	// DownloadTimeout bounds the download of one picture from WhatsApp's CDN.
	DownloadTimeout time.Duration
	// MaxPictureBytes caps a downloaded picture; larger ones are refused
	// with ErrPictureTooLarge.
	MaxPictureBytes int64
	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// connection attempts of a linked device.
	ReconnectMin, ReconnectMax time.Duration
	// RequestTimeout bounds each query to WhatsApp (whatsmeow's own limit
	// is 75 s). The caller's context may end it sooner.
	RequestTimeout time.Duration
	// DeviceName is the name WhatsApp shows for portrait under the phone's
	// Linked devices. It is process-wide: whatsmeow keeps it in a global, so
	// the first Engine of a process sets it.
	DeviceName string
	// PairingClient is the client shown in the pairing-code notification on
	// the phone. WhatsApp accepts only "Browser (OS)" with a common browser
	// and OS, so it is not the device name.
	PairingClient string
	// Dialect is whatsmeow's name for the database's SQL dialect: "sqlite"
	// (the default) or "pgx" for PostgreSQL through pgx's database/sql
	// driver.
	Dialect string
	// Version pins the WhatsApp Web version announced ("2.3000.1012345678");
	// empty keeps it current by asking WhatsApp (see Run).
	Version string
	// VersionCheck is how often Run asks WhatsApp for its current web
	// version.
	VersionCheck time.Duration
	// Logger receives the engine's logs, including whatsmeow's (never
	// protocol dumps, QR codes or message contents); nil means
	// slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.VersionCheck <= 0 {
		o.VersionCheck = DefaultVersionCheck
	}
	if o.DownloadTimeout <= 0 {
		o.DownloadTimeout = DefaultDownloadTimeout
	}
	if o.MaxPictureBytes <= 0 {
		o.MaxPictureBytes = DefaultMaxPictureBytes
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = DefaultReconnectMin
	}
	if o.ReconnectMax <= 0 {
		o.ReconnectMax = DefaultReconnectMax
	}
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = o.ReconnectMin
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.DeviceName == "" {
		o.DeviceName = DefaultDeviceName
	}
	if o.PairingClient == "" {
		o.PairingClient = DefaultPairingClient
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Engine links one WhatsApp device per instance through whatsmeow. The
// devices' keys live in whatsmeow's tables in portrait's own database; each
// instance's device JID is kept in its portrait.KV.
type Engine struct {
	opts Options
	kv   portrait.KV
	log  *slog.Logger

	container *sqlstore.Container // nil in tests that never touch whatsmeow's store
	newClient clientFactory       // the seam: real whatsmeow clients, or a substitute

	http     *http.Client        // picture downloads from the CDN
	allowURL func(*url.URL) bool // which picture URLs may be fetched (tests widen it)

	// Timings tests shorten.
	loginTimeout time.Duration // a connection that has not logged in by then is dropped
	healthEvery  time.Duration // how often a healthy connection is looked at
	storeTimeout time.Duration // bound on KV writes made from whatsmeow's goroutines

	// versionSource asks WhatsApp for its current web version (the seam
	// for tests); version is what is in use.
	versionSource func(context.Context) (store.WAVersionContainer, error)
	version       versionState

	sessions sessions.Registry[*session]
}

// New returns the engine. db is portrait's own SQLite pool (modernc.org/sqlite,
// foreign keys on): whatsmeow's tables (whatsmeow_*) are created or upgraded
// in it, next to portrait's, one device row per linked instance. kv is where
// each instance's device JID is remembered. db stays the caller's: Close does
// not close it.
func New(ctx context.Context, db *sql.DB, kv portrait.KV, opts Options) (*Engine, error) {
	if db == nil {
		return nil, errors.New("whatsapp: New: nil database")
	}
	if kv == nil {
		return nil, errors.New("whatsapp: New: nil KV")
	}
	e := newEngine(kv, opts)
	dialect := e.opts.Dialect
	if dialect == "" {
		dialect = sqlDialect
	}
	c := sqlstore.NewWithDB(db, dialect, newWALogger(e.log, "whatsmeow/store"))
	if err := c.Upgrade(ctx); err != nil {
		return nil, fmt.Errorf("whatsapp: creating or upgrading whatsmeow's tables: %w", err)
	}
	e.container = c
	e.newClient = e.realClient
	setDeviceProps(e.opts.DeviceName)
	return e, nil
}

// newEngine returns an engine without a device store or client factory;
// New and tests fill those in.
func newEngine(kv portrait.KV, opts Options) *Engine {
	opts = opts.withDefaults()
	e := &Engine{
		opts:          opts,
		kv:            kv,
		log:           opts.Logger.With("engine", Name),
		allowURL:      cdnURL,
		loginTimeout:  30 * time.Second,
		healthEvery:   time.Minute,
		storeTimeout:  10 * time.Second,
		versionSource: latestVersion,
	}
	e.sessions.Closed = ErrClosed
	e.http = e.newHTTPClient(nil)
	return e
}

var deviceProps sync.Once

// setDeviceProps sets what WhatsApp shows for portrait on the phone. whatsmeow
// keeps it in package globals, so only the first call of a process counts.
func setDeviceProps(name string) {
	deviceProps.Do(func() {
		// Only the name: store.SetOSInfo would also change the user agent
		// whatsmeow presents.
		store.DeviceProps.Os = proto.String(name)
		store.DeviceProps.PlatformType = waCompanionReg.DeviceProps_CHROME.Enum()
	})
}

// Name returns "whatsapp".
func (e *Engine) Name() string { return Name }

// Types returns WhatsApp only: the engine links WhatsApp accounts.
func (e *Engine) Types() []portrait.InstanceType {
	return []portrait.InstanceType{portrait.TypeWhatsApp}
}

// Open starts the session of a WhatsApp instance. It reads the instance's
// device JID from the KV and returns at once: a linked instance reports
// StateStarting and connects in the background (with backoff), an unlinked
// one reports StateNotAuthorized and connects only when a QR code or a
// pairing code is asked for. One session per instance may be open.
func (e *Engine) Open(ctx context.Context, inst portrait.Instance, sink portrait.EventSink) (portrait.Session, error) {
	if inst.Type != portrait.TypeWhatsApp {
		return nil, fmt.Errorf("whatsapp: open instance %d: it is a %q instance; the whatsapp engine links WhatsApp accounts only (use another engine for MAX)", inst.ID, inst.Type)
	}
	if sink == nil {
		sink = sessions.Discard{}
	}
	jid, err := e.loadJID(ctx, inst.ID)
	if err != nil {
		return nil, fmt.Errorf("whatsapp: open instance %d: %w", inst.ID, err)
	}
	s, err := e.sessions.Open(inst.ID, func() *session {
		s := newSession(e, inst.ID, jid, sink)
		s.start()
		return s
	})
	if err != nil {
		return nil, fmt.Errorf("whatsapp: open instance %d: %w", inst.ID, err)
	}
	return s, nil
}

// Close closes every open session and makes Open fail. The database stays
// open.
func (e *Engine) Close() error {
	e.sessions.CloseAll()
	return nil
}

// loadJID returns the device JID the KV holds for instance id, or the empty
// JID when it holds none.
func (e *Engine) loadJID(ctx context.Context, id portrait.InstanceID) (types.JID, error) {
	b, err := e.kv.Get(ctx, id, keyDevice)
	if errors.Is(err, portrait.ErrNotFound) || (err == nil && len(b) == 0) {
		return types.EmptyJID, nil
	}
	if err != nil {
		return types.EmptyJID, fmt.Errorf("reading the device JID: %w", err)
	}
	jid, err := types.ParseJID(string(b))
	if err != nil {
		return types.EmptyJID, fmt.Errorf("reading the device JID: stored value %q: %w", b, err)
	}
	return jid, nil
}

// saveJID remembers the device JID of instance id; the empty JID forgets it.
func (e *Engine) saveJID(ctx context.Context, id portrait.InstanceID, jid types.JID) error {
	if jid.IsEmpty() {
		if err := e.kv.DeleteKey(ctx, id, keyDevice); err != nil {
			return fmt.Errorf("forgetting the device JID: %w", err)
		}
		return nil
	}
	if err := e.kv.Put(ctx, id, keyDevice, []byte(jid.String())); err != nil {
		return fmt.Errorf("storing the device JID: %w", err)
	}
	return nil
}

// device returns the stored device jid, or a new unpaired device when jid
// is empty. It fails with an error wrapping errNoDevice when the store does
// not have jid (it was logged out and deleted).
func (e *Engine) device(ctx context.Context, jid types.JID) (*store.Device, error) {
	if e.container == nil {
		return nil, errors.New("whatsapp: no device store")
	}
	if jid.IsEmpty() {
		return e.container.NewDevice(), nil
	}
	dev, err := e.container.GetDevice(ctx, jid)
	if err != nil {
		return nil, fmt.Errorf("loading device %s: %w", jid, err)
	}
	if dev == nil {
		return nil, fmt.Errorf("device %s: %w", jid, errNoDevice)
	}
	return dev, nil
}

// realClient is the production clientFactory: a whatsmeow client on the
// device jid (or on a new device).
func (e *Engine) realClient(ctx context.Context, jid types.JID, log *slog.Logger) (waClient, error) {
	dev, err := e.device(ctx, jid)
	if err != nil {
		return nil, err
	}
	cli := whatsmeow.NewClient(dev, newWALogger(log, "whatsmeow"))
	// The session reconnects itself, with exponential backoff and also
	// after a failed first connection; whatsmeow's own loop would retry
	// linearly and forever, next to it.
	cli.EnableAutoReconnect = false
	// portrait reads no chat history: do not download history blobs.
	cli.ManualHistorySyncDownload = true
	// Ack WhatsApp's notifications only after the event handlers return,
	// that is after a picture change is committed (see onPicture).
	cli.SynchronousAck = true
	return waAdapter{cli}, nil
}

// backoff returns the wait before connection attempt n+1 after n failed
// ones (sessions.Backoff between ReconnectMin and ReconnectMax).
func (e *Engine) backoff(n int) time.Duration {
	return sessions.Backoff(e.opts.ReconnectMin, e.opts.ReconnectMax, n)
}
