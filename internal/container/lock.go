package container

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The running lock is an flock on containers/<id>/running.lock. flock locks
// belong to an open file description, so the lock lives exactly as long as
// the runner's open file: when the runner dies, however it dies, the kernel
// releases it. Files are opened close-on-exec, so the runtime and the
// container never inherit it.

// tryLockRunning takes the running lock exclusively without waiting; ok is
// false when another runner holds it.
func tryLockRunning(path string) (f *os.File, ok bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("open %s: %w", path, err)
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, true, nil
}

// lockRunning takes the running lock exclusively, waiting for the current
// runner to finish, or until ctx ends.
func lockRunning(ctx context.Context, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	done := make(chan error, 1)
	go func() { done <- flock(f, unix.LOCK_EX) }()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		return f, nil
	case <-ctx.Done():
		// Closing the file drops the lock if the waiting flock gets it later.
		go func() { <-done; f.Close() }()
		return nil, ctx.Err()
	}
}

// isRunnerAlive tells whether some runner holds the lock now.
func isRunnerAlive(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := flock(f, unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	return false
}

// runnerDone returns a channel that is closed once no runner holds the lock
// (at once when none does). It blocks in flock, not in a polling loop. The
// waiter goroutine outlives ctx only until the lock is released.
func runnerDone(path string) <-chan struct{} {
	ch := make(chan struct{})
	f, err := os.Open(path)
	if err != nil {
		close(ch)
		return ch
	}
	go func() {
		_ = flock(f, unix.LOCK_SH)
		f.Close()
		close(ch)
	}()
	return ch
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func unlock(f *os.File) {
	if f != nil {
		f.Close()
	}
}
