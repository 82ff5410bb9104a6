package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/portrait-dev/portrait/bench/internal/benchproc"
	"github.com/portrait-dev/portrait/postgres"
)

const adminToken = "bench-admin-token"

// instanceCreds are an instance's id and token.
type instanceCreds struct {
	ID    int64  `json:"idInstance"`
	Token string `json:"apiTokenInstance"`
}

// round is one measured round: both servers, in the order given.
type round struct {
	N        int
	Order    string // "portrait→bare" or "bare→portrait"
	Portrait measurement
	Bare     measurement
}

// report is what a run measured.
type report struct {
	Generator string
	// Peer names what portrait is compared with: "bare" (the bare
	// handler), "non-owner" (the same requests through a second node) or
	// "sqlite" (portrait on SQLite with instances of its own).
	Peer           string
	Rounds         []round
	PortraitMedian float64
	BareMedian     float64
	Ratio          float64 // PortraitMedian / BareMedian
	// RoundRatio is the median of the per-round ratios portrait / bare.
	RoundRatio float64
	// Median server CPU time per request of each server; 0 when unknown.
	PortraitCPU, BareCPU time.Duration
	// From portrait's own /metrics over the whole run, after the warm-up
	// of the cache: getAvatar replies by status code, and cache misses.
	Codes       map[string]int64
	CacheMisses int64
	// Bodies checked after the load, and how many differed from the
	// expected reply.
	SampleChecked, SampleBad int
}

// OK reports whether portrait answered every request with 200.
func (r *report) OK() bool {
	if r.SampleBad > 0 || r.CacheMisses > 0 {
		return false
	}
	for code, n := range r.Codes {
		if code != "200" && n > 0 {
			return false
		}
	}
	for _, rd := range r.Rounds {
		if rd.Portrait.Errors > 0 || rd.Portrait.Non2xx > 0 {
			return false
		}
	}
	return true
}

