package app

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/adminauth"
	"github.com/portrait-dev/portrait/avatar"
	"github.com/portrait-dev/portrait/cluster"
	"github.com/portrait-dev/portrait/config"
	"github.com/portrait-dev/portrait/console"
	"github.com/portrait-dev/portrait/greenapi"
	"github.com/portrait-dev/portrait/instance"
	"github.com/portrait-dev/portrait/metrics"
	"github.com/portrait-dev/portrait/notify"
	"github.com/portrait-dev/portrait/picture"
	"github.com/portrait-dev/portrait/postgres"
	"github.com/portrait-dev/portrait/sandbox"
)

// serve runs the server until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, env Env, args []string) error {
	cfg, err := config.Parse(args, env.Getenv, env.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log := newLogger(env.Stderr, cfg.LogLevel, cfg.LogFormat)
	rates, err := rateLimits(cfg.RateLimits)
	if err != nil {
		return err
	}

	d, err := openData(ctx, cfg.DataDir, cfg.Database)
	if err != nil {
		return err
	}
	defer d.db.Close()
	store, blobs, secret := d.db, d.blobs, d.secret

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("portrait: listen on %s: %w", cfg.Listen, err)
	}
	defer ln.Close()
	m := metrics.New()
	ln = limitPerClient(ln, int(cfg.MaxConnsPerClient), refusedConnections(m, log, cfg.MaxConnsPerClient))
	// Background work of this server (cluster rounds, engines' upkeep,
	// following the store) ends when serve returns.
	bg, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	if !cfg.PublicURLGiven {
		// Derived from the address really listened on (port 0 picks one).
		cfg.PublicURL = config.DefaultPublicURL(ln.Addr().String())
	}

	// In a cluster, a change of this node's answers is announced to the
	// others, which answer getAvatar from what they learned from it.
	// On PostgreSQL the server is a node of a cluster (maybe of one).
	pg, clustered := d.db.(*postgres.DB)
	var announce *announcer
	var changed func(portrait.InstanceID, string)
	if clustered {
		announce = newAnnouncer(pg, nodeID(cfg), log)
		changed = announce.Changed
		go announce.Run(bg)
	}
	decoders, err := picture.UseDecoders(cfg.Decoders)
	if err != nil {
		return fmt.Errorf("portrait: %w", err)
	}
	log.Info("picture decoders", "decoders", decoders)
	avatars := avatar.New(blobs, store, avatar.Options{
		PublicURL:     cfg.PublicURL,
		CacheTTL:      cfg.CacheTTL,
		CacheEntries:  int(cfg.CacheEntries),
		LookupTimeout: cfg.LookupTimeout,
		Limits:        picture.Limits{MaxPixels: cfg.MaxPixels, Budget: picture.NewBudget(cfg.DecodeMemory)},
		MaxDecoders:   cfg.MaxDecoders,
		Secret:        secret,
		UpstreamURLs:  cfg.UpstreamURLs,
		Changed:       changed,
	}, avatar.Metrics{
		Lookup:  func(o avatar.Outcome) { m.Lookup(string(o)) },
		Cache:   m.CacheResult,
		Process: m.Processed,
	})

	engines, closeEngines, err := openEngines(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	defer closeEngines() // after reg.Close, which closes the sessions
	for _, e := range engines {
		if r, ok := e.(runner); ok {
			go r.Run(bg)
		}
	}
	// A cluster node acts only for the instances whose leases it holds.
	var nd *cluster.Node
	regOpts := instance.Options{DefaultEngine: defaultEngine, Logger: log}
	var hubActing func(context.Context, portrait.InstanceID) (context.Context, bool)
	var hubJobs func(context.Context, time.Time, int) ([]portrait.Job, error)
	if clustered {
		regOpts.Acting = func(ctx context.Context, id portrait.InstanceID) (context.Context, bool) { return nd.Acting(ctx, id) }
		regOpts.Created = func(ctx context.Context, id portrait.InstanceID) { nd.Take(ctx, id) }
		hubActing = regOpts.Acting
		hubJobs = func(ctx context.Context, now time.Time, limit int) ([]portrait.Job, error) {
			return d.db.ClaimJobs(ctx, nd.ID(), now, limit, nd.LeaseTTL())
		}
	}
	reg := instance.New(store, engines, regOpts)
	if clustered {
		nd = cluster.New(d.db, reg, cluster.Options{
			ID:       nodeID(cfg),
			Addr:     nodeAddr(cfg.NodeAddr, ln.Addr().String()),
			LeaseTTL: cfg.LeaseTTL,
			Secret:   secret, // the URL key, which the nodes share through the database
			MaxBody:  cfg.MaxUploadBytes + cluster.UploadSlack,
			OnGain: func(ids map[portrait.InstanceID]bool) {
				// What this node cached when it owned them before, and
				// what the others learned from their last owner, may be
				// out of date.
				avatars.InvalidateInstances(ids)
				if len(ids) > bulkGain {
					announce.Changed(0, "") // every instance: one message, not thousands
					return
				}
				for id := range ids {
					announce.Changed(id, "")
				}
			},
			Logger: log,
		})
	}
	hub := notify.New(store, avatars, reg, notify.Options{
		Debounce:     cfg.ChangeDebounce,
		DebounceMax:  cfg.ChangeDebounceMax,
		Retention:    cfg.WebhookRetention,
		MaxQueue:     int(cfg.QueueMax),
		TrimEvery:    cfg.QueueTrimInterval,
		BackoffMin:   cfg.WebhookBackoffMin,
		BackoffMax:   cfg.WebhookBackoffMax,
		Timeout:      cfg.WebhookTimeout,
		Concurrency:  cfg.WebhookConcurrency,
		AllowPrivate: cfg.WebhookAllow,
		Reason:       greenapi.Reason,
		Acting:       hubActing,
		Jobs:         hubJobs,
	}, log, notify.Metrics{Enqueued: m.Enqueued, Delivered: m.Delivered, Dropped: m.Dropped})
	m.QueueDepth(store.Depths)
	if nd == nil {
		m.Instances(reg.List)
	} else {
		// A node counts the instances it serves, so that the counts of
		// the nodes add up to the cluster's.
		m.Instances(func(ctx context.Context) ([]portrait.Handle, error) {
			all, err := reg.List(ctx)
			return slices.DeleteFunc(all, func(h portrait.Handle) bool { return !nd.Owns(h.ID()) }), err
		})
	}

	if err := reg.Start(ctx, &events{hub: hub, log: log, changed: changed}); err != nil {
		return err
	}
	defer reg.Close()
	// Nodes starting at once on an empty database: one makes the first
	// instances, the others then see them.
	err = exclusive(ctx, d.db, "welcome", func(ctx context.Context) error {
		if all, _ := reg.IDs(ctx); len(all) == 0 && clustered {
			// Another node may have made them since this one read.
			if err := reg.Reload(ctx); err != nil {
				return err
			}
		}
		return welcome(ctx, env.Stdout, reg, cfg)
	})
	if err != nil {
		return err
	}
	if nd != nil {
		if err := nd.Start(ctx); err != nil {
			return err
		}
		// After the hub has stopped, before the sessions close: the
		// instances pass to the other nodes at once.
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			nd.Stop(stopCtx)
		}()
		go nd.Run(bg)
	}

	go follow(bg, store, reg, hub, avatars, nd, log)

	// The hub outlives the HTTP server's shutdown, so that work accepted
	// by requests in flight is committed; what is left is resumed from the
	// store at the next start.
	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	hubDone := make(chan struct{})
	go func() { hub.Run(hubCtx); close(hubDone) }()
	defer func() { stopHub(); <-hubDone }()

	failures := adminauth.NewLimiter(int(cfg.AuthFailures))
	auth, banner, err := adminAuth(ctx, cfg, failures, d)
	if err != nil {
		return err
	}
	fmt.Fprint(env.Stdout, banner)
	var admin *greenapi.Admin
	if auth != nil {
		admin = &greenapi.Admin{Auth: auth, Engines: engineInfos(engines), Notifications: hub, WebhookTimeout: cfg.WebhookTimeout}
	}
	api := greenapi.New(greenapi.Deps{
		Instances:    reg,
		Avatars:      avatars,
		Notify:       hub,
		Sandbox:      sandboxAdminOf(engines, avatars),
		Console:      console.New(console.Options{Auth: auth, Secure: strings.HasPrefix(cfg.PublicURL, "https://")}),
		Admin:        admin,
		Metrics:      m,
		Log:          log,
		Ready:        func(ctx context.Context) error { return ready(ctx, d) },
		AuthFailures: failures,
		Cluster:      clusterOrNil(nd),
	}, greenapi.Config{
		MetricsToken:   cfg.MetricsToken,
		MaxUploadBytes: cfg.MaxUploadBytes,
		RateLimits:     rates,
		APIURL:         cfg.PublicURL,
		BodyTimeout:    cfg.BodyTimeout,
		WebhookAllow:   cfg.WebhookAllow,
		FetchTimeout:   cfg.FetchTimeout,
		UploadTimeout:  cfg.UploadTimeout,
	})
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		// Requests in flight at shutdown must finish: their context is not
		// the signal's.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(env.Stdout, "portrait %s listening on %s\n", Version, cfg.PublicURL)
	rememberServerURL(cfg.DataDir, cfg.PublicURL, log)
	log.Info("listening", "addr", ln.Addr().String(), "publicURL", cfg.PublicURL)

	select {
	case err := <-errc:
		return fmt.Errorf("portrait: serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("graceful shutdown did not finish", "err", err)
	}
	return nil
}

