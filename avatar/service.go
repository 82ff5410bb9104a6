// Package avatar is portrait's avatar service: it looks pictures up on an
// engine, turns every outcome into an honest answer, normalises the pictures
// it hands out, keeps them content-addressed in the blob store behind stable
// URLs, and caches lookups so that identical concurrent requests reach the
// engine once.
package avatar

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/picture"
)

// Options configure the Service.
type Options struct {
	// PublicURL is the absolute base URL clients reach portrait at, e.g.
	// "https://avatars.example.com"; urlAvatar values start with it.
	PublicURL string
	// CacheTTL is how long a lookup result is served from memory before the
	// engine is asked again (with the known picture id, so an unchanged
	// picture costs no download).
	CacheTTL time.Duration
	// CacheEntries bounds the number of cached lookups; 0 means unbounded.
	CacheEntries int
	// SourceEntries bounds how many messenger pictures are remembered by
	// the hash of their bytes, so that the same picture is processed once
	// however many instances see it; 0 means DefaultSourceEntries.
	SourceEntries int
	// LookupTimeout bounds one engine lookup; past it the lookup fails with
	// portrait.ErrUpstreamTimeout.
	LookupTimeout time.Duration
	// Limits bound the pictures the pipeline accepts.
	Limits picture.Limits
	// MaxDecoders is how many pictures may be processed at once.
	MaxDecoders int
	// Secret keys the blob addresses so that they cannot be guessed from a
	// picture's content.
	Secret []byte
	// UpstreamURLs makes lookups answer with the messenger's own (expiring)
	// picture URL, as GREEN-API does, when the engine has one; portrait
	// still keeps its copy. Off by default: stable URLs are the point.
	UpstreamURLs bool
	// Changed, when set, is told that the answer for a chat of an
	// instance may differ from what was cached before: its picture was
	// set, removed, found changed by a lookup, or invalidated. A cluster
	// node passes it on, so that the other nodes drop what they learned
	// from this one (Forget). It must not block.
	Changed func(id portrait.InstanceID, chat string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Avatar is the answer to a lookup, as getAvatar reports it.
type Avatar struct {
	URL       string // stable URL of the 640×640 JPEG; "" when there is none
	Available bool   // false when privacy settings hide the picture
	Key       string // blob key of the picture; "" when there is none
}

// Outcome names what a lookup found, for metrics and logs.
type Outcome string

// The outcomes of a lookup.
const (
	OutcomePicture      Outcome = "picture"
	OutcomeUnchanged    Outcome = "unchanged"
	OutcomeHidden       Outcome = "hidden"
	OutcomeNotSet       Outcome = "not_set"
	OutcomeNoAccount    Outcome = "no_account"
	OutcomeUnknownGroup Outcome = "unknown_group"
	OutcomeRateLimited  Outcome = "rate_limited"
	OutcomeTimeout      Outcome = "timeout"
	OutcomeBadPicture   Outcome = "bad_picture" // the messenger's picture could not be processed
	OutcomeError        Outcome = "error"
)

// Metrics receives the service's measurements. Any field may be nil.
type Metrics struct {
	Lookup  func(Outcome)
	Cache   func(hit bool)
	Process func(d time.Duration, err error)
}

// Service is the avatar service. It is safe for concurrent use.
type Service struct {
	blobs   portrait.Blobs
	kv      portrait.KV
	opts    Options
	metrics Metrics
	cache   cache
	sources sourceMemo
	flight  singleflight.Group
	sem     chan struct{}
	// epochs counts, per instance, the times its cached answers were
	// dropped (Forget, InvalidateInstances): an answer learned from
	// another node is kept only if none was dropped while it was asked.
	epochs sync.Map // portrait.InstanceID → *atomic.Uint64
}

// New returns a Service storing pictures in blobs and remembering picture
// ids per instance in kv.
func New(blobs portrait.Blobs, kv portrait.KV, opts Options, m Metrics) *Service {
	if opts.MaxDecoders < 1 {
		opts.MaxDecoders = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LookupTimeout <= 0 {
		opts.LookupTimeout = 30 * time.Second
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	s := &Service{blobs: blobs, kv: kv, opts: opts, metrics: m, sem: make(chan struct{}, opts.MaxDecoders)}
	s.cache.init(opts.CacheEntries)
	s.sources.init(opts.SourceEntries)
	return s
}

// Source is the instance a lookup or a change goes through;
// portrait.Handle is one. Its calls apply the instance's readiness check.
type Source interface {
	ID() portrait.InstanceID
	Picture(ctx context.Context, chat portrait.ChatID, existingID string) (portrait.RemotePicture, error)
	SetPicture(ctx context.Context, chat portrait.ChatID, jpeg, preview []byte) (string, error)
}

// Get looks up chat's picture through src. Results come from
// the cache while fresh; otherwise one engine lookup serves every concurrent
// caller. Engine failures are errors, never "no picture":
// portrait.ErrUpstreamTimeout, portrait.ErrUpstreamRateLimit,
// portrait.ErrNotAuthorized, portrait.ErrStarting or another error.
func (s *Service) Get(ctx context.Context, src Source, chat portrait.ChatID) (Avatar, error) {
	k := cacheKey{id: src.ID(), chat: chat.String()}
	now := s.opts.Now()
	e, ok := s.cache.get(k)
	if ok && now.Before(e.expires) {
		s.count(true)
		return e.avatar, nil
	}
	s.count(false)
	ch := s.flight.DoChan(k.String(), func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.LookupTimeout)
		defer cancel()
		return s.lookup(lctx, src, k, chat)
	})
	select {
	case <-ctx.Done():
		return Avatar{}, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return Avatar{}, r.Err
		}
		return r.Val.(Avatar), nil
	}
}

func (s *Service) count(hit bool) {
	if s.metrics.Cache != nil {
		s.metrics.Cache(hit)
	}
}

func (s *Service) outcome(o Outcome) {
	if s.metrics.Lookup != nil {
		s.metrics.Lookup(o)
	}
}

// known is what portrait remembers of a chat's picture: the messenger's
// picture id and the blob holding portrait's copy.
type known struct {
	PictureID string `json:"id"`
	Key       string `json:"key"`
	Upstream  string `json:"upstream,omitempty"` // the messenger's URL, if it gave one
}

func knownKey(chat string) string { return "avatar/" + chat }

// lookup asks the engine, with the picture id portrait already holds so that
// an unchanged picture is not downloaded again.
func (s *Service) lookup(ctx context.Context, src Source, k cacheKey, chat portrait.ChatID) (Avatar, error) {
	prev, havePrev := s.recall(ctx, k)
	existing := ""
	if havePrev {
		existing = prev.PictureID
	}
	rp, err := src.Picture(ctx, chat, existing)
	if err != nil && ctx.Err() != nil && !errors.Is(err, portrait.ErrUpstreamTimeout) {
		err = fmt.Errorf("%w: %v", portrait.ErrUpstreamTimeout, err)
	}
	var av Avatar
	var pictureID, upstream string
	switch {
	case errors.Is(err, portrait.ErrPictureHidden):
		s.outcome(OutcomeHidden)
		av = Avatar{Available: false}
	case errors.Is(err, portrait.ErrPictureNotSet):
		s.outcome(OutcomeNotSet)
		av = Avatar{Available: true}
	case errors.Is(err, portrait.ErrNoAccount):
		s.outcome(OutcomeNoAccount)
		av = Avatar{Available: true}
	case errors.Is(err, portrait.ErrGroupNotFound):
		// Like a number without an account: there is no such chat, so
		// there is no picture to see.
		s.outcome(OutcomeUnknownGroup)
		av = Avatar{Available: true}
	case errors.Is(err, portrait.ErrUpstreamRateLimit):
		s.outcome(OutcomeRateLimited)
		return Avatar{}, err
	case errors.Is(err, portrait.ErrUpstreamTimeout):
		s.outcome(OutcomeTimeout)
		return Avatar{}, err
	case err != nil:
		s.outcome(OutcomeError)
		return Avatar{}, err
	case rp.Unchanged && havePrev:
		s.outcome(OutcomeUnchanged)
		pictureID, upstream = prev.PictureID, prev.Upstream
		av = Avatar{URL: s.pick(prev.Key, upstream), Available: true, Key: prev.Key}
	case rp.Unchanged:
		s.outcome(OutcomeError)
		return Avatar{}, fmt.Errorf("avatar: engine reported picture %q of %s unchanged, but portrait holds no copy", rp.ID, chat)
	default:
		key, err := s.storeSource(ctx, rp.Data)
		if err != nil {
			if errors.Is(err, portrait.ErrUpstreamPicture) {
				s.outcome(OutcomeBadPicture)
			} else {
				s.outcome(OutcomeError)
			}
			return Avatar{}, fmt.Errorf("avatar: picture %q of %s from the messenger: %w", rp.ID, chat, err)
		}
		s.outcome(OutcomePicture)
		pictureID, upstream = rp.ID, rp.URL
		av = Avatar{URL: s.pick(key, upstream), Available: true, Key: key}
		if err := s.remember(ctx, k, known{PictureID: rp.ID, Key: key, Upstream: rp.URL}); err != nil {
			return Avatar{}, err
		}
	}
	before, had := s.cache.get(k)
	s.cache.put(k, entry{avatar: av, pictureID: pictureID, upstream: upstream, expires: s.opts.Now().Add(s.opts.CacheTTL)})
	if !had || before.avatar.URL != av.URL || before.avatar.Available != av.Available {
		s.changed(k.id, k.chat)
	}
	return av, nil
}

// changed tells Options.Changed, if set.
func (s *Service) changed(id portrait.InstanceID, chat string) {
	if s.opts.Changed != nil {
		s.opts.Changed(id, chat)
	}
}

// pick returns the URL a lookup answers with: portrait's stable one, or
// the messenger's when UpstreamURLs is on and there is one.
func (s *Service) pick(key, upstream string) string {
	if s.opts.UpstreamURLs && upstream != "" {
		return upstream
	}
	return s.URL(key)
}

// recall returns what portrait last stored for k: from the cache, else from
// the store.
func (s *Service) recall(ctx context.Context, k cacheKey) (known, bool) {
	if e, ok := s.cache.get(k); ok && e.pictureID != "" {
		return known{PictureID: e.pictureID, Key: e.avatar.Key, Upstream: e.upstream}, true
	}
	b, err := s.kv.Get(ctx, k.id, knownKey(k.chat))
	if err != nil {
		return known{}, false
	}
	var kn known
	if json.Unmarshal(b, &kn) != nil || kn.PictureID == "" || kn.Key == "" {
		return known{}, false
	}
	return kn, true
}

func (s *Service) remember(ctx context.Context, k cacheKey, kn known) error {
	b, err := json.Marshal(kn)
	if err != nil {
		return fmt.Errorf("avatar: encoding picture record: %w", err)
	}
	if err := s.kv.Put(ctx, k.id, knownKey(k.chat), b); err != nil {
		return fmt.Errorf("%w: avatar: remembering picture of %s: %w", portrait.ErrStorage, k.chat, err)
	}
	return nil
}

// storeSource normalises a messenger's picture and stores it, returning
// its key. A picture the pipeline refuses is portrait.ErrUpstreamPicture. The same source bytes are processed once: many instances (and
// many lookups after a restart of the cache) see the same pictures, and the
// pipeline is most of a cold lookup's cost.
func (s *Service) storeSource(ctx context.Context, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	if key, ok := s.sources.get(sum); ok {
		return key, nil
	}
	res, err := s.Normalize(ctx, data)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, picture.ErrBusy) {
			return "", err // no room or no time to process it: not the picture's fault
		}
		// What is wrong with the messenger's picture is no validation
		// error of the request.
		return "", fmt.Errorf("%w: %v", portrait.ErrUpstreamPicture, err)
	}
	key, err := s.Store(ctx, res)
	if err != nil {
		return "", err
	}
	s.sources.put(sum, key)
	return key, nil
}

