package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/config"
	"github.com/portrait-dev/portrait/instance"
	"github.com/portrait-dev/portrait/maxbot"
	"github.com/portrait-dev/portrait/maxweb"
	"github.com/portrait-dev/portrait/sandbox"
	"github.com/portrait-dev/portrait/whatsapp"
)

// welcome prints, on first start, the instances it creates with their
// tokens, a curl line and the demo chats; on later starts, how to list
// instances and get a new token.
func welcome(ctx context.Context, w io.Writer, instances portrait.Instances, cfg config.Config) error {
	all, err := instances.List(ctx)
	if err != nil {
		return fmt.Errorf("portrait: listing instances: %w", err)
	}
	if len(all) > 0 {
		fmt.Fprintf(w, "portrait: serving %d instance(s) from %s.\n", len(all), cfg.DataDir)
		fmt.Fprintf(w, "  list them:         portrait instance list --data-dir %s\n", cfg.DataDir)
		fmt.Fprintf(w, "  get a new token:   portrait instance rotate-token --data-dir %s ID\n", cfg.DataDir)
		return nil
	}
	type created struct {
		inst  portrait.Handle
		token string
	}
	var made []created
	for _, t := range []portrait.InstanceType{portrait.TypeWhatsApp, portrait.TypeMAX} {
		h, token, err := instances.Create(ctx, t, sandbox.Name)
		if err != nil {
			return fmt.Errorf("portrait: creating the first %s instance: %w", t, err)
		}
		made = append(made, created{h, token})
	}
	fmt.Fprintf(w, "portrait: first start — created two instances on the sandbox engine.\n")
	fmt.Fprintf(w, "The tokens are shown only now: portrait keeps them hashed.\n\n")
	for _, c := range made {
		name := "WhatsApp"
		if c.inst.Type() == portrait.TypeMAX {
			name = "MAX (v3)"
		}
		fmt.Fprintf(w, "%s instance\n", name)
		fmt.Fprintf(w, "  apiUrl:            %s\n", apiURL(cfg.PublicURL, c.inst.Type()))
		fmt.Fprintf(w, "  idInstance:        %d\n", c.inst.ID())
		fmt.Fprintf(w, "  apiTokenInstance:  %s\n", c.token)
		demo := sandbox.DemoChats(c.inst.Type())
		example := ""
		for _, d := range demo {
			if d.Outcome == sandbox.OutcomePicture && d.Kind != portrait.SubjectSelf {
				example = d.ChatID
				break
			}
		}
		fmt.Fprintf(w, "  try:               curl -s -X POST '%s/waInstance%d/getAvatar/%s' -H 'Content-Type: application/json' -d '{\"chatId\": \"%s\"}'\n",
			apiURL(cfg.PublicURL, c.inst.Type()), c.inst.ID(), c.token, example)
		fmt.Fprintf(w, "  demo chats:\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, d := range demo {
			fmt.Fprintf(tw, "    %s\t%s\t%s\n", d.ChatID, d.Outcome, d.Description)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	return nil
}

func apiURL(base string, t portrait.InstanceType) string {
	base = strings.TrimRight(base, "/")
	if t == portrait.TypeMAX {
		return base + "/v3"
	}
	return base
}

// parseFlags parses args with fs, taking flags before, between and after
// positional arguments ("instance delete ID --data-dir DIR" works like
// "instance delete --data-dir DIR ID"); "--" ends the flags. The positional
// arguments are then fs.Args().
func parseFlags(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			positional = append(positional, rest...) // after "--": all positional
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

// serverURLFile is where a server writes the public URL it serves at, so
// that the CLI prints the apiUrl clients really use.
const serverURLFile = "server-url"

// rememberServerURL writes the server's public URL into its data
// directory (best effort).
func rememberServerURL(dataDir, url string, log *slog.Logger) {
	if err := os.WriteFile(filepath.Join(dataDir, serverURLFile), []byte(url+"\n"), 0o600); err != nil {
		log.Warn("remembering the public URL for the CLI", "err", err)
	}
}

// serverURL is the base URL the CLI prints: --public-url (or
// PORTRAIT_PUBLIC_URL) when given, else the address the server last
// served at from this data directory, else the default.
func serverURL(flagValue, dataDir string) string {
	if flagValue != "" {
		return flagValue
	}
	if b, err := os.ReadFile(filepath.Join(dataDir, serverURLFile)); err == nil {
		if u := strings.TrimSpace(string(b)); u != "" {
			return u
		}
	}
	return "http://127.0.0.1:8780"
}

// nextSteps tells what to do with a new instance, by its engine.
func nextSteps(h portrait.Handle, base string) string {
	api := apiURL(base, h.Type())
	switch h.Engine() {
	case sandbox.Name:
		var b strings.Builder
		fmt.Fprintf(&b, "Next: it is linked to the sandbox's demo account; try getAvatar on its demo chats:\n")
		for _, d := range sandbox.DemoChats(h.Type()) {
			fmt.Fprintf(&b, "  %-26s %s\n", d.ChatID, d.Description)
		}
		return b.String()
	case whatsapp.Name:
		return fmt.Sprintf("Next: link a phone. Open %s/console and scan the QR code (WhatsApp → Settings → Linked devices), or GET %s/waInstance%d/qr/{apiTokenInstance}, or POST getAuthorizationCode {\"phoneNumber\": …} to link by code.\n", strings.TrimRight(base, "/"), api, h.ID())
	case maxweb.Name:
		return fmt.Sprintf("Next: link a MAX account. Open %s/console and scan the QR code with the MAX app, or GET %s/waInstance%d/qr/{apiTokenInstance}. See docs/max-smoke-test.md.\n", strings.TrimRight(base, "/"), api, h.ID())
	case maxbot.Name:
		return fmt.Sprintf("Next: give it its bot token: echo \"$BOT_TOKEN\" | portrait instance set-credential %d\n", h.ID())
	}
	return ""
}

// dataFlags are the flags of the commands that open the data directory.
func dataFlags(fs *flag.FlagSet, env Env) (dataDir, publicURL *string) {
	dataDir = fs.String("data-dir", envOr(env, "PORTRAIT_DATA_DIR", "./portrait-data"), "data directory (env PORTRAIT_DATA_DIR)")
	publicURL = fs.String("public-url", env.Getenv("PORTRAIT_PUBLIC_URL"), "the server's public base URL, for the apiUrl shown (env PORTRAIT_PUBLIC_URL; default: where the server last served from this data directory)")
	return
}

func envOr(env Env, name, def string) string {
	if v := env.Getenv(name); v != "" {
		return v
	}
	return def
}

// instanceCommand runs `portrait instance create|list|delete|rotate-token`
// on the data directory, through the same instance set the server uses (so
// that deleting a linked instance logs it out first); a running server picks
// the changes up.
func instanceCommand(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, instanceUsage)
		return ErrUsage
	}
	if isHelp(args[0]) {
		fmt.Fprint(env.Stdout, instanceUsage)
		return nil
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("portrait instance "+sub, flag.ContinueOnError)
	commandUsage(fs, env.Stdout, "portrait instance "+sub+map[string]string{
		"create": " [--type whatsapp|v3] [--engine NAME]", "list": "", "delete": " ID", "rotate-token": " ID", "set-credential": " ID  (the secret on standard input)"}[sub])
	dataDir, publicURL := dataFlags(fs, env)
	dsn := fs.String("database", env.Getenv("PORTRAIT_DATABASE"), "the server's database: empty for SQLite in the data directory, or a postgres:// URL (env PORTRAIT_DATABASE)")
	typ := fs.String("type", string(portrait.TypeWhatsApp), "instance type for create: whatsapp or v3 (MAX)")
	engine := fs.String("engine", defaultEngine, "engine for create: "+strings.Join(engineNames(), ", "))
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	switch sub {
	case "create", "list", "delete", "rotate-token", "set-credential":
	default:
		fmt.Fprintf(env.Stderr, "portrait instance: unknown command %q\n\n%s", sub, instanceUsage)
		return ErrUsage
	}
	if _, err := os.Stat(filepath.Join(*dataDir, "portrait.db")); err != nil && sub != "create" && *dsn == "" {
		return fmt.Errorf("portrait: no portrait database in %s (start the server once, or pass --data-dir, or --database for PostgreSQL)", *dataDir)
	}
	d, err := openData(ctx, *dataDir, *dsn)
	if err != nil {
		return err
	}
	defer d.db.Close()
	store := d.db
	cfg, err := config.Parse(nil, env.Getenv, io.Discard)
	if err != nil {
		return err
	}
	log := newLogger(env.Stderr, "warn", cfg.LogFormat)
	// Only the commands that reach an engine open the engines (the
	// whatsapp engine prepares its device tables when it opens).
	var engines map[string]portrait.Engine
	if sub == "create" || sub == "delete" || sub == "set-credential" {
		var closeEngines func()
		if engines, closeEngines, err = openEngines(ctx, cfg, store, log); err != nil {
			return err
		}
		defer closeEngines()
	}
	regOpts := instance.Options{DefaultEngine: defaultEngine, Lazy: true, Logger: log}
	var acting *cliActing
	if isPostgres(*dsn) {
		// Servers of a cluster may serve these instances: the CLI opens a
		// session only for an instance no node serves.
		acting = newCLIActing(store)
		defer acting.release()
		regOpts.Acting = acting.acting
	}
	reg := instance.New(store, engines, regOpts)
	if err := reg.Start(ctx, nil); err != nil {
		return err
	}
	defer reg.Close()

	idArg := func() (portrait.InstanceID, error) {
		if fs.NArg() != 1 {
			fmt.Fprintf(env.Stderr, "portrait instance %s: give the idInstance\n", sub)
			return 0, ErrUsage
		}
		n, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("portrait: %q is not an idInstance: give the 10-digit number 'portrait instance list' shows", fs.Arg(0))
		}
		return portrait.InstanceID(n), nil
	}
	switch sub {
	case "create":
		t, err := instance.ParseType(*typ)
		if err != nil {
			return err
		}
		h, token, err := reg.Create(ctx, t, *engine)
		if err != nil {
			return fmt.Errorf("portrait: %w", err)
		}
		base := serverURL(*publicURL, *dataDir)
		fmt.Fprintf(env.Stdout, "apiUrl:            %s\nidInstance:        %d\napiTokenInstance:  %s\n", apiURL(base, t), h.ID(), token)
		fmt.Fprintf(env.Stderr, "The token is shown only now: portrait keeps it hashed.\n")
		fmt.Fprint(env.Stderr, nextSteps(h, base))
		return nil
	case "list":
		all, err := reg.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "idInstance\ttypeInstance\tengine\tcreated\tapiUrl")
		for _, h := range all {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", h.ID(), h.Type(), h.Engine(), h.CreatedAt().UTC().Format(time.RFC3339), apiURL(serverURL(*publicURL, *dataDir), h.Type()))
		}
		return tw.Flush()
	case "delete":
		id, err := idArg()
		if err != nil {
			return err
		}
		if err := reg.Delete(ctx, id); err != nil {
			if errors.Is(err, portrait.ErrUnknownInstance) {
				return fmt.Errorf("portrait: there is no instance %d ('portrait instance list' shows them)", id)
			}
			return fmt.Errorf("portrait: delete %d: %w", id, err)
		}
		fmt.Fprintf(env.Stdout, "deleted instance %d\n", id)
		if acting != nil && acting.served(id) {
			fmt.Fprintf(env.Stderr, "A running server was serving instance %d, so its account was not logged out: remove the linked device on the phone (next time, delete through the admin API or the console, which log out first).\n", id)
		}
		return nil
	case "set-credential":
		id, err := idArg()
		if err != nil {
			return err
		}
		if env.Stdin == nil {
			return errors.New("portrait: set-credential reads the secret from standard input")
		}
		line, err := bufio.NewReader(io.LimitReader(env.Stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("portrait: reading the secret from standard input: %w", err)
		}
		if err := reg.SetCredential(ctx, id, strings.TrimSpace(line)); err != nil {
			if errors.Is(err, portrait.ErrUnknownInstance) {
				return fmt.Errorf("portrait: there is no instance %d ('portrait instance list' shows them)", id)
			}
			return fmt.Errorf("portrait: set-credential %d: %w (only instances of an engine that takes a credential, such as maxbot, have one)", id, err)
		}
		fmt.Fprintf(env.Stdout, "stored the credential of instance %d\n", id)
		fmt.Fprintf(env.Stderr, "A running server uses it from the instance's next reboot (GET …/reboot/{apiTokenInstance}), or set it through the admin API to apply it at once.\n")
		return nil
	case "rotate-token":
		id, err := idArg()
		if err != nil {
			return err
		}
		token, err := reg.RotateToken(ctx, id)
		if errors.Is(err, portrait.ErrNotFound) {
			return fmt.Errorf("portrait: there is no instance %d ('portrait instance list' shows them)", id)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "idInstance:        %d\napiTokenInstance:  %s\n", id, token)
		fmt.Fprintf(env.Stderr, "The old token no longer works; the new one is shown only now.\n")
		return nil
	}
	return ErrUsage
}

// sandboxCommand runs `portrait sandbox …` against a running server's admin
// API.
func sandboxCommand(ctx context.Context, env Env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, sandboxUsage)
		return ErrUsage
	}
	if isHelp(args[0]) {
		fmt.Fprint(env.Stdout, sandboxUsage)
		return nil
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("portrait sandbox "+sub, flag.ContinueOnError)
	commandUsage(fs, env.Stdout, "portrait sandbox "+sub+map[string]string{
		"world": " ID", "scan": " ID", "set-picture": " ID CHAT FILE", "remove-picture": " ID CHAT", "privacy": " ID CHAT hidden|visible", "account": " ID CHAT yes|no"}[sub])
	server := fs.String("server", envOr(env, "PORTRAIT_PUBLIC_URL", "http://127.0.0.1:8780"), "the server's base URL (env PORTRAIT_PUBLIC_URL)")
	token := fs.String("admin-token", env.Getenv("PORTRAIT_ADMIN_TOKEN"), "the server's admin token (env PORTRAIT_ADMIN_TOKEN)")
	author := fs.String("author", "", "for set-picture on a group: who changed it")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	need := map[string]int{"world": 1, "scan": 1, "set-picture": 3, "remove-picture": 2, "privacy": 3, "account": 3}
	n, ok := need[sub]
	if !ok {
		fmt.Fprintf(env.Stderr, "portrait sandbox: unknown command %q\n\n%s", sub, sandboxUsage)
		return ErrUsage
	}
	if fs.NArg() != n {
		fmt.Fprintf(env.Stderr, "portrait sandbox %s: expected %d argument(s)\n\n%s", sub, n, sandboxUsage)
		return ErrUsage
	}
	if *token == "" {
		return errors.New("portrait: the sandbox commands need the server's admin token (--admin-token or PORTRAIT_ADMIN_TOKEN)")
	}
	a := fs.Args()
	base := strings.TrimRight(*server, "/") + "/admin/instances/" + a[0]
	var method, url string
	var body any
	switch sub {
	case "world":
		method, url = http.MethodGet, base+"/sandbox/world"
	case "scan":
		method, url = http.MethodPost, base+"/sandbox/scan"
	case "set-picture":
		data, err := os.ReadFile(a[2])
		if err != nil {
			return fmt.Errorf("portrait: %w", err)
		}
		method, url = http.MethodPost, base+"/sandbox/chats/"+a[1]
		body = map[string]any{"picture": base64.StdEncoding.EncodeToString(data), "author": *author}
	case "remove-picture":
		method, url = http.MethodPost, base+"/sandbox/chats/"+a[1]
		body = map[string]any{"removePicture": true, "author": *author}
	case "privacy":
		if a[2] != "hidden" && a[2] != "visible" {
			return fmt.Errorf("portrait: privacy is hidden or visible, not %q", a[2])
		}
		method, url = http.MethodPost, base+"/sandbox/chats/"+a[1]
		body = map[string]any{"hidden": a[2] == "hidden"}
	case "account":
		if a[2] != "yes" && a[2] != "no" {
			return fmt.Errorf("portrait: account is yes or no, not %q", a[2])
		}
		method, url = http.MethodPost, base+"/sandbox/chats/"+a[1]
		body = map[string]any{"hasAccount": a[2] == "yes"}
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return fmt.Errorf("portrait: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+*token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("portrait: reaching the server at %s: %w (is it running? --server or PORTRAIT_PUBLIC_URL names it)", *server, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		hint := ""
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			hint = " (check --admin-token or PORTRAIT_ADMIN_TOKEN)"
		case http.StatusNotFound:
			hint = " (check the instance id: 'portrait instance list' shows them; the sandbox commands work on sandbox instances only)"
		}
		return fmt.Errorf("portrait: the server answered %s: %s%s", resp.Status, bytes.TrimSpace(out), hint)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") == nil {
		out = pretty.Bytes()
	}
	fmt.Fprintf(env.Stdout, "%s\n", out)
	return nil
}

