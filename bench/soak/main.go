// Command soak runs portrait (built from this module, as a child process on
// loopback) under mixed traffic for a bounded time: getAvatar and
// getAvatarAsync from well-behaved clients, clients that send their bodies
// a byte at a time, wrong-token floods, and small uploads that decode huge
// (a 16-bit 7700×7700 PNG, a 100-megapixel one). It reports the server's
// memory, goroutines and open file descriptors (from its /metrics) after
// warm-up and at the end, and the replies by status.
//
//	go run ./bench/soak                 # 10 minutes
//	go run ./bench/soak -duration 1m    # a short run
//
// Every request goes to 127.0.0.1; the run stops by itself.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	duration := flag.Duration("duration", 10*time.Minute, "how long the mixed traffic runs")
	workers := flag.Int("workers", 16, "well-behaved getAvatar clients")
	slow := flag.Int("slow", 200, "clients that send their bodies a byte every 2 s")
	flag.Parse()
	if err := run(*duration, *workers, *slow); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type sample struct {
	rss, heap, goroutines, fds float64
}

func run(duration time.Duration, workers, slow int) error {
	ctx, cancel := context.WithTimeout(context.Background(), duration+2*time.Minute)
	defer cancel()
	tmp, err := os.MkdirTemp("", "portrait-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "portrait")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/portrait")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(tmp, "data"),
		"--whatsapp-version", "2.3000.1000000000", "--sandbox-latency", "5ms", "--sandbox-start-delay", "0",
		"--rate-limits", "*=0", "--cache-ttl", "2s", "--log-level", "error", "--auth-failures", "30")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	base, id, token, err := readWelcome(stdout)
	if err != nil {
		return err
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	fmt.Printf("soak: portrait at %s, instance %d, %s of traffic\n", base, id, duration)

	var statuses sync.Map // int → *atomic.Int64
	count := func(code int) {
		v, _ := statuses.LoadOrStore(code, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	call := func(ctx context.Context, method, url, ct string, body []byte) {
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		if err != nil {
			return
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				count(-1)
			}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		count(resp.StatusCode)
	}
	api := func(method string) string { return fmt.Sprintf("%s/waInstance%d/%s/%s", base, id, method, token) }

	// Warm up, then the first sample.
	loadCtx, stopLoad := context.WithTimeout(ctx, duration)
	defer stopLoad()
	var wg sync.WaitGroup
	chats := []string{"11001230001@c.us", "11001230002@c.us", "11001230003@c.us", "11001230004@c.us", "11001230005@c.us", "120363000000000001@g.us"}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; loadCtx.Err() == nil; i++ {
				call(loadCtx, "POST", api("getAvatar"), "application/json", []byte(`{"chatId":"`+chats[i%len(chats)]+`"}`))
				if i%20 == 0 {
					call(loadCtx, "POST", api("getAvatarAsync"), "application/json", []byte(`{"chatId":"`+chats[i%len(chats)]+`"}`))
					call(loadCtx, "GET", api("receiveNotification")+"?receiveTimeout=5", "", nil)
				}
			}
		}()
	}
	time.Sleep(10 * time.Second)
	start, err := scrape(base)
	if err != nil {
		return err
	}
	began := time.Now()

	// Slow clients: a request line, headers and a body a byte at a time.
	host := strings.TrimPrefix(base, "http://")
	for i := 0; i < slow; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			targets := []string{fmt.Sprintf("/waInstance%d/getAvatar/%s", id, token), "/console/login", fmt.Sprintf("/waInstance%d/getAvatar/%s", id, strings.Repeat("0", 50))}
			for n := i; loadCtx.Err() == nil; n++ {
				trickle(loadCtx, host, targets[n%len(targets)])
			}
		}()
	}
	// Wrong tokens, as fast as the server answers.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; loadCtx.Err() == nil; n++ {
			call(loadCtx, "GET", fmt.Sprintf("%s/waInstance%d/getStateInstance/%050d", base, id+int64(n%7), n), "", nil)
		}
	}()
	// Uploads that decode huge: under the pixel limit but 16-bit, and over it.
	bombs := [][]byte{pngOf(image.NewNRGBA64(image.Rect(0, 0, 7700, 7700))), pngOf(image.NewGray(image.Rect(0, 0, 10000, 10000)))}
	for b := 0; b < 4; b++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := b; loadCtx.Err() == nil; n++ {
				ct, body := upload(bombs[n%len(bombs)])
				call(loadCtx, "POST", api("setProfilePicture"), ct, body)
				time.Sleep(500 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	took := time.Since(began)
	time.Sleep(5 * time.Second) // let the server settle: slow connections close, queues drain
	end, err := scrape(base)
	if err != nil {
		return err
	}

	fmt.Printf("soak: %s of mixed traffic (%d workers, %d slow clients, 4 bomb uploaders, 1 wrong-token flood)\n", took.Round(time.Second), workers, slow)
	fmt.Printf("%-22s %14s %14s\n", "", "after warm-up", "at the end")
	fmt.Printf("%-22s %11.1f MiB %11.1f MiB\n", "resident memory", start.rss/(1<<20), end.rss/(1<<20))
	fmt.Printf("%-22s %11.1f MiB %11.1f MiB\n", "heap in use", start.heap/(1<<20), end.heap/(1<<20))
	fmt.Printf("%-22s %14.0f %14.0f\n", "goroutines", start.goroutines, end.goroutines)
	fmt.Printf("%-22s %14.0f %14.0f\n", "open file descriptors", start.fds, end.fds)
	var codes []int
	statuses.Range(func(k, _ any) bool { codes = append(codes, k.(int)); return true })
	sort.Ints(codes)
	fmt.Print("replies:")
	for _, c := range codes {
		v, _ := statuses.Load(c)
		name := strconv.Itoa(c)
		if c == -1 {
			name = "transport-error"
		}
		fmt.Printf(" %s=%d", name, v.(*atomic.Int64).Load())
	}
	fmt.Println()
	return nil
}

// trickle sends one request whose body arrives a byte every 2 s, until the
// server ends the connection.
func trickle(ctx context.Context, host, path string) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		time.Sleep(time.Second)
		return
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{", path, host)
	closed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, c); close(closed) }()
	for {
		select {
		case <-closed:
			return
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
		}
	}
}

