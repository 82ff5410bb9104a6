package console_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portrait-dev/portrait/internal/servertest"
)

// hookReceiver is a webhook receiver whose answer the test sets.
type hookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	got    []string // "<Authorization> <body>"
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{status: http.StatusOK}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, req.Header.Get("Authorization")+" "+string(b))
		status := r.status
		r.mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprintf(w, "receiver answered %d", status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) answer(status int) {
	r.mu.Lock()
	r.status = status
	r.mu.Unlock()
}

func (r *hookReceiver) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

var (
	tokenRE       = regexp.MustCompile(`^[0-9a-f]{50}$`)
	adminBannerRE = regexp.MustCompile(`admin token:\s+([0-9a-f]{64})`)
)

// TestOperatorConsoleInBrowser runs every action of the console in
// headless Chromium on a portrait started as the README starts it, without
// an admin token: the printed one signs in. Instances are created, their
// tokens rotated, settings saved (and refused), the webhook tested, the
// queue watched, pictures looked up and set, accounts logged out, linked
// by pairing code and by a simulated scan, a bot token saved, an instance
// deleted; the page keeps to its labels, works by keyboard and at a
// phone's width.
func TestOperatorConsoleInBrowser(t *testing.T) {
	execPath := chromiumPath(t)
	hook := newHookReceiver(t)
	srv := servertest.Start(t, t.TempDir(),
		"--sandbox-latency", "0", "--sandbox-start-delay", "0", "--sandbox-qr-rotate", "1s",
		"--sandbox-picture-cooldown", "0", "--rate-limits", "*=0", "--log-level", "warn",
		"--webhook-allow", "127.0.0.0/8", "--webhook-backoff-min", "200ms", "--webhook-backoff-max", "400ms",
		"--webhook-timeout", "2s", "--maxbot-url", "https://127.0.0.1:1")
	out := srv.Stdout.String()
	m := adminBannerRE.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, srv.URL+"/console") {
		t.Fatalf("the default run does not print the admin token and the console's address:\n%s", out)
	}
	admin := m[1]
	b := newBrowser(t, execPath)
	b.prefix = "operator"
	const wait = 10 * time.Second
	click := func(what, sel string) {
		b.t.Helper()
		b.do(what, wait, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
	}
	set := func(sel, value string) {
		b.t.Helper()
		b.do("filling "+sel, wait, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SetValue(chromedp.CSS(sel), value))
	}
	choose := func(sel, value string) {
		b.t.Helper()
		set(sel, value)
		eval[bool](b, q(sel)+`.dispatchEvent(new Event('change'))`)
	}
	text := func(sel string) string {
		b.t.Helper()
		return eval[string](b, q(sel)+`?.textContent ?? ''`)
	}
	greenAPI := func(id int64, token, method, body string) (int, string) {
		t.Helper()
		url := fmt.Sprintf("%s/waInstance%d/%s/%s", srv.URL, id, method, token)
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(rb)
	}

	// The server's root leads to the console; the printed token signs in.
	b.do("opening the server's root", wait, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	if p := eval[string](b, `location.pathname`); p != "/console" {
		t.Errorf("/ led to %s, want /console", p)
	}
	b.do("signing in", wait, chromedp.SendKeys(chromedp.ID("token"), admin), chromedp.Submit(chromedp.ID("token")))
	for _, id := range []int64{srv.WhatsApp.ID, srv.MAX.ID} {
		b.waitFor(fmt.Sprintf("instance %d", id), wait, q(card(id, ".state"))+`?.textContent === 'authorized'`)
	}

	// The engines the server has, by messenger.
	engines := `Array.from(document.querySelectorAll('#create-engine option')).map(o => o.value).join(',')`
	b.waitFor("the engines", wait, engines+` !== ''`)
	if got := eval[string](b, engines); got != "sandbox,whatsapp" {
		t.Errorf("engines offered for WhatsApp: %s, want sandbox,whatsapp", got)
	}
	choose("#create-type", "v3")
	if got := eval[string](b, engines); got != "sandbox,max,maxbot" {
		t.Errorf("engines offered for MAX: %s, want sandbox,max,maxbot", got)
	}
	choose("#create-engine", "maxbot")
	if eval[bool](b, q("#create-credential-field")+`.hidden`) {
		t.Errorf("no bot token field for the maxbot engine")
	}
	b.screenshot("create-maxbot")
	choose("#create-engine", "sandbox")
	if !eval[bool](b, q("#create-credential-field")+`.hidden`) {
		t.Errorf("a bot token field for the sandbox engine")
	}

	// Create a WhatsApp instance on the sandbox: its token is shown once
	// and works.
	choose("#create-type", "whatsapp")
	click("creating an instance", "#create-button")
	b.waitFor("the new token", wait, `!`+q("#created")+`.hidden`)
	if got := eval[string](b, `document.activeElement?.id ?? ''`); got != "created-heading" {
		t.Errorf("after creating, the focus is on %q, want the new token's heading", got)
	}
	id, err := strconv.ParseInt(text("#created-id"), 10, 64)
	if err != nil {
		t.Fatalf("created id %q", text("#created-id"))
	}
	token := text("#created-token")
	if !tokenRE.MatchString(token) {
		t.Fatalf("created token %q", token)
	}
	if code, body := greenAPI(id, token, "getStateInstance", ""); code != 200 {
		t.Fatalf("the new instance's token: %d %s", code, body)
	}
	b.waitFor("the new instance's card", wait, q(card(id, ".state"))+`?.textContent === 'authorized'`)
	b.screenshot("created")
	click("dismissing the token", "#created-done")
	if text("#created-token") != "" {
		t.Errorf("the token is still in the page after dismissing it")
	}

	// Rotate its token, by keyboard.
	b.do("rotating the token by keyboard", wait,
		chromedp.Focus(chromedp.CSS(card(id, ".rotate-button"))), chromedp.KeyEvent("\r"))
	b.waitFor("the rotated token", wait, `!`+q(card(id, ".token-box"))+`.hidden`)
	rotated := text(card(id, ".token"))
	if !tokenRE.MatchString(rotated) || rotated == token {
		t.Fatalf("rotated token %q (old %q)", rotated, token)
	}
	if code, _ := greenAPI(id, token, "getStateInstance", ""); code != 401 {
		t.Errorf("the old token after rotation: %d, want 401", code)
	}
	if code, _ := greenAPI(id, rotated, "getStateInstance", ""); code != 200 {
		t.Errorf("the rotated token: %d, want 200", code)
	}
	b.screenshot("token-rotated")
	click("dismissing the rotated token", card(id, ".token-done"))

	// Settings: every one is there; an address the sender can never reach
	// is refused at once, naming the setting to change; a good webhook is
	// saved.
	click("opening the settings", card(id, ".settings-panel > summary"))
	b.waitFor("the settings loaded", wait, `!`+q(card(id, ".main-settings"))+`.disabled`)
	click("opening the stored settings", card(id, ".stored-settings > summary"))
	for _, name := range []string{"keepOnlineStatus", "delaySendMessagesMilliseconds", "proxyInstance", "incomingWebhook"} {
		if !eval[bool](b, fmt.Sprintf(`!!%s`, q(card(id, fmt.Sprintf(`[data-setting="%s"]`, name))))) {
			t.Errorf("the stored setting %s is not in the form", name)
		}
	}
	if v := eval[string](b, q(card(id, `[data-setting="delaySendMessagesMilliseconds"]`))+`.value`); v != "5000" {
		t.Errorf("delaySendMessagesMilliseconds shows %q, want 5000", v)
	}
	set(card(id, `[data-field="webhook-url"]`), "http://10.20.30.40/hook")
	click("saving a private webhook", card(id, ".save-settings"))
	b.waitFor("the refusal", wait, q(card(id, ".settings-status"))+`.textContent.includes('PORTRAIT_WEBHOOK_ALLOW')`)
	b.screenshot("settings-refused")
	set(card(id, `[data-field="webhook-url"]`), hook.URL+"/hook")
	set(card(id, `[data-field="webhook-token"]`), "s3cret")
	click("switching stateWebhook on", card(id, `[data-field="state-webhook"]`))
	set(card(id, `[data-setting="delaySendMessagesMilliseconds"]`), "7000")
	click("saving the settings", card(id, ".save-settings"))
	b.waitFor("the settings saved", wait, q(card(id, ".settings-status"))+`.textContent.startsWith('Saved')`)
	if code, body := greenAPI(id, rotated, "getSettings", ""); code != 200 ||
		!strings.Contains(body, `"webhookUrl":"`+hook.URL+`/hook"`) || !strings.Contains(body, `"webhookUrlToken":"s3cret"`) ||
		!strings.Contains(body, `"stateWebhook":"yes"`) || !strings.Contains(body, `"delaySendMessagesMilliseconds":7000`) {
		t.Errorf("getSettings after saving in the console: %d %s", code, body)
	}

	// A test notification: the receiver's answer is shown.
	click("sending a test notification", card(id, ".test-webhook"))
	b.waitFor("the test's answer", wait, q(card(id, ".test-result"))+`.dataset.delivered === 'yes'`)
	if got := text(card(id, ".test-body")); got != "receiver answered 200" {
		t.Errorf("test body shown: %q", got)
	}
	if got := hook.received(); len(got) != 1 || !strings.HasPrefix(got[0], "Bearer s3cret ") || !strings.Contains(got[0], `"typeWebhook":"testNotification"`) {
		t.Errorf("the receiver got %q", got)
	}
	b.screenshot("webhook-test")
	hook.answer(http.StatusServiceUnavailable)
	click("sending a test notification to a failing receiver", card(id, ".test-webhook"))
	b.waitFor("the failed test", wait, q(card(id, ".test-result"))+`.dataset.delivered === 'no' && `+q(card(id, ".test-answer"))+`.textContent.includes('503')`)
	b.screenshot("webhook-test-failed")

	// The notification queue: a failing delivery, then a delivered one.
	click("opening the notifications", card(id, ".notifications-panel > summary"))
	if code, body := greenAPI(id, rotated, "getAvatarAsync", `{"chatId": "11001230001@c.us"}`); code != 200 {
		t.Fatalf("getAvatarAsync: %d %s", code, body)
	}
	b.waitFor("the failed attempt", wait, q(card(id, ".n-attempt"))+`.dataset.outcome === 'failed' && `+q(card(id, ".n-attempt"))+`.textContent.includes('503')`)
	b.waitFor("the head", wait, q(card(id, ".n-head"))+`.textContent.includes('avatarInfo') && `+q(card(id, ".n-depth"))+`.dataset.depth === '1'`)
	b.screenshot("notifications-failing")
	hook.answer(http.StatusOK)
	b.waitFor("the delivery", wait, q(card(id, ".n-attempt"))+`.dataset.outcome === 'delivered' && `+q(card(id, ".n-depth"))+`.dataset.depth === '0'`)
	b.screenshot("notifications-delivered")

	// Any chat's avatar (submitted with the Enter key), and a group's
	// picture.
	click("opening the pictures", card(id, ".pictures-panel > summary"))
	b.do("looking up Alice", wait, chromedp.SendKeys(chromedp.CSS(card(id, `[data-field="lookup-chat"]`)), "11001230001@c.us\r"))
	b.waitFor("Alice's pictures", wait, q(card(id, ".lookup-status"))+`.dataset.outcome === 'picture' && `+
		loaded(card(id, `.lookup-pics img[data-size="640"]`))+` && `+loaded(card(id, `.lookup-pics img[data-size="96"]`)))
	for _, size := range []int{640, 96} {
		if w := eval[int](b, q(card(id, fmt.Sprintf(`.lookup-pics img[data-size="%d"]`, size)))+`.naturalWidth`); w != size {
			t.Errorf("lookup: the %d picture is %d px wide", size, w)
		}
	}
	b.screenshot("lookup")
	set(card(id, `[data-field="lookup-chat"]`), "11001230003@c.us")
	click("looking up Carol", card(id, ".lookup-button"))
	b.waitFor("Carol hidden", wait, q(card(id, ".lookup-status"))+`.dataset.outcome === 'hidden'`)
	if n := eval[int](b, fmt.Sprintf(`document.querySelectorAll(%q).length`, card(id, ".lookup-pics img"))); n != 0 {
		t.Errorf("a hidden picture shows %d images", n)
	}
	set(card(id, `[data-field="lookup-chat"]`), "not a chat")
	click("looking up a malformed id", card(id, ".lookup-button"))
	b.waitFor("the lookup error", wait, q(card(id, ".lookup-status"))+`.dataset.outcome === 'error' && `+q(card(id, ".lookup-status"))+`.textContent.startsWith('Error 400')`)

	dir := t.TempDir()
	pic := filepath.Join(dir, "group.png")
	if err := os.WriteFile(pic, testPNG(t), 0o644); err != nil {
		t.Fatal(err)
	}
	set(card(id, `[data-field="group-id"]`), "120363000000000001@g.us")
	b.do("choosing the group picture", wait, chromedp.SetUploadFiles(chromedp.CSS(card(id, `[data-field="group-file"]`)), []string{pic}))
	click("setting the group picture", card(id, ".group-button"))
	b.waitFor("the group picture", wait, q(card(id, ".group-status"))+`.dataset.outcome === 'set' && `+loaded(card(id, `.group-pics img[data-size="640"]`)))
	groupURL := eval[string](b, q(card(id, `.group-pics img[data-size="640"]`))+`.src`)
	if code, body := greenAPI(id, rotated, "getAvatar", `{"chatId": "120363000000000001@g.us"}`); code != 200 || !strings.Contains(body, groupURL) {
		t.Errorf("getAvatar of the group after setting its picture: %d %s, want %s", code, body, groupURL)
	}
	b.screenshot("group-picture")
	set(card(id, `[data-field="group-id"]`), "120363000000000002@g.us")
	b.do("choosing the picture again", wait, chromedp.SetUploadFiles(chromedp.CSS(card(id, `[data-field="group-file"]`)), []string{pic}))
	click("setting a picture where only admins may", card(id, ".group-button"))
	b.waitFor("the refusal", wait, q(card(id, ".group-status"))+`.dataset.outcome === 'refused' && `+q(card(id, ".group-status"))+`.textContent.includes('admin')`)

	// Log out, link by pairing code, then by the simulated scan.
	click("logging out", card(id, ".logout-button"))
	b.waitFor("not linked", wait, q(card(id, ".state"))+`.textContent === 'notAuthorized' && `+loaded(card(id, "img.qr")))
	if !eval[bool](b, q(card(id, ".upload"))+`.hidden`) {
		t.Errorf("the profile picture form is shown while not linked")
	}
	b.do("typing the phone number", wait, chromedp.SendKeys(chromedp.CSS(card(id, `[data-field="phone"]`)), "11001234567"))
	click("asking for a pairing code", card(id, ".pairing-button"))
	b.waitFor("the pairing code", wait, q(card(id, ".pairing-code"))+`?.textContent.length === 9`)
	if code := text(card(id, ".pairing-code")); !regexp.MustCompile(`^[A-Z0-9]{4}-[A-Z0-9]{4}$`).MatchString(code) {
		t.Errorf("pairing code %q", code)
	}
	b.screenshot("pairing-code")
	if !eval[bool](b, q(card(srv.MAX.ID, ".pairing"))+`.hidden`) {
		t.Errorf("a pairing code form on a MAX instance")
	}
	click("simulating the scan", card(id, ".scan-button"))
	b.waitFor("linked again", wait, q(card(id, ".state"))+`.textContent === 'authorized' && `+q(card(id, ".qr-box"))+`.hidden`)
	if !eval[bool](b, q(card(id, ".scan-button"))+`.hidden`) {
		t.Errorf("the scan button is shown while linked")
	}
	b.screenshot("scanned")

	// A maxbot instance with its bot token from the form; the card takes
	// a new one, and refuses one that cannot be a token.
	choose("#create-type", "v3")
	choose("#create-engine", "maxbot")
	set("#create-credential", "bot-token-1")
	click("creating a maxbot instance", "#create-button")
	b.waitFor("the maxbot instance", wait, `!`+q("#created")+`.hidden && `+q("#create-status")+`.textContent.includes('maxbot')`)
	bot, err := strconv.ParseInt(text("#created-id"), 10, 64)
	if err != nil {
		t.Fatalf("created id %q", text("#created-id"))
	}
	click("dismissing the token", "#created-done")
	b.waitFor("the bot token field", wait, `!`+q(card(bot, ".credential"))+`.hidden`)
	set(card(bot, `[data-field="credential"]`), "bad token")
	click("saving a bad bot token", card(bot, ".credential-button"))
	b.waitFor("the refusal", wait, q(card(bot, ".credential-status"))+`.textContent.startsWith('Error 400')`)
	set(card(bot, `[data-field="credential"]`), "bot-token-2")
	click("saving the bot token", card(bot, ".credential-button"))
	b.waitFor("the bot token saved", wait, q(card(bot, ".credential-status"))+`.textContent.startsWith('Saved')`)
	if eval[string](b, q(card(bot, `[data-field="credential"]`))+`.value`) != "" {
		t.Errorf("the bot token stays in the field after saving")
	}
	b.screenshot("maxbot")
	if !eval[bool](b, q(card(srv.WhatsApp.ID, ".credential"))+`.hidden`) {
		t.Errorf("a bot token form on a sandbox instance")
	}

	// Every field has a label.
	unlabelled := eval[string](b, `Array.from(document.querySelectorAll('input, select, textarea'))
		.filter(e => e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label'))
		.map(e => e.id || e.className || e.name).join(', ')`)
	if unlabelled != "" {
		t.Errorf("fields without a label: %s", unlabelled)
	}
	ids := eval[string](b, `(() => { const seen = new Set(), dup = []; for (const e of document.querySelectorAll('[id]')) { if (seen.has(e.id)) dup.push(e.id); seen.add(e.id); } return dup.join(', '); })()`)
	if ids != "" {
		t.Errorf("ids used twice: %s", ids)
	}

	// Delete the instance: the page asks first, then it is gone.
	click("deleting", card(id, ".delete-button"))
	b.waitFor("the question", wait, `!`+q(card(id, ".confirm-delete"))+`.hidden && document.activeElement === `+q(card(id, ".cancel-delete-button")))
	b.screenshot("delete-confirm")
	click("cancelling", card(id, ".cancel-delete-button"))
	if !eval[bool](b, q(card(id, ".confirm-delete"))+`.hidden`) {
		t.Errorf("cancelling left the question")
	}
	click("deleting again", card(id, ".delete-button"))
	click("confirming", card(id, ".confirm-delete-button"))
	b.waitFor("the card gone", wait, q(card(id, ""))+` === null`)
	if code, _ := greenAPI(id, rotated, "getStateInstance", ""); code != 403 {
		t.Errorf("the deleted instance answers %d, want 403", code)
	}
	// It stays gone across polls.
	time.Sleep(2500 * time.Millisecond)
	if !eval[bool](b, q(card(id, ""))+` === null`) {
		t.Errorf("the deleted instance came back")
	}

	// A phone's width: one column, nothing wider than the screen.
	b.do("narrowing to a phone", wait, chromedp.EmulateViewport(390, 844))
	b.waitFor("the layout at 390 px", wait, `document.documentElement.clientWidth === 390`)
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("at 390 px the page is %d px wide", w)
	}
	if w := eval[int](b, `Math.max(...Array.from(document.querySelectorAll('.instance')).map(e => e.getBoundingClientRect().right))`); w > 390 {
		t.Errorf("at 390 px an instance reaches %d px", w)
	}
	b.screenshot("phone")

	if p := b.problems(); len(p) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(p, "\n"))
	}
}
