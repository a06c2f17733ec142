package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/errdefs"
	"github.com/strata-project/strata/internal/lockfile"
	"github.com/strata-project/strata/internal/oci"
)

// ExecConfig is what `exec` was given.
type ExecConfig struct {
	Cmd        []string
	Env        []string // KEY=VALUE, host values already resolved
	WorkingDir string   // empty: the container's
	User       string   // empty: the container's
	Tty        bool
	Detach     bool
	Privileged bool
	// PtyHolder is the command line of the process that keeps a detached
	// exec's pty (-d -t) open, reading and discarding its output, as
	// docker's daemon does: it gets the pty master as fd 3.
	PtyHolder []string
}

// ExecError is an exec that did not start; Code is docker's status for it:
// 127 when the command is not found, 126 for any other failure of the
// runtime to start it (not executable, bad working directory, unknown
// user).
type ExecError struct {
	Code int
	Err  error
}

func (e *ExecError) Error() string { return e.Err.Error() }
func (e *ExecError) Unwrap() error { return e.Err }

func execError(err error) *ExecError {
	var rerr *oci.Error
	if errors.As(err, &rerr) && rerr.Msg != "" {
		// docker's wording, without the runtime's command line
		err = fmt.Errorf("OCI runtime exec failed: %s", rerr.Msg)
	}
	msg := strings.ToLower(err.Error())
	code := 126
	if strings.Contains(msg, "executable file not found") ||
		(strings.Contains(msg, "exec: ") && strings.Contains(msg, "no such file or directory") && !strings.Contains(msg, "chdir")) {
		code = 127
	}
	return &ExecError{Code: code, Err: err}
}

// Exec runs cfg.Cmd in the running container c with the user's streams and
// returns its exit status (128+N when killed by signal N). With Detach it
// returns 0 once the process runs, its streams on /dev/null. Signals
// strata receives are relayed to the process. Errors before the process
// runs are *ExecError, except for a container that is not running
// (ErrNotRunning).
func (m *Manager) Exec(ctx context.Context, c Container, cfg ExecConfig, user AttachIO) (int, error) {
	if c.State.Status != StatusRunning || !lockfile.Held(m.lockPath(c.ID)) {
		return -1, fmt.Errorf("container %s is not running: %w", c.ID, ErrNotRunning)
	}
	if c.State.Paused {
		return -1, errdefs.Conflictf("Container %s is paused, unpause the container before exec", c.ID)
	}
	rt, err := oci.New(c.Config.Runtime, m.runtimeRoot(c.Config.Runtime))
	if err != nil {
		return -1, err
	}
	proc, err := m.execProcess(c, cfg, user)
	if err != nil {
		return -1, &ExecError{Code: 126, Err: err}
	}
	if err := becomeSubreaper(); err != nil {
		return -1, err
	}
	id, err := newExecID()
	if err != nil {
		return -1, err
	}

	if cfg.Detach {
		// No terminal: its streams are /dev/null. A terminal: a holder
		// process drains it.
		var pid int
		if cfg.Tty {
			s := &ptyHolder{argv: cfg.PtyHolder}
			pid, err = m.startExec(ctx, rt, c.ID, proc, s)
			if err == nil {
				s.exited()
			}
		} else {
			pid, err = rt.Exec(ctx, c.ID, proc, oci.IO{})
		}
		if err != nil {
			return -1, execError(err)
		}
		m.recordExec(c.ID, id, pid)
		return 0, nil
	}

	// Signals are caught before the process starts, so that one arriving
	// while the runtime sets it up is delivered to it, not lost (or fatal
	// to strata).
	pidCh := make(chan int, 1)
	stopSignals := oci.ForwardSignalsToPid(pidCh)
	// An exec's output is the user's only: docker keeps it out of the
	// container's log.
	var s streams = &stdioStreams{user: user}
	pid, err := m.startExec(context.WithoutCancel(ctx), rt, c.ID, proc, s)
	if err != nil {
		close(pidCh)
		stopSignals()
		return -1, execError(err)
	}
	pidCh <- pid
	m.recordExec(c.ID, id, pid)
	defer os.Remove(m.execPath(c.ID, id))

	// Wait without reaping first: until the process is reaped its pid
	// cannot be reused, so no relayed signal can hit a stranger.
	_ = waitExited(pid)
	stopSignals()
	code, werr := waitPid(pid)
	s.exited()
	return code, werr
}

// ptyHolder hands a detached exec's pty master to a process of its own
// that outlives strata and drains the pty until the exec ends.
type ptyHolder struct {
	argv   []string
	master *os.File
}

func (p *ptyHolder) io() (oci.IO, error) { return oci.IO{}, nil }

func (p *ptyHolder) created(master *os.File) error {
	p.master = master
	if len(p.argv) == 0 {
		return errors.New("a detached exec with a terminal needs a process to hold it")
	}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.ExtraFiles = []*os.File{master} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the pty holder: %w", err)
	}
	// Reaped if we live long enough; a CLI exits first and it is adopted.
	go func() { _ = cmd.Wait() }()
	return nil
}

