// Command profserve is `portrait` (the same app.Run as cmd/portrait) with a
// CPU profile, for profiling the server under the getAvatar benchmark:
//
//	go run ./bench/getavatar -cpuprofile /tmp/portrait.pprof
//
// builds it in place of cmd/portrait. When PORTRAIT_BENCH_CPUPROFILE names a
// file, the profile starts on SIGUSR1 (at once on systems without it), so
// that setting up instances and warming the cache stay out of it, and is
// written when the server stops.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"syscall"

	"github.com/portrait-dev/portrait/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var (
		mu      sync.Mutex
		profile *os.File
	)
	if path := os.Getenv("PORTRAIT_BENCH_CPUPROFILE"); path != "" {
		go func() {
			select {
			case <-startSignal():
			case <-ctx.Done():
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ctx.Err() != nil {
				return
			}
			f, err := os.Create(path)
			if err == nil {
				err = pprof.StartCPUProfile(f)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "profserve: CPU profile:", err)
				return
			}
			profile = f
		}()
	}

	err := app.Run(ctx, app.Env{Args: os.Args[1:], Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})

	stop()
	mu.Lock()
	if profile != nil {
		pprof.StopCPUProfile()
		if cerr := profile.Close(); cerr != nil {
			fmt.Fprintln(os.Stderr, "profserve: CPU profile:", cerr)
		}
	}
	mu.Unlock()
	if err != nil {
		if !errors.Is(err, app.ErrUsage) {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}
}
