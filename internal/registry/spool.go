package registry

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// spool carries one blob from its download to its apply. The download
// appends to an unlinked temp file while the reader follows behind, so the
// network never waits for the apply of an earlier layer, the apply never
// waits for a whole blob, and a crash leaves nothing on disk. What the
// reader has consumed is punched out of the file: the spool holds only the
// bytes the download is ahead by, and the layer commit's syncfs does not
// write the blob to disk a second time.
type spool struct {
	f    *os.File
	stop func() bool // detaches the cancellation hook

	mu        sync.Mutex
	cond      *sync.Cond
	size      int64 // bytes written so far
	done      bool
	err       error // the download's outcome, once done
	cancelled error
	closeOnce sync.Once
}

// newSpool makes a spool in dir (the store root, so a big blob lands on
// the store's disk rather than in a tmpfs).
func newSpool(ctx context.Context, dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, ".pull-")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	sp := &spool{f: f}
	sp.cond = sync.NewCond(&sp.mu)
	sp.stop = context.AfterFunc(ctx, func() {
		sp.mu.Lock()
		sp.cancelled = ctx.Err()
		sp.cond.Broadcast()
		sp.mu.Unlock()
	})
	return sp, nil
}

// Write appends b; only the download goroutine writes.
func (sp *spool) Write(b []byte) (int, error) {
	n, err := sp.f.WriteAt(b, sp.size)
	sp.mu.Lock()
	sp.size += int64(n)
	sp.cond.Broadcast()
	sp.mu.Unlock()
	return n, err
}

// finish records the download's outcome: nil means every byte is written
// and verified.
func (sp *spool) finish(err error) {
	sp.mu.Lock()
	sp.done, sp.err = true, err
	sp.cond.Broadcast()
	sp.mu.Unlock()
}

// wait returns the download's outcome once it is known.
func (sp *spool) wait(ctx context.Context) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for !sp.done && sp.cancelled == nil {
		sp.cond.Wait()
	}
	if !sp.done {
		return sp.cancelled
	}
	return sp.err
}

// Reader reads the blob from the start, blocking for bytes not yet
// written. Its EOF means the blob arrived whole and verified; a failed
// download is its error instead. A spool has one reader: what it has
// consumed is freed.
// Reading stops with ctx's error once ctx ends.
func (sp *spool) Reader(ctx context.Context) io.Reader {
	context.AfterFunc(ctx, func() {
		sp.mu.Lock()
		sp.cond.Broadcast()
		sp.mu.Unlock()
	})
	return &spoolReader{sp: sp, ctx: ctx}
}

// Close releases the file (and with it the disk space).
func (sp *spool) Close() {
	sp.closeOnce.Do(func() {
		sp.stop()
		sp.f.Close()
	})
}

type spoolReader struct {
	sp      *spool
	ctx     context.Context
	off     int64
	punched int64 // [0, punched) is a hole
}

// punchEvery is how many consumed bytes a reader lets gather before it
// punches them out: one fallocate per few MiB.
const punchEvery = 4 << 20

func (r *spoolReader) Read(b []byte) (int, error) {
	sp := r.sp
	sp.mu.Lock()
	for r.off == sp.size && !sp.done && sp.cancelled == nil && r.ctx.Err() == nil {
		sp.cond.Wait()
	}
	avail, done, err, cancelled := sp.size-r.off, sp.done, sp.err, cmp.Or(sp.cancelled, r.ctx.Err())
	sp.mu.Unlock()
	switch {
	case avail > 0:
		n, err := sp.f.ReadAt(b[:min(int64(len(b)), avail)], r.off)
		r.off += int64(n)
		if err == io.EOF {
			err = nil // the writer is ahead of what ReadAt saw; never happens, but EOF here would lie
		}
		if r.off-r.punched >= punchEvery {
			r.punch()
		}
		return n, err
	case cancelled != nil && !done:
		return 0, cancelled
	case err != nil:
		return 0, err
	}
	return 0, io.EOF
}

// punch frees what the reader has consumed. A filesystem that cannot punch
// holes keeps the bytes until Close, as before.
func (r *spoolReader) punch() {
	if unix.Fallocate(int(r.sp.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, r.punched, r.off-r.punched) == nil {
		r.punched = r.off
	} else {
		r.punched = math.MaxInt64 // unsupported: stop trying
	}
}
