package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/cgroup"
	"github.com/strata-project/strata/internal/lockfile"
	"github.com/strata-project/strata/internal/netconf"
	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/snapshot"
)

// StartError is a container that could not be started. Code is the exit
// status docker gives such a failure: 127 when the command is not found,
// 126 when it cannot be executed, 125 for anything else (the runtime's own
// trouble, such as crun refusing this host's cgroups).
type StartError struct {
	Code int
	Err  error
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

func startError(err error) *StartError {
	var se *StartError
	if errors.As(err, &se) {
		return se
	}
	msg := strings.ToLower(err.Error())
	code := 125
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory") && strings.Contains(msg, "exec"):
		code = 127
	case strings.Contains(msg, "permission denied") && strings.Contains(msg, "exec"):
		code = 126
	}
	return &StartError{Code: code, Err: err}
}

// streams connect the container's process to whoever runs it.
type streams interface {
	// io is what the runtime gives the process when there is no terminal.
	io() (oci.IO, error)
	// created runs once the runtime created the container, before its
	// process starts; master is the pty master with a terminal, else nil.
	created(master *os.File) error
	// exited runs when the process has exited (or never started): it waits
	// until all output is copied and releases everything.
	exited()
}

// runOptions say how one run of a container is wired.
type runOptions struct {
	streams streams
	// restart: run again as the restart policy says (the monitor), with
	// fresh streams from newStreams.
	restart        bool
	newStreams     func() (streams, error)
	forwardSignals bool          // relay strata's signals (foreground)
	started        func(pid int) // the process is running
}

// run is the whole life of one container process, for whoever runs it (the
// foreground CLI or the monitor): take the running lock, mount the root
// filesystem, write the bundle, create and start through the runtime, wait,
// record the exit, clean up, and honour --rm. It returns the exit status.
// Errors before the process starts are *StartError.
func (m *Manager) run(ctx context.Context, id string, o runOptions) (code int, err error) {
	lockF, ok, err := lockfile.TryLock(m.lockPath(id), lockfile.Exclusive)
	if err != nil {
		return -1, startError(err)
	}
	if !ok {
		return -1, &StartError{Code: 125, Err: fmt.Errorf("container %s is already running or busy: %w", id[:12], ErrRunning)}
	}
	defer lockF.Unlock()
	return m.supervise(ctx, id, o)
}

// supervise runs the container, and again as its restart policy says when
// o.restart, with docker's backoff; the caller holds the running lock,
// across restarts too, so the container counts as running throughout.
func (m *Manager) supervise(ctx context.Context, id string, o runOptions) (int, error) {
	var delay time.Duration
	for {
		began := time.Now()
		code, err := m.runOnce(ctx, id, o)
		if err != nil || !o.restart {
			return code, err
		}
		c, err := m.lookup(id)
		if err != nil || !c.Config.RestartPolicy.shouldRestart(code, c.RestartCount, c.ManuallyStopped) {
			return code, nil
		}
		delay = nextDelay(delay, time.Since(began))
		if !m.waitRestart(ctx, id, delay, c.State) {
			return code, nil
		}
		if err := m.updateRecord(id, func(c *Container) error {
			c.RestartCount++
			return nil
		}); err != nil {
			return code, err
		}
		if o.streams, err = o.newStreams(); err != nil {
			return code, err
		}
	}
}

