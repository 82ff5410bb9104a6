package cluster

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portrait-dev/portrait"
)

// BenchmarkForward measures one forwarded call: a node that does not own
// the instance sends a small JSON request to the owner and copies the
// reply back (both on loopback HTTP; the owner's handler does nothing).
func BenchmarkForward(b *testing.B) {
	db, ids := newStore(b, 1)
	reply := []byte(`{"urlAvatar":"http://127.0.0.1/avatars/0123456789abcdef.jpg","available":true}`)
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(reply)
	}))
	defer owner.Close()
	o := &owner2
	if err := db.Heartbeat(b.Context(), portrait.Node{ID: "node-1", Addr: strings.TrimPrefix(owner.URL, "http://")}); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Acquire(b.Context(), ids[0], "node-1", time.Hour); err != nil {
		b.Fatal(err)
	}
	n := New(db, o, Options{ID: "node-2", Addr: "127.0.0.1:2", LeaseTTL: time.Hour, Secret: []byte("s")})
	if _, err := n.read(b.Context()); err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if done, err := n.Forward(w, r, ids[0], false); !done || err != nil {
			http.Error(w, "not forwarded", 500)
		}
	}))
	defer front.Close()
	client := front.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	body := `{"chatId":"11001230001@c.us"}`
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(front.URL+"/waInstance1101000000/getAvatar/x", "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
