// Package app is the portrait program: Run parses the command line and runs
// the server or a management command. It takes the operating system as
// parameters so that tests can run the whole program in-process.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Version is portrait's version, set at build time with
// -ldflags "-X github.com/portrait-dev/portrait/app.Version=…".
var Version = "dev"

// Env is the operating system as the program sees it.
type Env struct {
	Args   []string // without the program name
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// ErrUsage is returned for a command line that could not be understood; the
// usage has been printed.
var ErrUsage = errors.New("usage")

const usage = `portrait — a GREEN-API-compatible avatar gateway

Usage:
  portrait [serve] [flags]                 run the server (see portrait serve -h)
  portrait instance create [--type whatsapp|v3] [--engine sandbox|whatsapp|max|maxbot]
  portrait instance list
  portrait instance delete ID
  portrait instance rotate-token ID
  portrait instance set-credential ID      (reads the secret, e.g. a MAX bot token, from stdin)
  portrait sandbox world ID
  portrait sandbox set-picture ID CHAT FILE
  portrait sandbox remove-picture ID CHAT
  portrait sandbox privacy ID CHAT hidden|visible
  portrait sandbox account ID CHAT yes|no
  portrait sandbox scan ID
  portrait admin rotate-token              a new admin token for the console and /admin/, shown once
  portrait version                         the version and build (also --version)
  portrait help [COMMAND]                  this overview, or a command's help (also --help)

The instance commands work on the data directory (--data-dir or
PORTRAIT_DATA_DIR); a running server picks their changes up within a second.
The sandbox commands talk to a running server's admin API (--server or
PORTRAIT_PUBLIC_URL, --admin-token or PORTRAIT_ADMIN_TOKEN). admin
rotate-token works on the data directory too; a running server takes the
new token within a second.
`

// Run runs portrait with env until ctx ends (for the server) or the command
// is done.
func Run(ctx context.Context, env Env) error {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	args := env.Args
	if len(args) > 0 {
		switch {
		case isHelp(args[0]):
			return help(env, args[1:])
		case args[0] == "-v" || args[0] == "--version" || args[0] == "version":
			printVersion(env.Stdout)
			return nil
		}
	}
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, env, args)
	case "instance", "instances":
		return instanceCommand(ctx, env, args)
	case "sandbox":
		return sandboxCommand(ctx, env, args)
	case "admin":
		return adminCommand(ctx, env, args)
	}
	fmt.Fprintf(env.Stderr, "portrait: unknown command %q\n\n%s", cmd, usage)
	return ErrUsage
}
