package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
)

// Name is the engine's name, as stored on instances.
const Name = "sandbox"

// KV keys of a world: the world document and one key per picture.
const (
	keyWorld      = "sandbox/world"
	keyPicture    = "sandbox/pic/" // + chat id, or "self" for the account's own picture
	worldVersion  = 1
	ownPictureKey = "self"
)

// ErrClosed is returned by the methods of a session after Close.
var ErrClosed = errors.New("session closed")

// Options tune the simulation. The zero Options switch every simulation off:
// no latency, no cooldown, no waits, no faults.
type Options struct {
	// Latency is added to every upstream call (Picture, SetPicture, Logout).
	Latency time.Duration
	// PictureCooldown: a second picture change of the same target (the
	// account's own picture, or one group) within this window fails with
	// portrait.ErrUpstreamRateLimit. The window starts at the last
	// successful change; refused attempts do not extend it. WhatsApp's is
	// 10 s. 0 switches the simulation off.
	PictureCooldown time.Duration
	// UnknownGroupTimeout is how long a call about a group that does not
	// exist waits before failing with portrait.ErrGroupNotFound ("Timed
	// Out"); 0 answers at once.
	UnknownGroupTimeout time.Duration
	// FaultTimeout is how long a lookup of a contact with fault "timeout"
	// hangs before failing with portrait.ErrUpstreamTimeout (capped by the
	// call's context).
	FaultTimeout time.Duration
	// StartDelay is how long a session reports StateStarting after Open or
	// Reboot before its real state; 0 reports the real state at once.
	StartDelay time.Duration
	// QRRotate is the period after which the QR code changes (WhatsApp:
	// 20 s); 0 keeps the code of a session fixed.
	QRRotate time.Duration
	// Faults switches on the per-contact faults ("timeout", "rate-limit").
	// When false, such contacts behave as if they had no fault.
	Faults bool
	// Clock tells the time for cooldowns, QR rotation and picture ids; nil
	// means time.Now. Waits (Latency, StartDelay, …) always use real timers.
	Clock func() time.Time
	// Record, when set, is told of every session opened and closed and of
	// every call that reached the simulated messenger (see Record). It must
	// not block for long.
	Record func(Record)
	// Logger receives the engine's rare background errors; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Engine is the sandbox engine: a simulated messenger whose world (account,
// contacts, groups, pictures) is kept per instance in a portrait.KV.
//
// The world is read from the KV at every call and written back before a
// change is acknowledged, so several Engines on the same KV (a server and a
// CLI) see each other's changes; events, though, reach only the sessions of
// the Engine that made the change.
type Engine struct {
	kv   portrait.KV
	seed Seeder
	opts Options
	now  func() time.Time
	log  *slog.Logger

	mu    sync.Mutex
	insts map[portrait.InstanceID]*instance
}

// instance is the engine's in-memory state of one instance.
type instance struct {
	id portrait.InstanceID

	// mu serialises every load-modify-store of the world and guards the
	// fields below. Lock order: instance.mu before session.mu.
	mu       sync.Mutex
	sessions map[*session]struct{}
	lastSet  map[string]time.Time // picture target → last successful SetPicture
}

// storedWorld is the world document kept under keyWorld.
type storedWorld struct {
	Version       int   `json:"version"`
	World         World `json:"world"`
	LastPictureID int64 `json:"lastPictureId"`
}

// New returns a sandbox engine keeping its worlds in kv. New instances are
// seeded from seed; nil means the built-in demo world (DemoSeeder).
func New(kv portrait.KV, seed Seeder, opts Options) *Engine {
	if seed == nil {
		seed = DemoSeeder()
	}
	e := &Engine{kv: kv, seed: seed, opts: opts, now: opts.Clock, log: opts.Logger,
		insts: map[portrait.InstanceID]*instance{}}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	return e
}

// Name returns "sandbox".
func (e *Engine) Name() string { return Name }

// Types returns both instance types: the sandbox simulates WhatsApp and MAX.
func (e *Engine) Types() []portrait.InstanceType {
	return []portrait.InstanceType{portrait.TypeWhatsApp, portrait.TypeMAX}
}

func (e *Engine) instance(id portrait.InstanceID) *instance {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := e.insts[id]
	if in == nil {
		in = &instance{id: id, sessions: map[*session]struct{}{}, lastSet: map[string]time.Time{}}
		e.insts[id] = in
	}
	return in
}

// Open loads the world of inst (seeding and storing it first if the instance
// has none) and starts a session. The session reports its first state to
// sink at once: StateStarting when Options.StartDelay is set, else its real
// state. Several sessions of one instance may be open; they share the world.
func (e *Engine) Open(ctx context.Context, inst portrait.Instance, sink portrait.EventSink) (portrait.Session, error) {
	if !inst.Type.Valid() {
		return nil, fmt.Errorf("sandbox: open instance %d: unknown instance type %q", inst.ID, inst.Type)
	}
	if sink == nil {
		sink = discard{}
	}
	in := e.instance(inst.ID)
	in.mu.Lock()
	defer in.mu.Unlock()
	sw, err := e.loadOrSeed(ctx, in, inst.Type)
	if err != nil {
		return nil, fmt.Errorf("sandbox: open instance %d: %w", inst.ID, err)
	}
	s := newSession(e, in, inst.Type, sink)
	s.lease = portrait.WithLease(context.Background(), leaseOf(ctx))
	in.sessions[s] = struct{}{}
	s.begin(sw, false)
	e.record(ctx, RecordOpen, inst.ID)
	return s, nil
}

// EnsureWorld loads the world of inst, seeding and storing it first if the
// instance has none, without opening a session. The admin operations need
// a stored world; a CLI that changes a world before the server ever opened
// the instance calls this first.
func (e *Engine) EnsureWorld(ctx context.Context, inst portrait.Instance) error {
	if !inst.Type.Valid() {
		return fmt.Errorf("sandbox: instance %d: unknown instance type %q", inst.ID, inst.Type)
	}
	in := e.instance(inst.ID)
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, err := e.loadOrSeed(ctx, in, inst.Type); err != nil {
		return fmt.Errorf("sandbox: instance %d: %w", inst.ID, err)
	}
	return nil
}

// World returns the current world of instance id, without picture bytes. It
// fails with an error wrapping portrait.ErrNotFound when the instance has no
// world yet (it was never opened; see EnsureWorld).
func (e *Engine) World(ctx context.Context, id portrait.InstanceID) (World, error) {
	in := e.instance(id)
	in.mu.Lock()
	defer in.mu.Unlock()
	sw, err := e.load(ctx, in)
	if err != nil {
		return World{}, fmt.Errorf("sandbox: world of instance %d: %w", id, err)
	}
	return sw.World.clone(false), nil
}

// Scan simulates the phone scanning the QR code: the account of instance id
// becomes linked (persisted), and open sessions that are not starting turn
// StateAuthorized. Scanning a linked account does nothing.
func (e *Engine) Scan(ctx context.Context, id portrait.InstanceID) error {
	in := e.instance(id)
	in.mu.Lock()
	defer in.mu.Unlock()
	sw, err := e.load(ctx, in)
	if err != nil {
		return fmt.Errorf("sandbox: scan instance %d: %w", id, err)
	}
	if sw.World.Account.Linked {
		return nil
	}
	sw.World.Account.Linked = true
	if err := e.save(ctx, in, sw); err != nil {
		return fmt.Errorf("sandbox: scan instance %d: %w", id, err)
	}
	return nil
}

// Update describes a change to one chat of a world made "on the messenger's
// side", as the admin API and CLI do. Nil and zero fields leave things as
// they are.
type Update struct {
	// Picture sets a new picture (any image format).
	Picture []byte
	// RemovePicture removes the picture. It may not be combined with Picture.
	RemovePicture bool
	// Hidden sets whether the contact's privacy settings hide the picture.
	Hidden *bool
	// HasAccount sets whether the contact's number has an account.
	HasAccount *bool
	// Fault sets the contact's fault: FaultNone, FaultTimeout or FaultRateLimit.
	Fault *string
	// Author is who changed a group's picture, reported in the PictureChange.
	Author string
	// Name sets a contact's label or a group's subject.
	Name *string
	// Role sets the account's role in a group: RoleAdmin, RoleMember or RoleNone.
	Role *string
	// OnlyAdminsEditInfo sets whether only admins may edit the group's info.
	OnlyAdminsEditInfo *bool
}

// Update changes one chat of the world of instance id and persists it. chat
// is a contact, a group or the account's own id (for its picture). A chat
// the world does not know yet is created: a contact with an account, or a
// group in which the account is a member (or u.Role). Picture changes are
// reported as a portrait.PictureChange (Kind self, contact or group) to the
// authorized sessions of the instance; other changes report nothing.
//
// Update returns once the sinks have taken the change (as a messenger's
// notification is acknowledged only once it was handled), so that a change
// the caller saw succeed has been committed by the sink.
func (e *Engine) Update(ctx context.Context, id portrait.InstanceID, chat string, u Update) error {
	var delivered []<-chan struct{}
	if err := e.update(ctx, id, chat, u, &delivered); err != nil {
		return fmt.Errorf("sandbox: update %q of instance %d: %w", chat, id, err)
	}
	for _, d := range delivered {
		select {
		case <-d:
		case <-ctx.Done():
			return fmt.Errorf("sandbox: update %q of instance %d: the change is stored, but its event may not be handled yet: %w", chat, id, ctx.Err())
		}
	}
	return nil
}

func (e *Engine) update(ctx context.Context, id portrait.InstanceID, chat string, u Update, delivered *[]<-chan struct{}) error {
	if len(u.Picture) > 0 && u.RemovePicture {
		return errors.New("picture and removePicture given together")
	}
	if u.Fault != nil {
		switch *u.Fault {
		case FaultNone, FaultTimeout, FaultRateLimit:
		default:
			return fmt.Errorf("fault: unknown fault %q (want %q, %q or %q)", *u.Fault, FaultNone, FaultTimeout, FaultRateLimit)
		}
	}
	if u.Role != nil && !validRole(*u.Role) {
		return fmt.Errorf("role: unknown role %q (want %q, %q or %q)", *u.Role, RoleAdmin, RoleMember, RoleNone)
	}
	if len(u.Picture) > 0 {
		if _, err := sniffImage(u.Picture); err != nil {
			return fmt.Errorf("picture: %w", err)
		}
	}
	contactFields := u.Hidden != nil || u.HasAccount != nil || u.Fault != nil
	groupFields := u.Role != nil || u.OnlyAdminsEditInfo != nil

	in := e.instance(id)
	in.mu.Lock()
	defer in.mu.Unlock()
	sw, err := e.load(ctx, in)
	if err != nil {
		return err
	}
	w := &sw.World
	cid, err := portrait.ParseChatID(w.Type, chat)
	if err != nil {
		return fmt.Errorf("invalid %s chat id: %w", typeLabel(w.Type), err)
	}

	var (
		target **Picture
		kind   portrait.SubjectKind
		key    = chat
	)
	switch {
	case chat == w.OwnChatID():
		if contactFields || groupFields || u.Name != nil {
			return errors.New("only the picture of the account itself can be changed")
		}
		target, kind, key = &w.Account.Picture, portrait.SubjectSelf, ownPictureKey
	case cid.Kind() == portrait.KindGroup:
		if contactFields {
			return errors.New("hidden, hasAccount and fault apply to contacts, not groups")
		}
		g := w.group(chat)
		if g == nil {
			w.Groups = append(w.Groups, Group{ChatID: chat, Role: RoleMember})
			g = &w.Groups[len(w.Groups)-1]
		}
		if u.Name != nil {
			g.Name = *u.Name
		}
		if u.Role != nil {
			g.Role = *u.Role
		}
		if u.OnlyAdminsEditInfo != nil {
			g.OnlyAdminsEditInfo = *u.OnlyAdminsEditInfo
		}
		target, kind = &g.Picture, portrait.SubjectGroup
	default:
		if groupFields {
			return errors.New("role and onlyAdminsEditInfo apply to groups, not contacts")
		}
		c := w.contact(chat)
		if c == nil {
			w.Contacts = append(w.Contacts, Contact{ChatID: chat, HasAccount: true})
			c = &w.Contacts[len(w.Contacts)-1]
		}
		if u.Name != nil {
			c.Name = *u.Name
		}
		if u.Hidden != nil {
			c.Hidden = *u.Hidden
		}
		if u.HasAccount != nil {
			c.HasAccount = *u.HasAccount
		}
		if u.Fault != nil {
			c.Fault = *u.Fault
		}
		target, kind = &c.Picture, portrait.SubjectContact
	}

	var change *portrait.PictureChange
	switch {
	case len(u.Picture) > 0:
		p, err := e.storePicture(ctx, in, sw, key, u.Picture, "update")
		if err != nil {
			return err
		}
		*target = p
		change = &portrait.PictureChange{Chat: cid, Kind: kind, Author: u.Author, PictureID: p.ID, At: p.ChangedAt}
	case u.RemovePicture && *target != nil:
		*target = nil
		if err := e.kv.DeleteKey(ctx, id, keyPicture+key); err != nil {
			return fmt.Errorf("remove picture: %w", err)
		}
		change = &portrait.PictureChange{Chat: cid, Kind: kind, Author: u.Author, Removed: true, At: e.now()}
	}
	if err := e.save(ctx, in, sw); err != nil {
		return err
	}
	if change != nil {
		for s := range in.sessions {
			if d := s.pictureChanged(*change); d != nil {
				*delivered = append(*delivered, d)
			}
		}
	}
	return nil
}

// loadOrSeed loads the world of in, or seeds, stores and returns a new one of
// type t. in.mu must be held.
func (e *Engine) loadOrSeed(ctx context.Context, in *instance, t portrait.InstanceType) (*storedWorld, error) {
	sw, err := e.load(ctx, in)
	if err == nil {
		if sw.World.Type != t {
			return nil, fmt.Errorf("the stored world is for %s instances, not %s", sw.World.Type, t)
		}
		return sw, nil
	}
	if !errors.Is(err, portrait.ErrNotFound) {
		return nil, err
	}
	seeded, err := e.seed.Seed(t)
	if err != nil {
		return nil, fmt.Errorf("seed world: %w", err)
	}
	if seeded.Type == "" {
		seeded.Type = t
	}
	if seeded.Type != t {
		return nil, fmt.Errorf("seed world: the seeder returned a %s world for a %s instance", seeded.Type, t)
	}
	w := seeded.clone(true)
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("seed world: %w", err)
	}
	sw = &storedWorld{Version: worldVersion, World: w}
	store := func(p **Picture, key, where string) error {
		if *p == nil {
			return nil
		}
		if len((*p).Data) == 0 {
			return fmt.Errorf("seed world: %s: picture has no data", where)
		}
		np, err := e.storePicture(ctx, in, sw, key, (*p).Data, (*p).Source)
		if err != nil {
			return fmt.Errorf("seed world: %s: %w", where, err)
		}
		*p = np
		return nil
	}
	if err := store(&w.Account.Picture, ownPictureKey, "account"); err != nil {
		return nil, err
	}
	for i := range w.Contacts {
		c := &w.Contacts[i]
		if err := store(&c.Picture, c.ChatID, fmt.Sprintf("contacts[%d] (%q)", i, c.ChatID)); err != nil {
			return nil, err
		}
	}
	for i := range w.Groups {
		g := &w.Groups[i]
		if err := store(&g.Picture, g.ChatID, fmt.Sprintf("groups[%d] (%q)", i, g.ChatID)); err != nil {
			return nil, err
		}
	}
	sw.World = w
	if err := e.save(ctx, in, sw); err != nil {
		return nil, err
	}
	return sw, nil
}

