package console_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portrait-dev/portrait/internal/servertest"
)

// The browser test drives the console in a real headless Chromium against a
// real portrait started through app.Run. Without Chromium it is skipped,
// unless PORTRAIT_REQUIRE_TOOLS=1 (as in CI), which makes that a failure.
// Screenshots of each step go to $PORTRAIT_ARTIFACTS, or else to
// testdata/artifacts/ (git-ignored).

const browserAdminToken = "browser-test-admin-token"

// startPortrait runs `portrait serve` on a fresh data directory with a fast
// sandbox whose QR code changes every second.
func startPortrait(t *testing.T) *servertest.Server {
	t.Helper()
	s := servertest.Start(t, t.TempDir(), "--admin-token", browserAdminToken,
		"--sandbox-latency", "0", "--sandbox-start-delay", "0", "--sandbox-qr-rotate", "1s",
		"--sandbox-picture-cooldown", "0", "--rate-limits", "*=0", "--log-level", "warn")
	if s.WhatsApp.ID == 0 || s.WhatsApp.Token == "" || s.MAX.ID == 0 {
		t.Fatalf("no WhatsApp and MAX instance in the first start's output:\n%s", s.Stdout)
	}
	return s
}

// request sends a request to portrait and returns status and body.
func request(t *testing.T, method, url string, header ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// chromiumPath finds Chromium, or skips (fails with
// PORTRAIT_REQUIRE_TOOLS=1).
func chromiumPath(t *testing.T) string {
	t.Helper()
	required := os.Getenv("PORTRAIT_REQUIRE_TOOLS") == "1"
	if testing.Short() && !required {
		t.Skip("-short: skipping the browser test")
	}
	candidates := []string{os.Getenv("PORTRAIT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	msg := "Chromium is not installed (apt-get install -y chromium, or set PORTRAIT_CHROMIUM)"
	if required {
		t.Fatal(msg + "; PORTRAIT_REQUIRE_TOOLS=1 needs it")
	}
	t.Skip(msg)
	return ""
}

// artifactDir is where the screenshots go.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PORTRAIT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one tab of a headless Chromium.
type browser struct {
	t         *testing.T
	ctx       context.Context
	artifacts string
	prefix    string // of the screenshots' names; "console" when empty
	shots     int

	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
}

func newBrowser(t *testing.T, execPath string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1024),
		// This machine's network is closed: no background traffic.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("dns-prefetch-disable", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, artifacts: artifactDir(t)}
	start, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Starting the browser with a context without a deadline keeps it alive
	// past this call; the timeout only bounds the wait.
	errc := make(chan error, 1)
	go func() { errc <- chromedp.Do(ctx) }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("starting Chromium: %v", err)
		}
	case <-start.Done():
		t.Fatal("Chromium did not start within 30 s")
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.messages = append(b.messages, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// do runs actions with a timeout.
func (b *browser) do(what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.screenshot("failed")
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitFor waits until the expression is true in the page.
func (b *browser) waitFor(what string, timeout time.Duration, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+expr+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.screenshot("failed")
			status, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
			b.t.Fatalf("waiting %s for %s (%s): err %v\npage text:\n%s", timeout, what, expr, err, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenshot saves a full-page PNG.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.shots++
	prefix := b.prefix
	if prefix == "" {
		prefix = "console"
	}
	path := filepath.Join(b.artifacts, fmt.Sprintf("%s-%02d-%s.png", prefix, b.shots, name))
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.t.Errorf("saving the screenshot: %v", err)
		return
	}
	b.t.Logf("screenshot: %s", path)
}

// problems are the page's uncaught exceptions and CSP violations.
func (b *browser) problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.messages {
		b.t.Logf("browser console: %s: %s", m.Type, m)
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
			out = append(out, m.String())
		}
	}
	return out
}

// testPNG makes a picture unlike the demo world's.
func testPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 300, 200))
	for y := 0; y < 200; y++ {
		for x := 0; x < 300; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 255 / 300), uint8(y * 255 / 200), 160, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// card selects within the card of an instance.
func card(id int64, sel string) string {
	return fmt.Sprintf(`[data-instance="%d"] %s`, id, sel)
}

// q is the JavaScript for document.querySelector(sel).
func q(sel string) string { return fmt.Sprintf("document.querySelector(%q)", sel) }

// loaded is the JavaScript that tells whether the image sel is shown and
// loaded.
func loaded(sel string) string {
	return fmt.Sprintf(`(() => { const i = %s; return i && !i.hidden && i.closest('[hidden]') === null && i.getAttribute('src') && i.complete && i.naturalWidth > 0; })()`, q(sel))
}

