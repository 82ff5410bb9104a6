// Command libvips compares portrait's picture pipeline with libvips on the
// same pictures in the same process and the same run.
//
//	sudo ./install.sh                 # Debian: libvips-dev (cgo headers and libraries)
//	go run -tags nodynamic .          # 5 rounds of every format
//	go run -tags nodynamic . -rounds 1 -formats jpeg-12MP,png-12MP
//	go run -tags nodynamic . -decoders builtin -formats webp-12MP,heic-12MP,avif-12MP
//	go run -tags nodynamic . -profile heic-12MP -cpuprofile /tmp/heic.pprof
//
// It lives in a module of its own so that portrait's module stays pure Go:
// this one needs cgo for govips. -decoders chooses portrait's HEIC, AVIF
// and WebP decoders as its --decoders setting does (auto: the system's
// libheif and libwebp when they load); the nodynamic tag keeps the
// built-in AVIF and HEIC decoders on their WebAssembly builds, as in
// portrait's own build.
//
// For each format it makes one input from the same deterministic
// "photographic" picture (smooth gradients, texture and noise in luma and
// chroma): baseline JPEGs with image/jpeg (quality 90, 4:2:0), the PNG
// with image/png, and the progressive JPEG, WebP, HEIC and AVIF with
// libvips' savers (quality 90). Then, in rounds that alternate which goes
// first, it runs
//
//   - portrait: picture.Process, which makes a 640×640 and a 96×96 JPEG
//     (quality 85) of the centred square;
//   - libvips: vips_thumbnail_buffer to 640×640 with a centre crop, saved
//     as a quality 85 JPEG without metadata, then thumbnailed to 96×96 and
//     saved the same way: the same two outputs.
//
// libvips runs with one worker thread (vips_concurrency_set(1)) and its
// operation cache off, as portrait decodes each picture on one goroutine;
// both run on the same OS and Go runtime.
//
// Reported per format: the median wall time of each, their ratio, the peak
// resident memory above the baseline (VmHWM after resetting it through
// /proc/self/clear_refs, minus VmRSS before; the Go heap is collected and
// returned and malloc_trim run before each call; measured for each side in
// a child process of its own, see isolate.go), and the quality: PSNR of
// each 640×640 output against a reference made from the original pixels
// (exact area-average of the centred square down to 640×640).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/davidbyttow/govips/v2/vips"
	"github.com/portrait-dev/portrait/picture"
)

func main() {
	rounds := flag.Int("rounds", 5, "measured rounds per format")
	formats := flag.String("formats", "", "comma-separated formats to run (default all): "+strings.Join(allFormats(), ","))
	profile := flag.String("profile", "", "instead of comparing, run portrait 10 times on this format under a CPU profile")
	cpuprofile := flag.String("cpuprofile", "", "file for the CPU profile of -profile")
	save := flag.String("save", "", "also write each input to this directory (as <format>.<ext>)")
	child := flag.String("child", "", "internal: measure only this side's memory (portrait or libvips) on -input")
	input := flag.String("input", "", "internal: the picture for -child")
	decoders := flag.String("decoders", picture.DecodersAuto, "portrait's HEIC, AVIF and WebP decoders, as its --decoders setting: auto, system or builtin")
	flag.Parse()
	decoder, err := picture.UseDecoders(*decoders)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Printf("portrait's decoders: %s\n", decoder)
	saveDir = *save
	want := allFormats()
	if *formats != "" {
		want = strings.Split(*formats, ",")
	}
	if *profile != "" {
		want = []string{*profile}
	}
	for _, f := range want {
		if !slices.Contains(allFormats(), f) {
			fmt.Fprintf(os.Stderr, "unknown format %q; the formats are %s\n", f, strings.Join(allFormats(), ","))
			os.Exit(2)
		}
	}

	vips.LoggingSettings(nil, vips.LogLevelError)
	vips.Startup(&vips.Config{ConcurrencyLevel: 1, MaxCacheSize: 0, MaxCacheMem: 0, MaxCacheFiles: 0})
	defer vips.Shutdown()

	if *child != "" {
		if err := runChild(*child, *input, *rounds); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	decodersChoice = *decoders

	if *profile != "" {
		if err := runProfile(*profile, *cpuprofile); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if err := compare(want, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func runProfile(format, file string) error {
	if file == "" {
		return fmt.Errorf("-profile needs -cpuprofile FILE")
	}
	in, err := makeInput(format)
	if err != nil {
		return err
	}
	if _, err := runPortrait(in.data); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	start := time.Now()
	for i := 0; i < 10; i++ {
		if _, err := runPortrait(in.data); err != nil {
			return err
		}
	}
	pprof.StopCPUProfile()
	fmt.Printf("%s: 10 runs in %v; profile in %s\n", format, time.Since(start).Round(time.Millisecond), file)
	return nil
}
