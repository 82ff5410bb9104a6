// Package compat runs the official GREEN-API JavaScript SDKs from the npm
// registry (@green-api/whatsapp-api-client 0.4.4 and
// @green-api/whatsapp-api-client-js-v2 1.0.3, pinned in js/package-lock.json)
// against a server that speaks the GREEN-API wire, and returns what each SDK
// got back. It asserts nothing: tests that start a server call Run and check
// the Result. See README.md in this directory for what each SDK sends.
package compat

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The npm package names of the SDKs, as they appear as keys of a Result.
const (
	// SDKv1 is @green-api/whatsapp-api-client (version 0.4.4): the older SDK,
	// configured with restAPI({host, idInstance, apiTokenInstance}).
	SDKv1 = "@green-api/whatsapp-api-client"
	// SDKv2 is @green-api/whatsapp-api-client-js-v2 (version 1.0.3): the
	// TypeScript SDK, new GreenApiClient({idInstance, apiTokenInstance}).
	SDKv2 = "@green-api/whatsapp-api-client-js-v2"
)

// The environment variables compat.mjs reads; pass them in the env map of
// Run. All are required.
const (
	EnvAPIURL          = "PORTRAIT_API_URL"  // base URL (apiUrl); with or without a trailing slash
	EnvIDInstance      = "PORTRAIT_ID"       // idInstance
	EnvToken           = "PORTRAIT_TOKEN"    // apiTokenInstance
	EnvChatWithPicture = "CHAT_WITH_PICTURE" // a chat whose avatar is visible
	EnvChatHidden      = "CHAT_HIDDEN"       // a chat whose avatar is hidden by privacy
	EnvChatNoPicture   = "CHAT_NO_PICTURE"   // a chat without an avatar
	EnvGroupAdmin      = "GROUP_ADMIN"       // a group whose picture the account may change
	EnvPicturePath     = "PICTURE_PATH"      // a JPEG or PNG file to upload
	// EnvRetry429 set to "0" stops compat.mjs from retrying calls answered
	// 429 (by default it retries up to 3 times, waiting Retry-After).
	EnvRetry429 = "COMPAT_RETRY_429"
)

// ErrNoNode is returned (wrapped) by Run when Node.js 18+ or npm cannot be
// found; tests may skip on it with errors.Is.
var ErrNoNode = errors.New("compat: Node.js 18+ and npm are needed for the compatibility test; install Node.js")

// Result is what compat.mjs printed, keyed by npm package name (SDKv1, SDKv2).
type Result map[string]SDKResult

// SDKResult is what one SDK got back for each call.
type SDKResult struct {
	// Version is the SDK's version as installed.
	Version string `json:"version"`
	// GetAvatar holds one outcome per chat, keyed by the environment variable
	// that named the chat: EnvChatWithPicture, EnvChatHidden, EnvChatNoPicture.
	GetAvatar map[string]Outcome `json:"getAvatar"`
	// GetAvatarPhoneNumber is getAvatar for EnvChatWithPicture sent in the
	// legacy form {"phoneNumber": <number>}; skipped by SDKs that cannot send
	// it (v2) and when the chat is not <digits>@c.us.
	GetAvatarPhoneNumber Outcome `json:"getAvatarPhoneNumber"`
	// GetAvatarTrailingSlash is getAvatar for EnvChatWithPicture with the base
	// URL given a trailing slash, so that the SDK sends //waInstance….
	GetAvatarTrailingSlash Outcome `json:"getAvatarTrailingSlash"`
	// SetProfilePicture uploads EnvPicturePath; skipped by SDKs without the
	// method (v1 0.4.4).
	SetProfilePicture Outcome `json:"setProfilePicture"`
	// SetGroupPicture uploads EnvPicturePath to EnvGroupAdmin.
	SetGroupPicture Outcome `json:"setGroupPicture"`
}

// Outcome is the result of one SDK call: exactly one of Data, Error and
// Skipped is set.
type Outcome struct {
	// Data is what the SDK call returned (the response body, parsed by the SDK).
	Data json.RawMessage `json:"data,omitempty"`
	// Error is set when the SDK call threw.
	Error *CallError `json:"error,omitempty"`
	// Skipped says why the call was not made (the SDK has no such method).
	Skipped string `json:"skipped,omitempty"`
	// Wire describes the last HTTP exchange of the call, when there was one.
	Wire *Wire `json:"wire,omitempty"`
	// Attempts is the number of tries when a 429 was retried (0 otherwise).
	Attempts int `json:"attempts,omitempty"`
}

// CallError describes a failed SDK call.
type CallError struct {
	// Status is the HTTP status of the response, 0 when there was none (the
	// SDK refused the arguments, or the connection failed).
	Status int `json:"status"`
	// Body is the response body as the SDK's HTTP library parsed it.
	Body json.RawMessage `json:"body,omitempty"`
	// Message is the message of what the SDK threw, token redacted.
	Message string `json:"message"`
	// Transport is the network error code (e.g. ECONNREFUSED), if any.
	Transport string `json:"transport,omitempty"`
}

// Wire is what Node actually sent and got, as seen below the SDK.
type Wire struct {
	Method      string `json:"method"`      // HTTP method, e.g. "POST"
	Path        string `json:"path"`        // request path, token replaced by {apiTokenInstance}
	ContentType string `json:"contentType"` // Content-Type request header
	Status      int    `json:"status"`      // HTTP status of the response
}

