package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Peak memory is measured in a process of its own for each side: in one
// process, whichever runs second reuses memory the C allocator kept from
// the other's call (arenas, raised mmap thresholds), and came out lower
// by tens of MiB for the same library doing the same work. A child runs
// one side only: one unmeasured call, then rounds measured calls.

// childPeaks runs this program as a child that measures who ("portrait"
// or "libvips") on data, and returns its peaks in bytes.
func childPeaks(who string, data []byte, rounds int, decoders string) ([]int64, error) {
	dir, err := os.MkdirTemp("", "portrait-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "input")
	if err := os.WriteFile(in, data, 0o600); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-child", who, "-input", in, "-rounds", fmt.Sprint(rounds), "-decoders", decoders)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("child %s: %w: %s", who, err, errb.String())
	}
	var peaks []int64
	// The child's last line is the JSON list (the first says which decoders).
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if err := json.Unmarshal(lines[len(lines)-1], &peaks); err != nil || len(peaks) != rounds {
		return nil, fmt.Errorf("child %s: %q: %v", who, out.String(), err)
	}
	return peaks, nil
}

// runChild is the child's side of childPeaks.
func runChild(who, input string, rounds int) error {
	data, err := os.ReadFile(input)
	if err != nil {
		return err
	}
	f := runPortrait
	if who == "libvips" {
		f = runVips
	}
	if _, err := measure(f, data); err != nil {
		return err
	}
	peaks := make([]int64, 0, rounds)
	for i := 0; i < rounds; i++ {
		s, err := measure(f, data)
		if err != nil {
			return err
		}
		peaks = append(peaks, s.peak)
	}
	return json.NewEncoder(os.Stdout).Encode(peaks)
}
