package app_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait/compat"
)

// TestOfficialJavaScriptSDKs runs GREEN-API's own JavaScript SDKs, as
// published on the npm registry, against a live portrait with only the host
// changed: getAvatar (also with the legacy phoneNumber field and with a base
// URL ending in a slash), setProfilePicture where the SDK has it, and
// setGroupPicture. It needs Node.js and npm; it runs under the default rate
// limits, as a client of GREEN-API would meet them.
func TestOfficialJavaScriptSDKs(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Node.js and the npm registry; skipped with -short")
	}
	s := startIn(t, t.TempDir(), "--sandbox-latency", "5ms", "--sandbox-start-delay", "0", "--sandbox-picture-cooldown", "0", "--log-level", "warn")
	pic := filepath.Join(t.TempDir(), "green-api-logo.png")
	if err := os.WriteFile(pic, encodePNG(t, testImage(400, 300, true)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := compat.Run(ctx, map[string]string{
		compat.EnvAPIURL:          s.URL + "/",
		compat.EnvIDInstance:      fmt.Sprint(s.WhatsApp.ID),
		compat.EnvToken:           s.WhatsApp.Token,
		compat.EnvChatWithPicture: "11001230001@c.us",
		compat.EnvChatHidden:      "11001230003@c.us",
		compat.EnvChatNoPicture:   "11001230004@c.us",
		compat.EnvGroupAdmin:      "120363000000000001@g.us",
		compat.EnvPicturePath:     pic,
	})
	if errors.Is(err, compat.ErrNoNode) && os.Getenv("PORTRAIT_REQUIRE_TOOLS") != "1" {
		t.Skipf("%v (set PORTRAIT_REQUIRE_TOOLS=1 to make this a failure, as scripts/test does)", err)
	}
	if err != nil {
		t.Fatalf("running the SDKs: %v", err)
	}
	type avatar struct {
		URLAvatar string `json:"urlAvatar"`
		Available bool   `json:"available"`
	}
	versions := map[string]string{compat.SDKv1: "0.4.4", compat.SDKv2: "1.0.3"}
	for name, version := range versions {
		r, ok := res[name]
		if !ok {
			t.Fatalf("no result for %s: %v", name, res)
		}
		if r.Version != version {
			t.Errorf("%s: version %q, want %s", name, r.Version, version)
		}
		checkAvatar := func(what string, o compat.Outcome, wantPicture, wantAvailable bool) {
			t.Helper()
			var got avatar
			if !o.OK() || o.Decode(&got) != nil {
				t.Errorf("%s %s: %v", name, what, o)
				return
			}
			if (got.URLAvatar != "") != wantPicture || got.Available != wantAvailable {
				t.Errorf("%s %s: %+v; want picture %v available %v", name, what, got, wantPicture, wantAvailable)
			}
			if wantPicture && !strings.HasPrefix(got.URLAvatar, s.URL+"/avatars/") {
				t.Errorf("%s %s: urlAvatar %q", name, what, got.URLAvatar)
			}
			if o.Wire != nil && (o.Wire.Method != "POST" || o.Wire.Status != 200) {
				t.Errorf("%s %s: on the wire %+v", name, what, *o.Wire)
			}
		}
		checkAvatar("getAvatar picture", r.GetAvatar[compat.EnvChatWithPicture], true, true)
		checkAvatar("getAvatar hidden", r.GetAvatar[compat.EnvChatHidden], false, false)
		checkAvatar("getAvatar no picture", r.GetAvatar[compat.EnvChatNoPicture], false, true)
		checkAvatar("getAvatar with a trailing slash", r.GetAvatarTrailingSlash, true, true)
		if w := r.GetAvatarTrailingSlash.Wire; w == nil || !strings.HasPrefix(w.Path, "//waInstance") {
			t.Errorf("%s: the trailing-slash call did not send //waInstance: %+v", name, w)
		}
		var group struct {
			SetGroupPicture bool    `json:"setGroupPicture"`
			URLAvatar       *string `json:"urlAvatar"`
			Reason          *string `json:"reason"`
		}
		if !r.SetGroupPicture.OK() || r.SetGroupPicture.Decode(&group) != nil || !group.SetGroupPicture || group.URLAvatar == nil || *group.URLAvatar == "" || group.Reason == nil || *group.Reason != "" {
			t.Errorf("%s setGroupPicture: %v", name, r.SetGroupPicture)
		}
	}
	// v1 sends the legacy {"phoneNumber": <number>}; it has no setProfilePicture.
	checkPhone := res[compat.SDKv1].GetAvatarPhoneNumber
	var got avatar
	if !checkPhone.OK() || checkPhone.Decode(&got) != nil || got.URLAvatar == "" || !got.Available {
		t.Errorf("v1 getAvatar by phoneNumber: %v", checkPhone)
	}
	if res[compat.SDKv1].SetProfilePicture.Skipped == "" {
		t.Errorf("v1 has no setProfilePicture, yet it was not skipped: %v", res[compat.SDKv1].SetProfilePicture)
	}
	var prof struct {
		Reason            *string `json:"reason"`
		URLAvatar         *string `json:"urlAvatar"`
		SetProfilePicture bool    `json:"setProfilePicture"`
	}
	sp := res[compat.SDKv2].SetProfilePicture
	if !sp.OK() || sp.Decode(&prof) != nil || !prof.SetProfilePicture || prof.Reason != nil || prof.URLAvatar == nil || *prof.URLAvatar == "" {
		t.Errorf("v2 setProfilePicture: %v", sp)
	}
}
