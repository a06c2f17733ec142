package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strata-project/strata/internal/testutil/requires"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// The tests below run real containers with runc on a busybox rootfs. They
// need root and runc; they are skipped only when either is missing.

var busyboxApplets = []string{
	"sh", "echo", "id", "cat", "hostname", "ls", "sleep", "ip", "tty", "test",
	"touch", "pwd", "env", "mkdir", "true", "false", "mkfifo", "grep", "stty",
}

func requireRunc(t *testing.T) *Runtime {
	t.Helper()
	requires.Runc(t)
	rt, err := New("runc", filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// busyboxRootfs builds a minimal image root: static busybox plus applet
// symlinks, and passwd/group with root, app (1000) and extra (2000 ∋ app).
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	bb := requires.Command(t, "busybox")
	root := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "home/app"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
	writeFile(t, filepath.Join(root, "etc/group"), "root:x:0:\napp:x:1000:\nextra:x:2000:app\n")
	return root
}

var idSeq atomic.Int64

// containerID is unique per test and run, and the container is force
// deleted when the test ends, whatever happened.
func containerID(t *testing.T, rt *Runtime) string {
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	id := fmt.Sprintf("strata-test-%s-%d-%d", strings.ToLower(name), os.Getpid(), idSeq.Add(1))
	t.Cleanup(func() {
		err := rt.Delete(context.Background(), id, true)
		if err != nil && !errors.Is(err, ErrNotExist) {
			t.Errorf("cleanup: %v", err)
		}
	})
	return id
}

// bundle writes the spec for o (rootfs filled in) and returns its dir.
func bundle(t *testing.T, o SpecOptions) string {
	t.Helper()
	s, err := Spec(o)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := WriteBundle(dir, s); err != nil {
		t.Fatal(err)
	}
	return dir
}

func shOptions(rootfs, script string) SpecOptions {
	return SpecOptions{
		Image:  ocispec.ImageConfig{Entrypoint: []string{"/bin/sh", "-c"}},
		Cmd:    []string{script},
		Rootfs: rootfs,
	}
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, rt *Runtime, o SpecOptions) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code, err := rt.Run(context.Background(), containerID(t, rt), bundle(t, o), IO{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatalf("Run: %v (stderr %q)", err, stderr.String())
	}
	return result{code, stdout.String(), stderr.String()}
}

func TestRunExitCodeAndStreams(t *testing.T) {
	rt := requireRunc(t)
	rootfs := busyboxRootfs(t)
	r := run(t, rt, shOptions(rootfs, "echo to-out; echo to-err >&2; exit 7"))
	if r.code != 7 {
		t.Errorf("exit code = %d, want 7", r.code)
	}
	if r.stdout != "to-out\n" || r.stderr != "to-err\n" {
		t.Errorf("stdout %q stderr %q, want them separate", r.stdout, r.stderr)
	}
	if r := run(t, rt, shOptions(rootfs, "true")); r.code != 0 {
		t.Errorf("exit code = %d, want 0", r.code)
	}
}

func TestRunStdinAndFiles(t *testing.T) {
	rt := requireRunc(t)
	rootfs := busyboxRootfs(t)
	var out bytes.Buffer
	code, err := rt.Run(context.Background(), containerID(t, rt), bundle(t, shOptions(rootfs, "cat; echo done")),
		IO{Stdin: strings.NewReader("from stdin\n"), Stdout: &out, Stderr: &out})
	if err != nil || code != 0 {
		t.Fatalf("Run = %d, %v", code, err)
	}
	if out.String() != "from stdin\ndone\n" {
		t.Errorf("output %q", out.String())
	}

	// Files are handed to the container directly.
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if code, err := rt.Run(context.Background(), containerID(t, rt), bundle(t, shOptions(rootfs, "echo into-file; echo err-too >&2")), IO{Stdout: f, Stderr: f}); err != nil || code != 0 {
		t.Fatalf("Run = %d, %v", code, err)
	}
	// runc run relays stdout and stderr through separate pipes, so their
	// relative order is not kept.
	data, err := os.ReadFile(f.Name())
	if err != nil || (string(data) != "into-file\nerr-too\n" && string(data) != "err-too\ninto-file\n") {
		t.Errorf("log file = %q, %v", data, err)
	}
}

func TestRunEnvWorkdirUserHostname(t *testing.T) {
	rt := requireRunc(t)
	rootfs := busyboxRootfs(t)
	o := shOptions(rootfs, `echo "$FOO $BAR $HOSTNAME"; pwd; id; hostname; cat /etc/hostname`)
	o.Image.Env = []string{"FOO=image", "BAR=kept"}
	o.Image.WorkingDir = "/home"
	o.Image.User = "root"
	o.Env = []string{"FOO=option"}
	o.WorkingDir = "/home/app"
	o.User = "app"
	o.Hostname = "boxname"
	hostnameFile := filepath.Join(t.TempDir(), "hostname")
	writeFile(t, hostnameFile, "boxname\n")
	o.HostnamePath = hostnameFile
	var err error
	o.UID, o.GID, o.AdditionalGids, err = ResolveUser(rootfs, o.EffectiveUser())
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, rt, o)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 5 {
		t.Fatalf("code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if lines[0] != "option kept boxname" {
		t.Errorf("env line %q, want option kept boxname", lines[0])
	}
	if lines[1] != "/home/app" {
		t.Errorf("pwd %q", lines[1])
	}
	if !strings.HasPrefix(lines[2], "uid=1000(app) gid=1000(app) groups=") || !strings.Contains(lines[2], "2000(extra)") {
		t.Errorf("id %q, want uid=1000 gid=1000 and group 2000", lines[2])
	}
	if lines[3] != "boxname" || lines[4] != "boxname" {
		t.Errorf("hostname %q, /etc/hostname %q", lines[3], lines[4])
	}
}

func TestRunNetworkNoneHasOnlyLoopback(t *testing.T) {
	rt := requireRunc(t)
	rootfs := busyboxRootfs(t)
	o := shOptions(rootfs, "ip -o link | cut -d: -f2 | tr -d ' '; ip -o addr show lo")
	o.Network = NetworkNone
	// cut and tr are needed only here.
	for _, a := range []string{"cut", "tr"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	r := run(t, rt, o)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) < 2 || lines[0] != "lo" || !strings.Contains(r.stdout, "127.0.0.1/8") {
		t.Errorf("network none: code %d, stdout %q stderr %q; want only lo, up with 127.0.0.1", r.code, r.stdout, r.stderr)
	}
	for _, l := range lines[1:] {
		if !strings.Contains(l, " lo ") {
			t.Errorf("unexpected interface line %q", l)
		}
	}

	// Host network (the default) sees the host's interfaces.
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	o.Network = ""
	r = run(t, rt, o)
	if got := len(strings.Fields(r.stdout)); got == 0 || strings.Count(r.stdout, "\n") < len(ifs) {
		t.Errorf("host network shows %q, host has %d interfaces", r.stdout, len(ifs))
	}
}

func TestRunReadOnlyRootAndBinds(t *testing.T) {
	rt := requireRunc(t)
	rootfs := busyboxRootfs(t)
	roDir, rwDir := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(roDir, "f"), "host content\n")
	hosts := filepath.Join(t.TempDir(), "hosts")
	writeFile(t, hosts, "127.0.0.1 localhost\n10.9.8.7 special\n")

	o := shOptions(rootfs, `
touch /newfile 2>&1 || echo root-rejected
cat /data/f
touch /data/g 2>&1 || echo bind-rejected
echo written > /rw/out && echo rw-ok
grep special /etc/hosts
touch /tmp/x 2>&1 || echo tmp-rejected
touch /dev/shm/x && echo shm-ok
`)
	o.ReadOnly = true
	o.HostsPath = hosts
	o.Binds = []Bind{{Source: roDir, Destination: "/data", ReadOnly: true}, {Source: rwDir, Destination: "/rw"}}
	r := run(t, rt, o)
	for _, want := range []string{
		"Read-only file system", "root-rejected", "host content", "bind-rejected",
		"rw-ok", "10.9.8.7 special", "tmp-rejected", "shm-ok",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(rootfs, "newfile")); !os.IsNotExist(err) {
		t.Errorf("read-only root was written: %v", err)
	}
	if _, err := os.Stat(filepath.Join(roDir, "g")); !os.IsNotExist(err) {
		t.Errorf("read-only bind was written: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(rwDir, "out")); err != nil || string(data) != "written\n" {
		t.Errorf("rw bind: %q, %v", data, err)
	}
}

// openPTY returns a new pty pair, standing in for the user's terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

const ttyScript = `tty; test -t 0 && test -t 1 && echo is-a-tty; echo "TERM=$TERM"; read line; echo "got:$line"; exit 3`

// A foreground terminal run: runc allocates the container's pty and
// relays it to the user's terminal, here a pty pair the test drives.
func TestRunTerminal(t *testing.T) {
	rt := requireRunc(t)
	rootfs := busyboxRootfs(t)
	o := shOptions(rootfs, ttyScript)
	o.Terminal = true
	userTTY, slave := openPTY(t)
	var out bytes.Buffer
	outDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(&out, userTTY) // ends with EIO once the slave is closed
		close(outDone)
	}()
	if _, err := userTTY.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	code, err := rt.Run(context.Background(), containerID(t, rt), bundle(t, o), IO{Stdin: slave, Stdout: slave, Stderr: slave})
	slave.Close()
	<-outDone
	if err != nil {
		t.Fatalf("Run: %v (output %q)", err, out.String())
	}
	if code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	// No window size check here: runc sizes the container's pty
	// concurrently with the process starting, so a first `stty size` can
	// still see 0x0.
	checkTTYOutput(t, out.String())
}

