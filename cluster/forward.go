package cluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portrait-dev/portrait"
)

// The headers of a node-to-node call. HeaderSecret proves the caller is a
// node of the cluster; the others mean something only with it.
const (
	// HeaderSecret carries the call's time and its MAC under the cluster
	// secret (see Trusted).
	HeaderSecret = "X-Portrait-Cluster"
	// HeaderForwardedBy names the node that forwarded the request.
	HeaderForwardedBy = "X-Portrait-Forwarded-By"
	// HeaderAdmin says the forwarding node authenticated the request as
	// the admin's (by the admin token or a console sign-in), so the owner
	// need not authenticate it again.
	HeaderAdmin = "X-Portrait-Admin"
	// headerNotOwner marks a 421 reply of a node that does not own the
	// instance (any more): the forwarder looks up the owner again.
	headerNotOwner = "X-Portrait-Not-Owner"
)

// Errors of Forward, which the HTTP layer words for its clients.
var (
	// ErrNoOwner: no node of the cluster took the instance within
	// ForwardWait (503).
	ErrNoOwner = errors.New("no node of the cluster serves the instance right now")
	// ErrOwnerFailed: the owning node did not answer (502).
	ErrOwnerFailed = errors.New("the node that serves the instance did not answer")
	// ErrTooLarge: the body is over the bound of forwarded bodies (413).
	ErrTooLarge = errors.New("the request body is too large to forward")
	// ErrMisdirected: a request forwarded by another node reached a node
	// that does not own the instance (421; the forwarder tries again).
	ErrMisdirected = errors.New("this node does not serve the instance")
	// ErrBadSecret: a request claims to come from a node of the cluster
	// but does not prove it (403).
	ErrBadSecret = errors.New("node-to-node call without the cluster secret")
)

// MarkNotOwner sets the header that tells a forwarding node that its 421
// reply comes from a node that does not own the instance.
func MarkNotOwner(h http.Header) { h.Set(headerNotOwner, "1") }

// forwarder sends requests to the nodes that own their instances.
type forwarder struct {
	n      *Node
	client *http.Client
	key    []byte // derived from the cluster secret, for the calls' MACs
}

func newForwarder(n *Node) *forwarder {
	mac := hmac.New(sha256.New, n.opts.Secret)
	mac.Write([]byte("portrait node-to-node call"))
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.Proxy = nil // nodes reach each other directly
	// A node that was paused keeps its connections open but answers
	// nothing: a forwarded call gives up on it after this long.
	tr.ResponseHeaderTimeout = n.opts.ForwardTimeout
	return &forwarder{n: n, client: &http.Client{Transport: tr}, key: mac.Sum(nil)}
}

// callWindow is how far a node-to-node call's time may be from the
// receiver's clock: a recorded call can be replayed, unchanged, only this
// long.
const callWindow = 30 * time.Second

// sign returns HeaderSecret's value for a call: its time and a MAC, under
// the cluster's key, of the method, the path and query, the time, the
// forwarding node, the admin flag and the body.
func (f *forwarder) sign(method, uri string, at time.Time, by string, admin bool, body []byte) string {
	ts := strconv.FormatInt(at.Unix(), 10)
	return ts + "." + hex.EncodeToString(f.mac(method, uri, ts, by, admin, body))
}

// authorize sets the headers of a node-to-node call: its MAC, this node's
// id, and the admin flag.
func (f *forwarder) authorize(req *http.Request, admin bool, body []byte) {
	req.Header.Set(HeaderSecret, f.sign(req.Method, req.URL.RequestURI(), time.Now(), f.n.opts.ID, admin, body))
	req.Header.Set(HeaderForwardedBy, f.n.opts.ID)
	req.Header.Del(HeaderAdmin)
	if admin {
		req.Header.Set(HeaderAdmin, "1")
	}
}

