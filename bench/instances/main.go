// Command instances measures how portrait's instance layer scales with the
// number of instances on one node: the rate of creating them (through the
// admin API, in batches of 500), the memory an idle instance costs, and
// how long a server with all of them takes to serve after a restart.
//
//	go run ./bench/instances                 # 10,000 sandbox instances on SQLite
//	go run ./bench/instances -n 2000
//	go run ./bench/instances -database 'postgres://…/fresh-db'
//
// portrait runs as a child process on loopback; the run stops by itself.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const adminToken = "bench-admin-token"

func main() {
	n := flag.Int("n", 10000, "instances to create")
	batch := flag.Int("batch", 500, "instances per measured batch")
	conc := flag.Int("concurrency", 4, "concurrent admin requests")
	database := flag.String("database", "", "run on this PostgreSQL database (a fresh, empty one) instead of SQLite")
	flag.Parse()
	if err := run(*n, *batch, *conc, *database); err != nil {
		fmt.Fprintln(os.Stderr, "instances:", err)
		os.Exit(1)
	}
}

type server struct {
	cmd  *exec.Cmd
	base string
}

func start(bin, dataDir, database string) (*server, time.Duration, error) {
	args := []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--admin-token", adminToken,
		"--whatsapp-version", "2.3000.1000000000", "--sandbox-start-delay", "0", "--sandbox-latency", "0",
		"--rate-limits", "*=0", "--log-level", "error"}
	if database != "" {
		args = append(args, "--database", database)
	}
	t0 := time.Now()
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	sc := bufio.NewScanner(out)
	s := &server{cmd: cmd}
	for sc.Scan() {
		if i := strings.Index(sc.Text(), "listening on "); i >= 0 {
			s.base = strings.TrimSpace(sc.Text()[i+len("listening on "):])
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if s.base == "" {
		_ = cmd.Process.Kill()
		return nil, 0, errors.New("the server did not start")
	}
	for {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Since(t0) > 5*time.Minute {
			return nil, 0, errors.New("the server never got ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s, time.Since(t0), nil
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// rss is the child's resident memory in bytes.
func (s *server) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func (s *server) create(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, "POST", s.base+"/admin/instances", strings.NewReader(`{"typeInstance":"whatsapp","engine":"sandbox"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("create: %s %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

func run(n, batch, conc int, database string) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "portrait-instances-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "portrait")
	if out, err := exec.Command("go", "build", "-tags", "nodynamic", "-o", bin, "./cmd/portrait").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	dataDir := filepath.Join(tmp, "data")
	s, _, err := start(bin, dataDir, database)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	rssBefore := s.rss()
	fmt.Printf("creating %d sandbox instances through the admin API, %d at a time, in batches of %d\n", n, conc, batch)
	var rates []float64
	for done := 0; done < n; done += batch {
		size := min(batch, n-done)
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, size)
		work := make(chan struct{}, size)
		for i := 0; i < size; i++ {
			work <- struct{}{}
		}
		close(work)
		for w := 0; w < conc; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range work {
					if err := s.create(ctx); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			s.stop()
			return err
		}
		rate := float64(size) / time.Since(t0).Seconds()
		rates = append(rates, rate)
		fmt.Printf("  instances %5d–%5d: %6.0f/s\n", done+1, done+size, rate)
	}
	time.Sleep(5 * time.Second) // idle: let the sessions settle
	rssAfter := s.rss()
	s.stop()

	_, ready, err := startAgain(bin, dataDir, database)
	if err != nil {
		return err
	}
	last := rates[len(rates)-1]
	fmt.Printf("\ncreation: first batch %.0f/s, last batch %.0f/s: the last is %.0f %% of the first (target ≥ 80 %%)\n", rates[0], last, 100*last/rates[0])
	fmt.Printf("idle memory: %.1f MiB resident with 2 instances, %.1f MiB with %d: %.1f KiB per instance\n",
		float64(rssBefore)/(1<<20), float64(rssAfter)/(1<<20), n+2, float64(rssAfter-rssBefore)/float64(n)/1024)
	fmt.Printf("restart: %d instances, ready (/readyz 200) %v after the process started (target ≤ 1 s)\n", n+2, ready.Round(time.Millisecond))
	return nil
}

// startAgain restarts the server on the same data and measures the time to
// ready; it stops the server before returning.
func startAgain(bin, dataDir, database string) (*server, time.Duration, error) {
	s, ready, err := start(bin, dataDir, database)
	if err != nil {
		return nil, 0, err
	}
	s.stop()
	return s, ready, nil
}
