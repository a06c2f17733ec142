package oci

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/strata-project/strata/internal/lockfile"
)

// Runtime drives one OCI runtime binary. Every call is one exec of the
// binary with --root StateRoot, so two strata processes sharing a store see
// the same containers; the runtime's own locking keeps them consistent.
type Runtime struct {
	Name      string // "runc" or "crun"
	Binary    string // absolute path of the binary
	StateRoot string // the runtime's --root: its per-container state lives here
}

// New finds the named runtime ("runc" or "crun"; empty means "runc") in PATH
// and makes sure stateRoot exists.
func New(name, stateRoot string) (*Runtime, error) {
	if name == "" {
		name = "runc"
	}
	if name != "runc" && name != "crun" {
		return nil, fmt.Errorf("unknown OCI runtime %q (supported: runc, crun)", name)
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("OCI runtime %s not found in PATH (install the %s package): %w", name, name, err)
	}
	if !strings.HasPrefix(stateRoot, "/") {
		return nil, fmt.Errorf("runtime state root %q is not an absolute path", stateRoot)
	}
	if err := os.MkdirAll(stateRoot, 0o700); err != nil {
		return nil, fmt.Errorf("create runtime state root: %w", err)
	}
	return &Runtime{Name: name, Binary: bin, StateRoot: stateRoot}, nil
}

// LogDir is where the runtime's JSON logs go: beside its state root, in
// the store, never in the system temp dir. Each log is flocked by the
// strata process that reads it, so CleanLogs knows a dead one.
func LogDir(stateRoot string) string { return filepath.Join(filepath.Dir(stateRoot), "logs") }

// CleanLogs removes the runtime logs in dir that no live process holds and
// says how many went.
func CleanLogs(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if lockfile.RemoveFree(filepath.Join(dir, e.Name())) {
			n++
		}
	}
	return n, nil
}

// runtimeLog is one command's log file, locked while in use.
type runtimeLog struct {
	path string
	lock *lockfile.Lock
}

// remove deletes the log, then drops its lock.
func (l *runtimeLog) remove() {
	os.Remove(l.path)
	l.lock.Unlock()
}

// Status is a container's state as the runtime reports it.
type Status string

const (
	StatusCreating Status = "creating"
	StatusCreated  Status = "created"
	StatusRunning  Status = "running"
	StatusPaused   Status = "paused"
	StatusStopped  Status = "stopped"
)

