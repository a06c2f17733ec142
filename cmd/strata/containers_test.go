package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/strata-project/strata/internal/testutil/requires"
)

// These tests run real containers with runc on the busybox image.

// newBusyboxCLI is a CLI with the busybox image imported as "busybox"; every
// container left at the end of the test is force removed.
func newBusyboxCLI(t *testing.T) *cli {
	t.Helper()
	requires.Runc(t)
	c := newCLI(t)
	c.ok("import", "-c", `CMD ["/bin/sh"]`, busyboxTar(t), "busybox")
	t.Cleanup(func() {
		ids := strings.Fields(c.ok("ps", "-aq", "--no-trunc"))
		if len(ids) > 0 {
			c.ok(append([]string{"rm", "-f"}, ids...)...)
		}
		assertNothingMounted(t, c.root)
	})
	return c
}

// assertNothingMounted fails when anything under root is still mounted.
func assertNothingMounted(t *testing.T, root string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], root+"/") {
			t.Errorf("still mounted: %s", f[4])
		}
	}
}

// runcList is what runc knows about under the store's runtime root.
func runcList(t *testing.T, c *cli) []string {
	t.Helper()
	out, err := exec.Command("runc", "--root", filepath.Join(c.root, "runtime", "runc"), "list", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("runc list: %v %s", err, out)
	}
	return strings.Fields(string(out))
}

func TestRunExitCodeEnvWorkdirUser(t *testing.T) {
	c := newBusyboxCLI(t)
	if out, errs, code := c.run(nil, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7"); code != 7 || out != "out\n" || errs != "err\n" {
		t.Fatalf("run exit 7: code %d, stdout %q, stderr %q", code, out, errs)
	}
	out := c.ok("run", "--rm", "-e", "A=b", "-w", "/tmp", "-u", "nobody", "busybox", "sh", "-c", "echo $A; pwd; id -u")
	if out != "b\n/tmp\n65534\n" {
		t.Fatalf("env/workdir/user: %q", out)
	}
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("# comment\nFROMFILE=yes\n\nHOSTVAR\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOSTVAR", "from-host")
	if out := c.ok("run", "--rm", "--env-file", envFile, "busybox", "sh", "-c", "echo $FROMFILE $HOSTVAR"); out != "yes from-host\n" {
		t.Fatalf("--env-file: %q", out)
	}
	if out := c.ok("run", "--rm", "--entrypoint", "echo", "busybox", "via", "entrypoint"); out != "via entrypoint\n" {
		t.Fatalf("--entrypoint: %q", out)
	}
	// --rm removed every one of them.
	if ps := strings.TrimSpace(c.ok("ps", "-aq")); ps != "" {
		t.Fatalf("--rm left containers: %q", ps)
	}
	// A command that does not exist fails like docker's: 127.
	if _, errs, code := c.run(nil, "run", "--rm", "busybox", "no-such-command"); code != 127 || strings.Count(errs, "executable file not found") != 1 {
		t.Fatalf("missing command: code %d, stderr %q", code, errs)
	}
	if ps := strings.TrimSpace(c.ok("ps", "-aq")); ps != "" {
		t.Fatalf("--rm left a container that failed to start: %q", ps)
	}
	// A relative -w is refused at create, as docker's daemon does, and
	// leaves no container behind.
	if _, errs, code := c.run(nil, "create", "-w", "rel", "busybox"); code != 1 || !strings.Contains(errs, "it needs to be an absolute path") {
		t.Fatalf("create -w rel: code %d, stderr %q", code, errs)
	}
	if ps := strings.TrimSpace(c.ok("ps", "-aq")); ps != "" {
		t.Fatalf("create -w rel left a container: %q", ps)
	}
}

