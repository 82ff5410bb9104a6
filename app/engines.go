package app

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/config"
	"github.com/portrait-dev/portrait/maxbot"
	"github.com/portrait-dev/portrait/maxweb"
	"github.com/portrait-dev/portrait/postgres"
	"github.com/portrait-dev/portrait/sandbox"
	"github.com/portrait-dev/portrait/whatsapp"
)

// defaultEngine is the engine instances are created on when none is named.
const defaultEngine = sandbox.Name

// engineMakers are every engine portrait has, by name, in the order help
// texts list them: a new engine is added here and nowhere else.
var engineMakers = []struct {
	name string
	make func(ctx context.Context, cfg config.Config, store database, log *slog.Logger) (portrait.Engine, func(), error)
}{
	{sandbox.Name, func(_ context.Context, cfg config.Config, store database, log *slog.Logger) (portrait.Engine, func(), error) {
		var seed sandbox.Seeder
		if cfg.SandboxWorld != "" {
			var err error
			if seed, err = sandbox.LoadWorldFile(cfg.SandboxWorld); err != nil {
				return nil, nil, fmt.Errorf("--sandbox-world: %w", err)
			}
		}
		record, closeRecord, err := recordFile(cfg.SandboxRecord)
		if err != nil {
			return nil, nil, err
		}
		return sandbox.New(store, seed, sandbox.Options{
			Latency:             cfg.SandboxLatency,
			PictureCooldown:     cfg.SandboxPictureCooldown,
			UnknownGroupTimeout: cfg.SandboxUnknownGroupTimeout,
			FaultTimeout:        cfg.SandboxFaultTimeout,
			StartDelay:          cfg.SandboxStartDelay,
			QRRotate:            cfg.SandboxQRRotate,
			Faults:              cfg.SandboxFaults,
			Record:              record,
			Logger:              log,
		}), closeRecord, nil
	}},
	{whatsapp.Name, func(ctx context.Context, cfg config.Config, store database, log *slog.Logger) (portrait.Engine, func(), error) {
		var wa *whatsapp.Engine
		// whatsmeow creates and upgrades its tables at start, and does not
		// guard that against nodes starting at once.
		err := exclusive(ctx, store, "whatsmeow-tables", func(ctx context.Context) error {
			var err error
			wa, err = whatsapp.New(ctx, store.SQL(), store, whatsapp.Options{
				Dialect:         store.Dialect(),
				DownloadTimeout: cfg.WhatsAppDownloadTimeout,
				MaxPictureBytes: cfg.WhatsAppMaxPictureBytes,
				DeviceName:      cfg.WhatsAppDeviceName,
				Version:         cfg.WhatsAppVersion,
				Logger:          log,
			})
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		return wa, func() { _ = wa.Close() }, nil
	}},
	{maxweb.Name, func(_ context.Context, cfg config.Config, store database, log *slog.Logger) (portrait.Engine, func(), error) {
		roots, err := rootCAs(cfg.MaxRootCA)
		if err != nil {
			return nil, nil, fmt.Errorf("--max-root-ca: %w", err)
		}
		e := maxweb.New(store, maxweb.Options{URL: cfg.MaxURL, AppVersion: cfg.MaxAppVersion, RootCAs: roots,
			PictureHosts: cfg.MaxPictureHosts, Logger: log})
		return e, func() { _ = e.Close() }, nil
	}},
	{maxbot.Name, func(_ context.Context, cfg config.Config, store database, log *slog.Logger) (portrait.Engine, func(), error) {
		roots, err := rootCAs(cfg.MaxBotRootCA)
		if err != nil {
			return nil, nil, fmt.Errorf("--maxbot-root-ca: %w", err)
		}
		e := maxbot.New(store, maxbot.Options{BaseURL: cfg.MaxBotURL, RootCAs: roots, PictureHosts: cfg.MaxBotPictureHosts,
			RateLimit: cfg.MaxBotRateLimit, Logger: log})
		return e, func() { _ = e.Close() }, nil
	}},
}

// rootCAs returns the system's root certificates plus those in the PEM
// file; nil (the system's alone) when file is "".
func rootCAs(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate in %s", file)
	}
	return pool, nil
}

// runner is an engine with background work of its own while a server runs
// (the whatsapp engine keeps its announced version current).
type runner interface {
	Run(ctx context.Context)
}

// engineNames lists the engines' names.
func engineNames() []string {
	names := make([]string, len(engineMakers))
	for i, m := range engineMakers {
		names[i] = m.name
	}
	return names
}

// openEngines makes every engine. closeAll releases what they hold; call
// it after the sessions are closed.
func openEngines(ctx context.Context, cfg config.Config, store database, log *slog.Logger) (engines map[string]portrait.Engine, closeAll func(), err error) {
	engines = map[string]portrait.Engine{}
	var closers []func()
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	for _, m := range engineMakers {
		e, c, err := m.make(ctx, cfg, store, log)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("portrait: %s engine: %w", m.name, err)
		}
		engines[m.name] = e
		closers = append(closers, c)
	}
	return engines, closeAll, nil
}

// recordFile returns the sandbox's Record hook that appends a JSON line
// per record to the file at path, and its closer; nil when path is empty.
func recordFile(path string) (func(sandbox.Record), func(), error) {
	if path == "" {
		return nil, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("--sandbox-record: %w", err)
	}
	var mu sync.Mutex
	record := func(r sandbox.Record) {
		line, _ := json.Marshal(r)
		mu.Lock()
		defer mu.Unlock()
		_, _ = f.Write(append(line, '\n')) // one write per line: O_APPEND keeps lines whole
	}
	return record, func() { mu.Lock(); defer mu.Unlock(); f.Close() }, nil
}

// exclusive runs fn under the database's advisory lock name when several
// processes may share it (PostgreSQL), else at once.
func exclusive(ctx context.Context, db database, name string, fn func(ctx context.Context) error) error {
	if pg, ok := db.(*postgres.DB); ok {
		return pg.Exclusive(ctx, name, fn)
	}
	return fn(ctx)
}