// run builds and starts both servers, sets up portrait, measures and
// reports. The children are stopped and the temporary directory removed
// whatever happens.
func run(ctx context.Context, o options) (rep *report, err error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Instances < 1 || o.Rounds < 1 || o.Duration <= 0 || o.Conns < 1 || o.CreateConc < 1 {
		return nil, errors.New("-instances, -rounds, -duration, -conns and -create-concurrency must be positive")
	}
	// Checked before anything is built or started.
	switch {
	case o.Forwarded && o.VersusSQLite:
		return nil, errors.New("-forwarded and -versus-sqlite each choose the peer to compare with: give one")
	case o.Forwarded && o.Database == "":
		return nil, errors.New("-forwarded needs -database: a cluster runs on PostgreSQL")
	case o.VersusSQLite && o.Database == "":
		return nil, errors.New("-versus-sqlite needs -database: it compares PostgreSQL with SQLite")
	}
	out := o.Out
	logf := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	root, err := benchproc.ModuleRoot(ctx)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "portrait-bench-*")
	if err != nil {
		return nil, err
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = rerr
		}
	}()

	// Build both servers.
	serverPkg, serverEnv := "./cmd/portrait", []string(nil)
	if o.CPUProfile != "" {
		prof, perr := filepath.Abs(o.CPUProfile)
		if perr != nil {
			return nil, perr
		}
		serverPkg, serverEnv = "./bench/profserve", []string{"PORTRAIT_BENCH_CPUPROFILE=" + prof}
	}
	portraitBin, bareBin := filepath.Join(tmp, "portrait"), filepath.Join(tmp, "bare")
	t0 := time.Now()
	if err := benchproc.Build(ctx, root, portraitBin, serverPkg); err != nil {
		return nil, err
	}
	if err := benchproc.Build(ctx, root, bareBin, "./bench/bare"); err != nil {
		return nil, err
	}
	logf("built %s and ./bench/bare in %s", serverPkg, time.Since(t0).Round(time.Millisecond))

	// Start portrait.
	dataDir := filepath.Join(tmp, "data")
	serveArgs := []string{"serve",
		"--listen", "127.0.0.1:0",
		"--data-dir", dataDir,
		"--admin-token", adminToken,
		"--whatsapp-version", "2.3000.1000000000", // never ask WhatsApp from a benchmark
		"--rate-limits", "*=0",
		"--cache-ttl", "1h",
		"--sandbox-latency", "0",
		"--sandbox-start-delay", "0",
		"--log-level", "warn",
	}
	if o.Database != "" {
		serveArgs = append(serveArgs, "--database", o.Database)
	}
	portrait, base, err := benchproc.StartHealthy(ctx, "portrait", tmp, portraitBin, serverEnv, serveArgs...)
	defer func() {
		if serr := portrait.Stop(30 * time.Second); serr != nil && err == nil {
			err = serr
		}
	}()
	if err != nil {
		return nil, err
	}
	logf("portrait listening on %s (data dir %s)", base, dataDir)

	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64},
		Timeout:   2 * time.Minute,
	}
	defer client.CloseIdleConnections()

	// Create the instances.
	t0 = time.Now()
	creds, err := createInstances(ctx, client, base, o.Instances, o.CreateConc)
	if err != nil {
		return nil, err
	}
	took := time.Since(t0)
	logf("created %d WhatsApp sandbox instances through the admin API in %s (%d concurrent requests, %.0f/s)",
		len(creds), took.Round(time.Millisecond), o.CreateConc, float64(len(creds))/took.Seconds())

	// -forwarded: a second node on the same database takes its share of
	// the instances; the load goes to the first node's instances, directly
	// and through the second node, which forwards every request.
	var second *benchproc.Child
	var secondBase string
	if o.Forwarded {
		args := slices.Clone(serveArgs)
		args[slices.Index(args, "--data-dir")+1] = filepath.Join(tmp, "data-2")
		second, secondBase, err = benchproc.StartHealthy(ctx, "portrait-2", tmp, portraitBin, nil, args...)
		defer func() {
			if serr := second.Stop(30 * time.Second); serr != nil && err == nil {
				err = serr
			}
		}()
		if err != nil {
			return nil, err
		}
		all := len(creds)
		if creds, err = ownedByNode(ctx, o.Database, dataDir, creds); err != nil {
			return nil, err
		}
		logf("a second node listens on %s; once the instances settled, the first node owns %d of %d: the load goes to those", secondBase, len(creds), all)
	}

	paths := make([]string, len(creds))
	for i, c := range creds {
		paths[i] = fmt.Sprintf("/waInstance%d/getAvatar/%s", c.ID, c.Token)
	}

	// Warm the cache: one getAvatar per instance.
	t0 = time.Now()
	want, err := warmCache(ctx, client, base, paths, 8)
	if err != nil {
		return nil, err
	}
	logf("warmed the cache with %d getAvatar calls in %s; reply: %s",
		len(paths), time.Since(t0).Round(time.Millisecond), want)
	before, err := scrapeMetrics(ctx, client, base)
	if err != nil {
		return nil, err
	}
	var reply struct {
		URLAvatar string `json:"urlAvatar"`
		Available bool   `json:"available"`
	}
	if err := json.Unmarshal(want, &reply); err != nil || reply.URLAvatar == "" || !reply.Available {
		return nil, fmt.Errorf("getAvatar answered %s, not a picture", want)
	}

	// Start the bare server with the same reply; with -forwarded the
	// second node takes its place, with -versus-sqlite portrait on SQLite
	// with instances of its own (its own paths).
	bare, bareBase := second, secondBase
	peerPaths := paths
	if o.VersusSQLite {
		args := slices.Clone(serveArgs)
		i := slices.Index(args, "--database")
		args = slices.Delete(args, i, i+2)
		args[slices.Index(args, "--data-dir")+1] = filepath.Join(tmp, "data-sqlite")
		bare, bareBase, err = benchproc.StartHealthy(ctx, "portrait-sqlite", tmp, portraitBin, nil, args...)
		defer func() {
			if serr := bare.Stop(30 * time.Second); serr != nil && err == nil {
				err = serr
			}
		}()
		if err != nil {
			return nil, err
		}
		peerCreds, err := createInstances(ctx, client, bareBase, len(creds), o.CreateConc)
		if err != nil {
			return nil, err
		}
		peerPaths = make([]string, len(peerCreds))
		for i, c := range peerCreds {
			peerPaths[i] = fmt.Sprintf("/waInstance%d/getAvatar/%s", c.ID, c.Token)
		}
		got, err := warmCache(ctx, client, bareBase, peerPaths, 8)
		if err != nil {
			return nil, err
		}
		if len(got) != len(want) {
			return nil, fmt.Errorf("portrait on SQLite answered %s, on PostgreSQL %s", got, want)
		}
		logf("portrait on SQLite listens on %s with %d instances of its own, cache warmed; its replies have the same length (%d bytes)", bareBase, len(peerPaths), len(want))
	} else if !o.Forwarded {
		bare, bareBase, err = benchproc.Start(ctx, "bare", tmp, bareBin, nil,
			"-listen", "127.0.0.1:0", "-url", reply.URLAvatar)
		defer func() {
			if serr := bare.Stop(10 * time.Second); serr != nil && err == nil {
				err = serr
			}
		}()
		if err != nil {
			return nil, err
		}
	}
	if !o.VersusSQLite {
		if got, err := post(ctx, client, bareBase+paths[0]); err != nil {
			return nil, fmt.Errorf("bare: %w", err)
		} else if !bytes.Equal(got, want) {
			return nil, fmt.Errorf("bare answered %s, portrait %s", got, want)
		}
		logf("%s listening on %s; both reply with the same %d-byte body", o.peer(), bareBase, len(want))
	}

	gen, err := newGenerator(o.Generator, tmp, paths, o)
	if err != nil {
		return nil, err
	}
	peerGen := gen
	if o.VersusSQLite {
		dir := filepath.Join(tmp, "peer")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if peerGen, err = newGenerator(o.Generator, dir, peerPaths, o); err != nil {
			return nil, err
		}
	}
	gens := map[string]generator{"portrait": gen, "bare": peerGen}
	rep = &report{Generator: gen.Name(), Peer: o.peer()}
	logf("load generator: %s", rep.Generator)
	logf("machine: %d CPUs (GOMAXPROCS of the children: %d), %s; the generator shares them with the servers",
		runtime.NumCPU(), runtime.NumCPU(), runtime.Version())

	targets := map[string]string{"portrait": base, "bare": bareBase}
	pids := map[string]int{"portrait": portrait.Cmd.Process.Pid, "bare": bare.Cmd.Process.Pid}
	load := func(name string, d time.Duration) (measurement, error) {
		cpu0, ok0 := processCPU(pids[name])
		busy0, bok0 := machineBusy()
		m, err := gens[name].Load(ctx, targets[name], d)
		if err != nil {
			return m, fmt.Errorf("loading %s: %w", name, err)
		}
		cpu1, ok1 := processCPU(pids[name])
		busy1, bok1 := machineBusy()
		if ok0 && ok1 {
			m.ServerCPU = cpu1 - cpu0
			if bok0 && bok1 && m.GenCPU > 0 {
				m.OtherCPU = max(0, busy1-busy0-m.ServerCPU-m.GenCPU)
			}
		}
		if err := portrait.Running(); err != nil {
			return m, err
		}
		if err := bare.Running(); err != nil {
			return m, err
		}
		return m, nil
	}
	var waited time.Duration
	pause := func() {
		select {
		case <-ctx.Done():
		case <-time.After(o.Pause):
		}
		if o.QuietWait > 0 {
			w, other, quiet := waitQuiet(ctx, o.QuietCPUs, o.QuietWait, pids["portrait"], pids["bare"], os.Getpid())
			if w > 1500*time.Millisecond {
				waited += w - time.Second // one second is the reading itself
			}
			if !quiet && other >= 0 {
				logf("  (the machine is busy: other processes use %.2f CPUs; loading anyway after waiting %s)", other, w.Round(time.Second))
			}
		}
	}

	if o.Warmup > 0 {
		for _, name := range []string{"portrait", "bare"} {
			pause()
			m, err := load(name, o.Warmup)
			if err != nil {
				return nil, err
			}
			logf("warm-up %-8s %9.0f req/s (%d errors, %d non-2xx), server CPU %s µs/request", name, m.RPS(), m.Errors, m.Non2xx, us(m.CPUPerRequest()))
		}
	}
	if o.CPUProfile != "" {
		if err := portrait.Signal(syscall.SIGUSR1); err != nil {
			return nil, err
		}
		logf("CPU profile of portrait started; it is written to %s when portrait stops", o.CPUProfile)
	}

	logf("")
	logf("%d rounds × %s per server, %d connections, alternating:", o.Rounds, o.Duration, o.Conns)
	for i := 1; i <= o.Rounds; i++ {
		rd := round{N: i, Order: "portrait→" + rep.Peer}
		order := []string{"portrait", "bare"}
		if i%2 == 0 {
			rd.Order, order = rep.Peer+"→portrait", []string{"bare", "portrait"}
		}
		for _, name := range order {
			pause()
			m, err := load(name, o.Duration)
			if err != nil {
				return rep, err
			}
			if name == "portrait" {
				rd.Portrait = m
			} else {
				rd.Bare = m
			}
		}
		rep.Rounds = append(rep.Rounds, rd)
		logf("round %d (%s): portrait %9.0f req/s, %s %9.0f req/s, ratio %5.1f %%; server CPU µs/request: portrait %s, %s %s; generator: %.2f, %.2f CPUs; other processes: %.2f, %.2f CPUs",
			i, rd.Order, rd.Portrait.RPS(), rep.Peer, rd.Bare.RPS(), 100*rd.Portrait.RPS()/rd.Bare.RPS(),
			us(rd.Portrait.CPUPerRequest()), rep.Peer, us(rd.Bare.CPUPerRequest()),
			rd.Portrait.GenCores(), rd.Bare.GenCores(), rd.Portrait.OtherCores(), rd.Bare.OtherCores())
	}

	// Check the replies: portrait's own counters, then a sample of bodies.
	after, err := scrapeMetrics(ctx, client, base)
	if err != nil {
		return rep, err
	}
	rep.Codes = map[string]int64{}
	for k, v := range after {
		if code, ok := strings.CutPrefix(k, "getAvatar/"); ok {
			if d := v - before[k]; d != 0 {
				rep.Codes[code] = d
			}
		}
	}
	rep.CacheMisses = after["cache/miss"] - before["cache/miss"]
	step := max(1, len(paths)/100)
	for i := 0; i < len(paths); i += step {
		rep.SampleChecked++
		got, err := post(ctx, client, base+paths[i])
		if err != nil || !bytes.Equal(got, want) {
			rep.SampleBad++
			if rep.SampleBad == 1 {
				logf("unexpected getAvatar reply for instance %d: %s %v", creds[i].ID, got, err)
			}
		}
	}

	if waited > 0 {
		logf("waited %s in all for other processes to quieten down", waited.Round(time.Second))
	}
	rep.summarize()
	rep.print(out, o)
	return rep, nil
}