// runOnce runs the container's process once, from mounting its root
// filesystem to recording its exit; the caller holds the running lock.
func (m *Manager) runOnce(ctx context.Context, id string, o runOptions) (code int, err error) {
	cleanupCtx := context.WithoutCancel(ctx)
	c, err := m.lookup(id)
	if err != nil {
		return -1, &StartError{Code: 125, Err: err}
	}
	// --rm also removes a container that failed to start. Deferred after
	// unlock, so it runs first, still under the lock.
	defer func() {
		var se *StartError
		if c.Config.AutoRemove && errors.As(err, &se) {
			if m.removeLocked(cleanupCtx, c) == nil {
				_ = m.removeAnonymousVolumes(cleanupCtx, c)
			}
		}
	}()
	rt, err := oci.New(c.Config.Runtime, m.runtimeRoot(c.Config.Runtime))
	if err != nil {
		return -1, &StartError{Code: 125, Err: err}
	}
	// A runner that died may have left the runtime's record behind.
	m.deleteRuntimeState(cleanupCtx, rt, id)
	// First, so that pasta sets up while the rootfs mounts and the
	// runtime creates the container.
	netw, err := m.startNetwork(ctx, c)
	if err != nil {
		return -1, m.failStart(c, err)
	}
	defer netw.stop()

	rootfs := m.RootfsDir(id)
	if err := m.mountRootfs(ctx, c, rootfs); err != nil {
		return -1, m.failStart(c, err)
	}
	mounted := true
	defer func() {
		if mounted {
			_ = snapshot.UnmountAll(rootfs)
		}
	}()
	spec, err := m.spec(ctx, c, rootfs, netw)
	if err != nil {
		return -1, m.failStart(c, err)
	}
	if err := oci.WriteBundle(m.Dir(id), spec); err != nil {
		return -1, m.failStart(c, err)
	}

	pid, err := m.createAndStart(ctx, rt, c, o, netw)
	if err != nil {
		return -1, m.failStart(c, err)
	}
	m.event(c, "start", nil)
	// The record says "health: starting" before run -d returns, as docker's
	// does: a ps right after it shows that, never no health at all.
	stopHealth := m.startHealth(ctx, c)
	if o.started != nil {
		o.started(pid)
	}
	var stopSignals func()
	if o.forwardSignals {
		stopSignals = rt.ForwardSignals(id)
	}
	code, waitErr := waitPid(pid)
	stopHealth()
	if stopSignals != nil {
		stopSignals()
	}
	// Its ports are free as soon as it has exited: pasta ends while the
	// rest is cleaned up, and before the exit is recorded.
	netStopped := netw.stopAsync()
	o.streams.exited()

	// Read before the runtime deletes the cgroup with its counters.
	oomKills, _ := cgroup.Open(cgroup.Path(id)).OOMKills()
	m.deleteRuntimeState(cleanupCtx, rt, id)
	uerr := snapshot.UnmountAll(rootfs)
	mounted = uerr != nil
	netStopped()
	m.releaseVolumes(c)
	st := State{Status: StatusExited, ExitCode: code, FinishedAt: time.Now().UTC(), OOMKilled: oomKills > 0}
	if cur, err := m.lookup(id); err == nil {
		st.StartedAt, st.Health = cur.State.StartedAt, cur.State.Health
	}
	if waitErr != nil {
		st.Error = waitErr.Error()
	}
	if err := m.setState(id, st); err != nil {
		return code, err
	}
	if st.OOMKilled {
		m.event(c, "oom", nil)
	}
	m.event(c, "die", map[string]string{"exitCode": strconv.Itoa(code)})
	if c.Config.AutoRemove {
		if err := m.removeLocked(cleanupCtx, c); err != nil {
			return code, err
		}
		// docker's run --rm also removes the container's anonymous volumes.
		if err := m.removeAnonymousVolumes(cleanupCtx, c); err != nil {
			return code, err
		}
	}
	if waitErr != nil {
		return code, waitErr
	}
	if uerr != nil {
		return code, fmt.Errorf("unmount container %s: %w", id[:12], uerr)
	}
	return code, nil
}

