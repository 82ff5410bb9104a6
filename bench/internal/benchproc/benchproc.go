// Package benchproc runs the programs a benchmark measures as child
// processes: it builds them from the module and starts, signals and stops
// them.
package benchproc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// ModuleRoot returns the directory of the main module (where go.mod is).
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the portrait module: run from the repository")
	}
	return filepath.Dir(mod), nil
}

// Build runs `go build -o out pkg` in the module root.
func Build(ctx context.Context, root, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// Child is a server started as a child process. Its stdout and stderr go to
// files in the temporary directory.
type Child struct {
	name       string
	Cmd        *exec.Cmd
	stdout     string
	stderr     string
	done       chan struct{}
	waitErr    error
	terminated bool
}

// Start starts bin with args and waits until it prints
// "listening on http://…" on stdout; it returns that URL.
func Start(ctx context.Context, name, dir, bin string, env []string, args ...string) (*Child, string, error) {
	c := &Child{
		name:   name,
		stdout: filepath.Join(dir, name+".stdout"),
		stderr: filepath.Join(dir, name+".stderr"),
		done:   make(chan struct{}),
	}
	out, err := os.Create(c.stdout)
	if err != nil {
		return nil, "", err
	}
	defer out.Close()
	errf, err := os.Create(c.stderr)
	if err != nil {
		return nil, "", err
	}
	defer errf.Close()
	c.Cmd = exec.Command(bin, args...)
	c.Cmd.Stdout, c.Cmd.Stderr = out, errf
	c.Cmd.Env = append(os.Environ(), env...)
	if err := c.Cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		c.waitErr = c.Cmd.Wait()
		close(c.done)
	}()

	re := regexp.MustCompile(`listening on (http://\S+)`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, _ := os.ReadFile(c.stdout); b != nil {
			if m := re.FindSubmatch(b); m != nil {
				return c, string(m[1]), nil
			}
		}
		select {
		case <-c.done:
			return c, "", fmt.Errorf("%s exited before listening (%v)%s", name, c.waitErr, c.Tail())
		case <-ctx.Done():
			return c, "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return c, "", fmt.Errorf("%s did not start listening within a minute%s", name, c.Tail())
		}
	}
}

// Tail returns the end of the child's stderr, for error messages.
func (c *Child) Tail() string {
	b, _ := os.ReadFile(c.stderr)
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	if s == "" {
		return ""
	}
	return "; its stderr:\n" + s
}

// Signal sends sig to the child if it is still running.
func (c *Child) Signal(sig os.Signal) error {
	select {
	case <-c.done:
		return fmt.Errorf("%s has exited (%v)%s", c.name, c.waitErr, c.Tail())
	default:
	}
	return c.Cmd.Process.Signal(sig)
}

// Running reports an error when the child has exited.
func (c *Child) Running() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited unexpectedly (%v)%s", c.name, c.waitErr, c.Tail())
	default:
		return nil
	}
}

// Stop sends SIGTERM and waits for the child to exit, killing it after
// timeout. It returns an error when the child did not exit cleanly.
func (c *Child) Stop(timeout time.Duration) error {
	if c == nil || c.Cmd == nil || c.Cmd.Process == nil {
		return nil
	}
	select {
	case <-c.done:
		if c.terminated {
			return nil
		}
		return fmt.Errorf("%s had exited (%v)%s", c.name, c.waitErr, c.Tail())
	default:
	}
	c.terminated = true
	_ = c.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		if c.waitErr != nil {
			return fmt.Errorf("%s: %v after SIGTERM%s", c.name, c.waitErr, c.Tail())
		}
		return nil
	case <-time.After(timeout):
		_ = c.Cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", c.name, timeout)
	}
}

// WaitHealthy polls url until it answers 200.
func WaitHealthy(ctx context.Context, c *Child, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := c.Running(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not become healthy within 30 s (%v)", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartHealthy is Start, then WaitHealthy on the URL's /healthz. The
// child is returned also on error, to be stopped.
func StartHealthy(ctx context.Context, name, dir, bin string, env []string, args ...string) (*Child, string, error) {
	c, url, err := Start(ctx, name, dir, bin, env, args...)
	if err == nil {
		err = WaitHealthy(ctx, c, url+"/healthz")
	}
	return c, url, err
}
