package main

/*
#include <malloc.h>
*/
import "C"

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/davidbyttow/govips/v2/vips"
	"github.com/portrait-dev/portrait/picture"
)

// decodersChoice is -decoders, passed on to the memory-measuring children.
var decodersChoice string

// saveDir is where -save writes the inputs ("" for nowhere).
var saveDir string

// ext names the file extension of an input.
func ext(b []byte) string {
	f, err := picture.Sniff(b)
	if err != nil {
		return "bin"
	}
	return string(f)
}

// runPortrait normalises data with portrait's pipeline and returns the
// 640×640 output.
func runPortrait(data []byte) ([]byte, error) {
	res, err := picture.Process(data, picture.Limits{})
	if err != nil {
		return nil, err
	}
	return res.Full, nil
}

// runVips makes the same two outputs with libvips and returns the
// 640×640 one.
func runVips(data []byte) ([]byte, error) {
	ref, err := vips.LoadThumbnailFromBuffer(data, picture.FullSize, picture.FullSize, vips.InterestingCentre, vips.SizeBoth, nil)
	if err != nil {
		return nil, err
	}
	defer ref.Close()
	p := vips.NewJpegExportParams()
	p.Quality, p.Interlace, p.StripMetadata = picture.Quality, false, true
	full, _, err := ref.ExportJpeg(p)
	if err != nil {
		return nil, err
	}
	if err := ref.Thumbnail(picture.PreviewSize, picture.PreviewSize, vips.InterestingCentre); err != nil {
		return nil, err
	}
	if _, _, err := ref.ExportJpeg(p); err != nil {
		return nil, err
	}
	return full, nil
}

// procStatus reads a "kB" field of /proc/self/status, in bytes.
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n << 10
		}
	}
	return 0
}

// sample is one measured call.
type sample struct {
	dur  time.Duration
	peak int64 // resident bytes above the baseline at the peak
	out  []byte
}

// measure runs f once after returning free memory to the OS, and records
// its time and the peak of the resident set above where it started.
func measure(f func([]byte) ([]byte, error), data []byte) (sample, error) {
	runtime.GC()
	debug.FreeOSMemory()
	C.malloc_trim(0)
	base := procStatus("VmRSS")
	// Writing 5 resets the peak resident set size (VmHWM) to the current.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return sample{}, fmt.Errorf("resetting the peak RSS: %w", err)
	}
	start := time.Now()
	out, err := f(data)
	d := time.Since(start)
	if err != nil {
		return sample{}, err
	}
	return sample{dur: d, peak: procStatus("VmHWM") - base, out: out}, nil
}

func median[T int64 | time.Duration | float64](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// result is what one format gave over the rounds.
type result struct {
	name     string
	inputMiB float64
	pt, vt   []time.Duration
	pm, vm   []int64
	pq, vq   float64
}

func compare(formats []string, rounds int) error {
	fmt.Printf("go %s, GOMAXPROCS %d, libvips %d.%d.%d (concurrency 1, cache off), %d rounds\n",
		runtime.Version(), runtime.GOMAXPROCS(0), vips.MajorVersion, vips.MinorVersion, vips.MicroVersion, rounds)
	var results []*result
	for _, name := range formats {
		t0 := time.Now()
		in, err := makeInput(name)
		if err != nil {
			return err
		}
		if saveDir != "" {
			if err := os.WriteFile(filepath.Join(saveDir, name+"."+ext(in.data)), in.data, 0o644); err != nil {
				return err
			}
		}
		ref := reference(in.src, picture.FullSize)
		in.src = nil
		r := &result{name: name, inputMiB: float64(len(in.data)) / (1 << 20)}
		fmt.Printf("%s: %.1f MiB input made in %v\n", name, r.inputMiB, time.Since(t0).Round(time.Millisecond))
		// Warm-up (also compiles the WebAssembly decoders) and quality.
		pw, err := measure(runPortrait, in.data)
		if err != nil {
			return fmt.Errorf("portrait %s: %w", name, err)
		}
		vw, err := measure(runVips, in.data)
		if err != nil {
			return fmt.Errorf("libvips %s: %w", name, err)
		}
		if r.pq, err = quality(pw.out, ref); err != nil {
			return err
		}
		if r.vq, err = quality(vw.out, ref); err != nil {
			return err
		}
		for i := 0; i < rounds; i++ {
			order := []string{"portrait", "libvips"}
			if i%2 == 1 {
				order = []string{"libvips", "portrait"}
			}
			for _, who := range order {
				f := runPortrait
				if who == "libvips" {
					f = runVips
				}
				s, err := measure(f, in.data)
				if err != nil {
					return fmt.Errorf("%s %s: %w", who, name, err)
				}
				if who == "portrait" {
					r.pt = append(r.pt, s.dur)
				} else {
					r.vt = append(r.vt, s.dur)
				}
			}
			fmt.Printf("  round %d: portrait %v, libvips %v\n", i+1, r.pt[i].Round(time.Millisecond), r.vt[i].Round(time.Millisecond))
		}
		// Memory: each side in a process of its own (see isolate.go).
		if r.pm, err = childPeaks("portrait", in.data, rounds, decodersChoice); err != nil {
			return err
		}
		if r.vm, err = childPeaks("libvips", in.data, rounds, decodersChoice); err != nil {
			return err
		}
		fmt.Printf("  peak memory, each side in its own process: portrait %s MiB, libvips %s MiB\n", mibs(r.pm), mibs(r.vm))
		results = append(results, r)
	}
	printTable(results)
	return nil
}

// mibs formats byte counts as MiB, comma-separated.
func mibs(v []int64) string {
	var parts []string
	for _, b := range v {
		parts = append(parts, fmt.Sprintf("%.0f", float64(b)/(1<<20)))
	}
	return strings.Join(parts, ", ")
}

// quality decodes a 640×640 output and compares it with the reference.
func quality(out []byte, ref *image.RGBA) (float64, error) {
	m, err := jpeg.Decode(bytes.NewReader(out))
	if err != nil {
		return 0, err
	}
	if m.Bounds() != ref.Bounds() {
		return 0, fmt.Errorf("output %v, reference %v", m.Bounds(), ref.Bounds())
	}
	return psnr(m, ref), nil
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 0, 64) }

func printTable(rs []*result) {
	fmt.Println()
	fmt.Println("| input | MiB | portrait ms (rounds) | median | libvips ms (rounds) | median | time ratio | portrait peak MiB | libvips peak MiB | PSNR portrait dB | PSNR libvips dB |")
	fmt.Println("|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		list := func(v []time.Duration) string {
			s := make([]string, len(v))
			for i, d := range v {
				s[i] = ms(d)
			}
			return strings.Join(s, ", ")
		}
		pt, vt := median(r.pt), median(r.vt)
		fmt.Printf("| %s | %.1f | %s | %s | %s | %s | %.2f× | %.0f | %.0f | %.1f | %.1f |\n",
			r.name, r.inputMiB, list(r.pt), ms(pt), list(r.vt), ms(vt), float64(pt)/float64(vt),
			float64(median(r.pm))/(1<<20), float64(median(r.vm))/(1<<20), r.pq, r.vq)
	}
}
