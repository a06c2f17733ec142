package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLogsOfEveryContainer(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	// A foreground run: the terminal gets the output live and the log keeps it.
	out, errs, code := c.run(nil, "run", "--name", "fg", "busybox", "sh", "-c", "echo out; echo err >&2; printf last")
	if code != 0 || out != "out\nlast" || errs != "err\n" {
		t.Fatalf("run: %d %q %q", code, out, errs)
	}
	if out, errs, _ := c.run(nil, "logs", "fg"); out != "out\nlast" || errs != "err\n" {
		t.Fatalf("logs of a foreground run: %q %q", out, errs)
	}
	if out := c.ok("logs", "--details", "--since", "10m", "fg"); out != " out\n last" {
		t.Errorf("logs --details --since 10m: %q", out)
	}
	if out := c.ok("logs", "--until", "1h", "fg"); out != "" {
		t.Errorf("logs --until 1h: %q", out)
	}
	if out := c.ok("logs", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "fg"); out != "" {
		t.Errorf("logs --since in an hour: %q", out)
	}
	if out := c.ok("logs", "--since", "1000000000.5", "--until", "4000000000", "fg"); out != "out\nlast" {
		t.Errorf("logs with Unix times: %q", out)
	}
	// docker's daemon refuses a bad time: exit 1, not a usage error's 125.
	if _, errs, code := c.run(nil, "logs", "--since", "bogus", "fg"); code != 1 || errs != "Error: invalid value for \"since\": failed to parse value as time or duration: \"bogus\"\n" {
		t.Errorf("logs --since bogus: %d %q", code, errs)
	}
	if _, errs, code := c.run(nil, "events", "--until", "bogus"); code != 1 || !strings.Contains(errs, `failed to parse value as time or duration: "bogus"`) {
		t.Errorf("events --until bogus: %d %q", code, errs)
	}

	// --log-driver none keeps nothing.
	if out := c.ok("run", "--name", "none", "--log-driver", "none", "busybox", "echo", "x"); out != "x\n" {
		t.Errorf("run --log-driver none: %q", out)
	}
	if _, errs, code := c.run(nil, "logs", "none"); code != 1 || !strings.Contains(errs, "does not support reading") {
		t.Errorf("logs of a none container: %d %q", code, errs)
	}
	for _, bad := range [][]string{{"--log-driver", "syslog"}, {"--log-opt", "max-size=bogus"}, {"--log-opt", "nosuch=1"}} {
		if _, _, code := c.run(nil, append(append([]string{"create"}, bad...), "busybox")...); code != 125 {
			t.Errorf("create %v: exit %d", bad, code)
		}
	}

	// Rotation: max-file files of at most max-size, logs reads them in order.
	c.ok("run", "--name", "rot", "--log-opt", "max-size=1k", "--log-opt", "max-file=3", "busybox",
		"sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done")
	ctrDir := filepath.Join(c.root, "containers", strings.TrimSpace(c.ok("inspect", "-f", "{{.Id}}", "rot")))
	logs, _ := filepath.Glob(filepath.Join(ctrDir, "*-json.log*"))
	if len(logs) != 3 {
		t.Errorf("log files %v, want 3", logs)
	}
	for _, p := range logs {
		if st, err := os.Stat(p); err != nil || st.Size() > 1024 {
			t.Errorf("%s: %v, size %d", p, err, st.Size())
		}
	}
	lines := strings.Split(strings.TrimSpace(c.ok("logs", "rot")), "\n")
	if len(lines) < 10 || lines[len(lines)-1] != "line-299" || lines[len(lines)-2] != "line-298" {
		t.Errorf("logs after rotation: %d lines ending %q", len(lines), lines[len(lines)-2:])
	}
}

func TestLogsFollowAcrossRestartAndAttach(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	c.ok("run", "-d", "--name", "fl", "busybox", "sh", "-c", "echo run; sleep 1")
	c.ok("wait", "fl")
	// -f of a container started again while it follows keeps going.
	c.ok("start", "fl")
	cmd := exec.Command(strataBin, "--root", c.root, "logs", "-f", "fl")
	out, err := cmd.Output()
	if err != nil || string(out) != "run\nrun\n" {
		t.Fatalf("logs -f: %v %q", err, out)
	}

	// attach: live output, stdin of a -i container, its exit status.
	c.ok("run", "-d", "-i", "--name", "at", "busybox", "sh", "-c", `while read l; do echo "got $l"; [ "$l" = quit ] && exit 9; done`)
	out2, _, code := c.run(strings.NewReader("hello\nquit\n"), "attach", "at")
	if code != 9 || out2 != "got hello\ngot quit\n" {
		t.Errorf("attach -i: %d %q", code, out2)
	}
	if _, errs, code := c.run(nil, "attach", "at"); code != 1 || !strings.Contains(errs, "cannot attach to a stopped container") {
		t.Errorf("attach to a stopped container: %d %q", code, errs)
	}
	// start -a (-i) of a running container attaches to it, as docker's does.
	c.ok("run", "-d", "-i", "--name", "sa", "busybox", "sh", "-c", `read l; echo "got $l"; exit 4`)
	if out, errs, code := c.run(strings.NewReader("hi\n"), "start", "-a", "-i", "sa"); code != 4 || out != "got hi\n" {
		t.Errorf("start -a -i of a running container: %d %q %q", code, out, errs)
	}

	// Signals to attach reach the container (--sig-proxy, the default).
	c.ok("run", "-d", "--name", "sig", "busybox", "sh", "-c", `trap "echo term; exit 5" TERM; while :; do echo tick; sleep 0.1; done`)
	att := exec.Command(strataBin, "--root", c.root, "attach", "sig")
	stdout, err := att.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := att.Start(); err != nil {
		t.Fatal(err)
	}
	// A first line proves attach is following before it is signalled.
	r := bufio.NewReader(stdout)
	if line, err := r.ReadString('\n'); err != nil || line != "tick\n" {
		t.Fatalf("attach: %q %v", line, err)
	}
	if err := att.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := r.ReadString(0)
	err = att.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 5 || !strings.Contains(rest, "term\n") {
		t.Errorf("attach after SIGTERM: %v %q", err, rest)
	}
}
