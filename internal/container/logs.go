package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// LogEntry is one line of docker's json-file log format.
type LogEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"` // "stdout" or "stderr"
	Time   time.Time `json:"time"`
}

// maxLogLine bounds one entry: a longer line is split, as docker does.
const maxLogLine = 16 << 10

// jsonLog appends entries to a log file; the two stream copiers share it.
type jsonLog struct {
	mu sync.Mutex
	f  *os.File
}

// copyFrom logs r line by line until EOF. A final line without a newline is
// logged as it is.
func (l *jsonLog) copyFrom(r io.Reader, stream string) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			l.write(LogEntry{Log: string(line), Stream: stream, Time: time.Now().UTC()})
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

func (l *jsonLog) write(e LogEntry) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	// One write per entry on an O_APPEND file: readers never see half of one.
	_, _ = l.f.Write(b)
}

// LogOptions are `logs` flags.
type LogOptions struct {
	Follow     bool
	Tail       int // last N lines; < 0 means all
	Timestamps bool
}

// Logs writes container c's log to stdout and stderr by stream. With Follow
// it keeps writing what the container prints until it ends (or ctx does):
// new lines are noticed through inotify and the end through the running
// lock, so nothing polls.
func (m *Manager) Logs(ctx context.Context, c Container, o LogOptions, stdout, stderr io.Writer) error {
	f, err := os.Open(m.LogPath(c.ID))
	if errors.Is(err, os.ErrNotExist) {
		return nil // never started detached: nothing was logged
	}
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	out := logWriter{stdout: stdout, stderr: stderr, timestamps: o.Timestamps}

	var changed <-chan struct{}
	var done <-chan struct{}
	if o.Follow {
		// Watch before reading, so no write between the two is missed.
		w, err := watchFile(m.LogPath(c.ID))
		if err != nil {
			return err
		}
		defer w.Close()
		changed = w.events
		done = runnerDone(m.lockPath(c.ID))
	}

	r := &lineReader{f: f}
	if err := r.tail(o.Tail, out.write); err != nil {
		return err
	}
	if !o.Follow {
		return nil
	}
	for {
		select {
		case <-changed:
			if err := r.next(out.write); err != nil {
				return err
			}
		case <-done:
			// The runner has copied all output before it let go of the lock.
			return r.next(out.write)
		case <-ctx.Done():
			return nil
		}
	}
}

type logWriter struct {
	stdout, stderr io.Writer
	timestamps     bool
}

func (w logWriter) write(line []byte) error {
	var e LogEntry
	if err := json.Unmarshal(line, &e); err != nil {
		return nil // a torn or foreign line: skip it, as docker does
	}
	dst := w.stdout
	if e.Stream == "stderr" {
		dst = w.stderr
	}
	if w.timestamps {
		if _, err := io.WriteString(dst, e.Time.Format(time.RFC3339Nano)+" "); err != nil {
			return err
		}
	}
	_, err := io.WriteString(dst, e.Log)
	return err
}

// lineReader reads whole lines from a file that is still being appended to,
// keeping a partial last line until its newline arrives.
type lineReader struct {
	f       *os.File
	partial []byte
	buf     [32 << 10]byte
}

// next passes every complete line now in the file to fn.
func (r *lineReader) next(fn func([]byte) error) error {
	for {
		n, err := r.f.Read(r.buf[:])
		if n > 0 {
			data := append(r.partial, r.buf[:n]...)
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					break
				}
				if err := fn(data[:i]); err != nil {
					return err
				}
				data = data[i+1:]
			}
			r.partial = append(r.partial[:0:0], data...)
		}
		if errors.Is(err, io.EOF) || n == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read log: %w", err)
		}
	}
}

// tail passes the last n complete lines (all when n < 0) to fn, streaming:
// only n lines are held at a time.
func (r *lineReader) tail(n int, fn func([]byte) error) error {
	if n < 0 {
		return r.next(fn)
	}
	if n == 0 {
		return r.next(func([]byte) error { return nil })
	}
	ring := make([][]byte, 0, n)
	err := r.next(func(line []byte) error {
		if len(ring) == n {
			ring = append(ring[:0], ring[1:]...)
		}
		ring = append(ring, append([]byte(nil), line...))
		return nil
	})
	if err != nil {
		return err
	}
	for _, l := range ring {
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

// fileWatch reports modifications of one file through inotify.
type fileWatch struct {
	f      *os.File
	events chan struct{}
}

func watchFile(path string) (*fileWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch %s: %w", path, err)
	}
	// A non-blocking fd wrapped in os.File uses Go's poller, so Close ends
	// the pending Read below.
	w := &fileWatch{f: os.NewFile(uintptr(fd), "inotify"), events: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := w.f.Read(buf); err != nil {
				return
			}
			select {
			case w.events <- struct{}{}:
			default: // one pending wake-up covers any number of writes
			}
		}
	}()
	return w, nil
}

func (w *fileWatch) Close() error { return w.f.Close() }