// createAndStart runs `runtime create` and `runtime start`, records the
// container as running and returns its init pid. This process is made a
// child subreaper first, so the init process, whose parent (the runtime)
// exits after create, becomes our child and we can wait for its status.
func (m *Manager) createAndStart(ctx context.Context, rt *oci.Runtime, c Container, o runOptions, netw *runNet) (pid int, err error) {
	if err := becomeSubreaper(); err != nil {
		o.streams.exited()
		return 0, err
	}
	stdio, err := o.streams.io()
	if err != nil {
		o.streams.exited()
		return 0, err
	}
	var master *os.File
	if c.Config.Tty {
		sock, err := oci.NewConsoleSocket()
		if err != nil {
			o.streams.exited()
			return 0, err
		}
		defer sock.Close()
		stdio = oci.IO{Console: sock}
		got := make(chan error, 1)
		go func() {
			var err error
			master, err = sock.Receive(ctx)
			got <- err
		}()
		if err := rt.Create(ctx, c.ID, m.Dir(c.ID), stdio); err != nil {
			sock.Close()
			<-got
			if master != nil {
				master.Close()
			}
			o.streams.exited()
			return 0, err
		}
		if err := <-got; err != nil {
			o.streams.exited()
			m.deleteRuntimeState(context.WithoutCancel(ctx), rt, c.ID)
			return 0, err
		}
	} else if err := rt.Create(ctx, c.ID, m.Dir(c.ID), stdio); err != nil {
		o.streams.exited()
		return 0, err
	}
	// From here the container exists in the runtime: failures delete it.
	fail := func(err error) (int, error) {
		m.deleteRuntimeState(context.WithoutCancel(ctx), rt, c.ID)
		o.streams.exited()
		return 0, err
	}
	if err := o.streams.created(master); err != nil {
		return fail(err)
	}
	st, err := rt.State(ctx, c.ID)
	if err != nil {
		return fail(err)
	}
	if err := netw.ready(ctx); err != nil {
		return fail(err)
	}
	now := time.Now().UTC()
	running := State{Status: StatusRunning, Pid: st.Pid, StartedAt: now, Ports: netw.ports, PastaPid: netw.pastaPid()}
	if err := m.setState(c.ID, running); err != nil {
		return fail(err)
	}
	if err := rt.Start(ctx, c.ID); err != nil {
		// The record goes back to what it was; failStart adds the error.
		_ = m.setState(c.ID, c.State)
		return fail(err)
	}
	return st.Pid, nil
}

// failStart records why a start failed and turns err into a StartError.
func (m *Manager) failStart(c Container, err error) error {
	se := startError(err)
	st := c.State
	st.Error = se.Error()
	if st.Status == StatusExited {
		st.ExitCode = se.Code
	}
	_ = m.setState(c.ID, st)
	return se
}

// deleteRuntimeState removes the runtime's record of the container, if any.
func (m *Manager) deleteRuntimeState(ctx context.Context, rt *oci.Runtime, id string) {
	// runc and crun keep one directory per container under their root;
	// checking for it saves an exec of the runtime on every start.
	if _, err := os.Stat(filepath.Join(rt.StateRoot, id)); err != nil {
		return
	}
	_ = rt.Delete(ctx, id, true)
}

// mountRootfs mounts the container's snapshot on its bundle's rootfs,
// first clearing whatever a crashed runner left mounted there.
func (m *Manager) mountRootfs(ctx context.Context, c Container, rootfs string) error {
	mounts, err := m.store.Snapshots().Mounts(ctx, c.SnapshotKey)
	if err != nil {
		return fmt.Errorf("container layer %s: %w", c.SnapshotKey, err)
	}
	if err := snapshot.UnmountAll(rootfs); err != nil {
		return err
	}
	if err := os.MkdirAll(rootfs, 0o700); err != nil {
		return err
	}
	if err := snapshot.MountAll(mounts, rootfs); err != nil {
		return fmt.Errorf("mount container root filesystem: %w", err)
	}
	return nil
}