// State is the runtime's view of one container.
type State struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"` // of the container's init process, 0 once stopped
	Status      Status            `json:"status"`
	Bundle      string            `json:"bundle"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Error kinds a caller can test with errors.Is.
var (
	// ErrNotExist: the runtime has no container with that id (never created,
	// or deleted).
	ErrNotExist = errors.New("container does not exist")
	// ErrNotRunning: the operation needs a running container (kill).
	ErrNotRunning = errors.New("container is not running")
)

// Error is a failed runtime command. Msg is the runtime's own last error
// message, verbatim, so problems such as crun's "cgroups in hybrid mode not
// supported" reach the user unchanged.
type Error struct {
	Runtime string // "runc"
	Op      string // "run", "create", "start", "kill", "delete", "state", "list"
	ID      string
	Msg     string
	Err     error // the exec error (usually *exec.ExitError)
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Runtime)
	b.WriteString(" ")
	b.WriteString(e.Op)
	if e.ID != "" {
		b.WriteString(" ")
		b.WriteString(e.ID)
	}
	b.WriteString(": ")
	if e.Msg != "" {
		b.WriteString(e.Msg)
	} else if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is maps the runtimes' messages onto the error kinds. runc says
// `container "x" does not exist` / "container not running"; crun says
// "container `x` does not exist" / "... is not running".
func (e *Error) Is(target error) bool {
	msg := strings.ToLower(e.Msg)
	switch target {
	case ErrNotExist:
		return strings.Contains(msg, "does not exist")
	case ErrNotRunning:
		return strings.Contains(msg, "not running")
	}
	return false
}

// Run runs the bundle's process in the foreground (`runc run`) and returns
// its exit status; a process killed by signal N gives 128+N, as in a shell.
// A non-nil error means the runtime itself failed (bad spec, command not
// found in the image, cgroup trouble) and the code is then -1. The runtime
// deletes the container when it exits.
//
// Without a terminal the runtime runs in its own process group, so signals
// from the user's terminal reach only strata, which forwards each once
// (ForwardSignals) instead of the container getting two copies. With a
// terminal (see IO) it stays in the foreground group: the user's terminal
// is then raw and keys reach the container as bytes, not signals.
//
// If ctx is cancelled the container is killed with SIGKILL and Run returns
// its status with ctx.Err().
func (r *Runtime) Run(ctx context.Context, id, bundle string, stdio IO) (int, error) {
	spec, err := ReadBundle(bundle)
	if err != nil {
		return -1, err
	}
	terminal := spec.Process != nil && spec.Process.Terminal
	if stdio.Console != nil {
		return -1, fmt.Errorf("%s run %s: a foreground run cannot use a console socket (the runtime drives the terminal itself); use Create", r.Name, id)
	}

	cmd, lg, err := r.command("run", "--bundle", bundle, id)
	if err != nil {
		return -1, err
	}
	defer lg.remove()
	logPath := lg.path
	pipes, err := attachStdio(cmd, stdio, terminal)
	if err != nil {
		return -1, fmt.Errorf("%s run %s: %w", r.Name, id, err)
	}
	if err := cmd.Start(); err != nil {
		pipes.abort()
		return -1, fmt.Errorf("start %s run %s: %w", r.Name, id, err)
	}
	pipes.started()

	stopCancel := context.AfterFunc(ctx, func() { r.killForCancel(id, cmd.Process) })
	waitErr := cmd.Wait()
	stopCancel()
	pipes.wait()

	code, exited := exitCode(waitErr)
	if !exited {
		return -1, fmt.Errorf("%s run %s: %w", r.Name, id, waitErr)
	}
	// runc and crun exit 1 both when the container exits 1 and when they
	// fail themselves; only the error-level log line tells them apart.
	if code != 0 {
		if msg := lastLogError(logPath); msg != "" {
			return -1, &Error{Runtime: r.Name, Op: "run", ID: id, Msg: msg, Err: waitErr}
		}
	}
	if ctx.Err() != nil {
		return code, ctx.Err()
	}
	return code, nil
}

// killForCancel stops a foreground run whose context ended. Killing the
// runtime process alone would orphan a running container, so the container
// is killed; only if it does not exist yet is the runtime itself killed.
func (r *Runtime) killForCancel(id string, runtimeProc *os.Process) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Kill(ctx, id, syscall.SIGKILL, true); err != nil {
		_ = runtimeProc.Kill()
	}
}

// Create creates the container (`runc create`) without starting its process;
// Start runs it. The container's stdio is fixed here. Writers that are not
// *os.File are fed by goroutines of the calling process, which end when the
// container closes its side; a container meant to outlive the caller needs
// files (e.g. a log file) instead.
func (r *Runtime) Create(ctx context.Context, id, bundle string, stdio IO) error {
	args := []string{"create", "--bundle", bundle}
	if stdio.Console != nil {
		args = append(args, "--console-socket", stdio.Console.Path())
	}
	args = append(args, id)

	cmd, lg, err := r.command(args...)
	if err != nil {
		return err
	}
	defer lg.remove()
	logPath := lg.path
	pipes, err := attachStdio(cmd, stdio, false)
	if err != nil {
		return fmt.Errorf("%s create %s: %w", r.Name, id, err)
	}
	if err := cmd.Start(); err != nil {
		pipes.abort()
		return fmt.Errorf("start %s create %s: %w", r.Name, id, err)
	}
	pipes.started()
	stopCancel := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	waitErr := cmd.Wait()
	stopCancel()
	if waitErr != nil {
		return &Error{Runtime: r.Name, Op: "create", ID: id, Msg: failureMessage(logPath, ""), Err: waitErr}
	}
	return nil
}

// Start starts the process of a created container.
func (r *Runtime) Start(ctx context.Context, id string) error {
	_, err := r.run(ctx, "start", id, "start", id)
	return err
}

// Kill sends sig to the container's init process, or with all to every
// process in the container.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	args = append(args, id, strconv.Itoa(int(sig)))
	_, err := r.run(ctx, "kill", id, args...)
	return err
}

// Pause freezes every process of the container (cgroup freezer).
func (r *Runtime) Pause(ctx context.Context, id string) error {
	_, err := r.run(ctx, "pause", id, "pause", id)
	return err
}

// Resume thaws a paused container.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	_, err := r.run(ctx, "resume", id, "resume", id)
	return err
}

// Update changes the cgroup limits of a running container.
func (r *Runtime) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	f, err := os.CreateTemp("", "strata-update-*.json")
	if err != nil {
		return fmt.Errorf("%s update %s: %w", r.Name, id, err)
	}
	defer os.Remove(f.Name())
	err = json.NewEncoder(f).Encode(res)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s update %s: %w", r.Name, id, err)
	}
	_, err = r.run(ctx, "update", id, "update", "--resources", f.Name(), id)
	return err
}

// Ps runs ps on the host with psArgs (none: -ef) and returns its output
// reduced to the container's processes (`runc ps`), header first.
func (r *Runtime) Ps(ctx context.Context, id string, psArgs []string) ([]byte, error) {
	args := append([]string{"ps", "--format", "table", "--", id}, psArgs...)
	return r.run(ctx, "ps", id, args...)
}

// Delete removes the runtime's record of the container (and its cgroups).
// force also kills a container that is still running.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	args = append(args, id)
	_, err := r.run(ctx, "delete", id, args...)
	return err
}

// State reports the container's status and init pid.
func (r *Runtime) State(ctx context.Context, id string) (State, error) {
	out, err := r.run(ctx, "state", id, "state", id)
	if err != nil {
		return State{}, err
	}
	var s State
	if err := json.Unmarshal(out, &s); err != nil {
		return State{}, fmt.Errorf("%s state %s: decode %q: %w", r.Name, id, truncate(out), err)
	}
	return s, nil
}

// List reports every container under StateRoot.
func (r *Runtime) List(ctx context.Context) ([]State, error) {
	out, err := r.run(ctx, "list", "", "list", "--format", "json")
	if err != nil {
		return nil, err
	}
	var states []State
	// runc prints "null" when there are none.
	if err := json.Unmarshal(out, &states); err != nil {
		return nil, fmt.Errorf("%s list: decode %q: %w", r.Name, truncate(out), err)
	}
	return states, nil
}

// run executes one short runtime command and returns its stdout.
func (r *Runtime) run(ctx context.Context, op, id string, args ...string) ([]byte, error) {
	cmd, lg, err := r.command(args...)
	if err != nil {
		return nil, err
	}
	defer lg.remove()
	logPath := lg.path
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stop()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w", r.Name, op, err)
	}
	if err := cmd.Wait(); err != nil {
		return nil, &Error{Runtime: r.Name, Op: op, ID: id, Msg: failureMessage(logPath, stderr.String()), Err: err}
	}
	return stdout.Bytes(), nil
}

// command prepares an exec of the runtime with the global flags, including a
// fresh JSON log file: that log, not stderr, is where the runtime's error
// message can be read reliably, because for run/create its stderr is the
// container's.
func (r *Runtime) command(args ...string) (*exec.Cmd, *runtimeLog, error) {
	dir := LogDir(r.StateRoot)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create %s log dir: %w", r.Name, err)
	}
	f, err := os.CreateTemp(dir, r.Name+"-*.json")
	if err != nil {
		return nil, nil, fmt.Errorf("create %s log file: %w", r.Name, err)
	}
	f.Close()
	lock, ok, err := lockfile.TryLock(f.Name(), lockfile.Exclusive)
	if err != nil || !ok {
		os.Remove(f.Name())
		return nil, nil, fmt.Errorf("lock %s log file: %v", r.Name, err)
	}
	lg := &runtimeLog{path: f.Name(), lock: lock}
	global := []string{"--root", r.StateRoot, "--log", lg.path, "--log-format", "json"}
	cmd := exec.Command(r.Binary, append(global, args...)...)
	return cmd, lg, nil
}

// lastLogError returns the message of the last error-level entry of a
// runtime JSON log ({"level":"error","msg":...}); "" if there is none.
func lastLogError(path string) string {
	msg, _ := readLog(path)
	return msg
}

// failureMessage explains a failed short command: the log's error, else its
// last warning, else the last line the runtime wrote to stderr.
func failureMessage(logPath, stderr string) string {
	errMsg, other := readLog(logPath)
	switch {
	case errMsg != "":
		return errMsg
	case lastLine(stderr) != "":
		return lastLine(stderr)
	}
	return other
}

// readLog scans a runtime JSON log for the last error-level message and the
// last message of any other level above info.
func readLog(path string) (errMsg, other string) {
	f, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		line := bytes.TrimSpace(s.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := json.Unmarshal(line, &entry); err != nil {
			// Not JSON (a runtime that ignored --log-format): keep the text.
			other = string(line)
			continue
		}
		switch entry.Level {
		case "error", "fatal", "panic":
			errMsg = entry.Msg
		case "debug", "info":
			// not an explanation of a failure
		default:
			other = entry.Msg
		}
	}
	return errMsg, other
}

// exitCode turns a Wait error into a shell-style exit status; exited is
// false when the process could not be waited for at all.
func exitCode(err error) (code int, exited bool) {
	if err == nil {
		return 0, true
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return -1, false
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), true
	}
	return ee.ExitCode(), true
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func truncate(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
