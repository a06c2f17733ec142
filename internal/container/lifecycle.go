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
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/strata-project/strata/internal/errdefs"
	"github.com/strata-project/strata/internal/events"
	"github.com/strata-project/strata/internal/lockfile"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/snapshot"
)

// RunAttached runs c in this process with the user's streams and returns
// its exit status once it ends (`run` without -d, `start -a`). Signals that
// strata receives are relayed to the container.
func (m *Manager) RunAttached(ctx context.Context, c Container, user AttachIO) (int, error) {
	if err := m.userStart(c); err != nil {
		return -1, &StartError{Code: 125, Err: err}
	}
	s, err := m.newStdioStreams(c, user)
	if err != nil {
		return -1, &StartError{Code: 125, Err: err}
	}
	return m.run(ctx, c.ID, runOptions{streams: s, forwardSignals: true})
}

// RestartDetached continues the restart policy of a container whose
// foreground run (RunAttached) ended with code: as with docker, the user's
// command returns, and the container restarts in the background, under a
// monitor (see StartDetached for monitor). It reports whether it did.
func (m *Manager) RestartDetached(ctx context.Context, id string, code int, monitor []string) (bool, error) {
	c, err := m.lookup(id)
	if err != nil || !c.Config.RestartPolicy.shouldRestart(code, c.RestartCount, c.ManuallyStopped) {
		return false, nil
	}
	if err := m.updateRecord(id, func(c *Container) error {
		c.RestartCount++
		return nil
	}); err != nil {
		return false, err
	}
	time.Sleep(restartDelayMin) // the first step of docker's backoff
	return true, m.startMonitor(ctx, c, monitor)
}

// userStart clears what a user's start resets: the manual stop that held
// the restart policy back, and the restart count.
func (m *Manager) userStart(c Container) error {
	if lockfile.Held(m.lockPath(c.ID)) {
		return nil
	}
	return m.updateRecord(c.ID, func(c *Container) error {
		c.ManuallyStopped, c.RestartCount = false, 0
		return nil
	})
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
	if lockfile.Held(m.lockPath(c.ID)) {
		return nil
	}
	if err := m.userStart(c); err != nil {
		return &StartError{Code: 125, Err: err}
	}
	return m.startMonitor(ctx, c, monitor)
}