// load reads the world of in. in.mu must be held. It brings the open
// sessions up to date with the stored account (another Engine on the same
// KV may have linked or unlinked it).
func (e *Engine) load(ctx context.Context, in *instance) (*storedWorld, error) {
	raw, err := e.kv.Get(ctx, in.id, keyWorld)
	if err != nil {
		return nil, fmt.Errorf("load world: %w", err)
	}
	var sw storedWorld
	if err := json.Unmarshal(raw, &sw); err != nil {
		return nil, fmt.Errorf("load world: decode %s: %w", keyWorld, err)
	}
	if sw.Version != worldVersion {
		return nil, fmt.Errorf("load world: unsupported version %d of %s", sw.Version, keyWorld)
	}
	e.observe(in, &sw.World)
	return &sw, nil
}

// save writes the world of in. in.mu must be held. Like load, it brings the
// open sessions up to date with the account.
func (e *Engine) save(ctx context.Context, in *instance, sw *storedWorld) error {
	raw, err := json.Marshal(sw)
	if err != nil {
		return fmt.Errorf("save world: %w", err)
	}
	if err := e.kv.Put(ctx, in.id, keyWorld, raw); err != nil {
		return fmt.Errorf("save world: %w", err)
	}
	e.observe(in, &sw.World)
	return nil
}

