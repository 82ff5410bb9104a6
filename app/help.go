package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// instanceUsage is the help of `portrait instance`.
const instanceUsage = `Usage: portrait instance COMMAND [flags] [arguments]

Commands:
  create           create an instance and print its idInstance and token (shown once)
  list             list the instances (never their tokens)
  delete ID        log a linked account out, then delete the instance
  rotate-token ID  give an instance a new token; the old one stops working
  set-credential ID  store the secret the instance's engine needs (a MAX bot
                   token), read from standard input

They work on the server's store (--data-dir, or --database for PostgreSQL),
also while the server runs: it picks the changes up within a second.
Flags may come before or after the arguments; "portrait instance COMMAND
--help" lists a command's flags.
`

// sandboxUsage is the help of `portrait sandbox`.
const sandboxUsage = `Usage: portrait sandbox COMMAND [flags] ID [arguments]

Commands (they change a sandbox instance's simulated world through a running
server's admin API: --server and --admin-token):
  world ID                         print the world
  set-picture ID CHAT FILE         a contact, group or the account changes its picture
  remove-picture ID CHAT           removes it
  privacy ID CHAT hidden|visible   a contact hides or shows its picture
  account ID CHAT yes|no           a number gets or loses its messenger account
  scan ID                          the phone scans the QR code

"portrait sandbox COMMAND --help" lists a command's flags.
`

// help prints the help of the command named in args, or the overview.
func help(env Env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stdout, usage)
		return nil
	}
	switch args[0] {
	case "serve":
		return serve(context.Background(), env, []string{"--help"})
	case "instance", "instances":
		fmt.Fprint(env.Stdout, instanceUsage)
		return nil
	case "sandbox":
		fmt.Fprint(env.Stdout, sandboxUsage)
		return nil
	case "admin":
		fmt.Fprintln(env.Stdout, "Usage: portrait admin rotate-token [--data-dir DIR | --database postgres://…]: replaces the admin token of the console and /admin/ (on PostgreSQL: of every node of the cluster) and prints the new one once")
		return nil
	case "version":
		fmt.Fprintln(env.Stdout, "Usage: portrait version (or portrait --version): the version and how it was built")
		return nil
	}
	fmt.Fprintf(env.Stderr, "portrait help: no command %q\n\n%s", args[0], usage)
	return ErrUsage
}

// printVersion prints the version and the build's details.
func printVersion(w io.Writer) {
	fmt.Fprintln(w, "portrait", Version)
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	fmt.Fprintln(w, "  go:", info.GoVersion)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += " (modified)"
		}
		fmt.Fprintln(w, "  commit:", rev)
	}
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintln(w, "  committed:", t)
	}
	fmt.Fprintf(w, "  platform: %s/%s, cgo %s\n", settings["GOOS"], settings["GOARCH"], map[string]string{"1": "on", "0": "off", "": "off"}[settings["CGO_ENABLED"]])
}

// commandUsage makes fs print "Usage: line" and its own flags to w.
func commandUsage(fs *flag.FlagSet, w io.Writer, line string) {
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(w, "Usage: %s\n\nFlags:\n", line)
		fs.PrintDefaults()
		if !strings.HasSuffix(line, "\n") {
			fmt.Fprintln(w)
		}
	}
}