// spec builds the runtime config for c over the mounted rootfs.
func (m *Manager) spec(ctx context.Context, c Container, rootfs string, netw *runNet) (*specs.Spec, error) {
	nf := netconf.PathsIn(m.Dir(c.ID))
	network := c.Config.Network
	switch {
	case netw.shared != nil:
		// Its network's name files too, as docker does.
		nf = netconf.PathsIn(m.Dir(netw.shared.ID))
		network = netw.mode
	case network != oci.NetworkNone:
		network = oci.NetworkHost
	}
	o := oci.SpecOptions{
		Image:      c.ImageConfig.ImageConfig,
		Entrypoint: c.Config.Entrypoint, EntrypointSet: c.Config.EntrypointSet,
		Cmd: c.Config.Cmd, Env: c.Config.Env, WorkingDir: c.Config.WorkingDir,
		User: c.Config.User, Hostname: c.Config.Hostname, Domainname: c.Config.Domainname,
		ReadOnly: c.Config.ReadOnly, Terminal: c.Config.Tty,
		Network: network, NetworkNamespace: netw.netns,
		Rootfs:    rootfs,
		HostsPath: nf.Hosts, ResolvConfPath: nf.ResolvConf, HostnamePath: nf.Hostname,
		Security:    c.Config.Security,
		Resources:   c.Config.Resources,
		CgroupsPath: cgroup.Path(c.ID),
	}
	if c.Config.Init {
		var err error
		if o.InitPath, err = oci.InitBinary(); err != nil {
			return nil, err
		}
	}
	if len(c.Config.Mounts) > 0 {
		binds, err := m.specMounts(ctx, c, rootfs)
		if err != nil {
			return nil, err
		}
		o.Binds = binds
	}
	for _, b := range c.Config.Binds {
		if len(c.Config.Mounts) > 0 {
			break // resolved into Mounts at create
		}
		bind, err := oci.ParseBind(b)
		if err != nil {
			return nil, err
		}
		// Like docker, a missing host path becomes an empty directory
		// rather than a failed start.
		if _, err := os.Lstat(bind.Source); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(bind.Source, 0o755); err != nil {
				return nil, fmt.Errorf("create bind source %s: %w", bind.Source, err)
			}
		}
		o.Binds = append(o.Binds, bind)
	}
	var err error
	o.UID, o.GID, o.AdditionalGids, err = oci.ResolveUser(rootfs, o.EffectiveUser())
	if err != nil {
		return nil, err
	}
	added, err := oci.ResolveGroups(rootfs, c.Config.Security.GroupAdd)
	if err != nil {
		return nil, err
	}
	o.AdditionalGids = append(o.AdditionalGids, added...)
	spec, err := oci.Spec(o)
	if err != nil {
		return nil, err
	}
	return spec, nil
}

var subreaper struct {
	once sync.Once
	err  error
}

func becomeSubreaper() error {
	subreaper.once.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			subreaper.err = fmt.Errorf("become child subreaper: %w", err)
			return
		}
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, unix.SIGCHLD)
		go func() {
			for range ch {
				reapRuntimeOrphans()
			}
		}()
	})
	return subreaper.err
}

// reapRuntimeOrphans reaps the runtime's own processes that were adopted
// by this subreaper and have exited: a `runc exec` that ends (or is
// killed, as a timed-out health probe is) before its intermediate
// processes leaves them to us. Unreaped, they pile up as zombies, and one
// inside the container's PID namespace keeps its init from ever finishing
// dying, so a stop or rm -f waited forever. Only zombies named by runc's
// stages ("runc:[1:CHILD]", "runc:[2:INIT]") are reaped: processes this
// one starts itself are reaped by whoever waits for them.
func reapRuntimeOrphans() {
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			pid, err := strconv.Atoi(f)
			if err != nil || !runtimeZombie(pid) {
				continue
			}
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	}
}

// runtimeZombie tells whether pid has exited and is one of runc's stage
// processes (its name, from /proc/PID/stat, starts with "runc:[").
func runtimeZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || end+2 >= len(s) {
		return false
	}
	return s[end+2] == 'Z' && strings.HasPrefix(s[open+1:end], "runc:[")
}

// waitPid waits for our (adopted) child pid and returns a shell-style
// status: the exit code, or 128+N when killed by signal N.
func waitPid(pid int) (int, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("wait for container process %d: %w", pid, err)
		}
		break
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}
