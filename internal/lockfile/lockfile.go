// Package lockfile is strata's one way to take flock(2) locks and its one
// way to tell whether another strata process is still alive.
//
// flock locks belong to an open file description: the kernel drops one the
// moment its holder dies, however it dies. That makes a held lock file a
// liveness signal that PID reuse cannot fake, unlike a signal-0 probe of a
// recorded PID. Files are opened close-on-exec, so runtimes and containers
// never inherit a lock.
package lockfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Mode is how a lock is held.
type Mode int

const (
	// Exclusive: one holder at a time.
	Exclusive Mode = unix.LOCK_EX
	// Shared: any number of shared holders, no exclusive one.
	Shared Mode = unix.LOCK_SH
)

// Lock is a held lock on a file. Unlock releases it; so does the death of
// the process.
type Lock struct{ f *os.File }

// Path is the locked file.
func (l *Lock) Path() string { return l.f.Name() }

// Unlock releases the lock. It is safe on a nil Lock and twice.
func (l *Lock) Unlock() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// TryLock takes the lock on path (created if missing) without waiting; ok
// is false when another holder's lock conflicts.
func TryLock(path string, m Mode) (l *Lock, ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("open lock %s: %w", path, err)
	}
	ok, err = TryFd(int(f.Fd()), m)
	if err != nil || !ok {
		f.Close()
		if err != nil {
			err = fmt.Errorf("lock %s: %w", path, err)
		}
		return nil, false, err
	}
	return &Lock{f: f}, true, nil
}

// Wait takes the lock on path (created if missing), waiting for conflicting
// holders to release it, or until ctx ends. It polls rather than blocking
// in flock(2): a blocked flock cannot be called off, and one that went on
// after ctx ended would hold the lock for a moment with nobody using it.
func Wait(ctx context.Context, path string, m Mode) (*Lock, error) {
	t := time.NewTicker(retry)
	defer t.Stop()
	for {
		l, ok, err := TryLock(path, m)
		if ok || err != nil {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
	}
}

// retry is how often Wait tries again.
const retry = 10 * time.Millisecond

// Held tells whether some process holds a lock on path now. A missing file
// is held by nobody.
func Held(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	ok, err := TryFd(int(f.Fd()), Shared)
	return !ok && err == nil
}

// Released returns a channel closed once nobody holds an exclusive lock on
// path (at once when nobody does or the file is missing).
func Released(path string) <-chan struct{} {
	ch := make(chan struct{})
	f, err := os.Open(path)
	if err != nil {
		close(ch)
		return ch
	}
	go func() {
		_ = Fd(int(f.Fd()), Shared)
		f.Close()
		close(ch)
	}()
	return ch
}

// RemoveFree removes the file at path if nobody holds a lock on it, and
// says whether it did. The lock is taken before the unlink and held across
// it, so a holder cannot take the file back in between.
func RemoveFree(path string) bool {
	l, ok, err := TryLock(path, Exclusive)
	if err != nil || !ok {
		return false
	}
	defer l.Unlock()
	return os.Remove(path) == nil
}

// TryFd flocks an open file or directory without waiting; false when
// another holder's lock conflicts.
func TryFd(fd int, m Mode) (bool, error) {
	err := Fd(fd, m|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// Fd flocks an open file or directory, waiting as long as it takes.
func Fd(fd int, m Mode) error {
	for {
		err := unix.Flock(fd, int(m))
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
