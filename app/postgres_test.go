package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/adminauth"
	"github.com/portrait-dev/portrait/app"
	"github.com/portrait-dev/portrait/internal/pgtest"
	"github.com/portrait-dev/portrait/internal/servertest"
	"github.com/portrait-dev/portrait/postgres"
)

// TestServeOnPostgres: with --database postgres://… the whole server runs
// on PostgreSQL — instances, lookups, pictures at their stable URLs,
// notifications — and keeps its state across a restart; the CLI works on
// the same database.
func TestServeOnPostgres(t *testing.T) {
	dsn := pgtest.DB(t)
	dir := t.TempDir()
	s := startIn(t, dir, append(append([]string{}, fastArgs...), "--database", dsn)...)
	ctx := context.Background()
	c := s.wa()
	av, err := c.GetAvatar(ctx, "11001230001@c.us")
	if err != nil || av.URLAvatar == "" {
		t.Fatalf("getAvatar on PostgreSQL: %+v, %v", av, err)
	}
	checkJPEG(t, av.URLAvatar, 640)
	if code, _, b := s.call(t, s.WhatsApp, false, "POST", "getAvatarAsync", `{"chatId":"11001230002@c.us"}`); code != 200 {
		t.Fatalf("getAvatarAsync: %d %s", code, b)
	}
	if n := next(t, c); n.AvatarInfo == nil || n.AvatarInfo.URLAvatar == "" {
		t.Errorf("avatarInfo on PostgreSQL: %+v", n)
	}
	if code, _, b := raw(t, "GET", s.URL+"/readyz", "", nil); code != 200 {
		t.Errorf("readyz on PostgreSQL: %d %s", code, b)
	}
	first := s.Server

	// An instance the CLI creates is served at once: on PostgreSQL the
	// server follows the database's notifications (it does not poll).
	var made syncBuffer
	if err := app.Run(ctx, app.Env{Args: []string{"instance", "create", "--database", dsn, "--data-dir", t.TempDir()}, Getenv: func(string) string { return "" }, Stdout: &made, Stderr: &made}); err != nil {
		t.Fatalf("instance create on PostgreSQL: %v\n%s", err, made.String())
	}
	fresh := parseCreate(t, made.String())
	eventually(t, func() error {
		st, err := newClient(s.URL, fresh.ID, fresh.Token).GetStateInstance(ctx)
		if err == nil && st != "authorized" {
			err = fmt.Errorf("state %q", st)
		}
		return err
	})

	// The CLI does not open a session the server serves: it deletes the
	// instance without logging out, and says so.
	var deleted syncBuffer
	if err := app.Run(ctx, app.Env{Args: []string{"instance", "delete", "--database", dsn, "--data-dir", t.TempDir(), strconv.FormatInt(fresh.ID, 10)}, Getenv: func(string) string { return "" }, Stdout: &deleted, Stderr: &deleted}); err != nil {
		t.Fatalf("instance delete on PostgreSQL: %v\n%s", err, deleted.String())
	}
	if !strings.Contains(deleted.String(), "was not logged out") {
		t.Errorf("deleting an instance a server serves:\n%s", deleted.String())
	}
	eventually(t, func() error {
		if _, err := newClient(s.URL, fresh.ID, fresh.Token).GetStateInstance(ctx); err == nil {
			return fmt.Errorf("instance %d still served after its deletion", fresh.ID)
		}
		return nil
	})

	// A second server on the same database joins it as a node: it
	// answers for every instance, forwarding to the node that owns it.
	joined := startIn(t, t.TempDir(), append(append([]string{}, fastArgs...), "--database", dsn, "--node-id", "second node")...)
	eventually(t, func() error {
		got, err := newClient(joined.URL, first.WhatsApp.ID, first.WhatsApp.Token).GetAvatar(ctx, "11001230001@c.us")
		// The owner words the link with its --public-url (a cluster gives
		// every node the same); the picture's path is the same.
		if err == nil && avatarPath(got.URLAvatar) != avatarPath(av.URLAvatar) {
			err = fmt.Errorf("through the second node: %+v; want the picture path of %s", got, av.URLAvatar)
		}
		return err
	})
	// It is a node of the cluster under the name it was given (with two
	// instances, it may own none of them).
	pg, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	eventually(t, func() error {
		ns, err := pg.Nodes(ctx, time.Minute)
		if err == nil && !slices.ContainsFunc(ns, func(n portrait.Node) bool { return n.ID == "second node" }) {
			err = fmt.Errorf("no node %q in %+v", "second node", ns)
		}
		return err
	})
	if err := joined.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	// The CLI on the same database.
	var out syncBuffer
	if err := app.Run(ctx, app.Env{Args: []string{"instance", "list", "--database", dsn, "--data-dir", t.TempDir()}, Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out}); err != nil {
		t.Fatalf("instance list on PostgreSQL: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "1101") || !strings.Contains(out.String(), "3100") {
		t.Errorf("instance list on PostgreSQL:\n%s", out.String())
	}

	// A restart (from another data directory: nothing lives there) keeps
	// the instances, their tokens and the stable URLs.
	s2 := startIn(t, t.TempDir(), append(append([]string{}, fastArgs...), "--database", dsn)...)
	c2 := newClient(s2.URL, first.WhatsApp.ID, first.WhatsApp.Token)
	again, err := c2.GetAvatar(ctx, "11001230001@c.us")
	if err != nil || strings.TrimPrefix(again.URLAvatar, s2.URL) != strings.TrimPrefix(av.URLAvatar, s.URL) {
		t.Errorf("after a restart: %+v, %v; want the same picture path as %s", again, err, av.URLAvatar)
	}
	checkJPEG(t, again.URLAvatar, 640)
}

// parseCreate reads the credentials `portrait instance create` printed.
func parseCreate(t *testing.T, out string) creds {
	t.Helper()
	var c creds
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "idInstance:"); ok {
			c.ID, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "apiTokenInstance:"); ok {
			c.Token = strings.TrimSpace(v)
		}
	}
	if c.ID == 0 || c.Token == "" {
		t.Fatalf("no credentials in:\n%s", out)
	}
	return c
}

