package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/snapshot"
)

// RunAttached runs c in this process with the user's streams and returns
// its exit status once it ends (`run` without -d, `start -a`). Signals that
// strata receives are relayed to the container.
func (m *Manager) RunAttached(ctx context.Context, c Container, user AttachIO) (int, error) {
	s, err := m.newStdioStreams(c, user)
	if err != nil {
		return -1, &StartError{Code: 125, Err: err}
	}
	return m.run(ctx, c.ID, runOptions{streams: s, forwardSignals: true})
}

// monitorReport is what a monitor tells the command that started it, as one
// JSON object on an inherited pipe.
type monitorReport struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
	Code  int    `json:"code,omitempty"`
}

// StartDetached starts c in a monitor process, which runs and outlives this
// one, and returns once the container's process runs (or failed to start:
// then the error is a *StartError). monitor is the command line that runs
// Monitor for the container ID appended to it. Starting a running container
// does nothing.
func (m *Manager) StartDetached(ctx context.Context, c Container, monitor []string) error {
	if isRunnerAlive(m.lockPath(c.ID)) {
		return nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pr.Close()
	cmd := exec.Command(monitor[0], append(monitor[1:], c.ID)...)
	cmd.ExtraFiles = []*os.File{pw} // fd 3 in the monitor
	// Its own session: the user's terminal and its signals are not its own.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return &StartError{Code: 125, Err: fmt.Errorf("start container monitor: %w", err)}
	}
	pw.Close()
	// Reap it if this process lives long enough; a CLI exits first and the
	// monitor is adopted.
	go func() { _ = cmd.Wait() }()

	var rep monitorReport
	if err := json.NewDecoder(pr).Decode(&rep); err != nil {
		return &StartError{Code: 125, Err: fmt.Errorf("container monitor for %s exited before the container started", c.ID[:12])}
	}
	if rep.Error != "" {
		return &StartError{Code: rep.Code, Err: errors.New(rep.Error)}
	}
	return nil
}

// Monitor runs container id to its end with its output in the json-file
// log, reporting on report once the process runs or failed to start. It is
// the body of the hidden command that StartDetached executes.
func (m *Manager) Monitor(ctx context.Context, id string, report io.WriteCloser) error {
	c, err := m.lookup(id)
	if err != nil {
		_ = json.NewEncoder(report).Encode(monitorReport{Error: err.Error(), Code: 125})
		report.Close()
		return err
	}
	s, err := m.newStdioStreams(c, AttachIO{})
	if err == nil && c.Config.OpenStdin {
		s.stdin, err = m.openStdinFifo(c.ID)
	}
	if err != nil {
		_ = json.NewEncoder(report).Encode(monitorReport{Error: err.Error(), Code: 125})
		report.Close()
		return err
	}
	reported := false
	_, err = m.run(ctx, id, runOptions{
		streams: s,
		started: func(pid int) {
			_ = json.NewEncoder(report).Encode(monitorReport{Pid: pid})
			report.Close()
			reported = true
		},
	})
	if !reported {
		se := startError(errOr(err, errors.New("the container did not start")))
		_ = json.NewEncoder(report).Encode(monitorReport{Error: se.Error(), Code: se.Code})
		report.Close()
	}
	return err
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// Stop sends the image's stop signal (SIGTERM by default), waits up to
// timeout for the container to end, then kills it. A negative timeout
// waits forever. Stopping a stopped container does nothing.
func (m *Manager) Stop(ctx context.Context, c Container, timeout time.Duration) error {
	lock := m.lockPath(c.ID)
	if !isRunnerAlive(lock) {
		return nil
	}
	done := runnerDone(lock)
	sig, err := oci.StopSignal(c.ImageConfig.StopSignal)
	if err != nil {
		sig = syscall.SIGTERM
	}
	if err := m.signal(ctx, c, sig, false); err != nil {
		return err
	}
	if timeout >= 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		if err := m.signal(ctx, c, syscall.SIGKILL, true); err != nil {
			return err
		}
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill sends sig to the container's init process.
func (m *Manager) Kill(ctx context.Context, c Container, sig syscall.Signal) error {
	if !isRunnerAlive(m.lockPath(c.ID)) {
		return fmt.Errorf("cannot kill container %s: container %s is not running: %w", c.Name, c.ID[:12], ErrNotRunning)
	}
	return m.signal(ctx, c, sig, false)
}

// signal delivers sig through the runtime; a container that has just ended
// is not an error.
func (m *Manager) signal(ctx context.Context, c Container, sig syscall.Signal, all bool) error {
	rt, err := oci.New(c.Config.Runtime, m.runtimeRoot(c.Config.Runtime))
	if err != nil {
		return err
	}
	err = rt.Kill(ctx, c.ID, sig, all)
	if errors.Is(err, oci.ErrNotRunning) || errors.Is(err, oci.ErrNotExist) {
		return nil
	}
	return err
}

// Frozen runs fn with c's processes paused when it is running, so that
// what fn reads of its files (commit) is not changing underneath; the
// container resumes afterwards whatever fn returned.
func (m *Manager) Frozen(ctx context.Context, c Container, fn func() error) error {
	if c.State.Status != StatusRunning {
		return fn()
	}
	rt, err := oci.New(c.Config.Runtime, m.runtimeRoot(c.Config.Runtime))
	if err != nil {
		return err
	}
	switch err := rt.Pause(ctx, c.ID); {
	case errors.Is(err, oci.ErrNotRunning) || errors.Is(err, oci.ErrNotExist):
		return fn() // it ended meanwhile: nothing to freeze
	case err != nil:
		return fmt.Errorf("pause container %s: %w", c.ID[:12], err)
	}
	defer rt.Resume(context.WithoutCancel(ctx), c.ID)
	return fn()
}

// Wait blocks until c is not running and returns its exit code (docker's
// default "not-running" condition: a created container returns at once).
func (m *Manager) Wait(ctx context.Context, c Container) (int, error) {
	select {
	case <-runnerDone(m.lockPath(c.ID)):
	case <-ctx.Done():
		return -1, ctx.Err()
	}
	cur, err := m.Get(ctx, c.ID)
	if err != nil {
		return -1, err
	}
	return cur.State.ExitCode, nil
}

// Remove deletes c: record, writable layer, directory and any runtime
// state. A running container is refused unless force, which kills it
// first; nothing of it stays mounted.
func (m *Manager) Remove(ctx context.Context, c Container, force bool) error {
	lockF, ok, err := tryLockRunning(m.lockPath(c.ID))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No directory: a create that did not finish. Nothing runs it.
	case err != nil:
		return err
	case !ok:
		if !force {
			return fmt.Errorf("cannot remove container %q: container is running: stop the container before removing or force remove: %w", "/"+c.Name, ErrRunning)
		}
		if err := m.signal(ctx, c, syscall.SIGKILL, true); err != nil {
			return err
		}
		if lockF, err = lockRunning(ctx, m.lockPath(c.ID)); err != nil {
			return err
		}
	}
	defer unlock(lockF)
	cur, err := m.lookup(c.ID)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil // its runner honoured --rm
	}
	if err != nil {
		return err
	}
	return m.removeLocked(ctx, cur)
}