func TestRunNetworkBindsReadOnly(t *testing.T) {
	c := newBusyboxCLI(t)
	links := strings.Split(strings.TrimSpace(c.ok("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")), "\n")
	if len(links) != 1 || !strings.Contains(links[0], ": lo:") {
		t.Fatalf("--network none links: %q", links)
	}
	if _, errs, code := c.run(nil, "run", "--rm", "--network", "mynet", "busybox", "true"); code != 125 || !strings.Contains(errs, "network mynet not found") {
		t.Fatalf("--network mynet: code %d %q", code, errs)
	}

	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "in"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("run", "--rm", "-v", host+":/data", "busybox", "sh", "-c", "cat /data/in; echo written > /data/out"); out != "from host\n" {
		t.Fatalf("bind read: %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(host, "out")); err != nil || string(b) != "written\n" {
		t.Fatalf("bind write: %q %v", b, err)
	}
	if _, errs, code := c.run(nil, "run", "--rm", "-v", host+":/data:ro", "busybox", "touch", "/data/ro"); code == 0 || !strings.Contains(errs, "Read-only file system") {
		t.Fatalf(":ro bind was writable: code %d %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(host, "ro")); !os.IsNotExist(err) {
		t.Fatalf(":ro bind: file created on the host (%v)", err)
	}
	if _, errs, code := c.run(nil, "run", "--rm", "--read-only", "busybox", "touch", "/x"); code == 0 || !strings.Contains(errs, "Read-only file system") {
		t.Fatalf("--read-only root was writable: code %d %q", code, errs)
	}
	// Without --read-only the write lands in the container's own layer.
	c.ok("run", "--name", "wr", "busybox", "sh", "-c", "echo kept > /x")
	if out := c.ok("start", "-a", "wr"); out != "" {
		t.Fatalf("start -a of the default shell printed %q", out)
	}
}

func TestDetachedWaitLogsPs(t *testing.T) {
	c := newBusyboxCLI(t)
	id := strings.TrimSpace(c.ok("run", "-d", "--name", "xx", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("run -d printed %q, want the full ID", id)
	}
	if out := c.ok("wait", "xx"); out != "3\n" {
		t.Fatalf("wait: %q", out)
	}
	if out, errs, code := c.run(nil, "logs", "xx"); code != 0 || out != "out\n" || errs != "err\n" {
		t.Fatalf("logs: code %d stdout %q stderr %q", code, out, errs)
	}
	// The two streams are copied concurrently, so which line is last is
	// not fixed; exactly one of them is.
	if out, errs, _ := c.run(nil, "logs", "--tail", "1", id[:5]); out+errs != "out\n" && out+errs != "err\n" {
		t.Fatalf("logs --tail 1: stdout %q stderr %q", out, errs)
	}
	if out := c.ok("logs", "-t", "xx"); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+Z out\n$`).MatchString(out) {
		t.Fatalf("logs -t: %q", out)
	}
	ps := c.ok("ps", "-a")
	if !strings.HasPrefix(ps, "CONTAINER ID") || !strings.Contains(ps, id[:12]) || !strings.Contains(ps, "Exited (3)") || !strings.Contains(ps, " xx\n") {
		t.Fatalf("ps -a:\n%s", ps)
	}
	if out := c.ok("ps"); strings.Count(out, "\n") != 1 {
		t.Fatalf("ps without -a shows stopped containers:\n%s", out)
	}
	if out := c.ok("ps", "-a", "--format", "{{.Names}} {{.State}} {{.Command}}"); out != "xx exited \"sh -c echo out; ech…\"\n" {
		t.Fatalf("ps --format: %q", out)
	}
	insp := c.ok("container", "inspect", "--format", "{{.Id}} {{.Name}} {{.State.Status}} {{.State.ExitCode}} {{.HostConfig.NetworkMode}} {{.HostConfig.AutoRemove}}", "xx")
	if insp != id+" /xx exited 3 default false\n" {
		t.Fatalf("container inspect: %q", insp)
	}
	if !strings.Contains(c.ok("info"), "Containers: 1\n") {
		t.Fatal("info does not count the container")
	}
	// Names are unique. docker's create exits 1 for what its daemon refuses
	// (its run, 125).
	if _, errs, code := c.run(nil, "create", "--name", "xx", "busybox"); code != 1 || !strings.HasPrefix(errs, `Error: Conflict. The container name "/xx" is already in use by container "`) || !strings.HasSuffix(errs, `". You have to remove (or rename) that container to be able to reuse that name.`+"\n") {
		t.Fatalf("duplicate name: code %d %q", code, errs)
	}
	if _, errs, code := c.run(nil, "run", "--name", "xx", "busybox"); code != 125 || !strings.Contains(errs, "already in use") {
		t.Fatalf("run with a duplicate name: code %d %q", code, errs)
	}
	// start runs it again, detached, with the same command.
	if out := c.ok("start", "xx"); out != "xx\n" {
		t.Fatalf("start: %q", out)
	}
	if out := c.ok("wait", "xx"); out != "3\n" {
		t.Fatalf("wait after start: %q", out)
	}
	if out := c.ok("logs", "xx"); out != "out\nout\n" {
		t.Fatalf("logs after two runs: %q", out)
	}
	if _, errs, code := c.run(nil, "logs", "nope"); code != 1 || !strings.Contains(errs, "No such container: nope") {
		t.Fatalf("logs of a missing container: %d %q", code, errs)
	}
}

func TestLogsFollow(t *testing.T) {
	c := newBusyboxCLI(t)
	c.ok("run", "-d", "--name", "fo", "busybox", "sh", "-c", "echo a; sleep 0.3; echo b")
	// -f returns only when the container ends, with everything it printed.
	if out := c.ok("logs", "-f", "fo"); out != "a\nb\n" {
		t.Fatalf("logs -f: %q", out)
	}
}

func TestStopKillAndForceRemove(t *testing.T) {
	c := newBusyboxCLI(t)
	c.ok("run", "-d", "--name", "long", "busybox", "sleep", "1000")
	if ps := c.ok("ps"); !regexp.MustCompile(`Up .*long`).MatchString(ps) {
		t.Fatalf("ps of a running container:\n%s", ps)
	}
	// docker's (24+) one sentence, with nothing wrapped on.
	if _, errs, code := c.run(nil, "rm", "long"); code != 1 || errs != "Error: cannot remove container \"/long\": container is running: stop the container before removing or force remove\n" {
		t.Fatalf("rm of a running container: code %d %q", code, errs)
	}
	// sleep as PID 1 ignores SIGTERM: stop has to kill it after 1 s.
	if out := c.ok("stop", "-t", "1", "long"); out != "long\n" {
		t.Fatalf("stop: %q", out)
	}
	if st := c.ok("container", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "long"); st != "exited 137\n" {
		t.Fatalf("after stop: %q", st)
	}
	if _, errs, code := c.run(nil, "kill", "long"); code != 1 || !strings.Contains(errs, "is not running") {
		t.Fatalf("kill of a stopped container: code %d %q", code, errs)
	}

	c.ok("run", "-d", "--name", "kk", "busybox", "sh", "-c", "trap 'exit 42' USR1; while true; do sleep 0.1; done")
	if _, errs, code := c.run(nil, "kill", "-s", "BOGUS", "kk"); code != 1 || errs != "Error: invalid signal \"BOGUS\"\n" {
		t.Errorf("kill -s BOGUS: code %d %q, want docker's 1", code, errs)
	}
	c.ok("kill", "-s", "USR1", "kk")
	if out := c.ok("wait", "kk"); out != "42\n" {
		t.Fatalf("kill -s USR1 then wait: %q", out)
	}

	id := strings.TrimSpace(c.ok("run", "-d", "busybox", "sleep", "1000"))
	if got := runcList(t, c); len(got) != 1 || got[0] != id {
		t.Fatalf("runc list while running: %v", got)
	}
	c.ok("rm", "-f", id[:12])
	assertNothingMounted(t, c.root)
	if got := runcList(t, c); len(got) != 0 {
		t.Fatalf("rm -f left runc state: %v", got)
	}
	if _, err := os.Stat(filepath.Join(c.root, "containers", id)); !os.IsNotExist(err) {
		t.Fatalf("rm -f left the container dir (%v)", err)
	}
	if ps := c.ok("ps", "-aq"); strings.Contains(ps, id[:12]) {
		t.Fatalf("rm -f left the record:\n%s", ps)
	}
}

// A runner that dies leaves the lock free: the container is then shown
// exited, its process killed and its rootfs unmounted.
func TestDeadMonitorIsReconciled(t *testing.T) {
	c := newBusyboxCLI(t)
	c.ok("run", "-d", "--name", "orphan", "busybox", "sleep", "1000")
	pid, err := strconv.Atoi(strings.TrimSpace(c.ok("container", "inspect", "--format", "{{.State.Pid}}", "orphan")))
	if err != nil || pid <= 0 {
		t.Fatalf("inspect pid: %v", err)
	}
	monitor := parentPid(t, pid)
	if err := syscall.Kill(monitor, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// wait returns once the dead monitor's lock is free.
	c.ok("wait", "orphan")
	if st := c.ok("ps", "-a", "--format", "{{.State}} {{.Status}}"); !strings.HasPrefix(st, "exited Exited (137)") {
		t.Fatalf("ps after the monitor died: %q", st)
	}
	if err := syscall.Kill(pid, 0); err == nil && !isZombie(pid) {
		t.Fatalf("container process %d still runs", pid)
	}
	assertNothingMounted(t, c.root)
	if got := runcList(t, c); len(got) != 0 {
		t.Fatalf("runc state left: %v", got)
	}
}

func parentPid(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The command name may hold spaces; fields resume after the last ')'.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	return ppid
}

func isZombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return f[0] == "Z"
}

func TestRmiRefusesImageInUse(t *testing.T) {
	c := newBusyboxCLI(t)
	c.ok("create", "--name", "user", "busybox", "true")
	if _, errs, code := c.run(nil, "rmi", "busybox"); code != 1 || !strings.Contains(errs, "container user is using") {
		t.Fatalf("rmi of a used image: code %d %q", code, errs)
	}
	c.ok("rm", "user")
	c.ok("rmi", "busybox")
}

func TestRunTty(t *testing.T) {
	c := newBusyboxCLI(t)
	script := requires.Command(t, "script")
	// script gives strata a terminal, as a user's shell would.
	line := strataBin + " --root " + c.root + " run --rm -t busybox sh -c 'tty; [ -t 1 ] && echo is-a-tty; exit 5'"
	cmd := exec.Command(script, "-qec", line, "/dev/null")
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != 5 || !strings.Contains(string(out), "/dev/pts/") || !strings.Contains(string(out), "is-a-tty") {
		t.Fatalf("run -t: code %d, output %q", code, out)
	}
	if out, _, _ := c.run(nil, "run", "--rm", "busybox", "sh", "-c", "[ -t 1 ] || echo no-tty"); out != "no-tty\n" {
		t.Fatalf("run without -t: %q", out)
	}
	// A detached terminal's output goes to the log, with the pty's CRLF.
	c.ok("run", "-d", "-t", "--name", "dt", "busybox", "sh", "-c", "tty; echo done")
	if out := c.ok("wait", "dt"); out != "0\n" {
		t.Fatalf("wait dt: %q", out)
	}
	if out := c.ok("logs", "dt"); !strings.HasPrefix(out, "/dev/pts/") || !strings.HasSuffix(out, "\r\ndone\r\n") {
		t.Fatalf("logs of run -d -t: %q", out)
	}
	// -i passes stdin through.
	if out, _, code := c.run(strings.NewReader("piped\n"), "run", "--rm", "-i", "busybox", "cat"); code != 0 || out != "piped\n" {
		t.Fatalf("run -i: %d %q", code, out)
	}
}

func TestRuntimeCrunErrorPassesThrough(t *testing.T) {
	requires.Command(t, "crun")
	c := newBusyboxCLI(t)
	out, errs, code := c.run(nil, "run", "--rm", "--runtime", "crun", "busybox", "echo", "hi")
	if code == 0 {
		// crun works on this host after all.
		if out != "hi\n" {
			t.Fatalf("crun run: %q", out)
		}
		return
	}
	if code != 125 || !strings.Contains(errs, "crun create") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("crun failure: code %d, stderr %q (want crun's own message on one line)", code, errs)
	}
	t.Logf("crun: %s", strings.TrimSpace(errs))
}