// avatarPath is the path of an avatar link, from /avatars/ on.
func avatarPath(url string) string {
	if i := strings.Index(url, "/avatars/"); i >= 0 {
		return url[i:]
	}
	return url
}

// TestSharedAdminToken: the nodes of a cluster share the admin token the
// first one made and the console sessions; `portrait admin rotate-token
// --database` replaces the token on every node and signs everybody out.
func TestSharedAdminToken(t *testing.T) {
	dsn := pgtest.DB(t)
	args := append(append([]string{}, fastArgs...), "--database", dsn)
	a := &server{Server: servertest.Start(t, t.TempDir(), args...)} // no --admin-token: made on first start
	b := &server{Server: servertest.Start(t, t.TempDir(), args...)}
	tokenRE := regexp.MustCompile(`admin token:\s+([0-9a-f]{64})`)
	m := tokenRE.FindStringSubmatch(a.Stdout.String())
	if m == nil {
		t.Fatalf("the first node printed no admin token:\n%s", a.Stdout)
	}
	token := m[1]
	if tokenRE.MatchString(b.Stdout.String()) {
		t.Errorf("the second node made an admin token of its own:\n%s", b.Stdout)
	}
	status := func(url, header, value string) int {
		t.Helper()
		code, _, _ := raw(t, "GET", url+"/admin/instances", "", nil, header, value)
		return code
	}
	if code := status(b.URL, "Authorization", "Bearer "+token); code != 200 {
		t.Fatalf("the first node's admin token on the second node: %d", code)
	}

	// A console sign-in on one node is one on the other.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(a.URL+"/console/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session string
	for _, c := range resp.Cookies() {
		if c.Name == adminauth.Cookie {
			session = c.Name + "=" + c.Value
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == "" {
		t.Fatalf("console sign-in: %d, cookie %q", resp.StatusCode, session)
	}
	if code := status(b.URL, "Cookie", session); code != 200 {
		t.Fatalf("a console session of the first node on the second node: %d", code)
	}

	// Rotating the token in the database.
	var out syncBuffer
	if err := app.Run(context.Background(), app.Env{Args: []string{"admin", "rotate-token", "--database", dsn, "--data-dir", t.TempDir()}, Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out}); err != nil {
		t.Fatalf("admin rotate-token --database: %v\n%s", err, out.String())
	}
	m = tokenRE.FindStringSubmatch(out.String())
	if m == nil || m[1] == token {
		t.Fatalf("rotate-token printed no new token:\n%s", out.String())
	}
	fresh := m[1]
	eventually(t, func() error {
		for _, n := range []*server{a, b} {
			if code := status(n.URL, "Authorization", "Bearer "+token); code != 401 {
				return fmt.Errorf("the old token on %s: %d", n.URL, code)
			}
			if code := status(n.URL, "Authorization", "Bearer "+fresh); code != 200 {
				return fmt.Errorf("the new token on %s: %d", n.URL, code)
			}
		}
		return nil
	})
	if code := status(b.URL, "Cookie", session); code != 401 {
		t.Errorf("a console session after the token was rotated: %d", code)
	}
}