func checkTTYOutput(t *testing.T, out string) {
	t.Helper()
	text := strings.ReplaceAll(out, "\r\n", "\n")
	for _, want := range []string{"/dev/pts/0\n", "is-a-tty\n", "TERM=xterm\n", "got:hello\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("terminal output lacks %q: %q", want, text)
		}
	}
}

// A created terminal container hands its pty master to the caller through
// the console socket.
func TestCreateTerminalConsoleSocket(t *testing.T) {
	rt := requireRunc(t)
	rootfs := busyboxRootfs(t)
	ctx := context.Background()
	id := containerID(t, rt)
	o := shOptions(rootfs, "stty size; "+ttyScript)
	o.Terminal = true
	cs, err := NewConsoleSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	type received struct {
		f   *os.File
		err error
	}
	got := make(chan received, 1)
	go func() {
		f, err := cs.Receive(ctx)
		got <- received{f, err}
	}()
	if err := rt.Create(ctx, id, bundle(t, o), IO{Console: cs}); err != nil {
		t.Fatal(err)
	}
	rcv := <-got
	if rcv.err != nil {
		t.Fatal(rcv.err)
	}
	master := rcv.f
	defer master.Close()

	// The user's terminal size travels to the container's pty.
	_, userSlave := openPTY(t)
	if err := unix.IoctlSetWinsize(int(userSlave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 99}); err != nil {
		t.Fatal(err)
	}
	if err := Resize(master, userSlave); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	wait := Attach(master, strings.NewReader("hello\n"), &out)
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, rt, id, StatusStopped)
	checkTTYOutput(t, out.String())
	if !strings.Contains(out.String(), "\n33 99\r\n") {
		t.Errorf("stty size: output %q, want 33 99", out.String())
	}
}

