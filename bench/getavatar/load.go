package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// chatBody is the getAvatar body every request sends: the demo world's
// Alice, who has a JPEG picture in every new sandbox instance.
const chatBody = `{"chatId":"11001230001@c.us"}`

// measurement is one load of one server.
type measurement struct {
	Requests int64         // completed responses
	Elapsed  time.Duration // wall time of the load
	Errors   int64         // connection errors and timeouts
	Non2xx   int64         // replies with status ≥ 400 (wrk) or ≠ 200 (go)
	P50, P99 time.Duration // latency percentiles; 0 when unknown
	// ServerCPU is the CPU time (user+system) the server process used
	// during the load; 0 when unknown.
	ServerCPU time.Duration
	// GenCPU is the CPU time the load generator used; 0 when unknown.
	GenCPU time.Duration
	// OtherCPU is the CPU time the rest of the machine used during the
	// load (all CPUs busy minus the server and the generator); 0 when
	// unknown.
	OtherCPU time.Duration
}

// GenCores is the average number of CPUs the load generator kept busy.
func (m measurement) GenCores() float64 {
	if m.Elapsed <= 0 {
		return 0
	}
	return m.GenCPU.Seconds() / m.Elapsed.Seconds()
}

// OtherCores is the average number of CPUs other processes kept busy
// during the load.
func (m measurement) OtherCores() float64 {
	if m.Elapsed <= 0 {
		return 0
	}
	return m.OtherCPU.Seconds() / m.Elapsed.Seconds()
}

// CPUPerRequest is the server's CPU time per completed request; 0 when
// unknown.
func (m measurement) CPUPerRequest() time.Duration {
	if m.ServerCPU <= 0 || m.Requests == 0 {
		return 0
	}
	return m.ServerCPU / time.Duration(m.Requests)
}

// RPS is completed requests per second.
func (m measurement) RPS() float64 {
	if m.Elapsed <= 0 {
		return 0
	}
	return float64(m.Requests) / m.Elapsed.Seconds()
}

// generator loads a server at base (scheme://host:port) for d over the
// prepared paths.
type generator interface {
	Name() string
	Load(ctx context.Context, base string, d time.Duration) (measurement, error)
}

// newGenerator picks the load generator: wrk when asked or, for "auto",
// when it is on PATH; else the Go one.
func newGenerator(kind, dir string, paths []string, o options) (generator, error) {
	wrk, lookErr := exec.LookPath("wrk")
	switch kind {
	case "wrk":
		if lookErr != nil {
			return nil, fmt.Errorf("-gen wrk: %w", lookErr)
		}
	case "auto":
		if lookErr != nil {
			return newGoGenerator(paths, o.Conns), nil
		}
	case "go":
		return newGoGenerator(paths, o.Conns), nil
	default:
		return nil, fmt.Errorf("-gen %q: want auto, wrk or go", kind)
	}
	script := filepath.Join(dir, "getavatar.lua")
	if err := os.WriteFile(script, []byte(wrkScript(paths)), 0o600); err != nil {
		return nil, err
	}
	threads := min(max(o.Threads, 1), o.Conns)
	return &wrkGenerator{bin: wrk, script: script, threads: threads, conns: o.Conns}, nil
}

// wrkGenerator runs wrk with a Lua script that POSTs the body to the paths in
// turn, each thread starting at a different one.
type wrkGenerator struct {
	bin, script    string
	threads, conns int
}

func (g *wrkGenerator) Name() string {
	v := "wrk"
	if out, _ := exec.Command(g.bin, "-v").CombinedOutput(); len(out) > 0 {
		v = strings.Fields(string(out))[0] + " " + strings.Fields(string(out))[1]
	}
	return fmt.Sprintf("%s (-t%d -c%d, Lua script, pre-formatted requests)", v, g.threads, g.conns)
}

