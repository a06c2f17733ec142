package oci

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ConsoleSocket is the unix socket on which the runtime hands over the
// master side of the pty it creates for a terminal container
// (`--console-socket`). Create one per container, pass it in IO.Console,
// call Receive while Run/Create is in progress, and Close it afterwards
// (which also unblocks a Receive when the runtime failed before sending).
type ConsoleSocket struct {
	dir string
	l   *net.UnixListener
}

// NewConsoleSocket listens on a socket in a fresh private directory under
// the system temp dir: socket paths are limited to 108 bytes, too short for
// paths inside a deep store.
func NewConsoleSocket() (*ConsoleSocket, error) {
	dir, err := os.MkdirTemp("", "strata-console-")
	if err != nil {
		return nil, fmt.Errorf("console socket dir: %w", err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "console.sock"), Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return &ConsoleSocket{dir: dir, l: l}, nil
}

// Path is the socket's path, as passed to the runtime.
func (c *ConsoleSocket) Path() string {
	return c.l.Addr().String()
}

// Receive waits for the runtime to connect and returns the pty master it
// sends. The master is non-blocking and registered with Go's poller, so a
// Close from another goroutine ends a pending Read.
func (c *ConsoleSocket) Receive(ctx context.Context) (*os.File, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.l.SetDeadline(time.Now()) })
	defer stop()
	conn, err := c.l.AcceptUnix()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("receive console: %w", ctx.Err())
		}
		return nil, fmt.Errorf("receive console: %w", err)
	}
	defer conn.Close()
	stopConn := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stopConn()

	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(name, oob)
	if err != nil {
		return nil, fmt.Errorf("receive console: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("receive console: parse control message: %w", err)
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	if len(fds) == 0 {
		return nil, errors.New("receive console: the runtime sent no file descriptor")
	}
	// Only one descriptor is expected; close any extra ones rather than
	// leak them.
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
	fd := fds[0]
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("receive console: %w", err)
	}
	return os.NewFile(uintptr(fd), string(name[:n])), nil
}

// Close stops listening and removes the socket.
func (c *ConsoleSocket) Close() error {
	err := c.l.Close()
	if rerr := os.RemoveAll(c.dir); err == nil {
		err = rerr
	}
	return err
}