func TestRunRejectsConsoleSocket(t *testing.T) {
	rt := requireRunc(t)
	cs, err := NewConsoleSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	o := shOptions(busyboxRootfs(t), "true")
	o.Terminal = true
	if _, err := rt.Run(context.Background(), containerID(t, rt), bundle(t, o), IO{Console: cs}); err == nil {
		t.Error("Run with a console socket succeeded")
	}
}

// waitStatus polls State until it reports want; there is no event to wait
// on, and the deadline only bounds a failure.
func waitStatus(t *testing.T, rt *Runtime, id string, want Status) State {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := rt.State(context.Background(), id)
		if err != nil {
			t.Fatalf("State: %v", err)
		}
		if s.Status == want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("status stayed %q, want %q", s.Status, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCreateStartKillDelete(t *testing.T) {
	rt := requireRunc(t)
	rootfs := busyboxRootfs(t)
	ctx := context.Background()
	id := containerID(t, rt)
	o := shOptions(rootfs, "echo started; exec sleep 1000")
	bundleDir := bundle(t, o)

	// Output goes through a pipe that the test reads: "started" proves the
	// process runs, without sleeping.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	err = rt.Create(ctx, id, bundleDir, IO{Stdout: pw, Stderr: pw})
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.State(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != StatusCreated || s.Pid <= 0 || s.ID != id || s.Bundle != bundleDir {
		t.Errorf("after Create: %+v", s)
	}
	list, err := rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != id {
		t.Errorf("List = %+v, want just %s", list, id)
	}

	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, len("started\n"))
	if _, err := io.ReadFull(pr, line); err != nil || string(line) != "started\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	if s := waitStatus(t, rt, id, StatusRunning); syscall.Kill(s.Pid, 0) != nil {
		t.Errorf("init pid %d is not alive", s.Pid)
	}

	if err := rt.Kill(ctx, id, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	// The pipe closes when the container's last process exits.
	if rest, err := io.ReadAll(pr); err != nil || len(rest) != 0 {
		t.Errorf("after kill: %q, %v", rest, err)
	}
	waitStatus(t, rt, id, StatusStopped)
	if err := rt.Kill(ctx, id, syscall.SIGTERM, false); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Kill of stopped container: %v, want ErrNotRunning", err)
	}

	if err := rt.Delete(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.State(ctx, id); !errors.Is(err, ErrNotExist) {
		t.Errorf("State after Delete: %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(rt.StateRoot, id)); !os.IsNotExist(err) {
		t.Errorf("runtime state dir remains: %v", err)
	}
	if err := rt.Delete(ctx, id, false); !errors.Is(err, ErrNotExist) {
		t.Errorf("second Delete: %v, want ErrNotExist", err)
	}
}

func TestDeleteForceKillsRunning(t *testing.T) {
	rt := requireRunc(t)
	rootfs := busyboxRootfs(t)
	ctx := context.Background()
	id := containerID(t, rt)
	if err := rt.Create(ctx, id, bundle(t, shOptions(rootfs, "exec sleep 1000")), IO{}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	pid := waitStatus(t, rt, id, StatusRunning).Pid
	if err := rt.Delete(ctx, id, false); err == nil {
		t.Fatal("Delete without force of a running container succeeded")
	}
	if err := rt.Delete(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.State(ctx, id); !errors.Is(err, ErrNotExist) {
		t.Errorf("State after forced Delete: %v", err)
	}
	// The init process was our grandchild, reparented to init/subreaper;
	// it must be gone (or a zombie about to be reaped by someone else).
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(data), ") Z ") {
		t.Errorf("process %d still alive: %s", pid, data)
	}
}

func TestRunCancelKillsContainer(t *testing.T) {
	rt := requireRunc(t)
	rootfs := busyboxRootfs(t)
	id := containerID(t, rt)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	type ret struct {
		code int
		err  error
	}
	done := make(chan ret, 1)
	dir := bundle(t, shOptions(rootfs, "echo up; exec sleep 1000"))
	go func() {
		code, err := rt.Run(ctx, id, dir, IO{Stdout: pw})
		pw.Close() // so a failed Run cannot leave the reader below hanging
		done <- ret{code, err}
	}()
	line := make([]byte, 3)
	if _, err := io.ReadFull(pr, line); err != nil {
		r := <-done
		t.Fatalf("read: %v; Run = %d, %v", err, r.code, r.err)
	}
	cancel()
	r := <-done
	if r.code != 137 || !errors.Is(r.err, context.Canceled) {
		t.Errorf("Run after cancel = %d, %v; want 137, context.Canceled", r.code, r.err)
	}
}

func TestForwardSignals(t *testing.T) {
	rt := requireRunc(t)
	rootfs := busyboxRootfs(t)
	id := containerID(t, rt)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	stop := rt.ForwardSignals(id, syscall.SIGUSR1)
	defer stop()
	type ret struct {
		code int
		err  error
	}
	done := make(chan ret, 1)
	// As PID 1 the shell ignores signals it has no handler for, so the
	// trap is what proves delivery.
	dir := bundle(t, shOptions(rootfs, `trap "echo got-usr1; exit 42" USR1; echo ready; sleep 1000 & wait`))
	go func() {
		code, err := rt.Run(context.Background(), id, dir, IO{Stdout: pw})
		pw.Close()
		done <- ret{code, err}
	}()
	line := make([]byte, len("ready\n"))
	if _, err := io.ReadFull(pr, line); err != nil || string(line) != "ready\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	// strata receives the signal; the forwarder relays it to the container.
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(pr)
	r := <-done
	if r.err != nil || r.code != 42 || string(rest) != "got-usr1\n" {
		t.Errorf("Run = %d, %v, output %q; want 42 after the trapped USR1", r.code, r.err, rest)
	}
}

func TestRunRuntimeErrorIsReadable(t *testing.T) {
	rt := requireRunc(t)
	rootfs := busyboxRootfs(t)
	o := shOptions(rootfs, "")
	o.Image.Entrypoint = nil
	o.Cmd = []string{"/no/such/binary"}
	var stderr bytes.Buffer
	code, err := rt.Run(context.Background(), containerID(t, rt), bundle(t, o), IO{Stderr: &stderr})
	var rerr *Error
	if !errors.As(err, &rerr) || code != -1 {
		t.Fatalf("Run = %d, %v; want a runtime *Error", code, err)
	}
	if rerr.Runtime != "runc" || rerr.Op != "run" || !strings.Contains(rerr.Msg, "/no/such/binary") || strings.Contains(rerr.Msg, `"level"`) {
		t.Errorf("error %+v: want runc's own message naming the binary", rerr)
	}
	t.Logf("runc error: %v", err)

	// A container exiting 1 by itself is not a runtime error.
	if r := run(t, rt, shOptions(rootfs, "exit 1")); r.code != 1 {
		t.Errorf("exit 1: code %d", r.code)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New("kata", t.TempDir()); err == nil {
		t.Error("unknown runtime accepted")
	}
	if _, err := New("runc", "relative"); err == nil {
		t.Error("relative state root accepted")
	}
	t.Setenv("PATH", t.TempDir())
	_, err := New("runc", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "runc not found") {
		t.Errorf("missing binary: %v", err)
	}
}

// crun 1.8.1 cannot run containers on this host's hybrid cgroup layout.
// Whatever the cause on a given machine, a crun failure must reach the
// caller as crun's own message, not as "exit status 1".
func TestCrunErrorIsReadable(t *testing.T) {
	requires.Root(t)
	requires.Command(t, "crun")
	rt, err := New("crun", filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	rootfs := busyboxRootfs(t)
	var stdout bytes.Buffer
	code, err := rt.Run(context.Background(), containerID(t, rt), bundle(t, shOptions(rootfs, "echo hi; exit 7")), IO{Stdout: &stdout, Stderr: io.Discard})
	if err == nil {
		if code != 7 || stdout.String() != "hi\n" {
			t.Errorf("crun ran: code %d stdout %q", code, stdout.String())
		}
		t.Log("crun works on this host")
		return
	}
	var rerr *Error
	if !errors.As(err, &rerr) || rerr.Runtime != "crun" || rerr.Msg == "" || strings.Contains(rerr.Msg, "{") {
		t.Fatalf("crun failure not readable: %#v", err)
	}
	if _, statErr := os.Stat("/sys/fs/cgroup/unified"); statErr == nil && !strings.Contains(rerr.Msg, "hybrid") {
		t.Errorf("on a hybrid cgroup host crun's message should name the cause, got %q", rerr.Msg)
	}
	t.Logf("crun error: %v", err)
}

// BenchmarkRun measures one foreground `runc run` of `true`, spec writing
// included.
func BenchmarkRun(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	rt, err := New("runc", filepath.Join(b.TempDir(), "state"))
	if err != nil {
		b.Skip(err)
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		b.Skip("busybox not installed")
	}
	root := filepath.Join(b.TempDir(), "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/true"), data, 0o755); err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(b.TempDir(), "bundle")
	for i := 0; b.Loop(); i++ {
		s, err := Spec(SpecOptions{Cmd: []string{"/bin/true"}, Rootfs: root, Network: NetworkNone})
		if err != nil {
			b.Fatal(err)
		}
		if err := WriteBundle(dir, s); err != nil {
			b.Fatal(err)
		}
		id := fmt.Sprintf("strata-bench-%d-%d", os.Getpid(), i)
		if code, err := rt.Run(context.Background(), id, dir, IO{}); err != nil || code != 0 {
			b.Fatalf("Run = %d, %v", code, err)
		}
	}
}
