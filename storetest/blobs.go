package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/portrait-dev/portrait"
)

// RunBlobs runs the picture-store suite as subtests of t: the behaviour
// every portrait.Blobs implementation must show. open must return a new,
// empty store for each call, and register whatever cleanup it needs.
//
// Besides what the portrait.Blobs doc comments say, the suite requires:
//   - valid keys are 1 to 128 characters of [a-z0-9.-] not starting with
//     '.'; Put refuses any other key with an error, and Open answers it
//     with an error wrapping portrait.ErrNotFound;
//   - Put of a stored key keeps the stored content (the same key means the
//     same content), and concurrent Puts of one key are safe;
//   - a blob is read back byte for byte, empty ones included, with Size
//     its length, and seeks like an io.Seeker over those bytes;
//   - changing the slice given to Put afterwards changes nothing stored;
//   - a call whose context is done before it starts fails with the
//     context's error and stores nothing.
func RunBlobs(t *testing.T, open func(t *testing.T) portrait.Blobs) {
	for _, tt := range []subtest[portrait.Blobs]{
		{"RoundTrip", testBlobsRoundTrip},
		{"Keys", testBlobsKeys},
		{"PutIdempotent", testBlobsIdempotent},
		{"ConcurrentPuts", testBlobsConcurrent},
		{"InvalidKeys", testBlobsInvalidKeys},
		{"Missing", testBlobsMissing},
		{"SeekAndSize", testBlobsSeek},
		{"CallerSlicesNotRetained", testBlobsCallerSlices},
		{"ContextCanceled", testBlobsContextCanceled},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// blobKey derives a content address the way the avatar service might.
func blobKey(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]) + ".jpg"
}