func TestConsoleInBrowser(t *testing.T) {
	execPath := chromiumPath(t)
	start := time.Now()
	srv := startPortrait(t)
	if status, body := request(t, "GET", srv.URL+"/console"); status != http.StatusOK || !strings.Contains(body, `id="signin"`) {
		t.Fatalf("GET /console: %d, want the sign-in form (is console.New wired into greenapi.Deps in app/serve.go?):\n%s", status, body)
	}
	wa, max := srv.WhatsApp.ID, srv.MAX.ID
	b := newBrowser(t, execPath)
	const wait = 10 * time.Second

	// Sign in through the form.
	b.do("opening the console", wait, chromedp.Navigate(srv.URL+"/console"), chromedp.WaitVisible(chromedp.ID("token")))
	b.do("typing a wrong token", wait, chromedp.SendKeys(chromedp.ID("token"), "not-the-token"), chromedp.Submit(chromedp.ID("token")))
	b.waitFor("the sign-in error", wait, q("#signin-error"))
	b.screenshot("signin-error")
	b.do("signing in", wait,
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), browserAdminToken),
	)
	b.screenshot("signin")
	b.do("submitting the form", wait, chromedp.Click(chromedp.CSS(`#signin button[type=submit]`)))

	// Both instances, authorized, with their own picture.
	for _, id := range []int64{wa, max} {
		b.waitFor(fmt.Sprintf("instance %d authorized", id), wait,
			q(card(id, ".state"))+`?.textContent === 'authorized'`)
		b.waitFor(fmt.Sprintf("instance %d's avatar", id), wait, loaded(card(id, "img.avatar")))
	}
	if got := eval[string](b, q(card(wa, ""))+`.dataset.type`); got != "whatsapp" {
		t.Errorf("instance %d: data-type %q, want whatsapp", wa, got)
	}
	if got := eval[string](b, q(card(max, ""))+`.dataset.type`); got != "v3" {
		t.Errorf("instance %d: data-type %q, want v3", max, got)
	}
	for _, id := range []int64{wa, max} {
		if n := eval[int](b, fmt.Sprintf(`document.querySelectorAll('[data-instance="%d"]').length`, id)); n != 1 {
			t.Errorf("instance %d is shown %d times", id, n)
		}
		text := eval[string](b, q(card(id, ""))+`.innerText`)
		for _, want := range []string{strconv.FormatInt(id, 10), "sandbox", "linked"} {
			if !strings.Contains(text, want) {
				t.Errorf("instance %d's card lacks %q:\n%s", id, want, text)
			}
		}
		if href := eval[string](b, q(card(id, "a.avatar-link"))+`.href`); !strings.HasSuffix(href, ".jpg") || strings.HasSuffix(href, "-96.jpg") {
			t.Errorf("instance %d: the avatar links to %q, want the 640 picture", id, href)
		}
		if alt := eval[string](b, q(card(id, "img.avatar"))+`.alt`); alt == "" {
			t.Errorf("instance %d: the avatar has no alt text", id)
		}
	}
	b.screenshot("signed-in")

	// Log the WhatsApp instance out: the page shows a QR code.
	if status, body := request(t, "GET", fmt.Sprintf("%s/waInstance%d/logout/%s", srv.URL, wa, srv.WhatsApp.Token)); status != http.StatusOK {
		t.Fatalf("logout: %d %s", status, body)
	}
	b.waitFor("the QR code", wait, loaded(card(wa, "img.qr"))+` && `+q(card(wa, "img.qr"))+`.src.startsWith('data:image/png;base64,')`)
	b.waitFor("state notAuthorized", wait, q(card(wa, ".state"))+`.textContent === 'notAuthorized'`)
	if eval[bool](b, loaded(card(wa, "img.avatar"))) {
		t.Errorf("the avatar is still shown while the instance is not linked")
	}
	if !eval[bool](b, q(card(wa, ".upload"))+`.hidden`) {
		t.Errorf("the upload form is shown while the instance is not linked")
	}
	if alt := eval[string](b, q(card(wa, "img.qr"))+`.alt`); !strings.Contains(alt, "QR code") {
		t.Errorf("QR code alt text %q", alt)
	}
	first := eval[string](b, q(card(wa, "img.qr"))+`.src`)
	b.screenshot("qr")

	// The code rotates every second; the page follows it.
	b.waitFor("a new QR code", wait, fmt.Sprintf(`%s.src !== %q && %s`, q(card(wa, "img.qr")), first, loaded(card(wa, "img.qr"))))
	b.screenshot("qr-changed")

	// The phone scans it: the page shows the instance linked.
	if status, body := request(t, "POST", fmt.Sprintf("%s/admin/instances/%d/sandbox/scan", srv.URL, wa), "Authorization", "Bearer "+browserAdminToken); status != http.StatusOK {
		t.Fatalf("scan: %d %s", status, body)
	}
	b.waitFor("state authorized after the scan", wait, q(card(wa, ".state"))+`.textContent === 'authorized'`)
	b.waitFor("the QR code gone", wait, q(card(wa, ".qr-box"))+`.hidden && !`+q(card(wa, "img.qr"))+`.getAttribute('src')`)
	b.waitFor("the avatar after the scan", wait, loaded(card(wa, "img.avatar")))
	b.waitFor("the upload form", wait, `!`+q(card(wa, ".upload"))+`.hidden`)
	oldAvatar := eval[string](b, q(card(wa, "img.avatar"))+`.src`)
	b.screenshot("linked")

	// A file that is no picture: the error is shown as text.
	dir := t.TempDir()
	notPicture := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notPicture, []byte("this is not a picture\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.do("uploading a text file", wait,
		chromedp.SetUploadFiles(chromedp.CSS(card(wa, `input[type=file]`)), []string{notPicture}),
		chromedp.Click(chromedp.CSS(card(wa, `.upload button[type=submit]`))),
	)
	b.waitFor("the upload error", wait, q(card(wa, ".upload-status"))+`.textContent.includes('Unsupported media type')`)
	if !eval[bool](b, q(card(wa, ".result"))+`.hidden`) {
		t.Errorf("a failed upload shows a before/after")
	}
	b.screenshot("upload-error")

	// A picture: before and after, 640 and 96, side by side.
	picture := filepath.Join(dir, "new-picture.png")
	if err := os.WriteFile(picture, testPNG(t), 0o644); err != nil {
		t.Fatal(err)
	}
	b.do("uploading a picture", wait,
		chromedp.SetUploadFiles(chromedp.CSS(card(wa, `input[type=file]`)), []string{picture}),
		chromedp.Click(chromedp.CSS(card(wa, `.upload button[type=submit]`))),
	)
	for _, side := range []string{"before", "after"} {
		for _, size := range []string{"640", "96"} {
			sel := card(wa, fmt.Sprintf(`.%s img[data-size="%s"]`, side, size))
			b.waitFor(side+" "+size, wait, loaded(sel))
			if w := eval[int](b, q(sel)+`.naturalWidth`); strconv.Itoa(w) != size {
				t.Errorf("%s %s: the picture is %d px wide", side, size, w)
			}
		}
	}
	src := func(side, size string) string {
		return eval[string](b, q(card(wa, fmt.Sprintf(`.%s img[data-size="%s"]`, side, size)))+`.src`)
	}
	for _, size := range []string{"640", "96"} {
		if before, after := src("before", size), src("after", size); before == after {
			t.Errorf("%s: the after URL is the before URL %s", size, after)
		}
	}
	if n := eval[int](b, fmt.Sprintf(`document.querySelectorAll(%q).length`, card(wa, ".before img, "+card(wa, ".after img")))); n != 4 {
		t.Errorf("%d before/after images, want 4", n)
	}
	b.waitFor("the avatar updated", wait, fmt.Sprintf(`%s.src === %q && %s`, q(card(wa, "img.avatar")), src("after", "96"), loaded(card(wa, "img.avatar"))))
	if eval[string](b, q(card(wa, "img.avatar"))+`.src`) == oldAvatar {
		t.Errorf("the avatar did not change")
	}
	if msg := eval[string](b, q(card(wa, ".upload-status"))+`.textContent`); strings.Contains(msg, "Error") {
		t.Errorf("upload status: %q", msg)
	}
	// The page keeps polling without losing the new avatar.
	time.Sleep(2500 * time.Millisecond)
	if got := eval[string](b, q(card(wa, "img.avatar"))+`.src`); got != src("after", "96") {
		t.Errorf("after the next poll the avatar is %s, want %s", got, src("after", "96"))
	}
	b.screenshot("uploaded")

	// Sign out: the form again, and the admin API refuses the browser.
	b.do("signing out", wait, chromedp.Click(chromedp.CSS(`#logout button`)), chromedp.WaitVisible(chromedp.ID("token")))
	if status := eval[int](b, `(async () => (await fetch('/admin/instances')).status)()`, chromedp.EvalAwaitPromise); status != http.StatusUnauthorized {
		t.Errorf("after signing out /admin/instances answers %d, want 401", status)
	}
	b.screenshot("signed-out")

	if p := b.problems(); len(p) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
	t.Logf("browser test took %s", time.Since(start).Round(time.Millisecond))
}
