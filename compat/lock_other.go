//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package compat

// lockDir is a no-op where flock is not available: installs are serialised
// within the process only.
func lockDir(string) (unlock func(), err error) { return func() {}, nil }
