package maxweb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/portrait-dev/portrait"
)

// pending is a request waiting for its reply.
type pending struct {
	opcode int
	ch     chan frame // capacity 1
}

// errConnClosed: the connection to MAX ended while a request waited.
var errConnClosed = errors.New("the connection to MAX ended")

// conn is one WebSocket connection to MAX: requests with sequence numbers
// matched to their replies, pushes handed to a callback, and a keep-alive.
// It does not reconnect: the session makes a new one.
type conn struct {
	ws      *websocket.Conn
	log     *slog.Logger
	timeout time.Duration   // bound on each request
	onPush  func(frame)     // called on the read goroutine
	seq     atomic.Int64    // the last seq sent
	ctx     context.Context // ends when the connection does
	cancel  context.CancelFunc

	mu      sync.Mutex
	pending map[int64]pending
	err     error         // why the connection ended
	done    chan struct{} // closed when it ended
	wg      sync.WaitGroup
}

// dial connects to MAX and starts the read loop and the keep-alive. It
// does not say hello: see session.loginOn.
func (e *Engine) dial(ctx context.Context, log *slog.Logger, onPush func(frame)) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, e.opts.RequestTimeout)
	defer cancel()
	h := http.Header{}
	h.Set("Origin", e.opts.Origin)
	h.Set("User-Agent", e.opts.UserAgent)
	ws, resp, err := websocket.Dial(dctx, e.opts.URL, &websocket.DialOptions{HTTPClient: e.http, HTTPHeader: h})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("connecting to MAX: %w: %w", portrait.ErrUpstreamTimeout, err)
		}
		return nil, fmt.Errorf("connecting to MAX: %w", err)
	}
	ws.SetReadLimit(e.opts.MaxFrameBytes)
	c := &conn{
		ws:      ws,
		log:     log,
		timeout: e.opts.RequestTimeout,
		onPush:  onPush,
		pending: map[int64]pending{},
		done:    make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(2)
	go c.readLoop()
	go c.keepAlive(e.opts.PingInterval)
	return c, nil
}

// readLoop reads frames until the connection ends: replies go to their
// waiting request, pushes to onPush.
func (c *conn) readLoop() {
	defer c.wg.Done()
	for {
		typ, b, err := c.ws.Read(c.ctx)
		if err != nil {
			c.fail(fmt.Errorf("reading from MAX: %w", err))
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		f, err := parseFrame(b)
		if err != nil {
			// Never the frame itself: it may hold tokens.
			c.log.Debug("max: ignoring a frame MAX sent", "err", err, "bytes", len(b))
			continue
		}
		// A reply carries the seq and opcode of a waiting request. Anything
		// else is a push: the public clients disagree on the cmd of pushes
		// (0 in vkmax's notes and szonov/max, 1 in other notes), so it is not
		// relied on.
		c.mu.Lock()
		p, ok := c.pending[f.Seq]
		ok = ok && p.opcode == f.Opcode && f.Cmd != cmdRequest
		if ok {
			delete(c.pending, f.Seq)
		}
		c.mu.Unlock()
		switch {
		case ok:
			p.ch <- f
		case f.Cmd != cmdError && c.onPush != nil:
			c.onPush(f)
		}
	}
}

// keepAlive sends opcode 1 every interval; a ping that gets no answer ends
// the connection.
func (c *conn) keepAlive(every time.Duration) {
	defer c.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if _, err := c.call(c.ctx, opPing, map[string]any{"interactive": false}); err != nil {
			var me *Error
			if errors.As(err, &me) {
				continue // MAX answered: the connection is alive
			}
			c.fail(fmt.Errorf("keep-alive: %w", err))
			return
		}
	}
}

// call sends a request and waits for its reply, at most the request
// time-out. A reply of kind error is an *Error; no reply in time is
// portrait.ErrUpstreamTimeout.
func (c *conn) call(ctx context.Context, opcode int, payload any) (json.RawMessage, error) {
	seq := c.seq.Add(1)
	b, err := encodeFrame(seq, opcode, payload)
	if err != nil {
		return nil, err
	}
	ch := make(chan frame, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", errConnClosed, err)
	}
	c.pending[seq] = pending{opcode: opcode, ch: ch}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, seq)
		c.mu.Unlock()
	}()

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		if ctx.Err() != nil {
			return nil, waitError(ctx, opcode)
		}
		c.fail(fmt.Errorf("writing to MAX: %w", err))
		return nil, fmt.Errorf("%w: %w", errConnClosed, err)
	}
	select {
	case f := <-ch:
		if f.Cmd == cmdOK {
			return f.Payload, nil
		}
		return nil, parseError(opcode, f.Cmd, f.Payload)
	case <-c.done:
		return nil, fmt.Errorf("%w: %w", errConnClosed, c.cause())
	case <-ctx.Done():
		return nil, waitError(ctx, opcode)
	}
}

// waitError is the error of a request whose context ended: its own
// time-out is portrait.ErrUpstreamTimeout.
func waitError(ctx context.Context, opcode int) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: no answer to opcode %d", portrait.ErrUpstreamTimeout, opcode)
	}
	return fmt.Errorf("waiting for MAX: %w", ctx.Err())
}

// fail ends the connection with err (the first cause is kept).
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	close(c.done)
	c.mu.Unlock()
	c.cancel()
	_ = c.ws.CloseNow()
}

// cause returns why the connection ended, or nil.
func (c *conn) cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// close ends the connection cleanly and waits for its goroutines. It must
// not be called from onPush.
func (c *conn) close() {
	c.mu.Lock()
	open := c.err == nil
	c.mu.Unlock()
	if open {
		// A close frame first, bounded: a dead peer must not hold Close.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		go func() {
			<-ctx.Done()
			_ = c.ws.CloseNow()
		}()
		_ = c.ws.Close(websocket.StatusNormalClosure, "")
		cancel()
	}
	c.fail(errors.New("closed by portrait"))
	c.wg.Wait()
}