func (f *forwarder) mac(method, uri, ts, by string, admin bool, body []byte) []byte {
	sum := sha256.Sum256(body)
	m := hmac.New(sha256.New, f.key)
	for _, part := range []string{method, uri, ts, by, strconv.FormatBool(admin), hex.EncodeToString(sum[:])} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// Trusted reports whether r was forwarded by a node of this cluster — its
// MAC under the cluster's key checked in constant time, over the request
// as it came (method, path and query, body, admin flag) and a time within
// 30 s of this node's clock — and if so whether that node authenticated it
// as the admin's. It reads the body (up to MaxBody) and puts it back.
func (n *Node) Trusted(r *http.Request) (forwarded, admin bool) {
	got := r.Header.Get(HeaderSecret)
	ts, sig, ok := strings.Cut(got, ".")
	if !ok {
		return false, false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false, false
	}
	if d := time.Since(time.Unix(sec, 0)); d > callWindow || d < -callWindow {
		return false, false
	}
	want, err := hex.DecodeString(sig)
	if err != nil {
		return false, false
	}
	body, err := readBody(r, n.opts.MaxBody)
	if err != nil {
		return false, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	admin = r.Header.Get(HeaderAdmin) == "1"
	mac := n.fwd.mac(r.Method, r.URL.RequestURI(), ts, r.Header.Get(HeaderForwardedBy), admin, body)
	if !hmac.Equal(mac, want) {
		return false, false
	}
	return true, admin
}

// Forward serves r by the node that owns id and returns true, unless this
// node owns id: then it returns false and r is to be served here, its
// body intact. admin says the request was authenticated as the admin's.
//
// A request forwarded by another node is never forwarded again: when this
// node does not own id (any more), Forward fails with ErrMisdirected and
// the caller answers 421 with MarkNotOwner, so that the other node looks
// the owner up again. While an instance has no reachable owner (a node
// died and its lease has not lapsed yet, or a node is handing it over),
// Forward waits for one, up to ForwardWait. On error nothing has been
// written to w.
func (n *Node) Forward(w http.ResponseWriter, r *http.Request, id portrait.InstanceID, admin bool) (bool, error) {
	if n.Owns(id) {
		return false, nil
	}
	if r.Header.Get(HeaderSecret) != "" || r.Header.Get(HeaderForwardedBy) != "" {
		if fwd, _ := n.Trusted(r); !fwd {
			return false, ErrBadSecret
		}
		return false, ErrMisdirected
	}
	if rid := w.Header().Get("X-Request-Id"); rid != "" {
		r.Header.Set("X-Request-Id", rid) // one id in both nodes' logs
	}
	body, err := readBody(r, n.opts.MaxBody)
	if err != nil {
		return false, err
	}
	deadline := time.Now().Add(n.opts.ForwardWait)
	fresh := false // whether the owner was just read from the store
	var lastErr error
	for {
		addr, self, ok := n.ownerOf(r.Context(), id, fresh)
		if self {
			r.Body = io.NopCloser(bytes.NewReader(body))
			return false, nil
		}
		if ok {
			resp, err := n.attempt(r, id, addr, body, admin)
			switch {
			case err == nil && !(resp.StatusCode == http.StatusMisdirectedRequest && resp.Header.Get(headerNotOwner) != ""):
				copyReply(w, resp)
				return true, nil
			case err == nil:
				resp.Body.Close()
				lastErr = fmt.Errorf("node at %s no longer serves the instance", addr)
			case r.Context().Err() != nil:
				return false, fmt.Errorf("%w: %w", ErrOwnerFailed, r.Context().Err())
			default:
				// The node died, is stopping, or lost the instance while
				// it was asked: tried again until another node owns the
				// instance. (A request whose node died while serving it
				// may so be served twice.)
				lastErr = err
			}
		}
		if !time.Now().Before(deadline) {
			if lastErr != nil {
				n.log.Warn("no node served the instance in time", "idInstance", int64(id), "wait", n.opts.ForwardWait, "err", lastErr)
			}
			return false, ErrNoOwner
		}
		select {
		case <-r.Context().Done():
			return false, fmt.Errorf("%w: %w", ErrNoOwner, r.Context().Err())
		case <-time.After(forwardRetry):
		}
		fresh = true
	}
}

// attempt sends r to the node at addr, and gives up on it when the
// instance passes to another node before the reply begins (the node was
// paused or cut off, and its lease lapsed: it will not act on the request
// once it wakes, but it will not answer it either).
func (n *Node) attempt(r *http.Request, id portrait.InstanceID, addr string, body []byte, admin bool) (*http.Response, error) {
	ctx, cancel := context.WithCancel(r.Context())
	answered := make(chan struct{})
	go func() {
		t := time.NewTicker(ownerCheck)
		defer t.Stop()
		for {
			select {
			case <-answered:
				return
			case <-t.C:
			}
			if now, self, ok := n.ownerOf(ctx, id, true); self || ok && now != addr {
				cancel()
				return
			}
		}
	}()
	resp, err := n.fwd.send(r.WithContext(ctx), addr, body, admin)
	close(answered)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

// cancelOnClose ends a forwarded call's context when its reply is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// ownerCheck is how often a forwarded call that waits for its reply
// checks that its instance still has the node it was sent to.
const ownerCheck = 500 * time.Millisecond

// forwardRetry is the pause between looks for an instance's owner.
const forwardRetry = 100 * time.Millisecond

// ownerOf returns the address of id's owner; self when it is this node;
// ok false when no live node owns it. fresh reads the owners from the
// store first (at most every forwardRetry).
func (n *Node) ownerOf(ctx context.Context, id portrait.InstanceID, fresh bool) (addr string, self, ok bool) {
	if n.Owns(id) {
		return "", true, true
	}
	if fresh {
		n.refreshMu.Lock()
		n.mu.RLock()
		recent := time.Since(n.readAt) < forwardRetry
		n.mu.RUnlock()
		if !recent {
			if _, err := n.read(ctx); err != nil && ctx.Err() == nil {
				n.log.Warn("reading the instances' owners", "err", err)
			}
		}
		n.refreshMu.Unlock()
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	node, owned := n.owners[id]
	if !owned || node == n.opts.ID {
		return "", false, false // ours only once a round has opened it
	}
	addr, live := n.addrs[node]
	return addr, false, live
}

// readBody reads r's body, up to limit.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, ErrTooLarge
	}
	return b, nil
}

// hopHeaders are not passed on by a proxy (RFC 9110, 7.6.1).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// send makes r's call on the node at addr.
func (f *forwarder) send(r *http.Request, addr string, body []byte, admin bool) (*http.Response, error) {
	u := *r.URL
	u.Scheme, u.Host = "http", addr
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = r.Header.Clone()
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	req.Host = r.Host
	f.authorize(req, admin, body)
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		req.Header.Set("X-Forwarded-For", host)
	}
	return f.client.Do(req)
}

// copyReply writes resp to w.
func copyReply(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	for _, h := range hopHeaders {
		resp.Header.Del(h)
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// gatherTimeout bounds how long Gather waits for the other nodes.
const gatherTimeout = 3 * time.Second

// Gather asks every other live node for path (an admin GET, made as r's
// forwarded call) and returns the bodies of their 200 replies. A node that
// does not answer in time is left out.
func (n *Node) Gather(r *http.Request, path string) [][]byte {
	n.mu.RLock()
	var addrs []string
	for id, addr := range n.addrs {
		if id != n.opts.ID {
			addrs = append(addrs, addr)
		}
	}
	n.mu.RUnlock()
	ctx, cancel := context.WithTimeout(r.Context(), gatherTimeout)
	defer cancel()
	var mu sync.Mutex
	var out [][]byte
	var wg sync.WaitGroup
	for _, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
			if err != nil {
				return
			}
			n.fwd.authorize(req, true, nil)
			if rid := r.Header.Get("X-Request-Id"); rid != "" {
				req.Header.Set("X-Request-Id", rid)
			}
			resp, err := n.fwd.client.Do(req)
			if err != nil {
				n.log.Debug("asking another node", "node", addr, "path", path, "err", err)
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			if err != nil || resp.StatusCode != http.StatusOK {
				return
			}
			mu.Lock()
			out = append(out, b)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}
