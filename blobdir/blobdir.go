// Package blobdir implements portrait.Blobs as files in a local directory.
//
// A blob with key k lives at <dir>/<first two characters of k>/<k>. Keys are
// 1 to 128 characters of [a-z0-9.-] not starting with '.', so a key can never
// name a path outside the directory, and the temporary files Put writes
// (named ".tmp-…") can never be mistaken for blobs.
//
// Blobs are content-addressed: the caller derives the key from the content,
// so a key that is already stored is never written again.
package blobdir

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portrait-dev/portrait"
)

// MaxKeyLen is the length limit of a key.
const MaxKeyLen = 128

// Dir is a portrait.Blobs in a directory. It is safe for concurrent use, also
// by several processes sharing the directory.
type Dir struct {
	root string
}

var _ portrait.Blobs = (*Dir)(nil)

// Open returns the blob store in dir, creating the directory (mode 0700) if
// it does not exist.
func Open(dir string) (*Dir, error) {
	if dir == "" {
		return nil, errors.New("blobdir: open: empty path")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blobdir: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("blobdir: open %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("blobdir: open %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("blobdir: open %s: not a directory", dir)
	}
	sweep(abs)
	return &Dir{root: abs}, nil
}

// staleTemp is how old a temporary file must be before Open removes it:
// older than any write in progress, so that a second process opening the
// directory does not remove another's half-written file.
const staleTemp = time.Hour

// sweep removes temporary files that a crash left behind in the shard
// directories. It is best effort: what it cannot remove stays.
func sweep(root string) {
	shards, err := os.ReadDir(root)
	if err != nil {
		return
	}
	cutoff := time.Now().Add(-staleTemp)
	for _, sh := range shards {
		if !sh.IsDir() {
			continue
		}
		dir := filepath.Join(root, sh.Name())
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".tmp-") {
				continue
			}
			if info, err := e.Info(); err == nil && info.ModTime().Before(cutoff) {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
}

// Path returns the absolute path of the directory.
func (d *Dir) Path() string { return d.root }

// ValidKey reports whether key is a valid blob key: 1 to MaxKeyLen
// characters of [a-z0-9.-], the first not '.'.
func ValidKey(key string) bool {
	if len(key) == 0 || len(key) > MaxKeyLen || key[0] == '.' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// shard returns the name of the subdirectory that holds key: its first two
// characters, or its only one.
func shard(key string) string {
	return key[:min(2, len(key))]
}

// Put stores data under key. If the key is already stored, Put does nothing:
// the same key means the same content. A new blob is written to a temporary
// file, synced, and renamed into place, and the directory is synced, so a
// blob that Put reported stored survives a crash and a blob is never seen
// half written. Concurrent Puts of one key are safe.
func (d *Dir) Put(ctx context.Context, key string, data []byte) error {
	if !ValidKey(key) {
		return fmt.Errorf("blobdir: put %q: invalid key", key)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blobdir: put %s: %w", key, err)
	}
	sub := filepath.Join(d.root, shard(key))
	final := filepath.Join(sub, key)
	if _, err := os.Lstat(final); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blobdir: put %s: %w", key, err)
	}
	if err := d.mkShard(sub); err != nil {
		return fmt.Errorf("blobdir: put %s: %w", key, err)
	}
	if err := writeFile(ctx, sub, final, data); err != nil {
		return fmt.Errorf("blobdir: put %s: %w", key, err)
	}
	return nil
}

// mkShard creates the subdirectory sub of the root if it is missing, and
// then syncs the root so that the new entry is durable.
func (d *Dir) mkShard(sub string) error {
	err := os.Mkdir(sub, 0o700)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(d.root)
}

// writeFile writes data to a temporary file in dir, syncs it, renames it to
// final and syncs dir.
func writeFile(ctx context.Context, dir, final string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// Another Put of the same key may have renamed its file into place
	// meanwhile; replacing it with the same content is harmless, and a
	// reader that opened it keeps reading the complete old file. Where the
	// system refuses to replace a file that is open, the other Put won.
	if err := os.Rename(tmp, final); err != nil {
		if _, serr := os.Lstat(final); serr == nil {
			os.Remove(tmp)
			return nil
		}
		return err
	}
	return syncDir(dir)
}

// syncDir flushes the directory dir, making the entries created or renamed
// in it durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Open returns the blob stored under key. It returns an error wrapping
// portrait.ErrNotFound if there is none, also when key is not a valid key.
func (d *Dir) Open(ctx context.Context, key string) (portrait.Blob, error) {
	if !ValidKey(key) {
		return nil, fmt.Errorf("blobdir: open %q: invalid key: %w", key, portrait.ErrNotFound)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blobdir: open %s: %w", key, err)
	}
	f, err := os.Open(filepath.Join(d.root, shard(key), key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blobdir: open %s: %w", key, portrait.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blobdir: open %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blobdir: open %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("blobdir: open %s: not a regular file: %w", key, portrait.ErrNotFound)
	}
	return &blob{File: f, size: fi.Size()}, nil
}

// blob is an open blob file.
type blob struct {
	*os.File
	size int64
}

// Size returns the length of the blob in bytes.
func (b *blob) Size() int64 { return b.size }