// waitQuiet waits up to maxWait, one second at a time, until the processes
// other than pids keep fewer than maxCPUs CPUs busy. It returns how long it
// waited, the last reading (-1 when /proc cannot tell) and whether it was
// below maxCPUs.
func waitQuiet(ctx context.Context, maxCPUs float64, maxWait time.Duration, pids ...int) (time.Duration, float64, bool) {
	ours := func() (time.Duration, bool) {
		var sum time.Duration
		for _, pid := range pids {
			d, ok := processCPU(pid)
			if !ok {
				return 0, false
			}
			sum += d
		}
		return sum, true
	}
	start := time.Now()
	other := -1.0
	for {
		b0, ok1 := machineBusy()
		o0, ok2 := ours()
		t0 := time.Now()
		if !ok1 || !ok2 {
			return time.Since(start), -1, true
		}
		select {
		case <-ctx.Done():
			return time.Since(start), other, false
		case <-time.After(time.Second):
		}
		b1, _ := machineBusy()
		o1, _ := ours()
		other = max(0, (b1-b0-(o1-o0)).Seconds()/time.Since(t0).Seconds())
		if other < maxCPUs {
			return time.Since(start), other, true
		}
		if time.Since(start) >= maxWait {
			return time.Since(start), other, false
		}
	}
}

