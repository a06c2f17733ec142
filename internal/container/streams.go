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

// stdioStreams connect a container's process to its json-file log and,
// for a foreground run, to the user's files: the user sees the output live
// and the log keeps it, so `logs` works for every container.
//
// Output goes through pipes (or the pty master) that are copied only once
// the runtime has created the container: until then the only writer is
// the runtime itself, whose failure message strata reports anyway, and
// neither the user nor the log should get it twice.
type stdioStreams struct {
	user    AttachIO
	log     *jsonLog // nil: --log-driver none
	stdin   *os.File // a detached container's stdin (the attach fifo), else nil
	reads   []*os.File
	writes  []*os.File // the container's ends, closed once the runtime has them
	master  *os.File
	restore func() error
	resize  func()
	copiers sync.WaitGroup
	started bool
}

func (s *stdioStreams) io() (oci.IO, error) {
	stdio := oci.IO{}
	if s.user.Stdin != nil {
		stdio.Stdin = s.user.Stdin
	} else if s.stdin != nil {
		stdio.Stdin = s.stdin
	}
	var files [2]*os.File
	for i := range files {
		r, w, err := os.Pipe()
		if err != nil {
			s.closeAll()
			return oci.IO{}, fmt.Errorf("output pipe: %w", err)
		}
		s.reads = append(s.reads, r)
		s.writes = append(s.writes, w)
		files[i] = w
	}
	stdio.Stdout, stdio.Stderr = files[0], files[1]
	return stdio, nil
}

func (s *stdioStreams) created(master *os.File) error {
	s.closeWrites()
	s.started = true
	if master == nil {
		s.copy(s.reads[0], s.user.Stdout, "stdout")
		s.copy(s.reads[1], s.user.Stderr, "stderr")
		return nil
	}
	s.master = master
	var in io.Reader
	switch {
	case s.user.Stdin != nil:
		in = s.user.Stdin
		// Raw mode, so Ctrl-C and friends reach the container as bytes.
		restore, err := oci.MakeRaw(s.user.Stdin)
		if err != nil {
			return err
		}
		s.restore = restore
	case s.stdin != nil:
		in = s.stdin
	}
	if in != nil {
		go func() { _, _ = io.Copy(master, in) }()
	}
	if s.user.Stdout != nil && oci.IsTerminal(s.user.Stdout) {
		s.resize = oci.ForwardResize(master, s.user.Stdout)
	} else if s.user.Stdin != nil && oci.IsTerminal(s.user.Stdin) {
		s.resize = oci.ForwardResize(master, s.user.Stdin)
	}
	s.copy(master, s.user.Stdout, "stdout")
	return nil
}

// copy sends r to the user's file (when there is one) and the log. A
// failing user file (a closed pipe) does not stop the log, nor block the
// container on a full pipe.
func (s *stdioStreams) copy(r io.Reader, user *os.File, stream string) {
	var lw *lineWriter
	if s.log != nil {
		lw = &lineWriter{log: s.log, stream: stream}
	}
	s.copiers.Add(1)
	go func() {
		defer s.copiers.Done()
		buf := make([]byte, 32<<10)
		userOK := user != nil
		for {
			n, err := r.Read(buf)
			if n > 0 {
				if userOK {
					if _, werr := user.Write(buf[:n]); werr != nil {
						userOK = false
					}
				}
				if lw != nil {
					_, _ = lw.Write(buf[:n])
				}
			}
			if err != nil {
				// EIO on a pty master: no slave is open any more, the
				// pty's end of file.
				break
			}
		}
		if lw != nil {
			lw.Close()
		}
	}()
}

func (s *stdioStreams) closeWrites() {
	for _, w := range s.writes {
		w.Close()
	}
	s.writes = nil
}

func (s *stdioStreams) closeAll() {
	s.closeWrites()
	for _, r := range s.reads {
		r.Close()
	}
	s.reads = nil
}

func (s *stdioStreams) exited() {
	s.closeWrites()
	if s.started {
		s.copiers.Wait()
	}
	s.closeAll()
	if s.resize != nil {
		s.resize()
	}
	if s.restore != nil {
		_ = s.restore()
	}
	if s.master != nil {
		s.master.Close()
	}
	if s.log != nil {
		s.log.close()
	}
	if s.stdin != nil {
		s.stdin.Close()
	}
}

// newStdioStreams opens c's log as its config says, for one run.
func (m *Manager) newStdioStreams(c Container, user AttachIO) (*stdioStreams, error) {
	s := &stdioStreams{user: user}
	if c.Config.Log.Driver != LogDriverNone {
		log, err := openJSONLog(m.LogPath(c.ID), c.Config.Log)
		if err != nil {
			return nil, err
		}
		s.log = log
	}
	return s, nil
}