// OK reports whether the call returned data (no error, not skipped).
func (o Outcome) OK() bool { return o.Error == nil && o.Skipped == "" }

// Decode unmarshals the data the call returned into v.
func (o Outcome) Decode(v any) error {
	if !o.OK() {
		return fmt.Errorf("compat: no data to decode: %s", o)
	}
	if err := json.Unmarshal(o.Data, v); err != nil {
		return fmt.Errorf("compat: decode %s: %w", o.Data, err)
	}
	return nil
}

// String describes the outcome in one line, for test failure messages.
func (o Outcome) String() string {
	var b strings.Builder
	switch {
	case o.Skipped != "":
		fmt.Fprintf(&b, "skipped (%s)", o.Skipped)
	case o.Error != nil:
		fmt.Fprintf(&b, "error status=%d body=%s message=%q", o.Error.Status, o.Error.Body, o.Error.Message)
		if o.Error.Transport != "" {
			fmt.Fprintf(&b, " transport=%s", o.Error.Transport)
		}
	default:
		fmt.Fprintf(&b, "data=%s", o.Data)
	}
	if o.Wire != nil {
		fmt.Fprintf(&b, " [%s %s %q → %d]", o.Wire.Method, o.Wire.Path, o.Wire.ContentType, o.Wire.Status)
	}
	if o.Attempts > 0 {
		fmt.Fprintf(&b, " after %d attempts", o.Attempts)
	}
	return b.String()
}

// Run installs the SDKs if needed (npm ci into compat/js, reusing
// node_modules when package.json and package-lock.json are unchanged) and runs
// compat.mjs with env added to this process's environment, returning the
// parsed JSON result. It fails with an error wrapping ErrNoNode when Node.js
// 18+ or npm is missing. The token (env[EnvToken]) is redacted from the
// errors it returns.
func Run(ctx context.Context, env map[string]string) (Result, error) {
	dir, err := jsDir()
	if err != nil {
		return nil, err
	}
	if err := checkNode(ctx); err != nil {
		return nil, err
	}
	if err := install(ctx, dir); err != nil {
		return nil, err
	}
	return runScript(ctx, dir, env)
}

// jsDir finds compat/js next to this source file, or else by walking up from
// the working directory.
func jsDir() (string, error) {
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "js"))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			candidates = append(candidates, filepath.Join(d, "compat", "js"), filepath.Join(d, "js"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "compat.mjs")); err == nil {
			return c, nil
		}
	}
	return "", errors.New("compat: cannot find compat/js/compat.mjs (run from inside the portrait repository)")
}

var nodeVersionRE = regexp.MustCompile(`^v(\d+)\.`)

// checkNode makes sure node (18 or newer) and npm are on PATH.
func checkNode(ctx context.Context) error {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w (%s not found on PATH)", ErrNoNode, tool)
		}
	}
	out, err := exec.CommandContext(ctx, "node", "--version").Output()
	if err != nil {
		return fmt.Errorf("%w (node --version: %v)", ErrNoNode, err)
	}
	v := strings.TrimSpace(string(out))
	m := nodeVersionRE.FindStringSubmatch(v)
	if m == nil {
		return fmt.Errorf("%w (cannot read node version %q)", ErrNoNode, v)
	}
	if major, _ := strconv.Atoi(m[1]); major < 18 {
		return fmt.Errorf("%w (found node %s)", ErrNoNode, v)
	}
	return nil
}

// stampName is the file in node_modules that records which inputs the
// installed tree was made from.
const stampName = ".portrait-compat-stamp"

// installMu serialises installs within this process; lockDir does it across
// processes (go test runs packages in parallel).
var installMu sync.Mutex

// install runs npm ci in dir unless node_modules was installed from the
// same package.json, package-lock.json and empty-fs package.
func install(ctx context.Context, dir string) error {
	want, err := inputsDigest(dir)
	if err != nil {
		return err
	}
	stamp := filepath.Join(dir, "node_modules", stampName)
	if have, err := os.ReadFile(stamp); err == nil && string(have) == want {
		return nil
	}

	installMu.Lock()
	defer installMu.Unlock()
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	if have, err := os.ReadFile(stamp); err == nil && string(have) == want {
		return nil // another process installed it meanwhile
	}

	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("compat: npm ci in %s: %w\n%s", dir, err, tail(out.Bytes(), 4096))
	}
	if err := os.WriteFile(stamp, []byte(want), 0o644); err != nil {
		return fmt.Errorf("compat: write install stamp: %w", err)
	}
	return nil
}

// inputsDigest hashes the files npm ci installs from.
func inputsDigest(dir string) (string, error) {
	h := sha256.New()
	for _, name := range []string{"package.json", "package-lock.json", filepath.Join("empty-fs", "package.json")} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("compat: read %s: %w", name, err)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// runScript runs compat.mjs and parses its output.
func runScript(ctx context.Context, dir string, env map[string]string) (Result, error) {
	token := env[EnvToken]
	cmd := exec.CommandContext(ctx, "node", "compat.mjs")
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = os.Environ()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		cmd.Env = append(cmd.Env, k+"="+env[k]) // later entries win over inherited ones
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("compat: node compat.mjs: %w\n%s", err, redact(tail(stderr.Bytes(), 4096), token))
	}
	var res Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("compat: parse compat.mjs output: %w\n%s", err, redact(tail(stdout.Bytes(), 2048), token))
	}
	return res, nil
}

// tail returns at most the last n bytes of b.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// redact replaces token in s.
func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "{apiTokenInstance}")
}