// refusedConnections counts the connections closed for being over
// --max-conns-per-client and says so in the log, at most once a minute.
func refusedConnections(m *metrics.Metrics, log *slog.Logger, limit int64) func(netip.Prefix) {
	var mu sync.Mutex
	var last time.Time
	return func(client netip.Prefix) {
		m.ConnectionRefused()
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < time.Minute {
			return
		}
		last = time.Now()
		log.Warn("closed a connection: the client address already holds as many as --max-conns-per-client allows (PORTRAIT_MAX_CONNS_PER_CLIENT); raise it if that client is legitimate",
			"client", client.String(), "limit", limit)
	}
}

// ready reports whether the server can do its work: the database accepts
// a write, and so does the data directory when it holds the pictures (a
// full disk makes either fail).
func ready(ctx context.Context, d *data) error {
	if err := d.db.CheckWrite(ctx); err != nil {
		return errors.New("the database does not accept writes")
	}
	if d.disk != "" {
		if err := probeDisk(d.disk); err != nil {
			return errors.New("the data directory does not accept writes (is the disk full?)")
		}
	}
	return nil
}

// probeDisk writes and removes a file of a picture's size in dir.
func probeDisk(dir string) error {
	f, err := os.CreateTemp(dir, ".readyz-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(make([]byte, 64<<10))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// urlKey reads the key that makes avatar URLs unguessable, creating it on
// first start. Losing it does not break stored URLs: pictures stored later
// get different addresses.
func urlKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("portrait: reading %s: %w", path, err)
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("portrait: making URL key: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("portrait: writing %s: %w", path, err)
	}
	return b, nil
}

// rateLimits merges the configured overrides into GREEN-API's defaults.
// "*" sets every method; method names match case-insensitively.
func rateLimits(overrides map[string]float64) (map[string]float64, error) {
	out := map[string]float64{}
	for k, v := range greenapi.DefaultRateLimits() {
		out[k] = v
	}
	if all, ok := overrides["*"]; ok {
		for k := range out {
			out[k] = all
		}
	}
	for name, v := range overrides {
		if name == "*" {
			continue
		}
		found := false
		for k := range out {
			if strings.EqualFold(k, name) {
				out[k], found = v, true
			}
		}
		if !found {
			return nil, fmt.Errorf("portrait: --rate-limits: unknown method %q", name)
		}
	}
	return out, nil
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// events receives every engine event, logs it and hands it to the hub,
// which drops a changed picture from the cache at once and commits the
// notifications.
type events struct {
	hub *notify.Hub
	log *slog.Logger
	// changed, in a cluster, tells the other nodes that the instance's
	// answers changed: they learned them while it was in another state.
	changed func(portrait.InstanceID, string)
}

func (e *events) StateChanged(h portrait.Handle, state portrait.State) {
	e.log.Info("instance state changed", "idInstance", int64(h.ID()), "stateInstance", state)
	e.hub.StateChanged(h, state)
	if e.changed != nil && state != portrait.StateAuthorized {
		// Answers are learned from an authorized instance only: one that
		// stops being so makes them stale.
		e.changed(h.ID(), "")
	}
}

func (e *events) PictureChanged(h portrait.Handle, c portrait.PictureChange) {
	e.log.Info("picture changed", "idInstance", int64(h.ID()), "chatId", c.Chat.String(), "kind", c.Kind, "removed", c.Removed)
	e.hub.PictureChanged(h, c)
}

// sandboxAdminOf returns the admin API's view of the sandbox engine; nil
// when there is none.
func sandboxAdminOf(engines map[string]portrait.Engine, avatars *avatar.Service) greenapi.SandboxAdmin {
	if sb, ok := engines[sandbox.Name].(*sandbox.Engine); ok {
		return sandboxAdmin{sb, avatars}
	}
	return nil
}

// sandboxAdmin adapts the sandbox engine to the admin API. A change to a
// chat drops its cached lookup at once: the sandbox, like WhatsApp,
// announces picture changes but not privacy or account changes, and an
// operator who changes the world wants to see the effect now.
type sandboxAdmin struct {
	e       *sandbox.Engine
	avatars *avatar.Service
}

func (a sandboxAdmin) Engine() string { return a.e.Name() }

func (a sandboxAdmin) World(ctx context.Context, id portrait.InstanceID) (any, error) {
	return a.e.World(ctx, id)
}

func (a sandboxAdmin) UpdateChat(ctx context.Context, id portrait.InstanceID, chat string, u greenapi.SandboxUpdate) error {
	err := a.e.Update(ctx, id, chat, sandbox.Update{
		Picture: u.Picture, RemovePicture: u.RemovePicture, Hidden: u.Hidden,
		HasAccount: u.HasAccount, Fault: u.Fault, Author: u.Author,
	})
	if err == nil {
		a.avatars.Invalidate(id, chat)
	}
	return err
}

func (a sandboxAdmin) Scan(ctx context.Context, id portrait.InstanceID) error {
	return a.e.Scan(ctx, id)
}

// bulkGain is how many instances a node takes at once (at its start, or
// when another node died) past which it tells the others to forget what
// they learned for every instance, rather than for each it took.
const bulkGain = 100

// clusterOrNil is nd as the HTTP layer's Cluster: nil (no interface
// holding a nil pointer) on a server of its own.
func clusterOrNil(nd *cluster.Node) greenapi.Cluster {
	if nd == nil {
		return nil
	}
	return nd
}

// nodeID names this server in its cluster: --node-id, else its host and
// data directory, so that the same server restarted takes its place.
func nodeID(cfg config.Config) string {
	if cfg.NodeID != "" {
		return cfg.NodeID
	}
	host, _ := os.Hostname()
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		dir = cfg.DataDir
	}
	return strings.TrimSpace(host) + ":" + dir
}

// nodeAddr is the address other nodes forward to: the configured one, else
// the listen address, with the host name for an unspecified host.
func nodeAddr(configured, listen string) string {
	if configured != "" {
		return configured
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil && name != "" {
			host = name
		}
	}
	return net.JoinHostPort(host, port)
}