// createInstances creates n WhatsApp sandbox instances with conc concurrent
// admin requests.
func createInstances(ctx context.Context, client *http.Client, base string, n, conc int) ([]instanceCreds, error) {
	creds := make([]instanceCreds, n)
	jobs := make(chan int)
	errc := make(chan error, conc)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				c, err := createInstance(ctx, client, base)
				if err != nil {
					errc <- err
					return
				}
				creds[i] = c
			}
		}()
	}
	var err error
feed:
	for i := 0; i < n; i++ {
		select {
		case jobs <- i:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return creds, err
}

func createInstance(ctx context.Context, client *http.Client, base string) (instanceCreds, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/admin/instances",
		strings.NewReader(`{"typeInstance":"whatsapp","engine":"sandbox"}`))
	if err != nil {
		return instanceCreds{}, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return instanceCreds{}, fmt.Errorf("creating an instance: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return instanceCreds{}, fmt.Errorf("creating an instance: %s: %s", resp.Status, b)
	}
	var c instanceCreds
	if err := json.Unmarshal(b, &c); err != nil || c.ID == 0 || c.Token == "" {
		return instanceCreds{}, fmt.Errorf("creating an instance: unexpected reply %s", b)
	}
	return c, nil
}

// warmCache calls getAvatar once per path with conc concurrent requests and
// returns the reply, which must be the same for all.
func warmCache(ctx context.Context, client *http.Client, base string, paths []string, conc int) ([]byte, error) {
	var (
		mu    sync.Mutex
		first []byte
		ferr  error
		wg    sync.WaitGroup
	)
	jobs := make(chan string)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				got, err := post(ctx, client, base+p)
				mu.Lock()
				switch {
				case ferr != nil:
				case err != nil:
					ferr = fmt.Errorf("warming the cache: %w", err)
				case first == nil:
					first = got
				case !bytes.Equal(got, first):
					ferr = fmt.Errorf("warming the cache: %s answered %s, another instance %s", strings.SplitN(p, "/", 4)[1], got, first)
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range paths {
		mu.Lock()
		failed := ferr != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			break
		}
		jobs <- p
	}
	close(jobs)
	wg.Wait()
	if ferr == nil && ctx.Err() != nil {
		ferr = ctx.Err()
	}
	return first, ferr
}

// post sends the getAvatar body to url and returns the reply, which must be
// 200.
func post(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(chatBody))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("%s: %s", resp.Status, b)
	}
	return b, nil
}

