package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/strata-project/strata/internal/lockfile"
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

// jsonLog appends entries to a container's log file, rotating it by size
// (--log-opt max-size, max-file); the stream copiers share it.
type jsonLog struct {
	mu   sync.Mutex
	path string
	opts jsonFileOpts
	f    *os.File
	size int64
}

func openJSONLog(path string, cfg LogConfig) (*jsonLog, error) {
	opts, err := cfg.jsonFile()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open container log: %w", err)
	}
	return &jsonLog{path: path, opts: opts, f: f, size: st.Size()}, nil
}

func (l *jsonLog) write(e LogEntry) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	if l.opts.maxSize > 0 && l.size > 0 && l.size+int64(len(b)) > l.opts.maxSize {
		if err := l.rotate(); err != nil {
			return
		}
	}
	// One write per entry on an O_APPEND file: readers never see half of one.
	n, _ := l.f.Write(b)
	l.size += int64(n)
}

// rotate shifts LOG.1..LOG.(max-file-2) up by one, LOG to LOG.1 and starts
// an empty LOG; with max-file 1 the log is just emptied. Readers following
// the log notice the new file by its inode.
func (l *jsonLog) rotate() error {
	l.f.Close()
	l.f = nil
	if l.opts.maxFile <= 1 {
		if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	} else {
		for i := l.opts.maxFile - 1; i > 1; i-- {
			_ = os.Rename(rotatedLog(l.path, i-1), rotatedLog(l.path, i))
		}
		if err := os.Rename(l.path, rotatedLog(l.path, 1)); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	l.f, l.size = f, 0
	return nil
}

func (l *jsonLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

func rotatedLog(path string, i int) string { return path + "." + strconv.Itoa(i) }

// lineWriter turns one output stream into log entries, a line each (split
// at maxLogLine); Close logs a last line that has no newline.
type lineWriter struct {
	log     *jsonLog
	stream  string
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			for len(w.partial) >= maxLogLine {
				w.emit(w.partial[:maxLogLine])
				w.partial = append(w.partial[:0:0], w.partial[maxLogLine:]...)
			}
			break
		}
		line := p[:i+1]
		if len(w.partial) > 0 {
			line = append(w.partial, line...)
			w.partial = w.partial[:0]
		}
		for len(line) > maxLogLine {
			w.emit(line[:maxLogLine])
			line = line[maxLogLine:]
		}
		w.emit(line)
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) emit(line []byte) {
	w.log.write(LogEntry{Log: string(line), Stream: w.stream, Time: time.Now().UTC()})
}

func (w *lineWriter) Close() error {
	if len(w.partial) > 0 {
		w.emit(w.partial)
		w.partial = nil
	}
	return nil
}

// LogOptions are `logs` flags.
type LogOptions struct {
	Follow     bool
	Tail       int // last N lines; < 0 means all
	Timestamps bool
	Details    bool
	// Since and Until bound the entries' times; zero means unbounded.
	Since, Until time.Time

	following func() // called once Follow has read what is already there
}

// ErrLogsUnreadable is returned for a container whose log driver keeps
// nothing to read.
var ErrLogsUnreadable = errors.New("configured logging driver does not support reading")

// Logs writes container c's log to stdout and stderr by stream, rotated
// files first. With Follow it keeps writing what the container prints
// until it ends (or ctx does), across rotations and restarts: new lines
// are noticed through inotify on the container's directory and the end
// through the running lock, so nothing polls.
func (m *Manager) Logs(ctx context.Context, c Container, o LogOptions, stdout, stderr io.Writer) error {
	if c.Config.Log.Driver == LogDriverNone {
		return ErrLogsUnreadable
	}
	path := m.LogPath(c.ID)
	out := logWriter{stdout: stdout, stderr: stderr, o: o}

	var changed <-chan struct{}
	var done <-chan struct{}
	if o.Follow {
		// Watch before reading, so no write between the two is missed.
		w, err := watchDir(filepath.Dir(path))
		if err != nil {
			return err
		}
		defer w.Close()
		changed = w.events
		done = lockfile.Released(m.lockPath(c.ID))
	}

	// Rotated files, oldest first, then the current one, which Follow
	// keeps reading.
	var readers []*lineReader
	for i := maxRotated(path); i >= 1; i-- {
		if f, err := os.Open(rotatedLog(path, i)); err == nil {
			defer f.Close()
			readers = append(readers, &lineReader{f: f})
		}
	}
	cur, err := os.Open(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("open log: %w", err)
	}
	if cur != nil {
		defer func() { cur.Close() }()
		readers = append(readers, &lineReader{f: cur})
	}
	if err := tailAll(readers, o.Tail, out.write); err != nil {
		return err
	}
	if !o.Follow {
		return nil
	}
	if o.following != nil {
		o.following()
	}
	r := &lineReader{f: cur}
	if len(readers) > 0 {
		r = readers[len(readers)-1]
	}
	// follow reads what is new, moving to a new file once the log was
	// rotated (or first created) under the one being read.
	follow := func() error {
		for {
			if r.f != nil {
				if err := r.next(out.write); err != nil {
					return err
				}
			}
			st, err := os.Stat(path)
			if err != nil {
				return nil // not (re)created yet
			}
			if r.f != nil {
				if old, err := r.f.Stat(); err == nil && os.SameFile(old, st) {
					return nil
				}
			}
			f, err := os.Open(path)
			if err != nil {
				return nil
			}
			if cur != nil {
				cur.Close()
			}
			cur = f
			r = &lineReader{f: f}
		}
	}
	for {
		select {
		case <-changed:
			if err := follow(); err != nil {
				return err
			}
		case <-done:
			// The runner has copied all output before it let go of the lock.
			if err := follow(); err != nil {
				return err
			}
			// Started again meanwhile (start, a restart): keep following.
			if !lockfile.Held(m.lockPath(c.ID)) {
				return nil
			}
			done = lockfile.Released(m.lockPath(c.ID))
		case <-ctx.Done():
			return nil
		}
	}
}

// maxRotated is the highest N for which PATH.N exists.
func maxRotated(path string) int {
	n := 0
	for {
		if _, err := os.Lstat(rotatedLog(path, n+1)); err != nil {
			return n
		}
		n++
	}
}

// tailAll passes the last n complete lines (all when n < 0) of the
// readers, in order, to fn.
func tailAll(readers []*lineReader, n int, fn func([]byte) error) error {
	if n < 0 {
		for _, r := range readers {
			if err := r.next(fn); err != nil {
				return err
			}
		}
		return nil
	}
	ring := make([][]byte, 0, n)
	for _, r := range readers {
		err := r.next(func(line []byte) error {
			if n == 0 {
				return nil
			}
			if len(ring) == n {
				ring = append(ring[:0], ring[1:]...)
			}
			ring = append(ring, append([]byte(nil), line...))
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, l := range ring {
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

type logWriter struct {
	stdout, stderr io.Writer
	o              LogOptions
}

func (w logWriter) write(line []byte) error {
	var e LogEntry
	if err := json.Unmarshal(line, &e); err != nil {
		return nil // a torn or foreign line: skip it, as docker does
	}
	if !w.o.Since.IsZero() && e.Time.Before(w.o.Since) {
		return nil
	}
	if !w.o.Until.IsZero() && e.Time.After(w.o.Until) {
		return nil
	}
	dst := w.stdout
	if e.Stream == "stderr" {
		dst = w.stderr
	}
	var prefix string
	if w.o.Timestamps {
		prefix = e.Time.UTC().Format(rfc3339NanoFixed) + " "
	}
	if w.o.Details {
		// docker prints the entry's attributes (k=v,...) and a space;
		// strata's entries have none.
		prefix += " "
	}
	_, err := io.WriteString(dst, prefix+e.Log)
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

// fileWatch reports modifications through inotify.
type fileWatch struct {
	f      *os.File
	events chan struct{}
}

// watchDir reports changes to the files of a directory: writes, and files
// created or renamed into it (a rotated log).
func watchDir(path string) (*fileWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
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

// rfc3339NanoFixed is docker's timestamp layout for logs: nanoseconds
// always nine digits wide, unlike time.RFC3339Nano which trims zeros.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"