// cliActing lets the CLI act for an instance of a cluster's database only
// while no node serves it: it takes the instance's lease for itself (and
// gives it back when the command ends), as a node would.
type cliActing struct {
	leases portrait.Leases
	node   string

	mu      sync.Mutex
	held    []portrait.Lease
	refused map[portrait.InstanceID]bool
}

func newCLIActing(leases portrait.Leases) *cliActing {
	host, _ := os.Hostname()
	return &cliActing{leases: leases, node: fmt.Sprintf("cli:%s:%d", host, os.Getpid()), refused: map[portrait.InstanceID]bool{}}
}

// cliLease is how long the CLI holds an instance at most (it gives it back
// when the command ends).
const cliLease = 30 * time.Second

func (c *cliActing) acting(ctx context.Context, id portrait.InstanceID) (context.Context, bool) {
	l, err := c.leases.Acquire(ctx, id, c.node, cliLease)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if errors.Is(err, portrait.ErrLeaseHeld) {
			c.refused[id] = true
		}
		return ctx, false
	}
	c.held = append(c.held, l)
	return portrait.WithLease(ctx, l), true
}

// served reports whether a node served id when the CLI wanted to act.
func (c *cliActing) served(id portrait.InstanceID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused[id]
}

// release gives back the leases the CLI took.
func (c *cliActing) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.held {
		_ = c.leases.Release(ctx, l.Instance, l.Node, l.Fence)
	}
}
