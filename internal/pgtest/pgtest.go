// Package pgtest gives tests a fresh, empty PostgreSQL database of their
// own on the server named by PORTRAIT_TEST_POSTGRES (a URL such as
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable whose user may
// create and drop databases). scripts/test starts a throwaway server and
// sets the variable.
//
// Without the variable the tests that need PostgreSQL skip, unless
// PORTRAIT_REQUIRE_TOOLS=1 (as scripts/test and CI set it): then they fail,
// so that CI never passes by skipping them.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL is the variable that names the test server.
const EnvURL = "PORTRAIT_TEST_POSTGRES"

// ServerURL returns the URL of the test server, or skips t (fails it
// with PORTRAIT_REQUIRE_TOOLS=1) when there is none.
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u != "" {
		return u
	}
	msg := EnvURL + " is not set (scripts/test starts a PostgreSQL server and sets it)"
	if os.Getenv("PORTRAIT_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg + "; PORTRAIT_REQUIRE_TOOLS=1 needs it")
	}
	t.Skip(msg)
	return ""
}

// DB creates a new, empty database with a random name on the test server
// and returns its URL. The database is dropped when t's cleanups run (after
// the cleanups registered later, such as those that close the test's
// connections); connections still open then are ended.
func DB(t testing.TB) string {
	t.Helper()
	server := ServerURL(t)
	base, err := url.Parse(server)
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := "portrait_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := admin(ctx, server, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE ends the connections a failed test may have left open.
		if err := admin(ctx, server, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	u := *base
	u.Path = "/" + name
	return u.String()
}

// admin runs one statement on the server's own database, on a connection
// of its own.
func admin(ctx context.Context, server, stmt string) error {
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", EnvURL, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}
