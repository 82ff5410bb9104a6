package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/adminauth"
	"github.com/portrait-dev/portrait/config"
	"github.com/portrait-dev/portrait/greenapi"
	"github.com/portrait-dev/portrait/postgres"
)

// adminAuth sets up who may use the admin API and the console: the
// configured admin token, or else the one kept (as its SHA-256) in the data
// directory — in the database on PostgreSQL, where the nodes of a cluster
// share it and the console sessions — made on first start. It returns nil
// when the admin side is switched off, and the banner lines that tell how
// to reach the console (with the new token, shown only now, on first
// start).
func adminAuth(ctx context.Context, cfg config.Config, failures *adminauth.Limiter, d *data) (*adminauth.Auth, string, error) {
	if cfg.AdminOff {
		return nil, "", nil
	}
	opts := adminauth.Options{
		Token:       cfg.AdminToken,
		TokenFile:   filepath.Join(cfg.DataDir, adminauth.TokenFileName),
		SessionIdle: cfg.SessionIdle, SessionMax: cfg.SessionMax,
		Failures: failures,
	}
	kept := opts.TokenFile
	created := ""
	pg, shared := d.db.(*postgres.DB)
	if shared {
		kept = "the database"
		opts.Sessions = adminauth.NewSharedSessions(pg, cfg.SessionIdle, cfg.SessionMax)
		opts.TokenSource = func() ([sha256.Size]byte, error) {
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return pg.AdminTokenHash(rctx)
		}
	}
	if cfg.AdminToken == "" {
		var err error
		if shared {
			created, err = newSharedToken(ctx, pg, false)
		} else {
			created, err = adminauth.CreateTokenFile(opts.TokenFile)
		}
		if err != nil {
			return nil, "", fmt.Errorf("portrait: admin token: %w", err)
		}
	}
	auth, err := adminauth.New(opts)
	if err != nil {
		return nil, "", fmt.Errorf("portrait: admin token: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Console\n")
	fmt.Fprintf(&b, "  console:           %s/console\n", strings.TrimRight(cfg.PublicURL, "/"))
	switch {
	case created != "":
		fmt.Fprintf(&b, "  admin token:       %s\n", created)
		fmt.Fprintf(&b, "  The admin token signs in to the console and opens the admin API (Authorization: Bearer).\n")
		fmt.Fprintf(&b, "  It is shown only now: portrait keeps its SHA-256 in %s.\n", kept)
	case cfg.AdminToken != "":
		fmt.Fprintf(&b, "  admin token:       the one given with --admin-token / PORTRAIT_ADMIN_TOKEN\n")
	default:
		if shared {
			fmt.Fprintf(&b, "  admin token:       shown on first start only; get a new one with: portrait admin rotate-token --database …\n")
		} else {
			fmt.Fprintf(&b, "  admin token:       shown on first start only; get a new one with: portrait admin rotate-token --data-dir %s\n", cfg.DataDir)
		}
	}
	b.WriteString("\n")
	return auth, b.String(), nil
}

// engineInfos describes the server's engines for the admin API, in the
// order help texts list them.
func engineInfos(engines map[string]portrait.Engine) []greenapi.EngineInfo {
	var out []greenapi.EngineInfo
	for _, name := range engineNames() {
		e, ok := engines[name]
		if !ok {
			continue
		}
		_, cred := e.(portrait.Credentialed)
		out = append(out, greenapi.EngineInfo{Name: name, Types: e.Types(), Default: name == defaultEngine, Credential: cred})
	}
	return out
}

// adminCommand runs `portrait admin rotate-token` on the data directory,
// or on the database with --database postgres://… (flags before or after
// the command): a new admin token replaces the kept one (running servers
// take it within a second, and everybody is signed out of the console) and
// is printed once.
func adminCommand(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("portrait admin", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	dataDir, publicURL := dataFlags(fs, env)
	dsn := fs.String("database", env.Getenv("PORTRAIT_DATABASE"), "the server's database: empty for SQLite in the data directory, or a postgres:// URL, where a cluster keeps its admin token (env PORTRAIT_DATABASE)")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(env.Stderr, "portrait admin: give a command: rotate-token\n\n%s", usage)
		return ErrUsage
	}
	if sub := fs.Arg(0); sub != "rotate-token" {
		fmt.Fprintf(env.Stderr, "portrait admin: unknown command %q\n\n%s", sub, usage)
		return ErrUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(env.Stderr, "portrait admin rotate-token: unexpected argument %q\n", fs.Arg(1))
		return ErrUsage
	}
	var token string
	if isPostgres(*dsn) {
		db, err := postgres.Open(ctx, *dsn)
		if err != nil {
			return fmt.Errorf("portrait: database: %w", err)
		}
		defer db.Close()
		if token, err = newSharedToken(ctx, db, true); err != nil {
			return fmt.Errorf("portrait: %w", err)
		}
	} else {
		if _, err := os.Stat(*dataDir); err != nil {
			return fmt.Errorf("portrait: no data directory %s (start the server once, or pass --data-dir): %w", *dataDir, err)
		}
		var err error
		if token, err = adminauth.RotateTokenFile(filepath.Join(*dataDir, adminauth.TokenFileName)); err != nil {
			return fmt.Errorf("portrait: %w", err)
		}
	}
	fmt.Fprintf(env.Stdout, "console:           %s/console\nadmin token:       %s\n", strings.TrimRight(serverURL(*publicURL, *dataDir), "/"), token)
	fmt.Fprintf(env.Stderr, "The old admin token no longer works and its console sessions have ended; the new one is shown only now.\n")
	if env.Getenv("PORTRAIT_ADMIN_TOKEN") != "" {
		fmt.Fprintf(env.Stderr, "Note: PORTRAIT_ADMIN_TOKEN is set here; a server started with it (or --admin-token) uses that token instead.\n")
	}
	return nil
}

// newSharedToken makes an admin token and keeps its SHA-256 in the
// database, and returns it: with replace, in place of the old one, ending
// every console session; without, only when there is none yet ("" when
// there was one, or another node starting at once made it).
func newSharedToken(ctx context.Context, db *postgres.DB, replace bool) (string, error) {
	if !replace {
		if _, err := db.AdminTokenHash(ctx); !errors.Is(err, portrait.ErrNotFound) {
			return "", err
		}
	}
	token, err := adminauth.NewToken()
	if err != nil {
		return "", err
	}
	kept, err := db.SetAdminTokenHash(ctx, sha256.Sum256([]byte(token)), replace)
	if err != nil || !kept {
		return "", err
	}
	return token, nil
}
