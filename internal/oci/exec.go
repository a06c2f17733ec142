package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ExecOptions are what `exec` changes of a running container's process.
type ExecOptions struct {
	Args []string
	// Env entries (KEY=VALUE) are merged over the container's process env.
	Env []string
	// WorkingDir is absolute; empty keeps the container's.
	WorkingDir string
	Terminal   bool
	// User replaces the container's user when non-nil (already resolved
	// against the container's passwd and group files, see ResolveUser).
	User *specs.User
	// ConsoleSize is the pty's size from the start (with Terminal): an
	// exec'd process runs at once, before the caller could resize it.
	ConsoleSize *specs.Box
	// Privileged gives the process every capability strata holds.
	Privileged bool
}

// ExecProcess derives the process an exec runs from the container's own, as
// run wrote it into the bundle. Everything that confines the process
// (capabilities, rlimits, no_new_privileges, AppArmor and SELinux labels,
// OOM score) is kept, so an exec'd process is held exactly like the
// container's init whatever run put there; the runtime applies the
// container-wide parts (namespaces, cgroups, seccomp) itself. Args, cwd,
// user and terminal are the exec's, and its env is merged over the
// container's by the same Env as run's.
func ExecProcess(ctr *specs.Process, o ExecOptions) (*specs.Process, error) {
	if ctr == nil {
		return nil, fmt.Errorf("the container's bundle has no process")
	}
	if len(o.Args) == 0 {
		return nil, ErrNoCommand
	}
	p := *ctr
	p.Args = append([]string(nil), o.Args...)
	p.Terminal = o.Terminal
	p.ConsoleSize = nil
	if o.Terminal {
		p.ConsoleSize = o.ConsoleSize
	}
	env, err := Env(ctr.Env, o.Env, "", o.Terminal)
	if err != nil {
		return nil, err
	}
	p.Env = env
	if o.WorkingDir != "" {
		if !path.IsAbs(o.WorkingDir) {
			return nil, fmt.Errorf("working directory %q is invalid, it needs to be an absolute path", o.WorkingDir)
		}
		p.Cwd = path.Clean(o.WorkingDir)
	}
	if o.User != nil {
		p.User = *o.User
		p.User.AdditionalGids = supplementaryGroups(o.User.GID, o.User.AdditionalGids)
	}
	if o.Privileged {
		// Every capability strata may grant: asking the runtime for one
		// outside our own bounding set fails the exec.
		all, _, err := BoundingCapabilities()
		if err != nil {
			return nil, err
		}
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	}
	return &p, nil
}

// Exec starts proc in the running container id (`runc exec --detach`) and
// returns its host pid once the runtime has exited. The runtime's process
// is the parent of the new one, so a caller that wants its exit status must
// be a child subreaper (prctl PR_SET_CHILD_SUBREAPER) before calling: the
// process is then adopted by the caller, which waits for it like any child.
//
// stdio works as for Create: with a terminal (proc.Terminal) the pty master
// arrives on stdio.Console; otherwise files are handed to the process as
// they are, so it keeps writing to them after the runtime is gone.
func (r *Runtime) Exec(ctx context.Context, id string, proc *specs.Process, stdio IO) (int, error) {
	tmp, err := os.MkdirTemp("", "strata-exec-")
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer os.RemoveAll(tmp)
	data, err := json.Marshal(proc)
	if err != nil {
		return 0, fmt.Errorf("encode exec process: %w", err)
	}
	procPath := filepath.Join(tmp, "process.json")
	if err := os.WriteFile(procPath, data, 0o600); err != nil {
		return 0, fmt.Errorf("write exec process: %w", err)
	}
	pidPath := filepath.Join(tmp, "pid")
	args := []string{"exec", "--detach", "--process", procPath, "--pid-file", pidPath}
	if proc.Terminal {
		if stdio.Console == nil {
			return 0, fmt.Errorf("%s exec %s: a terminal needs a console socket", r.Name, id)
		}
		args = append(args, "--console-socket", stdio.Console.Path())
	}
	args = append(args, id)

	cmd, lg, err := r.command(args...)
	if err != nil {
		return 0, err
	}
	defer lg.remove()
	logPath := lg.path
	pipes, err := attachStdio(cmd, stdio, false)
	if err != nil {
		return 0, fmt.Errorf("%s exec %s: %w", r.Name, id, err)
	}
	if err := cmd.Start(); err != nil {
		pipes.abort()
		return 0, fmt.Errorf("start %s exec %s: %w", r.Name, id, err)
	}
	pipes.started()
	stopCancel := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	waitErr := cmd.Wait()
	stopCancel()
	if waitErr != nil {
		return 0, &Error{Runtime: r.Name, Op: "exec", ID: id, Msg: failureMessage(logPath, ""), Err: waitErr}
	}
	b, err := os.ReadFile(pidPath)
	if err != nil {
		return 0, fmt.Errorf("%s exec %s: read pid file: %w", r.Name, id, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s exec %s: bad pid file %q", r.Name, id, b)
	}
	return pid, nil
}
