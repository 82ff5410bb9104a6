package portrait

import (
	"context"
	"io"
)

// Store keeps instances and engine state. The SQLite implementation is the
// embedded default; every implementation passes the shared suite in
// storetest.
type Store interface {
	KV

	// CreateInstance stores a new instance. It fails if the id is taken.
	CreateInstance(ctx context.Context, inst Instance) error
	// Instance returns one instance, or ErrNotFound.
	Instance(ctx context.Context, id InstanceID) (Instance, error)
	// Instances returns every instance, ordered by id.
	Instances(ctx context.Context) ([]Instance, error)
	// DeleteInstance removes an instance and everything stored for it, or
	// returns ErrNotFound.
	DeleteInstance(ctx context.Context, id InstanceID) error
	// SetTokenHash replaces an instance's token hash, or returns ErrNotFound.
	SetTokenHash(ctx context.Context, id InstanceID, hash []byte) error
	// SetSettings replaces an instance's settings, or returns ErrNotFound.
	SetSettings(ctx context.Context, id InstanceID, s Settings) error
	// Generation returns a number that changes whenever an instance is
	// created, deleted or changed, by this process or another one sharing
	// the store. Servers poll it to notice changes made by the CLI.
	Generation(ctx context.Context) (int64, error)

	// Close releases the store.
	Close() error
}

// Blobs is a content-addressed store of pictures. Keys are chosen by the
// caller (the avatar service derives them from the content) and are
// [a-z0-9.-] only.
type Blobs interface {
	// Put stores data under key. Putting the same key twice is not an error.
	Put(ctx context.Context, key string, data []byte) error
	// Open returns the blob stored under key, or ErrNotFound.
	Open(ctx context.Context, key string) (Blob, error)
}

// Blob is a stored picture being read.
type Blob interface {
	io.ReadSeekCloser
	// Size is the length of the blob in bytes.
	Size() int64
}
