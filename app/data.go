package app

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/blobdir"
	"github.com/portrait-dev/portrait/postgres"
	"github.com/portrait-dev/portrait/sqlite"
)

// database is what portrait keeps its state in: SQLite in the data
// directory (the default), or PostgreSQL (--database postgres://…), which
// several nodes can share.
type database interface {
	portrait.Store
	portrait.Queue
	portrait.Leases
	portrait.JobClaims
	// SQL is a database/sql handle on the same database, for whatsmeow's
	// device store; Dialect is its dialect name there.
	SQL() *sql.DB
	Dialect() string
	// CheckWrite commits a write that changes nothing (the readiness
	// check).
	CheckWrite(ctx context.Context) error
}

// data is an opened store: the database, the pictures and the key that
// makes avatar URLs unguessable.
type data struct {
	db     database
	blobs  portrait.Blobs
	secret []byte
	// disk is the directory readiness checks write to; "" when the
	// pictures live in the database.
	disk string
}

// isPostgres reports whether dsn names a PostgreSQL database.
func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// openData opens the store: SQLite, pictures and URL key in dir when dsn
// is empty; everything in the PostgreSQL database dsn names otherwise.
func openData(ctx context.Context, dir, dsn string) (*data, error) {
	if dsn != "" && !isPostgres(dsn) {
		return nil, fmt.Errorf("portrait: --database %q: give a postgres:// URL, or nothing for SQLite in the data directory", redactDSN(dsn))
	}
	// The data directory is there on PostgreSQL too: it holds the admin
	// token's hash and the address the server last served at.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("portrait: data directory: %w", err)
	}
	if isPostgres(dsn) {
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("portrait: database: %w", err)
		}
		blobs := db.Blobs()
		secret, err := sharedURLKey(ctx, blobs)
		if err != nil {
			db.Close()
			return nil, err
		}
		return &data{db: db, blobs: blobs, secret: secret}, nil
	}
	secret, err := urlKey(filepath.Join(dir, "url.key"))
	if err != nil {
		return nil, err
	}
	blobs, err := blobdir.Open(filepath.Join(dir, "pictures"))
	if err != nil {
		return nil, fmt.Errorf("portrait: picture directory: %w", err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "portrait.db"))
	if err != nil {
		return nil, fmt.Errorf("portrait: database: %w", err)
	}
	return &data{db: db, blobs: blobs, secret: secret, disk: dir}, nil
}

// redactDSN hides anything after the scheme of a database address that
// may hold a password.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		return dsn[:i+3] + "…"
	}
	if len(dsn) > 12 {
		return dsn[:12] + "…"
	}
	return dsn
}

// urlKeyBlob is the blob that holds the URL key when the pictures live in
// a database that several nodes share: they must all use one key.
const urlKeyBlob = "url-key"

// sharedURLKey reads the URL key from the blob store, storing a new one on
// first start. Nodes starting at once may each offer one; the first stored
// wins and all read it back.
func sharedURLKey(ctx context.Context, blobs portrait.Blobs) ([]byte, error) {
	read := func() ([]byte, error) {
		b, err := blobs.Open(ctx, urlKeyBlob)
		if err != nil {
			return nil, err
		}
		defer b.Close()
		return io.ReadAll(b)
	}
	key, err := read()
	if err == nil && len(key) >= 32 {
		return key, nil
	}
	if err != nil && !errors.Is(err, portrait.ErrNotFound) {
		return nil, fmt.Errorf("portrait: reading the URL key: %w", err)
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("portrait: making URL key: %w", err)
	}
	if err := blobs.Put(ctx, urlKeyBlob, fresh); err != nil {
		return nil, fmt.Errorf("portrait: storing the URL key: %w", err)
	}
	if key, err = read(); err != nil || len(key) < 32 {
		return nil, fmt.Errorf("portrait: reading the URL key back: %v", err)
	}
	return key, nil
}