// Normalize runs the picture pipeline, at most MaxDecoders at a time and
// within the decode memory budget (Limits.Budget), waiting for either as
// long as ctx allows.
func (s *Service) Normalize(ctx context.Context, data []byte) (picture.Result, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return picture.Result{}, ctx.Err()
	}
	defer func() { <-s.sem }()
	start := time.Now()
	res, err := picture.ProcessContext(ctx, data, s.opts.Limits)
	if s.metrics.Process != nil {
		s.metrics.Process(time.Since(start), err)
	}
	return res, err
}

// Store puts a normalised picture and its preview in the blob store and
// returns its key. The key is derived from the content, so storing the same
// picture twice yields the same key and URL.
func (s *Service) Store(ctx context.Context, res picture.Result) (string, error) {
	mac := hmac.New(sha256.New, s.opts.Secret)
	mac.Write(res.Full)
	key := hex.EncodeToString(mac.Sum(nil)[:20])
	if err := s.blobs.Put(ctx, key+PreviewSuffix, res.Preview); err != nil {
		return "", fmt.Errorf("%w: avatar: storing preview: %w", portrait.ErrStorage, err)
	}
	if err := s.blobs.Put(ctx, key, res.Full); err != nil {
		return "", fmt.Errorf("%w: avatar: storing picture: %w", portrait.ErrStorage, err)
	}
	return key, nil
}

