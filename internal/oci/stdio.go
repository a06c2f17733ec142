package oci

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"golang.org/x/term"
)

// IO is the container process's standard streams.
//
// Without a terminal, nil streams are /dev/null; *os.File values are handed
// to the container as they are; any other reader or writer is connected
// through a pipe that this process copies. (A foreground `runc run` relays
// stdout and stderr through pipes of its own, so when both go to one file
// their relative order is not kept.) A terminal on Stdin is always
// piped: the runtime runs in its own process group (see Run), and a
// background group reading a terminal would be stopped by SIGTTIN.
//
// For a terminal container (spec Process.Terminal) there are two ways:
//   - Run in the foreground: the runtime itself allocates the pty, puts the
//     user's terminal (found among Stdin/Stdout/Stderr, which must then be
//     *os.File, or /dev/tty) into raw mode, copies both ways and follows
//     window size changes. Console must be nil: runc refuses a console
//     socket when it does not detach.
//   - Create: set Console; the runtime sends the pty master to it, and the
//     caller copies (Attach), sets raw mode (MakeRaw) and follows window
//     size (ForwardResize). Stdin, Stdout and Stderr are then unused.
type IO struct {
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Console *ConsoleSocket
}

// pipes tracks the pipe ends made for one runtime exec.
type pipes struct {
	childEnds []*os.File // closed in this process once the child has them
	copiers   sync.WaitGroup
	stdinW    *os.File
	stdinSrc  io.Reader
}

// attachStdio sets cmd's stdio from stdio. The runtime gets its own process
// group (see Run), except when it is to drive the user's terminal itself
// (terminalRun): then it must stay in the terminal's foreground group, and
// the streams are passed unchanged.
func attachStdio(cmd *exec.Cmd, stdio IO, terminalRun bool) (*pipes, error) {
	p := &pipes{}
	if terminalRun {
		in, err := streamFile(stdio.Stdin, "stdin")
		if err != nil {
			return nil, err
		}
		out, err := streamFile(stdio.Stdout, "stdout")
		if err != nil {
			return nil, err
		}
		errF, err := streamFile(stdio.Stderr, "stderr")
		if err != nil {
			return nil, err
		}
		// Assign only real files: a nil *os.File in the interface is not nil.
		if in != nil {
			cmd.Stdin = in
		}
		if out != nil {
			cmd.Stdout = out
		}
		if errF != nil {
			cmd.Stderr = errF
		}
		return p, nil
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if stdio.Console != nil {
		return p, nil
	}

	switch in := stdio.Stdin.(type) {
	case nil:
	case *os.File:
		if !term.IsTerminal(int(in.Fd())) {
			cmd.Stdin = in
			break
		}
		if err := p.pipeIn(cmd, in); err != nil {
			return nil, err
		}
	default:
		if err := p.pipeIn(cmd, in); err != nil {
			return nil, err
		}
	}

	out, err := p.writerFile(stdio.Stdout)
	if err != nil {
		p.abort()
		return nil, err
	}
	cmd.Stdout = out
	if sameWriter(stdio.Stdout, stdio.Stderr) {
		// One pipe, one copier: two goroutines must not write to one
		// non-file writer (a bytes.Buffer) at the same time.
		cmd.Stderr = out
	} else {
		errF, err := p.writerFile(stdio.Stderr)
		if err != nil {
			p.abort()
			return nil, err
		}
		cmd.Stderr = errF
	}
	return p, nil
}

func streamFile(v any, name string) (*os.File, error) {
	if v == nil {
		return nil, nil
	}
	f, ok := v.(*os.File)
	if !ok {
		return nil, fmt.Errorf("a terminal run needs files for its streams, %s is %T", name, v)
	}
	return f, nil
}

// pipeIn feeds the child's stdin from r. The copier is not waited for: it
// may be blocked reading the user's terminal long after the container has
// exited, and it ends with the process.
func (p *pipes) pipeIn(cmd *exec.Cmd, r io.Reader) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("stdin pipe: %w", err)
	}
	cmd.Stdin = pr
	p.childEnds = append(p.childEnds, pr)
	p.stdinW, p.stdinSrc = pw, r
	return nil
}

// writerFile returns the file to give the child for w, starting a copier
// when w is not a file. A nil w returns a nil *os.File typed as io.Writer
// nil so exec opens /dev/null.
func (p *pipes) writerFile(w io.Writer) (io.Writer, error) {
	switch f := w.(type) {
	case nil:
		return nil, nil
	case *os.File:
		return f, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	p.childEnds = append(p.childEnds, pw)
	p.copiers.Add(1)
	go func() {
		defer p.copiers.Done()
		defer pr.Close()
		// A failing writer must not block the container on a full pipe:
		// keep draining after the first error.
		if _, err := io.Copy(w, pr); err != nil {
			_, _ = io.Copy(io.Discard, pr)
		}
	}()
	return pw, nil
}

// started closes this process's copies of the child's pipe ends, so the
// copiers see EOF when the container (not us) closes them, and starts
// feeding stdin; stdin's end is closed at the source's EOF so the container
// sees EOF too.
func (p *pipes) started() {
	p.closeChildEnds()
	if p.stdinW != nil {
		go func(w *os.File, r io.Reader) {
			_, _ = io.Copy(w, r)
			w.Close()
		}(p.stdinW, p.stdinSrc)
	}
}

func (p *pipes) closeChildEnds() {
	for _, f := range p.childEnds {
		f.Close()
	}
	p.childEnds = nil
}

// abort undoes attachStdio when the child never started.
func (p *pipes) abort() {
	p.closeChildEnds()
	if p.stdinW != nil {
		p.stdinW.Close()
	}
	p.copiers.Wait()
}

// wait blocks until all output has been copied.
func (p *pipes) wait() {
	p.copiers.Wait()
}

// sameWriter reports whether a and b are the same writer without panicking
// on writer types that are not comparable.
func sameWriter(a, b io.Writer) (same bool) {
	if a == nil || b == nil {
		return false
	}
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}
