package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/portrait-dev/portrait/app"
	"github.com/portrait-dev/portrait/client"
)

// TestWhatsAppInstance: an instance on the whatsapp engine can be created
// by the admin API and the CLI, starts unlinked without touching the
// network, and answers as GREEN-API does for an unlinked instance. (Linking
// needs a phone: docs/whatsapp-smoke-test.md.)
func TestWhatsAppInstance(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	code, b := s.admin(t, "POST", "/admin/instances", map[string]string{"typeInstance": "whatsapp", "engine": "whatsapp"})
	var created struct {
		IDInstance       int64  `json:"idInstance"`
		APITokenInstance string `json:"apiTokenInstance"`
		Engine           string `json:"engine"`
		StateInstance    string `json:"stateInstance"`
	}
	mustJSON(t, b, &created)
	if code != 201 || created.Engine != "whatsapp" || created.StateInstance != "notAuthorized" {
		t.Fatalf("create: %d %s", code, b)
	}
	c := newClient(s.URL, created.IDInstance, created.APITokenInstance)
	if st, err := c.GetStateInstance(ctx); err != nil || st != client.StateNotAuthorized {
		t.Errorf("state: %q, %v", st, err)
	}
	var ce *client.Error
	if _, err := c.GetAvatar(ctx, "11001230001@c.us"); !errors.As(err, &ce) || ce.StatusCode != 400 || ce.Message != "instance account not authorized" {
		t.Errorf("getAvatar: %v", err)
	}
	wa, err := c.GetWaSettings(ctx)
	if err != nil || wa.StateInstance != client.StateNotAuthorized || wa.Phone != "" || wa.Avatar != "" {
		t.Errorf("getWaSettings: %+v, %v", wa, err)
	}
	// MAX is not a WhatsApp engine's messenger: refused, and not kept.
	code, b = s.admin(t, "POST", "/admin/instances", map[string]string{"typeInstance": "v3", "engine": "whatsapp"})
	if code != 400 || !strings.Contains(string(b), "WhatsApp") {
		t.Errorf("MAX on whatsapp: %d %s", code, b)
	}
	if _, b := s.admin(t, "GET", "/admin/instances", nil); strings.Count(string(b), "idInstance") != 3 {
		t.Errorf("the refused instance was kept: %s", b)
	}
	// The CLI knows the engine too.
	var out syncBuffer
	if err := app.Run(ctx, app.Env{Args: []string{"instance", "create", "--data-dir", s.DataDir, "--engine", "whatsapp"}, Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out}); err != nil {
		t.Fatalf("CLI: %v\n%s", err, out.String())
	}
	for _, args := range [][]string{{"--engine", "telegraph"}, {"--engine", "whatsapp", "--type", "v3"}} {
		err := app.Run(ctx, app.Env{Args: append([]string{"instance", "create", "--data-dir", s.DataDir}, args...), Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out})
		if err == nil || !strings.Contains(err.Error(), "whatsapp") {
			t.Errorf("instance create %v: %v", args, err)
		}
	}
}