func pngOf(img image.Image) []byte {
	var b bytes.Buffer
	_ = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&b, img)
	return b.Bytes()
}

func upload(data []byte) (string, []byte) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	fw, _ := w.CreateFormFile("file", "bomb.png")
	_, _ = fw.Write(data)
	_ = w.Close()
	return w.FormDataContentType(), b.Bytes()
}

var metricLine = regexp.MustCompile(`^(process_resident_memory_bytes|go_memstats_heap_inuse_bytes|go_goroutines|process_open_fds) ([0-9.e+]+)$`)

// scrape reads the server's own measurements from /metrics.
func scrape(base string) (sample, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return sample{}, err
	}
	defer resp.Body.Close()
	var s sample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := metricLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[1] {
		case "process_resident_memory_bytes":
			s.rss = v
		case "go_memstats_heap_inuse_bytes":
			s.heap = v
		case "go_goroutines":
			s.goroutines = v
		case "process_open_fds":
			s.fds = v
		}
	}
	return s, sc.Err()
}

// readWelcome reads the server's first-start banner: its URL and the
// WhatsApp instance's credentials.
func readWelcome(r io.Reader) (base string, id int64, token string, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "idInstance:") && id == 0:
			id, _ = strconv.ParseInt(strings.TrimSpace(strings.SplitN(line, ":", 2)[1]), 10, 64)
		case strings.Contains(line, "apiTokenInstance:") && token == "":
			token = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
		case strings.Contains(line, "listening on "):
			base = strings.TrimSpace(line[strings.Index(line, "listening on ")+len("listening on "):])
			if id == 0 || token == "" {
				return "", 0, "", errors.New("no instance in the server's banner")
			}
			return base, id, token, nil
		}
	}
	return "", 0, "", errors.New("the server stopped before it listened")
}
