package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// maxBatch is the most operations the writer commits in one transaction.
// It bounds how long one batch holds the write lock, and so how long the
// other writers (instances, the key/value space, other processes) wait.
const maxBatch = 256

// errClosed is the error of a write submitted to a closed DB.
var errClosed = errors.New("database is closed")

// An op is one write operation run by the group-commit writer.
type op struct {
	// ctx is the caller's context. The writer does not run the operation
	// if ctx is done when its batch starts; it never interrupts a batch
	// for it.
	ctx context.Context
	// fn does the work inside the batch's transaction, within a savepoint
	// of its own: if it fails, its changes are rolled back and the other
	// operations of the batch are kept. It writes its results to variables
	// of the caller, who reads them only after done reports success.
	fn func(ctx context.Context, b *batch) error
	// done receives the operation's outcome once its batch has committed
	// or failed. It has room for that one value.
	done chan error
}

// writer is the state of the group-commit writer goroutine (DB.writeLoop).
//
// Queue writes are many, small and concurrent, and each must be durable
// before it returns: with synchronous=FULL every commit waits for an
// fsync, which costs milliseconds. So instead of a transaction each, they
// are queued to one goroutine that takes everything waiting (up to
// maxBatch), runs it in one BEGIN IMMEDIATE transaction, commits once and
// then answers every caller. When the queue is empty the writer sleeps on
// a condition variable; it never waits to collect a batch, so a lone write
// costs one transaction as before, and under load batches grow by
// themselves while the previous commit is being synced.
type writer struct {
	mu     sync.Mutex
	wake   *sync.Cond // signalled when queue grows or closed is set
	queue  []*op
	closed bool
	// exited is closed when writeLoop returns.
	exited chan struct{}
	// conn is the connection the writer runs its transactions on; it
	// keeps the prepared statements warm. nil until first needed, and
	// after a failed batch. Only writeLoop uses it until exited is closed.
	conn *sql.Conn
	// batches counts the transactions the writer began, and submitted
	// the operations queued (for tests).
	batches, submitted atomic.Int64
}

// startWriter starts the writer goroutine.
func (db *DB) startWriter() {
	db.w.wake = sync.NewCond(&db.w.mu)
	db.w.exited = make(chan struct{})
	go db.writeLoop()
}

// stopWriter makes the writer run what is queued and stop, and waits for
// it. Writes submitted afterwards fail with errClosed.
func (db *DB) stopWriter() error {
	db.w.mu.Lock()
	db.w.closed = true
	db.w.wake.Broadcast()
	db.w.mu.Unlock()
	<-db.w.exited
	// The writer is gone; the lock only keeps concurrent Close calls apart.
	db.w.mu.Lock()
	c := db.w.conn
	db.w.conn = nil
	db.w.mu.Unlock()
	if c == nil {
		return nil
	}
	if err := c.Close(); err != nil && !errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("close writer connection: %w", err)
	}
	return nil
}

// submit queues fn to the writer and waits for its outcome.
//
// If ctx is done before the writer starts the operation's batch, the
// operation is not run and submit returns ctx.Err(). If ctx ends while the
// batch is running, submit returns ctx.Err() at once and the operation may
// or may not be committed. fn must not keep references to memory the
// caller may change after submit returns: when ctx ends, fn may still run
// later.
//
// If ctx carries a lease (portrait.WithLease), the operation is fenced by
// it: it fails with an error wrapping portrait.ErrLeaseLost, changing
// nothing, unless the lease is current when the writer runs it.
func (db *DB) submit(ctx context.Context, fn func(ctx context.Context, b *batch) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if fence := fenceOf(ctx); fence != nil {
		unfenced := fn
		fn = func(ctx context.Context, b *batch) error {
			if err := checkFence(ctx, b.tx, fence); err != nil {
				return err
			}
			return unfenced(ctx, b)
		}
	}
	o := &op{ctx: ctx, fn: fn, done: make(chan error, 1)}
	db.w.mu.Lock()
	if db.w.closed {
		db.w.mu.Unlock()
		return errClosed
	}
	db.w.queue = append(db.w.queue, o)
	db.w.submitted.Add(1)
	db.w.wake.Signal()
	db.w.mu.Unlock()
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		select {
		case err := <-o.done: // answered meanwhile: report the outcome
			return err
		default:
			return ctx.Err()
		}
	}
}

// take moves up to maxBatch-len(ops) queued operations to ops. If wait is
// set and nothing is queued, it waits until something is or the writer is
// closed. It returns no new operations only when the writer is closed and
// the queue empty, or when wait is not set.
func (w *writer) take(ops []*op, wait bool) []*op {
	w.mu.Lock()
	defer w.mu.Unlock()
	for wait && len(w.queue) == 0 && !w.closed {
		w.wake.Wait()
	}
	n := min(len(w.queue), maxBatch-len(ops))
	ops = append(ops, w.queue[:n]...)
	rest := copy(w.queue, w.queue[n:])
	clear(w.queue[rest:])
	w.queue = w.queue[:rest]
	return ops
}

