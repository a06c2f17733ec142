package container

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/strata-project/strata/internal/oci"
)

// AttachIO is the user's side of a foreground container: files, so the
// container writes to them directly. Stdin nil means no input (-i not given).
type AttachIO struct {
	Stdin  *os.File
	Stdout *os.File
	Stderr *os.File
}

// attachStreams connect the container to the user's terminal or files.
//
// Stdout goes to the container as it is. Stderr goes through a pipe that is
// copied only once the runtime has created the container: until then the
// only writer is the runtime itself, whose failure message strata reports
// anyway, and the user should not read it twice.
type attachStreams struct {
	user         AttachIO
	errR, errW   *os.File
	errCopied    chan struct{}
	restore      func() error
	stopResize   func()
	wait         func() error
	master       *os.File
	startedCopy  bool
	closedWriter bool
}

func (a *attachStreams) io() (oci.IO, error) {
	stdio := oci.IO{Stdout: a.user.Stdout, Stderr: a.user.Stderr}
	if a.user.Stdin != nil {
		stdio.Stdin = a.user.Stdin
	}
	if a.user.Stderr != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return oci.IO{}, fmt.Errorf("stderr pipe: %w", err)
		}
		a.errR, a.errW = r, w
		stdio.Stderr = w
	}
	return stdio, nil
}

func (a *attachStreams) created(master *os.File) error {
	if a.errW != nil {
		a.errW.Close()
		a.closedWriter = true
		a.errCopied = make(chan struct{})
		a.startedCopy = true
		go func() {
			defer close(a.errCopied)
			if _, err := io.Copy(a.user.Stderr, a.errR); err != nil {
				_, _ = io.Copy(io.Discard, a.errR)
			}
		}()
	}
	if master == nil {
		return nil
	}
	a.master = master
	var in io.Reader
	if a.user.Stdin != nil {
		in = a.user.Stdin
		// Raw mode, so Ctrl-C and friends reach the container as bytes.
		restore, err := oci.MakeRaw(a.user.Stdin)
		if err != nil {
			return err
		}
		a.restore = restore
	}
	if oci.IsTerminal(a.user.Stdout) {
		a.stopResize = oci.ForwardResize(master, a.user.Stdout)
	} else if a.user.Stdin != nil && oci.IsTerminal(a.user.Stdin) {
		a.stopResize = oci.ForwardResize(master, a.user.Stdin)
	}
	a.wait = oci.Attach(master, in, a.user.Stdout)
	return nil
}

func (a *attachStreams) exited() {
	if a.errW != nil && !a.closedWriter {
		a.errW.Close()
	}
	if a.startedCopy {
		<-a.errCopied
	}
	if a.errR != nil {
		a.errR.Close()
	}
	if a.wait != nil {
		_ = a.wait()
	}
	if a.stopResize != nil {
		a.stopResize()
	}
	if a.restore != nil {
		_ = a.restore()
	}
	if a.master != nil {
		a.master.Close()
	}
}

// logStreams copy a detached container's output into its json-file log.
type logStreams struct {
	path   string
	log    *jsonLog
	pipes  []*os.File // our write ends, closed once the runtime has them
	reads  []*os.File
	master *os.File
	wg     sync.WaitGroup
}

func (l *logStreams) open() error {
	if l.log != nil {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open container log: %w", err)
	}
	l.log = &jsonLog{f: f}
	return nil
}

func (l *logStreams) io() (oci.IO, error) {
	if err := l.open(); err != nil {
		return oci.IO{}, err
	}
	var files [2]*os.File
	for i := range files {
		r, w, err := os.Pipe()
		if err != nil {
			return oci.IO{}, fmt.Errorf("output pipe: %w", err)
		}
		l.reads = append(l.reads, r)
		l.pipes = append(l.pipes, w)
		files[i] = w
	}
	return oci.IO{Stdout: files[0], Stderr: files[1]}, nil
}

func (l *logStreams) created(master *os.File) error {
	if err := l.open(); err != nil {
		return err
	}
	l.closePipes()
	if master != nil {
		l.master = master
		l.copy(master, "stdout")
		return nil
	}
	for i, stream := range []string{"stdout", "stderr"} {
		if i < len(l.reads) {
			l.copy(l.reads[i], stream)
		}
	}
	return nil
}

func (l *logStreams) copy(r io.Reader, stream string) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.log.copyFrom(r, stream)
	}()
}

func (l *logStreams) closePipes() {
	for _, w := range l.pipes {
		w.Close()
	}
	l.pipes = nil
}

func (l *logStreams) exited() {
	l.closePipes()
	l.wg.Wait()
	for _, r := range l.reads {
		r.Close()
	}
	l.reads = nil
	if l.master != nil {
		l.master.Close()
	}
	if l.log != nil {
		l.log.f.Close()
	}
}
