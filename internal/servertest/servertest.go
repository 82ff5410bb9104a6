// Package servertest starts a whole portrait server in-process, through
// app.Run exactly as `portrait serve` runs, for the end-to-end tests of
// several packages.
package servertest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/app"
)

// SyncBuffer is a bytes.Buffer safe for the server's goroutines.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Creds are an instance's credentials.
type Creds struct {
	ID    int64
	Token string
}

// TestWhatsAppVersion is the WhatsApp Web version test servers announce,
// pinned so that they never ask WhatsApp.
const TestWhatsAppVersion = "2.3000.1000000000"

// Server is a running portrait.
type Server struct {
	URL     string
	DataDir string
	Stdout  *SyncBuffer
	Stderr  *SyncBuffer
	// The instances created on first start, read from its output (zero on
	// later starts).
	WhatsApp, MAX Creds

	stop func() error
}

// Stop shuts the server down (as SIGTERM would) and returns Run's error.
// It is also called at the end of the test.
func (s *Server) Stop() error { return s.stop() }

// Start runs `portrait serve --listen 127.0.0.1:0 --data-dir dataDir
// args...` and waits until it answers /healthz.
func Start(t testing.TB, dataDir string, args ...string) *Server {
	t.Helper()
	s := &Server{DataDir: dataDir, Stdout: &SyncBuffer{}, Stderr: &SyncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// The WhatsApp Web version is pinned: a test server must not ask
	// WhatsApp for its current one (tests reach loopback only).
	full := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--whatsapp-version", TestWhatsAppVersion}, args...)
	go func() {
		done <- app.Run(ctx, app.Env{Args: full, Getenv: func(string) string { return "" }, Stdout: s.Stdout, Stderr: s.Stderr})
	}()
	var once sync.Once
	var stopErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(20 * time.Second):
				stopErr = errors.New("server did not stop within 20 s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("stopping the server: %v", err)
		}
	})
	re := regexp.MustCompile(`listening on (\S+)`)
	deadline := time.Now().Add(20 * time.Second)
	for s.URL == "" {
		if m := re.FindStringSubmatch(s.Stdout.String()); m != nil {
			s.URL = m[1]
			break
		}
		select {
		case err := <-done:
			done <- err // for stop, which the cleanup calls
			t.Fatalf("server exited: %v\nstdout:\n%s\nstderr:\n%s", err, s.Stdout, s.Stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start\nstdout:\n%s\nstderr:\n%s", s.Stdout, s.Stderr)
		}
	}
	for {
		resp, err := http.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never answered 200: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.WhatsApp, s.MAX = ParseWelcome(s.Stdout.String())
	return s
}

var (
	idRE    = regexp.MustCompile(`idInstance:\s+(\d+)`)
	tokenRE = regexp.MustCompile(`apiTokenInstance:\s+([0-9a-f]+)`)
)

// ParseWelcome reads instances' credentials from portrait's output: the
// first start's blocks, or what `portrait instance create` prints.
func ParseWelcome(out string) (wa, max Creds) {
	for _, b := range strings.Split(out, "instance\n")[1:] {
		var c Creds
		if m := idRE.FindStringSubmatch(b); m != nil {
			c.ID, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if m := tokenRE.FindStringSubmatch(b); m != nil {
			c.Token = m[1]
		}
		if strings.Contains(b, "/v3") {
			max = c
		} else {
			wa = c
		}
	}
	return wa, max
}
