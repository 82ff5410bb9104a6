//go:build !unix

package main

import "os"

// startSignal fires at once where there is no SIGUSR1.
func startSignal() <-chan os.Signal {
	c := make(chan os.Signal, 1)
	c <- os.Interrupt
	return c
}