func putBlob(t *testing.T, b portrait.Blobs, key string, data []byte) {
	t.Helper()
	if err := b.Put(t.Context(), key, data); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

// readBlob reads the blob under key and checks its Size.
func readBlob(t *testing.T, b portrait.Blobs, key string) []byte {
	t.Helper()
	bl, err := b.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer bl.Close()
	data, err := io.ReadAll(bl)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	if int64(len(data)) != bl.Size() {
		t.Errorf("%q: Size() = %d, read %d bytes", key, bl.Size(), len(data))
	}
	return data
}

func wantBlob(t *testing.T, b portrait.Blobs, key string, want []byte) {
	t.Helper()
	if got := readBlob(t, b, key); !bytes.Equal(got, want) {
		t.Errorf("Open(%q) read %s, want %s", key, abbrev(got), abbrev(want))
	}
}

func wantNoBlob(t *testing.T, b portrait.Blobs, key string) {
	t.Helper()
	bl, err := b.Open(t.Context(), key)
	if !errors.Is(err, portrait.ErrNotFound) {
		t.Errorf("Open(%q): %v, want an error wrapping portrait.ErrNotFound", key, err)
	}
	if bl != nil {
		t.Errorf("Open(%q) returned a blob with its error", key)
		bl.Close()
	}
}

func testBlobsRoundTrip(t *testing.T, b portrait.Blobs) {
	jpeg := make([]byte, 90_000) // the size of a 640 JPEG
	for i := range jpeg {
		jpeg[i] = byte(i*31 + i/7)
	}
	var keys []string
	for _, data := range [][]byte{
		[]byte("\xff\xd8\xff\xe0 a jpeg, nearly"),
		{},
		{0, 0, 0},
		jpeg,
		bytes.Repeat([]byte{0, 1, 2, 3, 0xff}, 300_000),
	} {
		key := blobKey(data)
		putBlob(t, b, key, data)
		wantBlob(t, b, key, data)
		keys = append(keys, key)
	}
	// Each is still itself after the others were stored.
	wantBlob(t, b, keys[0], []byte("\xff\xd8\xff\xe0 a jpeg, nearly"))
	wantBlob(t, b, keys[3], jpeg)
}

func testBlobsKeys(t *testing.T, b portrait.Blobs) {
	keys := []string{"a", "ab", "a.", "a-", "0", "x.y-z.png", "-", "9-9", strings.Repeat("z", 128)}
	for _, key := range keys {
		putBlob(t, b, key, []byte("content of "+key))
	}
	for _, key := range keys {
		wantBlob(t, b, key, []byte("content of "+key))
	}
	// Keys are not prefixes of one another, nor folded.
	wantNoBlob(t, b, "x.y-z")
	wantNoBlob(t, b, "aa")
	wantNoBlob(t, b, strings.Repeat("z", 127))
}

func testBlobsIdempotent(t *testing.T, b portrait.Blobs) {
	data := []byte("picture")
	key := blobKey(data)
	putBlob(t, b, key, data)
	putBlob(t, b, key, data)
	// The same key means the same content: a Put with other bytes keeps
	// what is stored.
	putBlob(t, b, key, []byte("different bytes under the same key"))
	wantBlob(t, b, key, data)
}

func testBlobsConcurrent(t *testing.T, b portrait.Blobs) {
	data := bytes.Repeat([]byte("concurrent "), 10_000)
	key := blobKey(data)
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			if err := b.Put(t.Context(), key, data); err != nil {
				errs[i] = fmt.Errorf("put: %w", err)
				return
			}
			// Once its own Put returned, a goroutine reads the whole
			// blob, whoever wrote it.
			bl, err := b.Open(t.Context(), key)
			if err != nil {
				errs[i] = fmt.Errorf("open: %w", err)
				return
			}
			defer bl.Close()
			got, err := io.ReadAll(bl)
			if err != nil || !bytes.Equal(got, data) {
				errs[i] = fmt.Errorf("read %d bytes of %d: %v", len(got), len(data), err)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	wantBlob(t, b, key, data)
}

func testBlobsInvalidKeys(t *testing.T, b portrait.Blobs) {
	ctx := t.Context()
	for _, key := range []string{
		"../x", "..", ".", "a/b", "ab/../../x", "/etc/passwd", `a\b`, `..\x`,
		"", "ABC", "aBc", strings.Repeat("a", 129), strings.Repeat("a", 200),
		".hidden", ".tmp-123", "%2e%2e", "%2e%2e%2fx", "a b", "a\x00b", "ключ", "a_b", "a:b", "a'b", "a;b",
	} {
		if err := b.Put(ctx, key, []byte("evil")); err == nil {
			t.Errorf("Put(%q) succeeded", key)
		}
		wantNoBlob(t, b, key)
	}
}

func testBlobsMissing(t *testing.T, b portrait.Blobs) {
	for _, key := range []string{"ab", "abcdef.jpg", "z", blobKey(nil)} {
		wantNoBlob(t, b, key)
	}
	putBlob(t, b, "abcdef.jpg", []byte("x"))
	wantNoBlob(t, b, "abcdef.jpe")
}

func testBlobsSeek(t *testing.T, b portrait.Blobs) {
	data := []byte("0123456789abcdefghij")
	key := blobKey(data)
	putBlob(t, b, key, data)
	bl, err := b.Open(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer bl.Close()
	if bl.Size() != int64(len(data)) {
		t.Errorf("Size() = %d, want %d", bl.Size(), len(data))
	}
	buf := make([]byte, 4)
	for _, s := range []struct {
		offset int64
		whence int
		pos    int64
		want   string
	}{
		{10, io.SeekStart, 10, "abcd"},
		{-4, io.SeekEnd, 16, "ghij"},
		{-10, io.SeekCurrent, 10, "abcd"},
		{0, io.SeekStart, 0, "0123"},
	} {
		pos, err := bl.Seek(s.offset, s.whence)
		if err != nil || pos != s.pos {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d", s.offset, s.whence, pos, err, s.pos)
		}
		if _, err := io.ReadFull(bl, buf); err != nil || string(buf) != s.want {
			t.Errorf("after Seek(%d, %d) read %q, %v; want %q", s.offset, s.whence, buf, err, s.want)
		}
	}
	end, err := bl.Seek(0, io.SeekEnd)
	if err != nil || end != bl.Size() {
		t.Errorf("Seek to the end = %d, %v; want %d", end, err, bl.Size())
	}
	if n, err := bl.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("Read at the end = %d, %v; want 0, EOF", n, err)
	}
	if err := bl.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func testBlobsCallerSlices(t *testing.T, b portrait.Blobs) {
	data := []byte("the caller's buffer")
	key := blobKey(data)
	putBlob(t, b, key, data)
	data[0] = 'X'
	wantBlob(t, b, key, []byte("the caller's buffer"))
}

func testBlobsContextCanceled(t *testing.T, b portrait.Blobs) {
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Put(canceled, "abc", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context: %v, want an error wrapping context.Canceled", err)
	}
	wantNoBlob(t, b, "abc")
	putBlob(t, b, "abc", []byte("x"))
	if bl, err := b.Open(canceled, "abc"); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a canceled context: %v, want an error wrapping context.Canceled", err)
		if bl != nil {
			bl.Close()
		}
	}
	wantBlob(t, b, "abc", []byte("x"))
}
