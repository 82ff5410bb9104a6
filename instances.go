package portrait

import (
	"context"
	"errors"
	"time"
)

// Instances is the only door to the instances a server serves and to their
// engine sessions: the HTTP layer, the notification hub, the console and the
// CLI all go through it. The instance package implements it.
type Instances interface {
	// Authenticate returns the instance id if token is its
	// apiTokenInstance. It fails with ErrUnknownInstance or ErrBadToken;
	// the token is compared in constant time.
	Authenticate(ctx context.Context, id InstanceID, token string) (Handle, error)
	// Get returns an instance by id, or ErrUnknownInstance.
	Get(ctx context.Context, id InstanceID) (Handle, error)
	// List returns every instance, ordered by id.
	List(ctx context.Context) ([]Handle, error)
	// Create makes a new instance of type t on the named engine ("" for
	// the default engine) and returns it with its token, which is shown
	// once and stored only hashed. It fails when the engine does not exist
	// or does not serve t.
	Create(ctx context.Context, t InstanceType, engine string) (Handle, string, error)
	// Delete removes an instance and everything stored for it. A linked
	// account is logged out first (best effort), so that the phone no
	// longer lists the device.
	Delete(ctx context.Context, id InstanceID) error
	// RotateToken gives an instance a new token and returns it; the old one
	// stops working at once.
	RotateToken(ctx context.Context, id InstanceID) (string, error)
	// SetSettings stores an instance's settings and applies them.
	SetSettings(ctx context.Context, id InstanceID, s Settings) error
	// SetCredential gives an instance the secret its engine needs (see
	// Credentialed); ErrUnsupported when its engine takes none.
	SetCredential(ctx context.Context, id InstanceID, secret string) error
}

// Handle is one instance as the layers above the engines see it. Its
// session calls apply the readiness checks themselves and fail with the
// domain errors (ErrStarting, ErrNotAuthorized, ErrUnavailable, …), so no
// caller needs the engine session itself.
type Handle interface {
	ID() InstanceID
	Type() InstanceType
	// Engine is the name of the instance's engine.
	Engine() string
	// Settings are the instance's current settings.
	Settings() Settings
	// CreatedAt is when the instance was created.
	CreatedAt() time.Time

	// State is the instance's current state; StateStarting while its
	// session opens, "" when it cannot be served (see Err).
	State() State
	// Account is the linked account; zero when not linked.
	Account() Account
	// Err is why the instance cannot be served (its engine is missing or
	// refused to open it), wrapping ErrUnavailable; nil otherwise.
	Err() error
	// Ready returns nil when the instance is linked and can reach its
	// messenger; otherwise ErrUnavailable, ErrStarting or ErrNotAuthorized.
	Ready() error

	// Picture is Session.Picture after the Ready check.
	Picture(ctx context.Context, chat ChatID, existingID string) (RemotePicture, error)
	// SetPicture is Session.SetPicture after the Ready check.
	SetPicture(ctx context.Context, chat ChatID, jpeg, preview []byte) (string, error)
	// QR is Session.QR; it fails with ErrUnavailable only.
	QR(ctx context.Context) (QR, error)
	// PairingCode is Session.PairingCode; it fails with ErrUnavailable too.
	PairingCode(ctx context.Context, phone string) (string, error)
	// Logout is Session.Logout; it fails with ErrUnavailable too.
	Logout(ctx context.Context) error
	// Reboot is Session.Reboot; it fails with ErrUnavailable too.
	Reboot(ctx context.Context) error
}

// Errors of the instance set, matched with errors.Is.
var (
	// ErrUnknownInstance: no instance has that id (GREEN-API: 403).
	ErrUnknownInstance = errors.New("unknown instance")
	// ErrBadToken: the instance exists but the token is wrong (401).
	ErrBadToken = errors.New("wrong apiTokenInstance")
	// ErrUnavailable: the instance exists but cannot be served, because
	// its engine is not part of this server or refused to open it.
	ErrUnavailable = errors.New("the instance cannot be served")
)

// Events receives what happens to open instances: the instance set hands
// on its engines' events with the instance they concern, once the instance
// can be served (an engine may report its first state while it is still
// being opened). Its methods must not block for long.
type Events interface {
	StateChanged(h Handle, state State)
	PictureChanged(h Handle, change PictureChange)
}

// ErrStorage: portrait's own store failed (a full disk, a lost database
// connection). Callers wrap the store's error with it, so that replies can
// say "try again later" without naming internals.
var ErrStorage = errors.New("storage failed")
