//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// startSignal delivers SIGUSR1.
func startSignal() <-chan os.Signal {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1)
	return c
}
