package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/portrait-dev/portrait/app"
)

// TestHelpAndVersion: help and --version work at every level and print the
// commands' own flags.
func TestHelpAndVersion(t *testing.T) {
	run := func(args ...string) (string, string, error) {
		var out, errb syncBuffer
		err := app.Run(context.Background(), app.Env{Args: args, Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errb})
		return out.String(), errb.String(), err
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "portrait instance create"},
		{[]string{"help"}, "portrait sandbox scan ID"},
		{[]string{"help", "instance"}, "rotate-token ID"},
		{[]string{"instance", "--help"}, "set-credential ID"},
		{[]string{"instance", "create", "--help"}, "-engine"},
		{[]string{"instance", "delete", "-h"}, "-data-dir"},
		{[]string{"sandbox", "--help"}, "privacy ID CHAT hidden|visible"},
		{[]string{"sandbox", "set-picture", "--help"}, "-author"},
		{[]string{"--version"}, "portrait dev"},
		{[]string{"version"}, "go:"},
	} {
		out, errOut, err := run(tc.args...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("portrait %s: %v\nstdout:\n%s\nstderr:\n%s\nwant %q", strings.Join(tc.args, " "), err, out, errOut, tc.want)
		}
	}
	if _, errOut, err := run("help", "serve"); err != nil || !strings.Contains(errOut, "-listen") {
		t.Errorf("portrait help serve: %v\n%s", err, errOut)
	}
	if _, errOut, err := run("instance", "frobnicate"); err == nil || !strings.Contains(errOut, "unknown command") {
		t.Errorf("an unknown instance command: %v\n%s", err, errOut)
	}
}

// TestCLIUsesTheServersURL: instance list and create print the apiUrl the
// server really serves at (not the default port) and say what to do next.
func TestCLIUsesTheServersURL(t *testing.T) {
	s := start(t)
	var out, errb syncBuffer
	if err := app.Run(context.Background(), app.Env{Args: []string{"instance", "create", "--engine", "whatsapp", "--data-dir", s.DataDir}, Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errb}); err != nil {
		t.Fatalf("create: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "apiUrl:            "+s.URL) || !strings.Contains(errb.String(), "Next: link a phone") || !strings.Contains(errb.String(), s.URL+"/console") {
		t.Errorf("create printed:\n%s%s", out.String(), errb.String())
	}
	out, errb = syncBuffer{}, syncBuffer{}
	if err := app.Run(context.Background(), app.Env{Args: []string{"instance", "list", "--data-dir", s.DataDir}, Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &errb}); err != nil || strings.Count(out.String(), s.URL) < 3 {
		t.Errorf("list: %v\n%s", err, out.String())
	}
}

// TestCLIErrorsSayWhatToDo: a wrong id or an unknown instance gets an
// error that says where the right one is.
func TestCLIErrorsSayWhatToDo(t *testing.T) {
	s := start(t)
	for _, args := range [][]string{
		{"instance", "delete", "1101999999"},
		{"instance", "rotate-token", "1101999999"},
		{"instance", "delete", "not-a-number"},
	} {
		var out syncBuffer
		err := app.Run(context.Background(), app.Env{Args: append(args, "--data-dir", s.DataDir), Getenv: func(string) string { return "" }, Stdout: &out, Stderr: &out})
		if err == nil || !strings.Contains(err.Error(), "portrait instance list") {
			t.Errorf("portrait %s: %v", strings.Join(args, " "), err)
		}
	}
}