// scrapeMetrics reads portrait's /metrics: "getAvatar/<code>" → requests
// and "cache/hit", "cache/miss" → avatar cache lookups.
func scrapeMetrics(ctx context.Context, client *http.Client, base string) (map[string]int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading portrait's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading portrait's metrics: %s", resp.Status)
	}
	m := map[string]int64{}
	label := func(line, name string) string {
		_, rest, ok := strings.Cut(line, name+`="`)
		if !ok {
			return ""
		}
		v, _, _ := strings.Cut(rest, `"`)
		return v
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "portrait_http_requests_total{") && label(line, "method") == "getAvatar":
			m["getAvatar/"+label(line, "code")] += int64(v)
		case strings.HasPrefix(line, "portrait_avatar_cache_requests_total{"):
			m["cache/"+label(line, "result")] += int64(v)
		}
	}
	return m, sc.Err()
}

// summarize computes the medians and their ratio.
func (r *report) summarize() {
	var p, b []float64
	for _, rd := range r.Rounds {
		p = append(p, rd.Portrait.RPS())
		b = append(b, rd.Bare.RPS())
	}
	r.PortraitMedian, r.BareMedian = median(p), median(b)
	if r.BareMedian > 0 {
		r.Ratio = r.PortraitMedian / r.BareMedian
	}
	var ratios, pc, bc []float64
	for _, rd := range r.Rounds {
		if rd.Bare.RPS() > 0 {
			ratios = append(ratios, rd.Portrait.RPS()/rd.Bare.RPS())
		}
		if c := rd.Portrait.CPUPerRequest(); c > 0 {
			pc = append(pc, float64(c))
		}
		if c := rd.Bare.CPUPerRequest(); c > 0 {
			bc = append(bc, float64(c))
		}
	}
	r.RoundRatio = median(ratios)
	r.PortraitCPU, r.BareCPU = time.Duration(median(pc)), time.Duration(median(bc))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// us formats d in microseconds, "–" for 0.
func us(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 1, 64)
}