func (p *ptyHolder) exited() {
	if p.master != nil {
		p.master.Close()
	}
}

// DrainPty reads f (a pty master) until the last process holding its
// other side is gone: the body of the pty holder.
func DrainPty(f *os.File) {
	_, _ = io.Copy(io.Discard, f)
}

// startExec starts proc through the runtime wired to s and returns its pid.
func (m *Manager) startExec(ctx context.Context, rt *oci.Runtime, id string, proc *specs.Process, s streams) (int, error) {
	stdio, err := s.io()
	if err != nil {
		s.exited()
		return 0, err
	}
	if !proc.Terminal {
		pid, err := rt.Exec(ctx, id, proc, stdio)
		if err != nil {
			s.exited()
			return 0, err
		}
		if err := s.created(nil); err != nil {
			s.exited()
			return pid, err
		}
		return pid, nil
	}
	sock, err := oci.NewConsoleSocket()
	if err != nil {
		s.exited()
		return 0, err
	}
	defer sock.Close()
	var master *os.File
	got := make(chan error, 1)
	go func() {
		var err error
		master, err = sock.Receive(ctx)
		got <- err
	}()
	pid, err := rt.Exec(ctx, id, proc, oci.IO{Console: sock})
	if err != nil {
		sock.Close()
		<-got
		if master != nil {
			master.Close()
		}
		s.exited()
		return 0, err
	}
	if err := <-got; err != nil {
		s.exited()
		return 0, err
	}
	if err := s.created(master); err != nil {
		s.exited()
		return pid, err
	}
	return pid, nil
}

// execProcess builds the exec's process from the one run wrote into the
// container's bundle, so it inherits the container's confinement.
func (m *Manager) execProcess(c Container, cfg ExecConfig, user AttachIO) (*specs.Process, error) {
	spec, err := oci.ReadBundle(m.Dir(c.ID))
	if err != nil {
		return nil, err
	}
	o := oci.ExecOptions{
		Args: cfg.Cmd, Env: cfg.Env, WorkingDir: cfg.WorkingDir,
		Terminal: cfg.Tty, Privileged: cfg.Privileged,
	}
	for _, f := range []*os.File{user.Stdout, user.Stdin} {
		if f != nil && o.ConsoleSize == nil && cfg.Tty {
			o.ConsoleSize = oci.ConsoleSize(f)
		}
	}
	if cfg.User != "" {
		uid, gid, groups, err := oci.ResolveUser(m.RootfsDir(c.ID), cfg.User)
		if err != nil {
			return nil, err
		}
		// --group-add holds for an exec'd process too, as in docker.
		added, err := oci.ResolveGroups(m.RootfsDir(c.ID), c.Config.Security.GroupAdd)
		if err != nil {
			return nil, err
		}
		o.User = &specs.User{UID: uid, GID: gid, AdditionalGids: append(groups, added...)}
	}
	return oci.ExecProcess(spec.Process, o)
}

// Exec records: containers/<id>/exec/<exec id> holds "pid starttime" of a
// process exec started, so `inspect` can list the ones still running
// (docker's ExecIDs) whoever started them, -d included. The start time
// tells a live process from a later one that reused its pid.

func (m *Manager) execPath(id, execID string) string {
	return filepath.Join(m.Dir(id), "exec", execID)
}

func newExecID() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("exec id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// recordExec is best effort: a missing record only hides the exec from
// inspect.
func (m *Manager) recordExec(id, execID string, pid int) {
	start, err := procStartTime(pid)
	if err != nil {
		return
	}
	p := m.execPath(id, execID)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return
	}
	_ = os.WriteFile(p, []byte(strconv.Itoa(pid)+" "+start), 0o600)
}

// ExecIDs lists the execs of c whose process is still running, removing
// the records of those that ended.
func (m *Manager) ExecIDs(c Container) []string {
	dir := filepath.Join(m.Dir(c.ID), "exec")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if execAlive(p) {
			out = append(out, e.Name())
		} else {
			_ = os.Remove(p)
		}
	}
	sort.Strings(out)
	return out
}

func execAlive(record string) bool {
	b, err := os.ReadFile(record)
	if err != nil {
		return false
	}
	pidS, start, ok := strings.Cut(string(b), " ")
	pid, err := strconv.Atoi(pidS)
	if !ok || err != nil {
		return false
	}
	now, err := procStartTime(pid)
	return err == nil && now == start
}

// procStartTime is field 22 of /proc/PID/stat (clock ticks since boot); a
// zombie counts as ended.
func procStartTime(pid int) (string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it start after the last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return "", errors.New("malformed stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return "", errors.New("process ended")
	}
	return f[19], nil
}

// waitExited blocks until child pid has exited, leaving it unreaped.
func waitExited(pid int) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