// writeLoop is the writer goroutine. It runs until stopWriter, and then
// until the queue is empty.
func (db *DB) writeLoop() {
	defer close(db.w.exited)
	ops := make([]*op, 0, maxBatch)
	for {
		ops = db.w.take(ops[:0], true)
		if len(ops) == 0 {
			return // closed and drained
		}
		// Wait for this process's other writers (the same lock as
		// DB.write), then take what queued meanwhile.
		db.wsem <- struct{}{}
		ops = db.w.take(ops, false)
		db.runBatch(ops)
		<-db.wsem
		clear(ops)
	}
}

// runBatch runs ops in one transaction and answers each of them.
func (db *DB) runBatch(ops []*op) {
	// Callers that gave up before the batch started get their error and
	// are left out: their operations are certainly not committed.
	live := make([]*op, 0, len(ops))
	for _, o := range ops {
		if err := o.ctx.Err(); err != nil {
			o.done <- err
			continue
		}
		live = append(live, o)
	}
	if len(live) == 0 {
		return
	}
	db.w.batches.Add(1)
	errs, err := db.commitBatch(live)
	if err != nil {
		db.discardConn()
		for _, o := range live {
			o.done <- err
		}
		return
	}
	for i, o := range live {
		o.done <- errs[i]
	}
}

// commitBatch runs ops in one transaction, each in a savepoint of its own,
// and commits it. It returns each operation's own error, or an error that
// fails them all: the transaction could not begin or go on, and nothing of
// it is committed, or COMMIT itself failed (an I/O error), and whether it
// took effect is unknown.
func (db *DB) commitBatch(ops []*op) ([]error, error) {
	// The batch is shared by many callers, so none of their contexts may
	// interrupt it; Close waits for it.
	ctx := context.Background()
	if db.w.conn == nil {
		c, err := db.db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("writer connection: %w", err)
		}
		db.w.conn = c
	}
	tx, err := db.w.conn.BeginTx(ctx, nil) // BEGIN IMMEDIATE (dsn's _txlock)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	b := &batch{tx: tx, db: db}
	errs := make([]error, len(ops))
	for i, o := range ops {
		errs[i], err = b.run(ctx, o.fn)
		if err != nil {
			if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
				err = errors.Join(err, fmt.Errorf("rollback: %w", rerr))
			}
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return errs, nil
}

// discardConn closes the writer's connection after a failed batch, so that
// a transaction SQLite may have left open on it cannot keep the write lock;
// the next batch opens a new one.
func (db *DB) discardConn() {
	if db.w.conn == nil {
		return
	}
	// Returning driver.ErrBadConn from Raw makes database/sql close the
	// connection instead of keeping it in the pool.
	_ = db.w.conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = db.w.conn.Close()
	db.w.conn = nil
}

// batch is the transaction of one batch of the writer, as the operations
// see it.
type batch struct {
	tx    *sql.Tx
	db    *DB
	stmts map[*sql.Stmt]*sql.Stmt // the transaction's copies of db's statements
}

// stmt returns the transaction's copy of one of the DB's prepared
// statements. Statements are prepared on the writer's connection once and
// reused by every batch.
func (b *batch) stmt(ctx context.Context, s *sql.Stmt) *sql.Stmt {
	if ts, ok := b.stmts[s]; ok {
		return ts
	}
	if b.stmts == nil {
		b.stmts = make(map[*sql.Stmt]*sql.Stmt)
	}
	ts := b.tx.StmtContext(ctx, s)
	b.stmts[s] = ts
	return ts
}

// run runs fn within a savepoint. It returns fn's error, after rolling
// back fn's changes, or an error that ends the whole batch: the savepoint
// could not be set, released or rolled back to, which means the
// transaction is no longer usable (SQLite rolls back the whole transaction
// on errors such as SQLITE_FULL or SQLITE_IOERR).
func (b *batch) run(ctx context.Context, fn func(ctx context.Context, b *batch) error) (opErr, batchErr error) {
	if _, err := b.stmt(ctx, b.db.q.savepoint).ExecContext(ctx); err != nil {
		return nil, fmt.Errorf("savepoint: %w", err)
	}
	opErr = fn(ctx, b)
	if opErr != nil {
		if _, err := b.stmt(ctx, b.db.q.rollbackTo).ExecContext(ctx); err != nil {
			return nil, errors.Join(opErr, fmt.Errorf("rollback to savepoint: %w", err))
		}
	}
	if _, err := b.stmt(ctx, b.db.q.release).ExecContext(ctx); err != nil {
		return nil, errors.Join(opErr, fmt.Errorf("release savepoint: %w", err))
	}
	return opErr, nil
}
