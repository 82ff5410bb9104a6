package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestQuick runs the benchmark's smoke run (-quick) end to end: it builds
// and starts portrait and the bare server, creates 50 instances and loads
// both servers. It takes a while, so it runs only with PORTRAIT_BENCH=1.
func TestQuick(t *testing.T) {
	if os.Getenv("PORTRAIT_BENCH") != "1" {
		t.Skip("the getAvatar benchmark's smoke run is slow: set PORTRAIT_BENCH=1 to run it")
	}
	o := defaultOptions()
	o.quick()
	o.QuietWait = 0 // a smoke run: do not wait for a quiet machine
	var out strings.Builder
	o.Out = &out
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := run(ctx, o)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rounds) != o.Rounds {
		t.Fatalf("%d rounds, want %d", len(rep.Rounds), o.Rounds)
	}
	if !rep.OK() {
		t.Fatalf("portrait answered errors under load: codes %v, %d cache misses, %d of %d bodies wrong",
			rep.Codes, rep.CacheMisses, rep.SampleBad, rep.SampleChecked)
	}
	if rep.PortraitMedian <= 0 || rep.BareMedian <= 0 {
		t.Fatalf("medians %.0f and %.0f req/s, want both > 0", rep.PortraitMedian, rep.BareMedian)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestWrkScript(t *testing.T) {
	s := wrkScript([]string{"/waInstance1/getAvatar/a", "/waInstance2/getAvatar/b"})
	for _, want := range []string{`"/waInstance1/getAvatar/a"`, `"/waInstance2/getAvatar/b"`, `wrk.body = "{\"chatId\":\"11001230001@c.us\"}"`, "BENCHRESULT"} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %s:\n%s", want, s)
		}
	}
}
