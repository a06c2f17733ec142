package layer

import (
	"io"
	"sync/atomic"
)

// writeback starts writing an unpack's files (a layer's, or a stack's) to
// disk while it goes on: each time another writebackBytes of tar have been
// read, the filesystem is synced on a goroutine of its own, so the disk
// writes overlap the unpack instead of all waiting for the one sync before
// the commit. The kernel would start on its own only at
// dirty_background_ratio (gigabytes here); a sync_file_range as each file
// closes made the goroutine creating the files pay for every file's block
// allocation, and measured slower for a load. The sync before the commit
// still makes the layers durable: these only leave it less to do.
type writeback struct {
	n    atomic.Int64
	kick chan string // the dir of a layer being written
	done chan struct{}
}

const writebackBytes = 64 << 20

func startWriteback() *writeback { return newWriteback(syncDir) }

// newWriteback is startWriteback with sync in place of syncDir.
func newWriteback(sync func(dir string) error) *writeback {
	w := &writeback{kick: make(chan string, 1), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for dir := range w.kick {
			// A failure here is the final sync's to report.
			_ = sync(dir)
		}
	}()
	return w
}

// reader counts what r passes toward the next sync of dir's filesystem.
func (w *writeback) reader(r io.Reader, dir string) io.Reader {
	return &writebackReader{r: r, w: w, dir: dir}
}

// stop waits for a sync under way; no reader may read after it.
func (w *writeback) stop() {
	close(w.kick)
	<-w.done
}

type writebackReader struct {
	r   io.Reader
	w   *writeback
	dir string
}

func (c *writebackReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		t := c.w.n.Add(int64(n))
		if t/writebackBytes != (t-int64(n))/writebackBytes {
			select {
			case c.w.kick <- c.dir:
			default: // one is under way: the next crossing asks again
			}
		}
	}
	return n, err
}
