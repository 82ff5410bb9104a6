package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/client"
	"github.com/portrait-dev/portrait/internal/servertest"
)

// child is portrait running as a separate process.
type child struct {
	cmd   *exec.Cmd
	URL   string
	out   *syncBuffer
	found chan string // the URL, once it listens
}

// startChild runs the portrait binary and waits until it listens.
func startChild(t *testing.T, bin string, args ...string) *child {
	t.Helper()
	return spawnChild(t, bin, args...).waitListening(t)
}

// spawnChild runs the portrait binary; waitListening waits until it
// listens.
func spawnChild(t *testing.T, bin string, args ...string) *child {
	t.Helper()
	c := &child{out: &syncBuffer{}}
	c.cmd = exec.Command(bin, args...)
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stderr = c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	})
	c.found = make(chan string, 1)
	found := c.found
	go func() {
		re := regexp.MustCompile(`listening on (\S+)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.out.Write([]byte(sc.Text() + "\n"))
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	return c
}

func (c *child) waitListening(t *testing.T) *child {
	t.Helper()
	select {
	case c.URL = <-c.found:
	case <-time.After(30 * time.Second):
		t.Fatalf("portrait did not start:\n%s", c.out)
	}
	return c
}

// buildPortrait builds the portrait binary into a temporary directory.
func buildPortrait(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "portrait")
	build := exec.Command("go", "build", "-o", bin, "github.com/portrait-dev/portrait/cmd/portrait")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestCrashLosesNoAcknowledgedNotification kills portrait with SIGKILL
// while getAvatarAsync requests are being acknowledged and their
// notifications delivered, restarts it on the same data, and checks that
// every acknowledged request's notification reaches the webhook, in order
// per instance (a notification may arrive twice, never not at all).
func TestCrashLosesNoAcknowledgedNotification(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a portrait process; skipped with -short")
	}
	dir := t.TempDir()
	bin := buildPortrait(t)

	// The receiver records, per instance, the chat ids in arrival order.
	var mu sync.Mutex
	got := map[int64][]string{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var n client.NotificationBody
		if json.Unmarshal(b, &n) == nil && n.AvatarInfo != nil {
			mu.Lock()
			got[n.InstanceData.IDInstance] = append(got[n.InstanceData.IDInstance], n.AvatarInfo.ChatID)
			mu.Unlock()
		}
	}))
	defer recv.Close()

	data := filepath.Join(dir, "data")
	args := []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--admin-token", adminToken, "--whatsapp-version", servertest.TestWhatsAppVersion,
		"--webhook-allow", "127.0.0.0/8", "--webhook-backoff-min", "50ms", "--webhook-backoff-max", "200ms",
		"--sandbox-latency", "0", "--sandbox-start-delay", "0", "--rate-limits", "*=0", "--log-level", "warn"}
	first := startChild(t, bin, args...)
	wa, _ := parseWelcome(first.out.String())
	s := &server{Server: &servertest.Server{URL: first.URL, WhatsApp: wa}, Admin: adminToken}
	code, b := s.admin(t, "POST", "/admin/instances", map[string]string{"typeInstance": "whatsapp"})
	var other struct {
		IDInstance       int64  `json:"idInstance"`
		APITokenInstance string `json:"apiTokenInstance"`
	}
	if code != 201 || json.Unmarshal(b, &other) != nil {
		t.Fatalf("create: %d %s", code, b)
	}
	instances := []creds{wa, {ID: other.IDInstance, Token: other.APITokenInstance}}
	for _, in := range instances {
		c := newClient(first.URL, in.ID, in.Token)
		eventually(t, func() error { _, err := c.GetStateInstance(context.Background()); return err })
		setWebhook(t, c, recv.URL, "")
	}

	// Produce on both instances until the kill; remember what was
	// acknowledged.
	acked := make([][]string, len(instances))
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 5 * time.Second}
	for i, in := range instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				chat := fmt.Sprintf("1100%d%06d@c.us", 7+i, n)
				url := fmt.Sprintf("%s/waInstance%d/getAvatarAsync/%s", first.URL, in.ID, in.Token)
				resp, err := hc.Post(url, "application/json", strings.NewReader(fmt.Sprintf(`{"chatId":%q}`, chat)))
				if err != nil {
					return // killed
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					acked[i] = append(acked[i], chat)
				}
			}
		}()
	}
	// Kill once a good number are acknowledged and some delivered.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		delivered := len(got[wa.ID])
		mu.Unlock()
		if delivered >= 50 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()
	wg.Wait()
	total := len(acked[0]) + len(acked[1])
	if total < 50 {
		t.Fatalf("only %d requests acknowledged before the kill", total)
	}

	startChild(t, bin, args...)
	waitDelivered := time.Now().Add(60 * time.Second)
	for {
		missing := 0
		mu.Lock()
		for i, in := range instances {
			seen := map[string]bool{}
			for _, c := range got[in.ID] {
				seen[c] = true
			}
			for _, c := range acked[i] {
				if !seen[c] {
					missing++
				}
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(waitDelivered) {
			t.Fatalf("%d of %d acknowledged notifications never arrived after the restart", missing, total)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, in := range instances {
		// First arrivals of the acknowledged ids must follow the
		// acknowledgement order.
		ackPos := map[string]int{}
		for p, c := range acked[i] {
			ackPos[c] = p
		}
		seen := map[string]bool{}
		last := -1
		dups := 0
		for _, c := range got[in.ID] {
			if seen[c] {
				dups++
				continue
			}
			seen[c] = true
			p, ok := ackPos[c]
			if !ok {
				continue // committed, but the kill came before the reply
			}
			if p < last {
				t.Fatalf("instance %d: %s arrived after a later request's notification", in.ID, c)
			}
			last = p
		}
		t.Logf("instance %d: %d acknowledged, %d deliveries, %d repeated after the crash", in.ID, len(acked[i]), len(got[in.ID]), dups)
	}
	_ = os.Remove(bin)
}