// removeLocked deletes everything of c; the caller holds its running lock.
// Each step tolerates what an earlier, interrupted removal already did, and
// the record goes last, so a failed rm can be repeated.
func (m *Manager) removeLocked(ctx context.Context, c Container) error {
	if rt, err := oci.New(c.Config.Runtime, m.runtimeRoot(c.Config.Runtime)); err == nil {
		m.deleteRuntimeState(ctx, rt, c.ID)
	}
	m.removeNetwork(c)
	dir := m.Dir(c.ID)
	if err := snapshot.UnmountAll(dir); err != nil {
		return fmt.Errorf("remove container %s: %w", c.ID[:12], err)
	}
	for _, key := range []string{c.SnapshotKey, initName(c.ID)} {
		if err := m.store.Snapshots.Remove(ctx, key); err != nil && !errors.Is(err, metadata.ErrNotFound) {
			return fmt.Errorf("remove container %s layer: %w", c.ID[:12], err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove container %s: %w", c.ID[:12], err)
	}
	return m.deleteRecord(c)
}

// reconcile fixes the record of a container whose runner died: the record
// says running but nobody holds the running lock. The runtime's container,
// if still there, is killed and deleted and the rootfs unmounted.
func (m *Manager) reconcile(ctx context.Context, c Container) (Container, error) {
	if c.State.Status != StatusRunning {
		return c, nil
	}
	lockF, ok, err := tryLockRunning(m.lockPath(c.ID))
	if err != nil || !ok {
		return c, nil // alive (or unknowable): the record stands
	}
	defer unlock(lockF)
	// Read again under the lock: the runner may have finished properly
	// between our read and our lock.
	cur, err := m.lookup(c.ID)
	if err != nil || cur.State.Status != StatusRunning {
		return cur, err
	}
	code := 255 // unknown: nobody saw the process end
	if rt, err := oci.New(cur.Config.Runtime, m.runtimeRoot(cur.Config.Runtime)); err == nil {
		if st, err := rt.State(ctx, cur.ID); err == nil && st.Status == oci.StatusRunning {
			code = 128 + int(syscall.SIGKILL)
		}
		m.deleteRuntimeState(ctx, rt, cur.ID)
	}
	m.removeNetwork(cur)
	if err := snapshot.UnmountAll(m.RootfsDir(cur.ID)); err != nil {
		return cur, err
	}
	cur.State = State{
		Status: StatusExited, ExitCode: code, StartedAt: cur.State.StartedAt,
		FinishedAt: time.Now().UTC(), Error: "the strata process running the container died",
	}
	return cur, m.setState(cur.ID, cur.State)
}

// WithRootfs calls fn with c's merged root filesystem: where it is mounted
// while c runs, otherwise a temporary mount (at a separate path) that is
// undone when fn returns. While fn runs, c cannot be started.
func (m *Manager) WithRootfs(ctx context.Context, c Container, fn func(rootfs string) error) error {
	lockF, ok, err := tryLockRunning(m.lockPath(c.ID))
	if err != nil {
		return err
	}
	if !ok {
		rootfs := m.RootfsDir(c.ID)
		if mounted, _ := mountinfo.Mounted(rootfs); !mounted {
			return fmt.Errorf("container %s is starting or stopping: its root filesystem is not mounted", c.ID[:12])
		}
		return fn(rootfs)
	}
	defer unlock(lockF)
	mounts, err := m.store.Snapshots.Mounts(ctx, c.SnapshotKey)
	if err != nil {
		return fmt.Errorf("container layer %s: %w", c.SnapshotKey, err)
	}
	tmp, err := os.MkdirTemp(m.Dir(c.ID), "mnt-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := snapshot.MountAll(mounts, tmp); err != nil {
		return fmt.Errorf("mount container %s root filesystem: %w", c.ID[:12], err)
	}
	ferr := fn(tmp)
	if err := snapshot.UnmountAll(tmp); err != nil && ferr == nil {
		ferr = fmt.Errorf("unmount container %s root filesystem: %w", c.ID[:12], err)
	}
	return ferr
}
