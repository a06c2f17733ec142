package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// eventually polls cond every 20ms for up to 20s: for states that other
// processes (a container's monitor) reach on their own.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRestartPolicies(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	// on-failure:3 restarts exactly three times; wait returns after the
	// last run, since the monitor holds the container across restarts.
	c.ok("run", "-d", "--name", "onf", "--restart", "on-failure:3", "busybox", "sh", "-c", "echo ran; exit 3")
	if out := c.ok("wait", "onf"); out != "3\n" {
		t.Errorf("wait: %q", out)
	}
	if got := c.ok("inspect", "-f", "{{.RestartCount}} {{.State.Status}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "onf"); got != "3 exited on-failure:3\n" {
		t.Errorf("after on-failure:3: %q", got)
	}
	if logs := c.ok("logs", "onf"); logs != "ran\nran\nran\nran\n" {
		t.Errorf("logs of 4 runs: %q", logs)
	}
	// A zero exit is not a failure.
	c.ok("run", "-d", "--name", "onf0", "--restart", "on-failure", "busybox", "true")
	c.ok("wait", "onf0")
	if got := c.ok("inspect", "-f", "{{.RestartCount}}", "onf0"); got != "0\n" {
		t.Errorf("on-failure after exit 0: RestartCount %q", got)
	}
	// always keeps going until stop, which ends the policy.
	c.ok("run", "-d", "--name", "alw", "--restart", "always", "busybox", "sh", "-c", "exit 1")
	eventually(t, "two restarts", func() bool {
		n, _ := strconv.Atoi(strings.TrimSpace(c.ok("inspect", "-f", "{{.RestartCount}}", "alw")))
		return n >= 2
	})
	c.ok("stop", "alw")
	st := c.ok("inspect", "-f", "{{.State.Status}} {{.State.Restarting}} {{.RestartCount}}", "alw")
	if !strings.HasPrefix(st, "exited false ") {
		t.Errorf("after stop: %q", st)
	}
	if again := c.ok("inspect", "-f", "{{.State.Status}} {{.State.Restarting}} {{.RestartCount}}", "alw"); again != st {
		t.Errorf("restarted after stop: %q then %q", st, again)
	}
	// A user's start resets the count.
	c.ok("update", "--restart", "no", "alw")
	c.ok("start", "alw")
	c.ok("wait", "alw")
	if got := c.ok("inspect", "-f", "{{.RestartCount}} {{.HostConfig.RestartPolicy.Name}}", "alw"); got != "0 no\n" {
		t.Errorf("after start with policy no: %q", got)
	}
	// A foreground run returns with the first exit; the policy goes on
	// in the background.
	if _, _, code := c.run(nil, "run", "--name", "fg", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 4"); code != 4 {
		t.Errorf("foreground run exit %d", code)
	}
	eventually(t, "the background restarts", func() bool {
		return c.ok("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "fg") == "2 exited\n"
	})
	if _, errs, code := c.run(nil, "run", "--rm", "--restart", "always", "busybox", "true"); code != 125 || !strings.Contains(errs, "Conflicting options: --restart and --rm") {
		t.Errorf("--rm with --restart: %d %q", code, errs)
	}
	if _, _, code := c.run(nil, "run", "--restart", "sometimes", "busybox", "true"); code != 125 {
		t.Errorf("bad policy: exit %d", code)
	}
}

