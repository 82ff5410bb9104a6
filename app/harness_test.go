package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/client"
	"github.com/portrait-dev/portrait/internal/servertest"
)

// syncBuffer and creds come from servertest.
type (
	syncBuffer = servertest.SyncBuffer
	creds      = servertest.Creds
)

// server is a portrait started in-process through app.Run, as `portrait
// serve` would be, with the admin API on.
type server struct {
	*servertest.Server
	Admin string
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
	return &server{Server: servertest.Start(t, dataDir, append([]string{"--admin-token", adminToken}, args...)...), Admin: adminToken}
}

// parseWelcome reads instances' credentials from portrait's output.
func parseWelcome(out string) (wa, max creds) { return servertest.ParseWelcome(out) }

// wa and max return clients of the first start's instances.
func (s *server) wa() *client.Client { return newClient(s.URL, s.WhatsApp.ID, s.WhatsApp.Token) }
func (s *server) max() *client.Client {
	return newClient(s.URL, s.MAX.ID, s.MAX.Token, client.WithMAX())
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
