// Command failover measures how long the instances of a portrait node that
// is killed stay unserved in a cluster.
//
//	go run ./bench/failover -database 'postgres://…/fresh-db'
//
// It builds ./cmd/portrait, starts three nodes on the given PostgreSQL
// database (a fresh, empty one) with their default settings (a 10 s
// lease), creates the instances through the admin API and waits until
// their owners settle. Then, -kills times, it kills one node with SIGKILL
// (each node in turn), asks one of the others for the state of every
// instance the dead node owned until all of them answer "authorized", and
// reports how long that took; it restarts the killed node and waits for
// the owners to settle before the next kill. It prints every kill and the
// median.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/portrait-dev/portrait"
	"github.com/portrait-dev/portrait/bench/internal/benchproc"
	"github.com/portrait-dev/portrait/postgres"
)

const adminToken = "failover-bench-admin-token"

type creds struct {
	ID    int64  `json:"idInstance"`
	Token string `json:"apiTokenInstance"`
}

// node is one portrait process of the cluster.
type node struct {
	name, dir string
	proc      *benchproc.Child
	url       string
}

func main() {
	dsn := flag.String("database", "", "a postgres:// URL of a fresh, empty database (required)")
	instances := flag.Int("instances", 100, "instances to create")
	kills := flag.Int("kills", 5, "nodes to kill, one after the other")
	flag.Parse()
	if *dsn == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: failover -database postgres://… [-instances N] [-kills N]")
		os.Exit(2)
	}
	if *instances < 3 || *kills < 1 {
		// Every node must own an instance to be killed for, and a run
		// without a kill measures nothing.
		fmt.Fprintln(os.Stderr, "failover: -instances must be at least 3 and -kills at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dsn, *instances, *kills, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "failover:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dsn string, n, kills int, out io.Writer) (err error) {
	logf := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	root, err := benchproc.ModuleRoot(ctx)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "portrait-failover-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "portrait")
	if err := benchproc.Build(ctx, root, bin, "./cmd/portrait"); err != nil {
		return err
	}
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()

	nodes := []*node{{name: "a"}, {name: "b"}, {name: "c"}}
	start := func(nd *node) error {
		args := []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", nd.dir, "--database", dsn,
			"--admin-token", adminToken, "--whatsapp-version", "2.3000.1000000000", "--rate-limits", "*=0",
			"--sandbox-latency", "0", "--sandbox-start-delay", "0", "--log-level", "warn"}
		var err error
		nd.proc, nd.url, err = benchproc.StartHealthy(ctx, "portrait-"+nd.name, tmp, bin, nil, args...)
		return err
	}
	// Stops whatever started, also when a later node fails to start.
	defer func() {
		for _, nd := range nodes {
			if nd.proc != nil {
				_ = nd.proc.Stop(30 * time.Second)
			}
		}
	}()
	for _, nd := range nodes {
		if nd.dir, err = filepath.Abs(filepath.Join(tmp, "node-"+nd.name)); err != nil {
			return err
		}
		if err := start(nd); err != nil {
			return err
		}
	}
	all, err := createInstances(ctx, nodes[0].url, n)
	if err != nil {
		return err
	}
	logf("three nodes, %d instances; lease: the default", len(all))

	var times []time.Duration
	for k := 0; k < kills; k++ {
		victim, probe := nodes[k%3], nodes[(k+1)%3]
		owned, err := settle(ctx, db, all, nodes)
		if err != nil {
			return err
		}
		theirs := owned[victim.name]
		if err := victim.proc.Signal(syscall.SIGKILL); err != nil {
			return err
		}
		killed := time.Now()
		if err := waitAuthorized(ctx, probe.url, theirs, time.Minute); err != nil {
			return fmt.Errorf("after killing node %s: %w", victim.name, err)
		}
		took := time.Since(killed)
		times = append(times, took)
		logf("kill %d: node %s (SIGKILL) owned %d instances; all answered through node %s after %s",
			k+1, victim.name, len(theirs), probe.name, took.Round(time.Millisecond))
		_ = victim.proc.Stop(time.Second) // reaped
		if err := start(victim); err != nil {
			return err
		}
	}
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	logf("failover time, median of %d kills: %s (min %s, max %s)", len(times),
		sorted[len(sorted)/2].Round(time.Millisecond), sorted[0].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond))
	return nil
}

// createInstances creates n WhatsApp sandbox instances through the admin
// API of the node at url.
func createInstances(ctx context.Context, url string, n int) ([]creds, error) {
	var out []creds
	for len(out) < n {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/admin/instances", strings.NewReader(`{"typeInstance":"whatsapp"}`))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		var c creds
		err = json.NewDecoder(resp.Body).Decode(&c)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusCreated {
			return nil, fmt.Errorf("create: %s, %v", resp.Status, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// settle waits until every instance has an owner among the running nodes
// and the owners have not changed for two seconds; it returns each node's
// instances.
func settle(ctx context.Context, db *postgres.DB, all []creds, nodes []*node) (map[string][]creds, error) {
	var last map[string][]creds
	stable := time.Time{}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		owned, complete, err := owners(ctx, db, all, nodes)
		if err != nil {
			return nil, err
		}
		switch {
		case !complete || !same(owned, last):
			stable = time.Time{}
		case stable.IsZero():
			stable = time.Now()
		case time.Since(stable) >= 2*time.Second:
			return owned, nil
		}
		last = owned
		if time.Now().After(deadline) {
			return nil, errors.New("the instances' owners did not settle within two minutes")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func owners(ctx context.Context, db *postgres.DB, all []creds, nodes []*node) (map[string][]creds, bool, error) {
	leases, err := db.Leases(ctx)
	if err != nil {
		return nil, false, err
	}
	now, err := db.Now(ctx)
	if err != nil {
		return nil, false, err
	}
	byID := map[portrait.InstanceID]string{}
	for _, l := range leases {
		if l.Expires.After(now) {
			byID[l.Instance] = l.Node
		}
	}
	owned := map[string][]creds{}
	for _, c := range all {
		holder, ok := byID[portrait.InstanceID(c.ID)]
		if !ok {
			return owned, false, nil
		}
		for _, nd := range nodes {
			if strings.HasSuffix(holder, ":"+nd.dir) {
				owned[nd.name] = append(owned[nd.name], c)
			}
		}
	}
	for _, nd := range nodes {
		if len(owned[nd.name]) == 0 {
			return owned, false, nil // a node without a share has not joined yet
		}
	}
	return owned, true, nil
}

func same(a, b map[string][]creds) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// waitAuthorized asks the node at url for the state of every instance
// until each answers "authorized", eight at a time.
func waitAuthorized(ctx context.Context, url string, insts []creds, within time.Duration) error {
	deadline := time.Now().Add(within)
	pending := slices.Clone(insts)
	client := &http.Client{Timeout: 30 * time.Second}
	for len(pending) > 0 {
		var mu sync.Mutex
		var still []creds
		sem := make(chan struct{}, 8)
		var wg sync.WaitGroup
		for _, c := range pending {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if !authorized(ctx, client, url, c) {
					mu.Lock()
					still = append(still, c)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		pending = still
		if len(pending) > 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("%d instances still unserved after %s", len(pending), within)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

func authorized(ctx context.Context, client *http.Client, url string, c creds) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/waInstance%d/getStateInstance/%s", url, c.ID, c.Token), nil)
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st struct {
		StateInstance string `json:"stateInstance"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&st) == nil && st.StateInstance == "authorized"
}
