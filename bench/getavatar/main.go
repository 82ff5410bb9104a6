// Command getavatar measures portrait's getAvatar throughput with a warm
// cache, spread over many instances, against a bare net/http JSON handler
// (bench/bare) measured in the same run on the same machine.
//
//	go run ./bench/getavatar           # 1,000 instances, 5 rounds × 10 s
//	go run ./bench/getavatar -quick    # smoke run: 50 instances, 2 rounds × 2 s
//
// It builds ./cmd/portrait and ./bench/bare, starts both as child processes
// on 127.0.0.1 (portrait on a temporary data directory, with the rate limits
// lifted so that they do not cap the load), creates the instances through the
// admin API, warms the avatar cache with one getAvatar per instance, then
// loads the two servers alternately (A B B A …) with the same load generator
// and the same settings: wrk with a Lua script when it is installed, else a
// Go load generator. Every request goes to the next of the instances' paths
// (the bare server gets the same paths). It prints each round, the median
// requests/s of each server and their ratio, then stops both children and
// removes the temporary directory.
//
// The machine may be shared: before each load it waits (up to -quiet-wait)
// for other processes to go quiet, and it reports the server's CPU time per
// request and how busy the rest of the machine was during each load.
//
// -forwarded (with -database) starts a second portrait node on the same
// database and compares, in place of the bare handler, the same requests
// sent through it (it answers from what it learned from the owner, and
// forwards what it does not know) with those sent to the owner: the cost
// of a cluster's non-owning node.
//
// -versus-sqlite (with -database) compares portrait on PostgreSQL with
// portrait on SQLite, each with instances of its own, in the same run.
//
// -cpuprofile FILE builds ./bench/profserve (portrait with a CPU profile)
// in place of ./cmd/portrait and writes the profile of the measured rounds
// to FILE, for `go tool pprof`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the benchmark's settings.
type options struct {
	Instances  int           // instances to create and spread the load over
	Rounds     int           // measured rounds per server
	Duration   time.Duration // length of one measured round
	Warmup     time.Duration // unmeasured load on each server before the rounds
	Pause      time.Duration // idle time between two loads
	Conns      int           // concurrent keep-alive connections
	Threads    int           // wrk threads (the Go generator uses Conns goroutines)
	CreateConc int           // concurrent admin requests while creating instances
	Generator  string        // auto, wrk or go
	CPUProfile string        // when set, profile portrait during the rounds
	Database   string        // when set, portrait's --database (a postgres:// URL)
	// Forwarded compares a second node that forwards every request with
	// the owning node, in place of the bare handler (needs Database).
	Forwarded bool
	// VersusSQLite compares portrait on Database with portrait on SQLite,
	// in place of the bare handler.
	VersusSQLite bool
	// QuietCPUs and QuietWait: before each load, wait up to QuietWait for
	// the other processes on the machine to use less than QuietCPUs CPUs
	// (over one second); QuietWait 0 does not wait.
	QuietCPUs float64
	QuietWait time.Duration
	Out       io.Writer
}

func defaultOptions() options {
	return options{
		Instances:  1000,
		Rounds:     5,
		Duration:   10 * time.Second,
		Warmup:     3 * time.Second,
		Pause:      time.Second,
		Conns:      64,
		Threads:    2,
		CreateConc: 4,
		Generator:  "auto",
		QuietCPUs:  0.25,
		QuietWait:  30 * time.Second,
		Out:        os.Stdout,
	}
}

// quick turns o into the smoke run's settings.
func (o *options) quick() {
	o.Instances = 50
	o.Rounds = 2
	o.Duration = 2 * time.Second
	o.Warmup = time.Second
	o.Pause = 200 * time.Millisecond
	o.QuietWait = 5 * time.Second
}

func main() {
	o := defaultOptions()
	quick := flag.Bool("quick", false, "smoke run: 50 instances, 2 rounds × 2 s, 1 s warm-up (explicit flags still win)")
	flag.IntVar(&o.Instances, "instances", o.Instances, "instances to create and spread getAvatar over")
	flag.IntVar(&o.Rounds, "rounds", o.Rounds, "measured rounds per server (alternating)")
	flag.DurationVar(&o.Duration, "duration", o.Duration, "length of one measured round")
	flag.DurationVar(&o.Warmup, "warmup", o.Warmup, "unmeasured load on each server before the rounds")
	flag.DurationVar(&o.Pause, "pause", o.Pause, "idle time between two loads")
	flag.IntVar(&o.Conns, "conns", o.Conns, "concurrent keep-alive connections")
	flag.IntVar(&o.Threads, "threads", o.Threads, "wrk threads")
	flag.IntVar(&o.CreateConc, "create-concurrency", o.CreateConc, "concurrent admin requests while creating instances")
	flag.StringVar(&o.Generator, "gen", o.Generator, "load generator: auto (wrk if installed, else go), wrk or go")
	flag.Float64Var(&o.QuietCPUs, "quiet-cpus", o.QuietCPUs, "before each load, wait for other processes to use fewer CPUs than this (see -quiet-wait)")
	flag.DurationVar(&o.QuietWait, "quiet-wait", o.QuietWait, "longest wait for a quiet machine before each load; 0 does not wait")
	flag.StringVar(&o.CPUProfile, "cpuprofile", "", "profile portrait (built from ./bench/profserve) during the rounds and write the CPU profile here")
	flag.StringVar(&o.Database, "database", "", "run portrait on this PostgreSQL database (a postgres:// URL of a fresh, empty database) instead of SQLite")
	flag.BoolVar(&o.Forwarded, "forwarded", false, "with -database: start a second portrait node on the same database and compare getAvatar through it (a node that does not own the instances) with getAvatar at their owner, in place of the bare handler")
	flag.BoolVar(&o.VersusSQLite, "versus-sqlite", false, "with -database: compare portrait on that PostgreSQL database with portrait on SQLite (instances and cache of its own) in the same run, in place of the bare handler")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "getavatar: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		q := o
		q.quick()
		keep := func(name string, dst *time.Duration, v time.Duration) {
			if !set[name] {
				*dst = v
			}
		}
		if !set["instances"] {
			o.Instances = q.Instances
		}
		if !set["rounds"] {
			o.Rounds = q.Rounds
		}
		keep("duration", &o.Duration, q.Duration)
		keep("warmup", &o.Warmup, q.Warmup)
		keep("pause", &o.Pause, q.Pause)
		keep("quiet-wait", &o.QuietWait, q.QuietWait)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "getavatar:", err)
		os.Exit(1)
	}
	if !rep.OK() {
		fmt.Fprintln(os.Stderr, "getavatar: portrait answered errors under load (see above)")
		os.Exit(1)
	}
}
