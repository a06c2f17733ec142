package oci

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// MakeRaw puts the user's terminal f into raw mode, so that keys such as
// Ctrl-C travel to the container's pty as bytes, and returns the function
// that restores it. When f is not a terminal it does nothing.
func MakeRaw(f *os.File) (restore func() error, err error) {
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return func() error { return nil }, nil
	}
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("set terminal raw mode: %w", err)
	}
	return func() error { return term.Restore(fd, state) }, nil
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd()))
}

// Resize gives the container's pty (master) the window size of the user's
// terminal (tty).
func Resize(master, tty *os.File) error {
	ws, err := unix.IoctlGetWinsize(int(tty.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return fmt.Errorf("get window size: %w", err)
	}
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		return fmt.Errorf("set window size: %w", err)
	}
	return nil
}

// ConsoleSize is the window size of the user's terminal tty, for a spec's
// Process.ConsoleSize; nil when tty is not a terminal.
func ConsoleSize(tty *os.File) *specs.Box {
	ws, err := unix.IoctlGetWinsize(int(tty.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row == 0 || ws.Col == 0 {
		return nil
	}
	return &specs.Box{Height: uint(ws.Row), Width: uint(ws.Col)}
}

// ForwardResize sizes the pty like the user's terminal now and after every
// SIGWINCH until stop is called; after stop returns the files are no longer
// used and may be closed.
func ForwardResize(master, tty *os.File) (stop func()) {
	_ = Resize(master, tty)
	return onSignals(1, []os.Signal{syscall.SIGWINCH}, func(os.Signal) { _ = Resize(master, tty) })
}

// Attach connects a container's pty master to the user's streams: in is
// copied to the master and the master to out. The returned wait blocks
// until the container's output is fully copied, which happens when the
// last process holding the pty's slave side exits. The input copier is not
// waited for: it may be blocked reading the user's terminal.
func Attach(master *os.File, in io.Reader, out io.Writer) (wait func() error) {
	if in != nil {
		go func() { _, _ = io.Copy(master, in) }()
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, master)
		// Linux reports EIO on the master once no slave fd is open: that
		// is the pty's end of file.
		if errors.Is(err, syscall.EIO) || errors.Is(err, os.ErrClosed) {
			err = nil
		}
		done <- err
	}()
	return func() error { return <-done }
}
