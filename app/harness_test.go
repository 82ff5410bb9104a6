package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/app"
	"github.com/portrait-dev/portrait/client"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is a portrait started in-process through app.Run, as `portrait
// serve` would be.
type server struct {
	URL     string
	DataDir string
	Admin   string
	Stdout  *syncBuffer
	Stderr  *syncBuffer

	// The instances created on first start, parsed from its output.
	WhatsApp, MAX creds

	stop func() error
}

type creds struct {
	ID    int64
	Token string
}

const adminToken = "test-admin-token"

// fastArgs make the sandbox answer at once and lift the rate limits, so
// that tests are quick; a test that exercises one of them sets it again
// (later flags win).
var fastArgs = []string{
	"--sandbox-latency", "0", "--sandbox-start-delay", "0",
	"--sandbox-unknown-group-timeout", "50ms", "--sandbox-fault-timeout", "100ms",
	"--sandbox-picture-cooldown", "0", "--rate-limits", "*=0",
	"--log-level", "warn",
}

// start runs portrait on a fresh data directory with fastArgs and args.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	return startIn(t, t.TempDir(), append(append([]string{}, fastArgs...), args...)...)
}

// startIn runs portrait on dataDir with exactly args (plus listen, data
// directory and admin token) and waits until it serves /healthz.
func startIn(t *testing.T, dataDir string, args ...string) *server {
	t.Helper()
	s := &server{DataDir: dataDir, Admin: adminToken, Stdout: &syncBuffer{}, Stderr: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	full := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--admin-token", adminToken}, args...)
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
	for {
		if m := re.FindStringSubmatch(s.Stdout.String()); m != nil {
			s.URL = m[1]
			break
		}
		select {
		case err := <-done:
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
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never answered 200: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.WhatsApp, s.MAX = parseWelcome(s.Stdout.String())
	return s
}

// parseWelcome reads the first start's instances from its output.
func parseWelcome(out string) (wa, max creds) {
	blocks := strings.Split(out, "instance\n")
	for _, b := range blocks[1:] {
		var c creds
		if m := regexp.MustCompile(`idInstance:\s+(\d+)`).FindStringSubmatch(b); m != nil {
			c.ID, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if m := regexp.MustCompile(`apiTokenInstance:\s+([0-9a-f]+)`).FindStringSubmatch(b); m != nil {
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

// wa and max return clients of the first start's instances.
func (s *server) wa() *client.Client { return client.New(s.URL, s.WhatsApp.ID, s.WhatsApp.Token) }
func (s *server) max() *client.Client {
	return client.New(s.URL, s.MAX.ID, s.MAX.Token, client.WithMAX())
}

// raw sends a request and returns status, headers and body.
func raw(t *testing.T, method, url, contentType string, body io.Reader, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// call sends a GREEN-API call for c on the WhatsApp (or /v3) route.
func (s *server) call(t *testing.T, c creds, v3 bool, httpMethod, method string, body string) (int, http.Header, []byte) {
	t.Helper()
	prefix := ""
	if v3 {
		prefix = "/v3"
	}
	url := fmt.Sprintf("%s%s/waInstance%d/%s/%s", s.URL, prefix, c.ID, method, c.Token)
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	return raw(t, httpMethod, url, "application/json", rd)
}

// admin calls the admin API.
func (s *server) admin(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	code, _, b := raw(t, method, s.URL+path, "application/json", rd, "Authorization", "Bearer "+s.Admin)
	return code, b
}

// metric returns the value of one sample of /metrics, or 0.
func (s *server) metric(t *testing.T, name string) float64 {
	t.Helper()
	_, _, b := raw(t, "GET", s.URL+"/metrics", "", nil)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, name)), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// errorBody is GREEN-API's error shape.
type errorBody struct {
	StatusCode int    `json:"statusCode"`
	Timestamp  string `json:"timestamp"`
	Path       string `json:"path"`
	Message    string `json:"message"`
}

func decodeError(t *testing.T, b []byte) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", b, err)
	}
	if _, err := time.Parse(time.RFC3339, e.Timestamp); err != nil {
		t.Errorf("timestamp %q is not RFC 3339", e.Timestamp)
	}
	return e
}