// PreviewSuffix is appended to a picture's key to name its 96×96 preview.
const PreviewSuffix = "-96"

// URL returns the stable URL of the picture stored under key.
func (s *Service) URL(key string) string {
	if key == "" {
		return ""
	}
	return s.opts.PublicURL + "/avatars/" + key + ".jpg"
}

// PreviewURL returns the stable URL of the 96×96 preview of key.
func (s *Service) PreviewURL(key string) string {
	if key == "" {
		return ""
	}
	return s.opts.PublicURL + "/avatars/" + key + PreviewSuffix + ".jpg"
}

// Open returns a stored picture by the file name of its URL ("<key>.jpg" or
// "<key>-96.jpg"), or portrait.ErrNotFound.
func (s *Service) Open(ctx context.Context, name string) (portrait.Blob, string, error) {
	key, ok := strings.CutSuffix(name, ".jpg")
	if !ok || !validKey(key) {
		return nil, "", fmt.Errorf("avatar: %q: %w", name, portrait.ErrNotFound)
	}
	b, err := s.blobs.Open(ctx, key)
	if err != nil {
		return nil, "", err
	}
	return b, key, nil
}

func validKey(k string) bool {
	k = strings.TrimSuffix(k, PreviewSuffix)
	if len(k) != 40 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Set sets a picture through src: a group's when chat is a group, the
// account's own when chat is the zero ChatID. self is the account's own chat
// id, under which the new own picture is cached. The picture is normalised
// and stored first, so the returned URL works at once.
func (s *Service) Set(ctx context.Context, src Source, chat, self portrait.ChatID, data []byte) (Avatar, error) {
	res, err := s.Normalize(ctx, data)
	if err != nil {
		return Avatar{}, err
	}
	key, err := s.Store(ctx, res)
	if err != nil {
		return Avatar{}, err
	}
	pictureID, err := src.SetPicture(ctx, chat, res.Full, res.Preview)
	if err != nil {
		return Avatar{}, err
	}
	target := chat
	if target.IsZero() {
		target = self
	}
	av := Avatar{URL: s.URL(key), Available: true, Key: key}
	if !target.IsZero() {
		k := cacheKey{id: src.ID(), chat: target.String()}
		if pictureID != "" {
			if err := s.remember(ctx, k, known{PictureID: pictureID, Key: key}); err != nil {
				return Avatar{}, err
			}
		}
		s.cache.put(k, entry{avatar: av, pictureID: pictureID, expires: s.opts.Now().Add(s.opts.CacheTTL)})
		s.changed(k.id, k.chat)
	}
	return av, nil
}

// Remove removes a picture through src: a group's when chat is a group,
// the account's own when chat is the zero ChatID (self is the account's own
// chat id). The next lookup of the chat answers that there is no picture.
func (s *Service) Remove(ctx context.Context, src Source, chat, self portrait.ChatID) error {
	if _, err := src.SetPicture(ctx, chat, nil, nil); err != nil {
		return err
	}
	target := chat
	if target.IsZero() {
		target = self
	}
	if target.IsZero() {
		return nil
	}
	k := cacheKey{id: src.ID(), chat: target.String()}
	if err := s.kv.DeleteKey(ctx, k.id, knownKey(k.chat)); err != nil {
		return fmt.Errorf("%w: avatar: forgetting the picture of %s: %w", portrait.ErrStorage, k.chat, err)
	}
	s.cache.put(k, entry{avatar: Avatar{Available: true}, expires: s.opts.Now().Add(s.opts.CacheTTL)})
	s.changed(k.id, k.chat)
	return nil
}

// CacheLen returns the number of cached lookups.
func (s *Service) CacheLen() int { return s.cache.len() }

// InvalidateInstances drops the cached answers of every chat of the
// instances in ids. A cluster node calls it for the instances it gains:
// what it cached while it owned them before may have changed since.
func (s *Service) InvalidateInstances(ids map[portrait.InstanceID]bool) {
	if len(ids) == 0 {
		return
	}
	for id := range ids {
		s.epoch(id).Add(1)
	}
	s.cache.expireInstances(ids)
}

// Invalidate drops the cached answer for one chat of an instance, so the
// next lookup asks the engine, and tells Options.Changed.
func (s *Service) Invalidate(id portrait.InstanceID, chat string) {
	s.expire(id, chat)
	s.changed(id, chat)
}

func (s *Service) expire(id portrait.InstanceID, chat string) {
	k := cacheKey{id: id, chat: chat}
	if e, ok := s.cache.get(k); ok {
		e.expires = time.Time{}
		s.cache.put(k, e)
	}
}

// A cluster node that does not own an instance answers getAvatar from the
// answers it learned from the owner: Cached, then on a miss Mark, ask the
// owner, and Learn its answer. Forget drops them when the owner announces
// a change (Options.Changed on the owner).

// Cached returns the fresh cached answer for a chat of an instance, if
// there is one.
func (s *Service) Cached(id portrait.InstanceID, chat string) (Avatar, bool) {
	e, ok := s.cache.get(cacheKey{id: id, chat: chat})
	if !ok || !s.opts.Now().Before(e.expires) {
		s.count(false)
		return Avatar{}, false
	}
	s.count(true)
	return e.avatar, true
}

// Mark returns the instance's count of dropped answers, to pass to Learn.
func (s *Service) Mark(id portrait.InstanceID) uint64 { return s.epoch(id).Load() }

// Learn caches an answer another node gave for a chat of an instance, for
// the cache's time to live, unless the instance's answers were dropped
// since mark was taken (the answer may predate the change that dropped
// them).
func (s *Service) Learn(id portrait.InstanceID, chat string, av Avatar, mark uint64) {
	if s.epoch(id).Load() != mark {
		return
	}
	s.cache.put(cacheKey{id: id, chat: chat}, entry{avatar: av, expires: s.opts.Now().Add(s.opts.CacheTTL)})
	if s.epoch(id).Load() != mark { // dropped meanwhile
		s.expire(id, chat)
	}
}

// Forget drops the cached answer for a chat of an instance, or for every
// chat when chat is "", without telling Options.Changed: another node
// announced the change.
func (s *Service) Forget(id portrait.InstanceID, chat string) {
	s.epoch(id).Add(1)
	if chat == "" {
		s.cache.expireInstances(map[portrait.InstanceID]bool{id: true})
		return
	}
	s.expire(id, chat)
}

// epoch returns the instance's count of dropped answers.
func (s *Service) epoch(id portrait.InstanceID) *atomic.Uint64 {
	if v, ok := s.epochs.Load(id); ok {
		return v.(*atomic.Uint64)
	}
	v, _ := s.epochs.LoadOrStore(id, new(atomic.Uint64))
	return v.(*atomic.Uint64)
}