// observe tells the open sessions of in about the account in w. in.mu must be held.
func (e *Engine) observe(in *instance, w *World) {
	for s := range in.sessions {
		s.observe(w)
	}
}

// storePicture stores data as the picture under key with a new id and
// returns its description. in.mu must be held.
func (e *Engine) storePicture(ctx context.Context, in *instance, sw *storedWorld, key string, data []byte, source string) (*Picture, error) {
	mime, err := sniffImage(data)
	if err != nil {
		return nil, fmt.Errorf("picture: %w", err)
	}
	now := e.now()
	next := sw.LastPictureID + 1
	if u := now.Unix(); u > next {
		next = u
	}
	sw.LastPictureID = next
	stored := data
	if ref, ok := generatedRef(source, data); ok {
		stored = ref // the same bytes are made again on demand: stored once for all instances
	}
	if err := e.kv.Put(ctx, in.id, keyPicture+key, stored); err != nil {
		return nil, fmt.Errorf("store picture: %w", err)
	}
	return &Picture{ID: strconv.FormatInt(next, 10), MIME: mime, Size: len(data), Source: source, ChangedAt: now.UTC()}, nil
}

// readPicture returns the bytes of the picture under key. in.mu must be held.
func (e *Engine) readPicture(ctx context.Context, in *instance, key string) ([]byte, error) {
	b, err := e.kv.Get(ctx, in.id, keyPicture+key)
	if errors.Is(err, portrait.ErrNotFound) {
		// Not ErrNotFound to the caller: the world names a picture the store lacks.
		return nil, fmt.Errorf("read picture %s: the world has a picture but the store does not", key)
	}
	if err != nil {
		return nil, fmt.Errorf("read picture %s: %w", key, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("read picture %s: stored picture is empty", key)
	}
	if seed, ok := strings.CutPrefix(string(b), refPrefix); ok {
		pic, err := fromSeed(seed)
		if err != nil {
			return nil, fmt.Errorf("read picture %s: %w", key, err)
		}
		return pic, nil
	}
	return b, nil
}

// A generated picture (the demo world's, or "generated:…" in a world file)
// is stored as a reference to its seed, not as its bytes: every instance's
// world holds the same pictures, and making one again takes milliseconds.
// The reference starts with a NUL byte, which no picture format does.
const refPrefix = "\x00generated:"

// generatedRef returns the reference stored for a picture from source,
// when source names a generated picture whose bytes are data.
func generatedRef(source string, data []byte) ([]byte, bool) {
	seed, ok := strings.CutPrefix(source, "generated:")
	if !ok {
		return nil, false
	}
	pic, err := fromSeed(seed)
	if err != nil || !bytes.Equal(pic, data) {
		return nil, false
	}
	return []byte(refPrefix + seed), true
}

// fromSeed returns the picture a "generated:" source names: its seed,
// with ".png" for a PNG (GeneratePicture caches them).
func fromSeed(seed string) ([]byte, error) {
	if base, ok := strings.CutSuffix(seed, ".png"); ok {
		return GeneratePicture(base, FormatPNG)
	}
	return GeneratePicture(seed, FormatJPEG)
}
