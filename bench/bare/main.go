// Command bare is the reference ceiling of the getAvatar benchmark
// (bench/getavatar): the least a Go net/http server can do for a getAvatar
// request. It reads and decodes the same JSON body portrait's getAvatar
// takes and answers the same JSON reply, of the same size, for any path.
//
//	bare -listen 127.0.0.1:0 -url http://127.0.0.1:8780/avatars/<key>.jpg
//
// It prints "bare listening on http://<addr>" once it accepts connections
// and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// reply has the shape of portrait's getAvatar reply.
type reply struct {
	URLAvatar string `json:"urlAvatar"`
	Available bool   `json:"available"`
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	url := flag.String("url", "http://127.0.0.1:8780/avatars/0000000000000000000000000000000000000000.jpg",
		"urlAvatar to answer (pass portrait's, so that both replies have the same size)")
	flag.Parse()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	srv := &http.Server{
		Handler:           handler(*url),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("bare listening on http://%s\n", ln.Addr())

	select {
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
}

// handler decodes {"chatId": …} and answers {"urlAvatar": url, "available": true}.
func handler(url string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, `{"message":"Method Not Allowed"}`, http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			http.Error(w, `{"message":"could not read the request body"}`, http.StatusBadRequest)
			return
		}
		var req struct {
			ChatID string `json:"chatId"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.ChatID == "" {
			http.Error(w, `{"message":"'chatId' is required"}`, http.StatusBadRequest)
			return
		}
		b, err := json.Marshal(reply{URLAvatar: url, Available: true})
		if err != nil {
			http.Error(w, `{"message":"internal error"}`, http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
	}
}