func TestPauseRenameTopStop(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	dir := t.TempDir()
	counter := filepath.Join(dir, "n")
	c.ok("run", "-d", "--name", "cnt", "-v", dir+":/w", "busybox", "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /w/n.tmp; mv /w/n.tmp /w/n; sleep 0.01; done")
	read := func() int {
		b, _ := os.ReadFile(counter)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	eventually(t, "the counter to run", func() bool { return read() > 0 })
	c.ok("pause", "cnt")
	if st := c.ok("ps", "--filter", "status=paused", "--format", "{{.Names}} {{.Status}} {{.State}}"); !strings.HasPrefix(st, "cnt Up") || !strings.HasSuffix(st, "(Paused) paused\n") {
		t.Errorf("ps of a paused container: %q", st)
	}
	frozen := read()
	time.Sleep(300 * time.Millisecond) // a window in which a running counter moves ~30 times
	if n := read(); n != frozen {
		t.Errorf("counter moved while paused: %d -> %d", frozen, n)
	}
	if _, errs, code := c.run(nil, "pause", "cnt"); code == 0 || !strings.Contains(errs, "is already paused") {
		t.Errorf("pause twice: %d %q", code, errs)
	}
	if _, errs, code := c.run(nil, "exec", "cnt", "true"); code != 1 || !strings.Contains(errs, "is paused, unpause the container before exec") {
		t.Errorf("exec in a paused container: %d %q", code, errs)
	}
	c.ok("unpause", "cnt")
	eventually(t, "the counter to move again", func() bool { return read() > frozen })
	if _, errs, code := c.run(nil, "unpause", "cnt"); code == 0 || !strings.Contains(errs, "is not paused") {
		t.Errorf("unpause of a running container: %d %q", code, errs)
	}

	c.ok("rename", "cnt", "counter")
	if names := c.ok("ps", "--format", "{{.Names}}"); names != "counter\n" {
		t.Errorf("after rename: %q", names)
	}
	if _, errs, code := c.run(nil, "rename", "cnt", "x"); code == 0 || !strings.Contains(errs, "No such container: cnt") {
		t.Errorf("rename of the old name: %d %q", code, errs)
	}
	top := strings.Split(c.ok("top", "counter"), "\n")
	if !strings.HasPrefix(top[0], "UID                 PID                 PPID") || !strings.Contains(strings.Join(top, "\n"), "sh -c i=0") {
		t.Errorf("top:\n%s", strings.Join(top, "\n"))
	}
	if top := c.ok("top", "counter", "-o", "pid,comm"); !strings.HasPrefix(top, "PID                 COMMAND\n") {
		t.Errorf("top -o pid,comm:\n%s", top)
	}
	// kill of a paused container delivers the signal (and thaws it).
	c.ok("pause", "counter")
	c.ok("kill", "counter")
	if out := c.ok("wait", "counter"); out != "137\n" {
		t.Errorf("wait after kill of a paused container: %q", out)
	}

	// stop -s, --stop-signal and --stop-timeout: under --init's tini the
	// signal reaches sleep, which it ends at once (PID 1 itself would
	// ignore it and the stop would wait for the timeout).
	c.ok("run", "-d", "--init", "--name", "sig", "--stop-signal", "USR1", "--stop-timeout", "30", "busybox", "sleep", "100")
	c.ok("stop", "sig")
	if got := c.ok("inspect", "-f", "{{.State.ExitCode}} {{.Config.StopSignal}} {{.Config.StopTimeout}}", "sig"); got != "138 USR1 30\n" {
		t.Errorf("stop with --stop-signal USR1: %q", got)
	}
	c.ok("start", "sig")
	c.ok("stop", "-s", "HUP", "sig")
	if got := c.ok("inspect", "-f", "{{.State.ExitCode}}", "sig"); got != "129\n" {
		t.Errorf("stop -s HUP: %q", got)
	}
	c.ok("start", "sig")
	if out := c.ok("restart", "-t", "0", "-s", "TERM", "sig"); out != "sig\n" {
		t.Errorf("restart: %q", out)
	}
	if st := c.ok("inspect", "-f", "{{.State.Status}}", "sig"); st != "running\n" {
		t.Errorf("after restart: %q", st)
	}
}

func TestEventsWaitLabelsInitCidfile(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	dir := t.TempDir()
	labels := filepath.Join(dir, "labels")
	if err := os.WriteFile(labels, []byte("# a comment\nteam=db\ntier=back\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cid := filepath.Join(dir, "cid")
	id := strings.TrimSpace(c.ok("run", "-d", "--name", "ev", "--cidfile", cid, "--label-file", labels, "-l", "tier=front", "busybox", "sleep", "100"))
	if b, _ := os.ReadFile(cid); string(b) != id {
		t.Errorf("cidfile holds %q, want %q", b, id)
	}
	if got := c.ok("inspect", "-f", "{{.HostConfig.ContainerIDFile}}", "ev"); got != cid+"\n" {
		t.Errorf("inspect ContainerIDFile: %q", got)
	}
	if _, errs, code := c.run(nil, "run", "--cidfile", cid, "busybox", "true"); code != 125 || !strings.Contains(errs, "container ID file found") {
		t.Errorf("existing cidfile: %d %q", code, errs)
	}
	if got := c.ok("ps", "--filter", "label=tier=front", "--format", `{{.Names}} {{.Label "team"}} {{.Labels}}`); got != "ev db team=db,tier=front\n" {
		t.Errorf("ps label filter and .Label: %q", got)
	}
	if got := c.ok("ps", "--filter", "label=tier=back", "-q"); got != "" {
		t.Errorf("label=tier=back matched %q", got)
	}
	c.ok("pause", "ev")
	c.ok("unpause", "ev")
	c.ok("kill", "ev")
	if out := c.ok("wait", "--condition", "not-running", "ev"); out != "137\n" {
		t.Errorf("wait: %q", out)
	}
	c.ok("rm", "ev")
	got := c.ok("events", "--since", since, "--until", "0s", "--filter", "container=ev", "--format", "{{.Action}}")
	want := "create\nstart\npause\nunpause\nkill\ndie\ndestroy\n"
	if got != want {
		t.Errorf("events:\n%s\nwant\n%s", got, want)
	}
	line := c.ok("events", "--since", since, "--until", "0s", "--filter", "event=die", "--filter", "label=team=db")
	if !strings.Contains(line, " container die "+id+" (exitCode=137, image=busybox, name=ev, team=db, tier=front)\n") {
		t.Errorf("default event line: %q", line)
	}
	if _, _, code := c.run(nil, "events", "--filter", "bogus=1", "--until", "0s"); code != 125 {
		t.Errorf("bad filter: exit %d", code)
	}

	// wait --condition next-exit and removed follow the event log.
	c.ok("create", "--name", "ww", "busybox", "sh", "-c", "exit 6")
	done := make(chan string, 1)
	go func() {
		out, _, _ := c.run(nil, "wait", "--condition", "next-exit", "ww")
		done <- out
	}()
	// wait must be following the log before the start: poll for its
	// process to be in the follow loop is not observable, so start the
	// container only once the waiter has had its open (bounded retry).
	eventually(t, "the next-exit waiter", func() bool {
		select {
		case out := <-done:
			t.Fatalf("wait --condition next-exit returned before any start: %q", out)
		default:
		}
		c.ok("start", "ww")
		c.ok("wait", "ww")
		select {
		case out := <-done:
			if out != "6\n" {
				t.Errorf("next-exit: %q", out)
			}
			return true
		case <-time.After(500 * time.Millisecond):
			return false
		}
	})
	go func() {
		out, _, _ := c.run(nil, "wait", "--condition", "removed", "ww")
		done <- out
	}()
	eventually(t, "the removed waiter", func() bool {
		select {
		case out := <-done:
			t.Fatalf("wait --condition removed returned early: %q", out)
		case <-time.After(200 * time.Millisecond):
		}
		return true
	})
	c.ok("rm", "ww")
	if out := <-done; out != "6\n" {
		t.Errorf("removed: %q", out)
	}

	// --init runs docker-init (tini) as PID 1.
	if out := c.ok("run", "--rm", "--init", "busybox", "cat", "/proc/1/cmdline"); !strings.HasPrefix(out, "/sbin/docker-init\x00--\x00cat") {
		t.Errorf("--init PID 1: %q", out)
	}
}

func TestGenerateSystemd(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	id := strings.TrimSpace(c.ok("create", "--name", "svc", "--restart", "always", "--stop-timeout", "5", "busybox", "sleep", "5"))
	unit := c.ok("generate", "systemd", "--name", "svc")
	for _, want := range []string{
		"[Unit]\nDescription=strata container svc\n",
		"[Service]\nRestart=always\nTimeoutStopSec=65\nExecStart=" + strataBin + " --root " + c.root + " start -a svc\n",
		"ExecStop=" + strataBin + " --root " + c.root + " stop -t 5 svc\n",
		"[Install]\nWantedBy=default.target\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	dir := t.TempDir()
	cmd := exec.Command(strataBin, "--root", c.root, "generate", "systemd", "--files", "--restart-policy", "on-abnormal", "svc")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != filepath.Join(dir, "container-"+id+".service") {
		t.Fatalf("--files: %q %v", out, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "container-"+id+".service")); !strings.Contains(string(b), "Restart=on-abnormal\n") {
		t.Errorf("--restart-policy: %s", b)
	}
}
