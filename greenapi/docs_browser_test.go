package greenapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDocsInBrowser: /docs renders the reference from /openapi.json in a
// real Chromium, with nothing from elsewhere: every method is listed, the
// filter works, and the page fits a phone's width.
func TestDocsInBrowser(t *testing.T) {
	execPath := ""
	for _, c := range []string{os.Getenv("PORTRAIT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(c); c != "" && err == nil {
			execPath = p
			break
		}
	}
	if execPath == "" {
		if os.Getenv("PORTRAIT_REQUIRE_TOOLS") == "1" {
			t.Fatal("Chromium is not installed; PORTRAIT_REQUIRE_TOOLS=1 needs it")
		}
		t.Skip("Chromium is not installed")
	}
	mux := http.NewServeMux()
	mux.Handle("GET /docs", apiDocs())
	mux.Handle("GET /docs/{file}", apiDocs())
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) { writeRaw(w, http.StatusOK, OpenAPI()) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(execPath), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(390, 844),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("dns-prefetch-disable", true))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/docs"), chromedp.WaitVisible(chromedp.CSS(`section.op`))); err != nil {
		t.Fatalf("loading /docs: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range Methods {
		if !strings.Contains(text, "/"+m.Name+"/") {
			t.Errorf("/docs does not show %s", m.Name)
		}
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("filter"), "getAvatars")); err != nil {
		t.Fatal(err)
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.querySelectorAll('section.op')].filter(s => !s.hidden).length`))
	if err != nil || shown != 2 { // the WhatsApp and the /v3 form
		t.Errorf("after filtering for getAvatars, %d operations are shown (%v), want 2", shown, err)
	}
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth + 1`))
	if err != nil || !wide {
		t.Errorf("the page is wider than a phone's screen (%v)", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(80))
	if err == nil {
		// For a person to look at; git-ignored, as the console's are.
		dir := filepath.Join("testdata", "artifacts")
		if d := os.Getenv("PORTRAIT_ARTIFACTS"); d != "" {
			dir = d
		}
		if os.MkdirAll(dir, 0o755) == nil {
			_ = os.WriteFile(filepath.Join(dir, "docs-phone.png"), shot, 0o644)
		}
	}
}