func ms(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

// print writes the results as Markdown tables.
func (r *report) print(w io.Writer, o options) {
	fmt.Fprintf(w, "\n### Results (%d instances, %d connections, %d rounds × %s per server)\n\n", o.Instances, o.Conns, o.Rounds, o.Duration)
	fmt.Fprintf(w, "| round | order | portrait req/s | p50 ms | p99 ms | errors | CPU µs/req | other CPUs | %[1]s req/s | p50 ms | p99 ms | errors | CPU µs/req | other CPUs | portrait / %[1]s |\n", r.Peer)
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, rd := range r.Rounds {
		p, b := rd.Portrait, rd.Bare
		fmt.Fprintf(w, "| %d | %s | %.0f | %s | %s | %d | %s | %.2f | %.0f | %s | %s | %d | %s | %.2f | %.1f %% |\n",
			rd.N, rd.Order, p.RPS(), ms(p.P50), ms(p.P99), p.Errors+p.Non2xx, us(p.CPUPerRequest()), p.OtherCores(),
			b.RPS(), ms(b.P50), ms(b.P99), b.Errors+b.Non2xx, us(b.CPUPerRequest()), b.OtherCores(), 100*p.RPS()/b.RPS())
	}
	verdict := "meets"
	if r.Ratio < 0.5 {
		verdict = "is BELOW"
	}
	fmt.Fprintf(w, "| **median** | | **%.0f** | | | | %s | | **%.0f** | | | | %s | | **%.1f %%** |\n\n",
		r.PortraitMedian, us(r.PortraitCPU), r.BareMedian, us(r.BareCPU), 100*r.Ratio)
	if r.Peer == "bare" {
		fmt.Fprintf(w, "Ratio of medians: portrait / bare = %.0f / %.0f = %.1f %%, which %s the target of ≥ 50 %%.\n",
			r.PortraitMedian, r.BareMedian, 100*r.Ratio, verdict)
	} else if r.Peer == "sqlite" {
		fmt.Fprintf(w, "Ratio of medians: portrait on PostgreSQL / on SQLite = %.0f / %.0f = %.1f %%.\n",
			r.PortraitMedian, r.BareMedian, 100*r.Ratio)
	} else {
		fmt.Fprintf(w, "Ratio of medians: through the non-owner / at the owner = %.0f / %.0f = %.1f %%.\n",
			r.BareMedian, r.PortraitMedian, 100/r.Ratio)
	}
	fmt.Fprintf(w, "Median of the per-round ratios: %.1f %%.\n", 100*r.RoundRatio)
	if r.PortraitCPU > 0 && r.BareCPU > 0 {
		fmt.Fprintf(w, "Server CPU per request (median): portrait %s µs, %s %s µs (the process loaded): portrait costs %.2f× its CPU.\n",
			us(r.PortraitCPU), r.Peer, us(r.BareCPU), float64(r.PortraitCPU)/float64(r.BareCPU))
	}
	var others []float64
	for _, rd := range r.Rounds {
		others = append(others, rd.Portrait.OtherCores(), rd.Bare.OtherCores())
	}
	if mo := median(others); mo >= 0.25 {
		fmt.Fprintf(w, "WARNING: other processes kept a median %.2f CPUs busy during the loads: the machine was not quiet, the request rates are disturbed.\n", mo)
	} else {
		fmt.Fprintf(w, "Other processes kept a median %.2f CPUs busy during the loads.\n", mo)
	}
	fmt.Fprintln(w, "(CPU µs/req: the server process's user+system CPU time per request; other CPUs: how many CPUs other processes on the machine kept busy on average during the load, from /proc/stat.)")
	fmt.Fprintln(w)

	codes := make([]string, 0, len(r.Codes))
	for c := range r.Codes {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var parts []string
	var total int64
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%s: %d", c, r.Codes[c]))
		total += r.Codes[c]
	}
	fmt.Fprintf(w, "portrait's own counters since the cache was warmed (load warm-up, rounds, body check): %d getAvatar replies (%s), %d cache misses.\n",
		total, strings.Join(parts, ", "), r.CacheMisses)
	fmt.Fprintf(w, "Reply bodies checked after the load: %d, of which %d differed from the expected one.\n", r.SampleChecked, r.SampleBad)
	if r.OK() {
		fmt.Fprintln(w, "portrait answered every request with 200 from the cache.")
	} else {
		fmt.Fprintln(w, "portrait did NOT answer every request with 200 from the cache (see above).")
	}
}

// peer names what portrait is compared with in this run.
func (o options) peer() string {
	switch {
	case o.Forwarded:
		return "non-owner"
	case o.VersusSQLite:
		return "sqlite"
	}
	return "bare"
}

// ownedByNode waits until every instance has an owner and the owners
// have not changed for a while, and returns the instances the node with
// data directory dir owns.
func ownedByNode(ctx context.Context, dsn, dir string, creds []instanceCreds) ([]instanceCreds, error) {
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var last []instanceCreds
	stable := 0
	deadline := time.Now().Add(time.Minute)
	for stable < 4 {
		if time.Now().After(deadline) {
			return nil, errors.New("the instances' owners did not settle within a minute")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		leases, err := db.Leases(ctx)
		if err != nil {
			return nil, err
		}
		now, err := db.Now(ctx)
		if err != nil {
			return nil, err
		}
		owner := map[int64]string{}
		for _, l := range leases {
			if l.Expires.After(now) {
				owner[int64(l.Instance)] = l.Node
			}
		}
		var mine []instanceCreds
		all := true
		for _, c := range creds {
			n, ok := owner[c.ID]
			all = all && ok
			if strings.HasSuffix(n, ":"+abs) {
				mine = append(mine, c)
			}
		}
		if all && len(mine) > 0 && slices.Equal(mine, last) {
			stable++
		} else {
			stable = 0
		}
		last = mine
	}
	return last, nil
}
