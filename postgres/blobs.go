package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/blobdir"
)

// Blobs is a portrait.Blobs in the database's blobs table, for pictures
// that every node of a cluster can serve. (It is a type of its own because
// portrait.Blobs and portrait.KV both have a Put.) It is safe for
// concurrent use. Keys are blobdir's (blobdir.ValidKey), so that pictures
// can move between the two stores.
type Blobs struct {
	db *DB
}

var _ portrait.Blobs = (*Blobs)(nil)

// Blobs returns the database's picture store.
func (db *DB) Blobs() *Blobs { return &Blobs{db: db} }

// Put stores data under key. If the key is already stored, Put changes
// nothing: the same key means the same content. Concurrent Puts of one key
// are safe; a blob is never seen half written. An invalid key is an error.
func (b *Blobs) Put(ctx context.Context, key string, data []byte) error {
	if !blobdir.ValidKey(key) {
		return fmt.Errorf("postgres: put blob %q: invalid key", key)
	}
	if err := checkCtx(ctx, "put blob "+key); err != nil {
		return err
	}
	_, err := b.db.pool.Exec(ctx, `INSERT INTO blobs (key, data) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, nonNil(data))
	if err != nil {
		return fmt.Errorf("postgres: put blob %s: %w", key, err)
	}
	return nil
}

// Open returns the blob stored under key, read into memory (pictures are
// small: a 640 JPEG is 50–100 KB). It returns an error wrapping
// portrait.ErrNotFound if there is none, also when key is not a valid key.
func (b *Blobs) Open(ctx context.Context, key string) (portrait.Blob, error) {
	if !blobdir.ValidKey(key) {
		return nil, fmt.Errorf("postgres: open blob %q: invalid key: %w", key, portrait.ErrNotFound)
	}
	if err := checkCtx(ctx, "open blob "+key); err != nil {
		return nil, err
	}
	var data []byte
	err := b.db.pool.QueryRow(ctx, `SELECT data FROM blobs WHERE key = $1`, key).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		err = portrait.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: open blob %s: %w", key, err)
	}
	return &blob{Reader: bytes.NewReader(data), size: int64(len(data))}, nil
}

// blob is a blob read into memory.
type blob struct {
	*bytes.Reader
	size int64
}

// Size returns the length of the blob in bytes.
func (b *blob) Size() int64 { return b.size }

// Close releases nothing: the blob is in memory.
func (b *blob) Close() error { return nil }
