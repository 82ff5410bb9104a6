package portrait

import (
	"context"
	"errors"
	"time"
)

// Engine connects instances to a messenger. The sandbox engine simulates one;
// the whatsapp engine links a real device.
type Engine interface {
	// Name is the engine's name as stored on instances ("sandbox", "whatsapp").
	Name() string
	// Types are the instance types the engine serves; instances of other
	// types are not created on it.
	Types() []InstanceType
	// Open starts a session for inst. Opens of different instances may
	// run concurrently. Events (state changes, picture changes)
	// are reported to sink for as long as the session is open. Open must not
	// block on the network: a session that still connects reports
	// StateStarting.
	Open(ctx context.Context, inst Instance, sink EventSink) (Session, error)
}

// Session is one open instance on an engine. All methods are safe for
// concurrent use. Methods that wait take a context and return promptly when it
// ends.
type Session interface {
	// State returns the current state of the instance.
	State() State
	// Account returns the linked account; zero when not linked.
	Account() Account

	// Picture fetches the current full-size picture of chat (a contact, a group
	// or the account itself). When existingID is not empty and the picture
	// still has that id, it returns a RemotePicture with Unchanged set and no
	// bytes. Outcomes that are not pictures are errors: ErrPictureHidden,
	// ErrPictureNotSet, ErrNoAccount, ErrUpstreamRateLimit, ErrUpstreamTimeout,
	// ErrNotAuthorized, ErrStarting, or a wrapped other error.
	Picture(ctx context.Context, chat ChatID, existingID string) (RemotePicture, error)

	// SetPicture sets the picture of a group, or the account's own picture
	// when chat is the zero ChatID. jpeg is the pipeline's 640×640 JPEG and
	// preview its 96×96 one. It returns the new picture id. No jpeg (nil)
	// removes the picture; an engine whose messenger cannot remove one
	// answers ErrUnsupported. Refusals are
	// errors: ErrUpstreamRateLimit, ErrGroupNotFound, ErrNotGroupMember,
	// ErrNotGroupAdmin, ErrUpstreamTimeout, ErrNotAuthorized, ErrStarting.
	SetPicture(ctx context.Context, chat ChatID, jpeg, preview []byte) (pictureID string, err error)

	// QR returns what the qr method shows: a code to scan, or that the account
	// is already linked, or why neither is possible.
	QR(ctx context.Context) (QR, error)
	// PairingCode starts linking by phone number instead of by QR code and
	// returns the code ("ABCD-EFGH") to type on the phone with that number
	// (digits only, with country code). It fails with ErrAlreadyLinked,
	// ErrStarting or ErrUnsupported.
	PairingCode(ctx context.Context, phone string) (string, error)
	// Logout unlinks the account.
	Logout(ctx context.Context) error
	// Reboot reconnects the session.
	Reboot(ctx context.Context) error
	// Close ends the session and releases its resources.
	Close() error
}

// Credentialed is an engine whose instances take a secret from the
// operator before they can work (the maxbot engine: a bot token). The
// secret is stored like the engine's other credentials and never logged.
type Credentialed interface {
	// SetCredential stores instance id's secret (an empty one forgets it)
	// and applies it to an open session at once.
	SetCredential(ctx context.Context, id InstanceID, secret string) error
}

// RemotePicture is a picture as the messenger holds it.
type RemotePicture struct {
	ID        string // the messenger's picture id
	Data      []byte // the image bytes (any format the pipeline accepts); nil when Unchanged
	URL       string // the messenger's own URL for the picture, if it has one
	Unchanged bool   // the picture still has the id the caller passed
}

// QRKind is the type field of the qr method's reply.
type QRKind string

// The kinds of qr reply.
const (
	QRCode          QRKind = "qrCode"
	QRAlreadyLogged QRKind = "alreadyLogged"
	QRError         QRKind = "error"
)

// QR is the reply of the qr method: for QRCode, Code is the text to encode
// in the QR image; for QRError, Err says why there is none (ErrStarting, or
// an engine's own error whose text is shown to the client).
type QR struct {
	Kind QRKind
	Code string
	Err  error
}

// EventSink receives an open session's events. Its methods must not block
// for long: they are called from the engine's own goroutines.
type EventSink interface {
	StateChanged(id InstanceID, state State)
	PictureChanged(id InstanceID, change PictureChange)
}

// PictureChange is the engine's report that a picture changed upstream.
type PictureChange struct {
	Chat      ChatID // whose picture changed: a contact, a group, or the account itself
	Kind      SubjectKind
	Author    string // who changed a group's picture, when known
	Removed   bool
	PictureID string // the new picture id, when known
	At        time.Time
}

// SubjectKind says whose picture a PictureChange is about.
type SubjectKind string

// The subjects of a picture change.
const (
	SubjectContact SubjectKind = "contact"
	SubjectGroup   SubjectKind = "group"
	SubjectSelf    SubjectKind = "self"
)

// Errors engines and the avatar service return. Callers match them with
// errors.Is; the HTTP layer maps each one to its documented reply.
var (
	// ErrPictureHidden: the contact's privacy settings hide the picture.
	ErrPictureHidden = errors.New("picture hidden by privacy settings")
	// ErrPictureNotSet: the contact or group has no picture.
	ErrPictureNotSet = errors.New("no picture set")
	// ErrNoAccount: there is no messenger account on that number.
	ErrNoAccount = errors.New("no account on that number")
	// ErrUpstreamRateLimit: the messenger refused the call with its own
	// rate limit (WhatsApp "rate-overlimit").
	ErrUpstreamRateLimit = errors.New("rate-overlimit")
	// ErrUpstreamPicture: the messenger gave a picture portrait cannot
	// process (too many pixels, a format it does not read, corrupt data).
	// The caller did nothing wrong: it is the messenger's side.
	ErrUpstreamPicture = errors.New("the messenger's picture could not be processed")
	// ErrUpstreamTimeout: the messenger did not answer in time.
	ErrUpstreamTimeout = errors.New("messenger did not answer in time")
	// ErrGroupNotFound: no such group (WhatsApp answers with a time-out,
	// which GREEN-API reports as reason "Timed Out").
	ErrGroupNotFound = errors.New("no such group")
	// ErrNotGroupMember: the account is not a member of the group.
	ErrNotGroupMember = errors.New("the account is not a member of the group")
	// ErrNotGroupAdmin: only admins may change the group's info and the
	// account is not one.
	ErrNotGroupAdmin = errors.New("only group admins may change the group picture and the account is not an admin")
	// ErrNotAuthorized: the instance is not linked to an account.
	ErrNotAuthorized = errors.New("instance account not authorized")
	// ErrStarting: the instance is still starting.
	ErrStarting = errors.New("instance in starting process try later")
	// ErrAlreadyLinked: the instance is already linked to an account.
	ErrAlreadyLinked = errors.New("instance account already authorized")
	// ErrRefused: the messenger refused a change for a reason of its own
	// (the error's text says which); the request itself was fine.
	ErrRefused = errors.New("the messenger refused the change")
	// ErrUnsupported: the engine or messenger cannot do this.
	ErrUnsupported = errors.New("not supported by this messenger")
	// ErrNotFound: a stored thing does not exist.
	ErrNotFound = errors.New("not found")
)
