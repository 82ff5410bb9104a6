package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/adminauth"
	"github.com/portrait-dev/portrait/config"
	"github.com/portrait-dev/portrait/greenapi"
)

// adminAuth sets up who may use the admin API and the console: the
// configured admin token, or else the one kept (as its SHA-256) in the data
// directory, made on first start. It returns nil when the admin side is
// switched off, and the banner lines that tell how to reach the console
// (with the new token, shown only now, on first start).
func adminAuth(cfg config.Config, failures *adminauth.Limiter) (*adminauth.Auth, string, error) {
	if cfg.AdminOff {
		return nil, "", nil
	}
	file := filepath.Join(cfg.DataDir, adminauth.TokenFileName)
	created := ""
	if cfg.AdminToken == "" {
		var err error
		if created, err = adminauth.CreateTokenFile(file); err != nil {
			return nil, "", fmt.Errorf("portrait: admin token: %w", err)
		}
	}
	auth, err := adminauth.New(adminauth.Options{
		Token: cfg.AdminToken, TokenFile: file,
		SessionIdle: cfg.SessionIdle, SessionMax: cfg.SessionMax,
		Failures: failures,
	})
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
		fmt.Fprintf(&b, "  It is shown only now: portrait keeps its SHA-256 in %s.\n", file)
	case cfg.AdminToken != "":
		fmt.Fprintf(&b, "  admin token:       the one given with --admin-token / PORTRAIT_ADMIN_TOKEN\n")
	default:
		fmt.Fprintf(&b, "  admin token:       shown on first start only; get a new one with: portrait admin rotate-token --data-dir %s\n", cfg.DataDir)
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

// adminCommand runs `portrait admin rotate-token` on the data directory
// (flags before or after the command): a new admin token replaces the kept
// one (a running server takes it within a second and signs everybody out
// of the console) and is printed once.
func adminCommand(_ context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("portrait admin", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	dataDir, publicURL := dataFlags(fs, env)
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
	if _, err := os.Stat(*dataDir); err != nil {
		return fmt.Errorf("portrait: no data directory %s (start the server once, or pass --data-dir): %w", *dataDir, err)
	}
	token, err := adminauth.RotateTokenFile(filepath.Join(*dataDir, adminauth.TokenFileName))
	if err != nil {
		return fmt.Errorf("portrait: %w", err)
	}
	fmt.Fprintf(env.Stdout, "console:           %s/console\nadmin token:       %s\n", strings.TrimRight(serverURL(*publicURL, *dataDir), "/"), token)
	fmt.Fprintf(env.Stderr, "The old admin token no longer works and its console sessions have ended; the new one is shown only now.\n")
	if env.Getenv("PORTRAIT_ADMIN_TOKEN") != "" {
		fmt.Fprintf(env.Stderr, "Note: PORTRAIT_ADMIN_TOKEN is set here; a server started with it (or --admin-token) uses that token instead.\n")
	}
	return nil
}