func (g *wrkGenerator) Load(ctx context.Context, base string, d time.Duration) (measurement, error) {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	cmd := exec.CommandContext(ctx, g.bin,
		"-t", strconv.Itoa(g.threads), "-c", strconv.Itoa(g.conns),
		"-d", strconv.Itoa(secs)+"s", "--timeout", "5s", "-s", g.script, base)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return measurement{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	i := bytes.Index(out, []byte("BENCHRESULT "))
	if i < 0 {
		return measurement{}, fmt.Errorf("wrk printed no result:\n%s", out)
	}
	line := out[i+len("BENCHRESULT "):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	var r struct {
		Requests   int64   `json:"requests"`
		DurationUS int64   `json:"duration_us"`
		Connect    int64   `json:"err_connect"`
		Read       int64   `json:"err_read"`
		Write      int64   `json:"err_write"`
		Status     int64   `json:"err_status"`
		Timeout    int64   `json:"err_timeout"`
		P50        float64 `json:"p50_us"`
		P99        float64 `json:"p99_us"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return measurement{}, fmt.Errorf("wrk result %q: %w", line, err)
	}
	var genCPU time.Duration
	if ps := cmd.ProcessState; ps != nil {
		genCPU = ps.UserTime() + ps.SystemTime()
	}
	return measurement{
		GenCPU:   genCPU,
		Requests: r.Requests,
		Elapsed:  time.Duration(r.DurationUS) * time.Microsecond,
		Errors:   r.Connect + r.Read + r.Write + r.Timeout,
		Non2xx:   r.Status,
		P50:      time.Duration(r.P50 * float64(time.Microsecond)),
		P99:      time.Duration(r.P99 * float64(time.Microsecond)),
	}, nil
}

// wrkScript returns the Lua script: every thread pre-formats one request per
// path in init() and sends them round-robin, starting at its own offset.
// done() prints the summary as one JSON line after "BENCHRESULT ".
func wrkScript(paths []string) string {
	var b strings.Builder
	b.WriteString("-- generated by bench/getavatar\n")
	b.WriteString("wrk.method = \"POST\"\n")
	fmt.Fprintf(&b, "wrk.body = %q\n", chatBody)
	b.WriteString("wrk.headers[\"Content-Type\"] = \"application/json\"\n")
	b.WriteString("local paths = {\n")
	for _, p := range paths {
		fmt.Fprintf(&b, "  %q,\n", p)
	}
	b.WriteString("}\n")
	b.WriteString(`local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
end
local reqs = {}
local i = 0
function init(args)
  for j, p in ipairs(paths) do
    reqs[j] = wrk.format(nil, p)
  end
  i = (tid * 397) % #reqs
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCHRESULT {"requests":%.0f,"duration_us":%.0f,"err_connect":%.0f,"err_read":%.0f,"err_write":%.0f,"err_status":%.0f,"err_timeout":%.0f,"p50_us":%.0f,"p99_us":%.0f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`)
	return b.String()
}

// goGenerator is the fallback load generator: conns goroutines, each
// sending one request at a time over a shared keep-alive transport.
type goGenerator struct {
	paths []string
	conns int
}

func newGoGenerator(paths []string, conns int) *goGenerator {
	return &goGenerator{paths: paths, conns: conns}
}

func (g *goGenerator) Name() string {
	return fmt.Sprintf("Go net/http client (%d goroutines, keep-alive, MaxIdleConnsPerHost=%d)", g.conns, g.conns)
}

func (g *goGenerator) Load(ctx context.Context, base string, d time.Duration) (measurement, error) {
	urls := make([]*url.URL, len(g.paths))
	for i, p := range g.paths {
		u, err := url.Parse(base + p)
		if err != nil {
			return measurement{}, err
		}
		urls[i] = u
	}
	tr := &http.Transport{
		MaxIdleConns:        g.conns,
		MaxIdleConnsPerHost: g.conns,
		MaxConnsPerHost:     g.conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	header := http.Header{"Content-Type": {"application/json"}}
	body := []byte(chatBody)

	lctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		wg             sync.WaitGroup
		errs, non200   atomic.Int64
		mu             sync.Mutex
		all            []time.Duration
		requestsBefore atomic.Int64
	)
	self0, selfOK := processCPU(os.Getpid())
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < g.conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			next := w * len(urls) / g.conns
			for lctx.Err() == nil {
				u := urls[next]
				next = (next + 1) % len(urls)
				req := &http.Request{
					Method:        http.MethodPost,
					URL:           u,
					Host:          u.Host,
					Header:        header,
					Body:          io.NopCloser(bytes.NewReader(body)),
					ContentLength: int64(len(body)),
					Proto:         "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				}
				t0 := time.Now()
				resp, err := client.Do(req.WithContext(lctx))
				if err != nil {
					if lctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				t1 := time.Now()
				if err != nil {
					if lctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				if t1.After(deadline) {
					break
				}
				if resp.StatusCode != http.StatusOK {
					non200.Add(1)
				}
				lat = append(lat, t1.Sub(t0))
			}
			requestsBefore.Add(int64(len(lat)))
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return measurement{}, ctx.Err()
	}
	var genCPU time.Duration
	if self1, ok := processCPU(os.Getpid()); ok && selfOK {
		genCPU = self1 - self0
	}
	slices.Sort(all)
	return measurement{
		GenCPU:   genCPU,
		Requests: requestsBefore.Load(),
		Elapsed:  d,
		Errors:   errs.Load(),
		Non2xx:   non200.Load(),
		P50:      percentile(all, 50),
		P99:      percentile(all, 99),
	}, nil
}

// percentile returns the p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}