// startMonitor starts the monitor of c and waits for its report.
func (m *Manager) startMonitor(ctx context.Context, c Container, monitor []string) error {
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
	// Each run (restarts too) gets its own log writer and stdin fifo.
	detached := func() (streams, error) {
		s, err := m.newStdioStreams(c, AttachIO{})
		if err == nil && c.Config.OpenStdin {
			s.stdin, err = m.openStdinFifo(c.ID)
		}
		return s, err
	}
	s, err := detached()
	if err != nil {
		_ = json.NewEncoder(report).Encode(monitorReport{Error: err.Error(), Code: 125})
		report.Close()
		return err
	}
	reported := false
	_, err = m.run(ctx, id, runOptions{
		streams: s, newStreams: detached, restart: true,
		started: func(pid int) {
			if reported {
				return // a restart
			}
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

// StopOptions override how Stop stops a container; zero values take the
// container's --stop-signal/--stop-timeout, then the image's STOPSIGNAL,
// then SIGTERM and 10 seconds.
type StopOptions struct {
	Signal  string         // `stop -s`
	Timeout *time.Duration // `stop -t`; negative waits forever
}

// DefaultStopTimeout is docker's grace period before SIGKILL.
const DefaultStopTimeout = 10 * time.Second

// Stop sends the stop signal, waits up to the timeout for the container to
// end, then kills it; its restart policy then leaves it stopped. Stopping
// a stopped container does nothing.
func (m *Manager) Stop(ctx context.Context, c Container, o StopOptions) error {
	lock := m.lockPath(c.ID)
	if !lockfile.Held(lock) {
		return nil
	}
	if err := m.manuallyStopped(c.ID); err != nil {
		return err
	}
	done := lockfile.Released(lock)
	name := o.Signal
	if name == "" {
		name = c.Config.StopSignal
	}
	if name == "" {
		name = c.ImageConfig.StopSignal
	}
	sig, err := oci.StopSignal(name)
	if err != nil {
		if o.Signal != "" {
			return err
		}
		sig = syscall.SIGTERM
	}
	timeout := DefaultStopTimeout
	if c.Config.StopTimeout != nil {
		timeout = time.Duration(*c.Config.StopTimeout) * time.Second
	}
	if o.Timeout != nil {
		timeout = *o.Timeout
	}
	if err := m.signal(ctx, c, sig, false); err != nil {
		return err
	}
	stopped := func() error {
		m.event(c, "stop", nil)
		return nil
	}
	if timeout >= 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-done:
			return stopped()
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
		return stopped()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// manuallyStopped records that the user stopped the container, so that its
// restart policy does not start it again.
func (m *Manager) manuallyStopped(id string) error {
	return m.updateRecord(id, func(c *Container) error {
		c.ManuallyStopped = true
		return nil
	})
}

// Kill sends sig to the container's init process; like stop, it holds the
// restart policy back.
func (m *Manager) Kill(ctx context.Context, c Container, sig syscall.Signal) error {
	if !lockfile.Held(m.lockPath(c.ID)) || c.State.Restarting {
		return fmt.Errorf("cannot kill container %s: container %s is not running: %w", c.Name, c.ID[:12], ErrNotRunning)
	}
	if err := m.manuallyStopped(c.ID); err != nil {
		return err
	}
	return m.signal(ctx, c, sig, false)
}

// signal delivers sig through the runtime; a container that has just ended
// is not an error. A paused container is resumed after the signal, as
// docker does, so that the signal is delivered at all.
func (m *Manager) signal(ctx context.Context, c Container, sig syscall.Signal, all bool) error {
	rt, err := oci.New(c.Config.Runtime, m.runtimeRoot(c.Config.Runtime))
	if err != nil {
		return err
	}
	// Logged first: the monitor logs the die the signal causes.
	m.event(c, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
	err = rt.Kill(ctx, c.ID, sig, all)
	if errors.Is(err, oci.ErrNotRunning) || errors.Is(err, oci.ErrNotExist) {
		return nil
	}
	if err != nil {
		// It may have ended between our look and the signal (runc kill
		// --all then fails on the cgroup it is removing).
		if st, serr := rt.State(ctx, c.ID); serr != nil || st.Status != oci.StatusRunning && st.Status != oci.StatusPaused {
			return nil
		}
		return err
	}
	if cur, lerr := m.lookup(c.ID); lerr == nil && cur.State.Paused {
		return m.resume(ctx, rt, cur)
	}
	return nil
}

// Pause freezes every process of a running container (cgroup freezer).
func (m *Manager) Pause(ctx context.Context, c Container) error {
	rt, err := m.live(c)
	if err != nil {
		return err
	}
	if c.State.Paused {
		return errdefs.Conflictf("Container %s is already paused", c.ID)
	}
	if err := rt.Pause(ctx, c.ID); err != nil {
		return fmt.Errorf("cannot pause container %s: %w", c.ID[:12], err)
	}
	if err := m.updateRecord(c.ID, func(c *Container) error {
		c.State.Paused = true
		return nil
	}); err != nil {
		return err
	}
	m.event(c, "pause", nil)
	return nil
}

// Unpause thaws a paused container.
func (m *Manager) Unpause(ctx context.Context, c Container) error {
	rt, err := m.live(c)
	if err != nil {
		return err
	}
	if !c.State.Paused {
		return errdefs.Conflictf("Container %s is not paused", c.ID)
	}
	return m.resume(ctx, rt, c)
}

func (m *Manager) resume(ctx context.Context, rt *oci.Runtime, c Container) error {
	// A SIGKILL thaws the container in the runtime already ("not paused").
	if err := rt.Resume(ctx, c.ID); err != nil && !errors.Is(err, oci.ErrNotExist) && !errors.Is(err, oci.ErrNotRunning) && !strings.Contains(err.Error(), "not paused") {
		return fmt.Errorf("cannot unpause container %s: %w", c.ID[:12], err)
	}
	if err := m.updateRecord(c.ID, func(c *Container) error {
		c.State.Paused = false
		return nil
	}); err != nil {
		return err
	}
	m.event(c, "unpause", nil)
	return nil
}

// live returns the runtime of c when its process is running (not waiting
// for a restart), else docker's "is not running" error.
func (m *Manager) live(c Container) (*oci.Runtime, error) {
	if c.State.Status != StatusRunning || c.State.Restarting || !lockfile.Held(m.lockPath(c.ID)) {
		return nil, errdefs.Conflictf("Container %s is not running", c.ID)
	}
	return oci.New(c.Config.Runtime, m.runtimeRoot(c.Config.Runtime))
}

// Top lists the container's processes: the runtime runs ps on the host
// with psArgs (ps's own default: -ef) and keeps the container's lines.
func (m *Manager) Top(ctx context.Context, c Container, psArgs []string) ([]byte, error) {
	rt, err := m.live(c)
	if err != nil {
		return nil, err
	}
	return rt.Ps(ctx, c.ID, psArgs)
}

// Rename gives c a new name.
func (m *Manager) Rename(ctx context.Context, c Container, name string) error {
	name = strings.TrimPrefix(name, "/")
	if err := ValidateName(name); err != nil {
		return err
	}
	if name == c.Name {
		return errdefs.Invalidf("Renaming a container with the same name as its current name")
	}
	err := m.records().Update(func(tx *metadata.Tx) error {
		nb, err := tx.CreateBucket(namesBucket)
		if err != nil {
			return err
		}
		if other := nb.Get([]byte(name)); other != nil {
			return nameInUse{name: name, id: string(other)}
		}
		cur, err := load(tx, c.ID)
		if err != nil {
			return err
		}
		if err := nb.Delete([]byte(cur.Name)); err != nil {
			return err
		}
		if err := nb.Put([]byte(name), []byte(c.ID)); err != nil {
			return err
		}
		cur.Name = name
		return put(tx, cur)
	})
	if err != nil {
		return err
	}
	old := c.Name
	c.Name = name
	m.event(c, "rename", map[string]string{"oldName": "/" + old})
	return nil
}

// WaitCondition is docker's `wait --condition`.
type WaitCondition string

const (
	WaitNotRunning WaitCondition = "not-running" // now, if it is not running
	WaitNextExit   WaitCondition = "next-exit"   // its next exit from now
	WaitRemoved    WaitCondition = "removed"     // its removal
)

// WaitFor blocks until cond holds for c and returns its exit code then.
// next-exit and removed follow the event log, so they see exits and
// removals by any strata process.
func (m *Manager) WaitFor(ctx context.Context, c Container, cond WaitCondition) (int, error) {
	switch cond {
	case "", WaitNotRunning:
		return m.Wait(ctx, c)
	case WaitNextExit, WaitRemoved:
	default:
		return -1, errdefs.Invalidf("invalid condition: %q", cond)
	}
	action := "die"
	if cond == WaitRemoved {
		action = "destroy"
	}
	code, found := -1, false
	since := time.Now()
	if cond == WaitRemoved && !lockfile.Held(m.lockPath(c.ID)) {
		// Its exit may be long past: the code is the record's.
		code = c.State.ExitCode
	}
	err := m.events.Read(ctx, since, time.Time{}, true, func(e events.Event) bool {
		if e.Actor.ID != c.ID {
			return true
		}
		if e.Action == "die" {
			code, _ = strconv.Atoi(e.Actor.Attributes["exitCode"])
		}
		found = e.Action == action
		return !found
	})
	if err != nil {
		return -1, err
	}
	if !found {
		return -1, ctx.Err()
	}
	return code, nil
}

// Frozen runs fn with c's processes paused when it is running, so that
// what fn reads of its files (commit) is not changing underneath; the
// container resumes afterwards whatever fn returned.
func (m *Manager) Frozen(ctx context.Context, c Container, fn func() error) error {
	// A container the user paused stays paused, and is already frozen.
	if c.State.Status != StatusRunning || c.State.Paused || c.State.Restarting {
		return fn()
	}
	rt, err := oci.New(c.Config.Runtime, m.runtimeRoot(c.Config.Runtime))
	if err != nil {
		return err
	}
	// The freeze lock tells a later command that the container was paused
	// by a process that died before resuming it (see Thaw).
	if err := os.MkdirAll(m.frozenDir(), 0o700); err != nil {
		return err
	}
	fl, err := lockfile.Wait(ctx, m.frozenLock(c.ID), lockfile.Exclusive)
	if err != nil {
		return err
	}
	defer func() {
		os.Remove(m.frozenLock(c.ID))
		fl.Unlock()
	}()
	switch err := rt.Pause(ctx, c.ID); {
	case errors.Is(err, oci.ErrNotRunning) || errors.Is(err, oci.ErrNotExist):
		return fn() // it ended meanwhile: nothing to freeze
	case err != nil:
		return fmt.Errorf("pause container %s: %w", c.ID[:12], err)
	}
	defer rt.Resume(context.WithoutCancel(ctx), c.ID)
	return fn()
}

func (m *Manager) frozenDir() string           { return filepath.Join(m.store.Root(), "frozen") }
func (m *Manager) frozenLock(id string) string { return filepath.Join(m.frozenDir(), id+".lock") }

// Thaw resumes the containers that a process paused (commit) and died
// before resuming, and returns their IDs.
func (m *Manager) Thaw(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(m.frozenDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var thawed []string
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".lock")
		if !ok {
			continue
		}
		l, ok, err := lockfile.TryLock(m.frozenLock(id), lockfile.Exclusive)
		if err != nil || !ok {
			continue // its freezer lives
		}
		if c, err := m.lookup(id); err == nil {
			if rt, err := oci.New(c.Config.Runtime, m.runtimeRoot(c.Config.Runtime)); err == nil {
				if rt.Resume(ctx, id) == nil {
					thawed = append(thawed, id)
				}
			}
		}
		os.Remove(m.frozenLock(id))
		l.Unlock()
	}
	return thawed, nil
}

// Wait blocks until c is not running and returns its exit code (docker's
// default "not-running" condition: a created container returns at once).
func (m *Manager) Wait(ctx context.Context, c Container) (int, error) {
	select {
	case <-lockfile.Released(m.lockPath(c.ID)):
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
	lockF, ok, err := lockfile.TryLock(m.lockPath(c.ID), lockfile.Exclusive)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No directory: a create that did not finish. Nothing runs it.
	case err != nil:
		return err
	case !ok:
		if !force {
			return errdefs.Conflictf("cannot remove container %q: container is running: stop the container before removing or force remove", "/"+c.Name)
		}
		// Its monitor must not restart it meanwhile.
		if err := m.manuallyStopped(c.ID); err != nil {
			return err
		}
		if err := m.signal(ctx, c, syscall.SIGKILL, true); err != nil {
			return err
		}
		if lockF, err = lockfile.Wait(ctx, m.lockPath(c.ID), lockfile.Exclusive); err != nil {
			return err
		}
	}
	defer lockF.Unlock()
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
		if err := m.store.Snapshots().Remove(ctx, key); err != nil && !errors.Is(err, metadata.ErrNotFound) {
			return fmt.Errorf("remove container %s layer: %w", c.ID[:12], err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove container %s: %w", c.ID[:12], err)
	}
	if err := m.deleteRecord(c); err != nil {
		return err
	}
	m.event(c, "destroy", nil)
	return nil
}

// reconcile fixes the record of a container whose runner died: the record
// says running but nobody holds the running lock. The runtime's container,
// if still there, is killed and deleted and the rootfs unmounted.
func (m *Manager) reconcile(ctx context.Context, c Container) (Container, error) {
	if c.State.Status != StatusRunning {
		return c, nil
	}
	lockF, ok, err := lockfile.TryLock(m.lockPath(c.ID), lockfile.Exclusive)
	if err != nil || !ok {
		return c, nil // alive (or unknowable): the record stands
	}
	defer lockF.Unlock()
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
	lockF, ok, err := lockfile.TryLock(m.lockPath(c.ID), lockfile.Exclusive)
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
	defer lockF.Unlock()
	mounts, err := m.store.Snapshots().Mounts(ctx, c.SnapshotKey)
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

// MountInUse tells whether path, a mount point under the store root, is
// the root filesystem or network namespace of a container whose runner is
// alive.
func (m *Manager) MountInUse(path string) bool {
	if rel, err := filepath.Rel(filepath.Join(m.store.Root(), "run", "netns"), path); err == nil && !strings.Contains(rel, "..") && !strings.Contains(rel, "/") {
		return lockfile.Held(m.lockPath(rel))
	}
	rel, err := filepath.Rel(filepath.Join(m.store.Root(), "containers"), path)
	if err != nil {
		return false
	}
	id, rest, _ := strings.Cut(rel, string(filepath.Separator))
	if id == "" || id == ".." || !strings.HasPrefix(rest, "rootfs") {
		return false
	}
	return lockfile.Held(m.lockPath(id))
}
