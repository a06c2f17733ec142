package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/lockfile"
	"github.com/strata-project/strata/internal/oci"
)

// A detached container created with -i reads its stdin from a FIFO in its
// directory: the monitor holds it open for reading and writing (so the
// container never sees an end of input while nobody is attached, as
// docker's stdin stays open), and `attach` writes the user's input into it.

func (m *Manager) stdinFifoPath(id string) string { return filepath.Join(m.Dir(id), "stdin") }

// openStdinFifo creates (if needed) and opens the container's stdin FIFO.
func (m *Manager) openStdinFifo(id string) (*os.File, error) {
	p := m.stdinFifoPath(id)
	if err := unix.Mkfifo(p, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create stdin fifo: %w", err)
	}
	// O_NOFOLLOW|O_NONBLOCK: the path is ours, but never block on or
	// follow something else put there.
	f, err := os.OpenFile(p, os.O_RDWR|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open stdin fifo: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		f.Close()
		return nil, fmt.Errorf("open stdin fifo: %s is not a fifo", p)
	}
	return f, nil
}

// AttachOptions are `attach` flags.
type AttachOptions struct {
	NoStdin  bool // --no-stdin
	SigProxy bool // --sig-proxy: relay strata's signals to the container
}

// Attach connects the user to running container c: its output from now
// on (from its log, which holds the terminal's output too), and, when it
// was created with -i, the user's stdin. It returns the container's exit
// status once it ends; the end of the user's input does not detach, as in
// docker. With SigProxy strata's signals go to the container, which is
// then what ends the attach; without, ctx ending detaches.
func (m *Manager) Attach(ctx context.Context, c Container, o AttachOptions, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if c.State.Status != StatusRunning || !lockfile.Held(m.lockPath(c.ID)) {
		return -1, ErrNotRunning
	}
	if c.Config.Log.Driver == LogDriverNone {
		return -1, fmt.Errorf("cannot attach to container %s: its --log-driver none keeps no output to follow", c.ID[:12])
	}
	var fifo *os.File
	if c.Config.OpenStdin && !o.NoStdin && stdin != nil {
		var err error
		fifo, err = os.OpenFile(m.stdinFifoPath(c.ID), os.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
		if err != nil {
			return -1, fmt.Errorf("attach stdin: %w", err)
		}
		// Blocking writes from here on: the container reads at its pace.
		if err := unix.SetNonblock(int(fifo.Fd()), false); err != nil {
			fifo.Close()
			return -1, fmt.Errorf("attach stdin: %w", err)
		}
		defer fifo.Close()
	}
	follow := ctx
	if o.SigProxy && !c.Config.Tty {
		rt, err := oci.New(c.Config.Runtime, m.runtimeRoot(c.Config.Runtime))
		if err != nil {
			return -1, err
		}
		defer rt.ForwardSignals(c.ID)()
		follow = context.WithoutCancel(ctx)
	}
	lo := LogOptions{Follow: true, Tail: 0}
	if fifo != nil {
		// Input only once the output is followed, so no answer to it is
		// missed.
		lo.following = func() { go func() { _, _ = io.Copy(fifo, stdin) }() }
	}
	if err := m.Logs(follow, c, lo, stdout, stderr); err != nil {
		return -1, err
	}
	if follow.Err() != nil {
		return -1, follow.Err()
	}
	cur, err := m.Get(context.WithoutCancel(ctx), c.ID)
	if err != nil {
		return -1, err
	}
	return cur.State.ExitCode, nil
}
