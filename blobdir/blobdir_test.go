package blobdir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/storetest"
)

// keyOf derives a content address the way the avatar service might.
func keyOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]) + ".jpg"
}

func open(t *testing.T) *Dir {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readAll(t *testing.T, d *Dir, key string) []byte {
	t.Helper()
	b, err := d.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	if int64(len(data)) != b.Size() {
		t.Errorf("%q: Size() = %d, read %d bytes", key, b.Size(), len(data))
	}
	return data
}

// files lists every path under root, relative to it.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestOpenCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b", "blobs")
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: mode %v, want a 0700 directory", dir, fi.Mode())
	}
	if d.Path() != dir {
		t.Errorf("Path() = %q, want %q", d.Path(), dir)
	}
	// Opening an existing directory works too.
	if _, err := Open(dir); err != nil {
		t.Errorf("Open of an existing directory: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file); err == nil {
		t.Errorf("Open of a file succeeded")
	}
	if _, err := Open(""); err == nil {
		t.Errorf("Open(\"\") succeeded")
	}
}

func TestRoundTrip(t *testing.T) {
	d := open(t)
	ctx := t.Context()
	for _, data := range [][]byte{
		[]byte("\xff\xd8\xff\xe0 a jpeg, nearly"),
		{},
		bytes.Repeat([]byte{0, 1, 2, 3, 0xff}, 300_000),
	} {
		key := keyOf(data)
		if err := d.Put(ctx, key, data); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if got := readAll(t, d, key); !bytes.Equal(got, data) {
			t.Errorf("read back %d bytes, want %d", len(got), len(data))
		}
		if _, err := os.Stat(filepath.Join(d.Path(), key[:2], key)); err != nil {
			t.Errorf("blob not at <dir>/<xx>/<key>: %v", err)
		}
	}
	for _, f := range files(t, d.Path()) {
		if strings.Contains(f, ".tmp-") {
			t.Errorf("temporary file left behind: %s", f)
		}
	}
}

func TestPutIdempotent(t *testing.T) {
	d := open(t)
	ctx := t.Context()
	data := []byte("picture")
	key := keyOf(data)
	if err := d.Put(ctx, key, data); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d.Path(), key[:2], key)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// A second Put leaves the file alone: not even rewritten.
	if err := d.Put(ctx, key, data); err != nil {
		t.Fatalf("second Put: %v", err)
	}
	if err := d.Put(ctx, key, []byte("different bytes under the same key")); err != nil {
		t.Fatalf("third Put: %v", err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !before.ModTime().Equal(after.ModTime()) {
		t.Errorf("Put of a stored key rewrote the file")
	}
	if got := readAll(t, d, key); !bytes.Equal(got, data) {
		t.Errorf("read %q, want %q", got, data)
	}
	if got := files(t, d.Path()); len(got) != 3 {
		t.Errorf("directory holds %v, want the root, one shard and one file", got)
	}
}

func TestConcurrentPuts(t *testing.T) {
	d := open(t)
	data := bytes.Repeat([]byte("concurrent "), 100_000)
	key := keyOf(data)
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			errs[i] = d.Put(t.Context(), key, data)
			// Readers racing with the writers see the whole blob or
			// nothing.
			b, err := d.Open(t.Context(), key)
			if err != nil {
				errs[i] = errors.Join(errs[i], err)
				return
			}
			defer b.Close()
			got, err := io.ReadAll(b)
			if err != nil || !bytes.Equal(got, data) {
				errs[i] = errors.Join(errs[i], err, errors.New("read a partial blob"))
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	if got := readAll(t, d, key); !bytes.Equal(got, data) {
		t.Errorf("read %d bytes, want %d", len(got), len(data))
	}
	if got := files(t, d.Path()); len(got) != 3 {
		t.Errorf("directory holds %v, want the root, one shard and one file", got)
	}
}

func TestInvalidKeys(t *testing.T) {
	parent := t.TempDir()
	d, err := Open(filepath.Join(parent, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	// A file just outside the directory that a traversing key would reach.
	if err := os.WriteFile(filepath.Join(parent, "x"), []byte("outside"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, key := range []string{
		"../x", "..", ".", "a/b", "ab/../../x", "/etc/passwd", `a\b`, `..\x`,
		"", "ABC", "aBc", strings.Repeat("a", 200), strings.Repeat("a", MaxKeyLen+1),
		".hidden", ".tmp-123", "%2e%2e", "%2e%2e%2fx", "a b", "a\x00b", "ключ", "a_b", "a:b",
	} {
		if ValidKey(key) {
			t.Errorf("ValidKey(%q) = true", key)
		}
		if err := d.Put(ctx, key, []byte("evil")); err == nil {
			t.Errorf("Put(%q) succeeded", key)
		}
		b, err := d.Open(ctx, key)
		if !errors.Is(err, portrait.ErrNotFound) {
			t.Errorf("Open(%q): %v, want an error wrapping ErrNotFound", key, err)
		}
		if b != nil {
			t.Errorf("Open(%q) returned a blob", key)
			b.Close()
		}
	}
	if got := files(t, parent); strings.Join(got, " ") != ". blobs x" {
		t.Errorf("after invalid Puts the parent holds %v, want only blobs/ (empty) and x", got)
	}
	if data, err := os.ReadFile(filepath.Join(parent, "x")); err != nil || string(data) != "outside" {
		t.Errorf("file outside the directory: %q, %v", data, err)
	}
}

// TestDirectoryIsNotABlob: a directory where a blob would be is not a
// blob. (Missing keys in general are storetest.RunBlobs's.)
func TestDirectoryIsNotABlob(t *testing.T) {
	d := open(t)
	if err := os.MkdirAll(filepath.Join(d.Path(), "di", "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(t.Context(), "dir"); !errors.Is(err, portrait.ErrNotFound) {
		t.Errorf("Open of a directory: %v, want ErrNotFound", err)
	}
}

// TestOpenSweepsStaleTemporaryFiles: a crash mid-Put leaves a .tmp- file;
// the next Open removes it once it is old, and leaves blobs and fresh
// temporary files (another process's write in progress) alone.
func TestOpenSweepsStaleTemporaryFiles(t *testing.T) {
	root := t.TempDir()
	d, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(context.Background(), "abcdef", []byte("picture")); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Join(root, "ab")
	stale, fresh := filepath.Join(shard, ".tmp-111"), filepath.Join(shard, ".tmp-222")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale temporary file is still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh temporary file was removed: %v", err)
	}
	if b, err := d.Open(context.Background(), "abcdef"); err != nil {
		t.Errorf("the blob is gone: %v", err)
	} else {
		b.Close()
	}
}

// TestBlobs runs the suite every portrait.Blobs passes: round trips, keys,
// idempotent and concurrent Puts, invalid and missing keys, Seek and Size,
// the caller's slices and canceled contexts. The tests above add only what
// is particular to a directory.
func TestBlobs(t *testing.T) {
	storetest.RunBlobs(t, func(t *testing.T) portrait.Blobs { return open(t) })
}
