package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

func TestExecStatusEnvUserWorkdir(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	c.ok("run", "-d", "--name", "ex", "-e", "CTR=1", "-w", "/tmp", "busybox", "sleep", "300")

	cases := []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"ex", "sh", "-c", "exit 7"}, 7, "", ""},
		{[]string{"ex", "nosuch"}, 127, "", "executable file not found"},
		{[]string{"ex", "/etc/passwd"}, 126, "", "permission denied"},
		{[]string{"-u", "nobody", "ex", "id"}, 0, "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n", ""}, // as docker exec prints it
		{[]string{"-u", "0:65534", "ex", "id", "-g"}, 0, "65534\n", ""},
		{[]string{"-u", "nosuchuser", "ex", "id"}, 126, "", "unable to find user nosuchuser"},
		{[]string{"ex", "pwd"}, 0, "/tmp\n", ""},
		{[]string{"-w", "/etc", "ex", "pwd"}, 0, "/etc\n", ""},
		{[]string{"-w", "/nonexistent", "ex", "pwd"}, 126, "", "/nonexistent"},
		{[]string{"-e", "X=1", "-e", "CTR=2", "ex", "sh", "-c", "echo $X $CTR $PATH"}, 0, "1 2 /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n", ""},
		{[]string{"ex", "sh", "-c", "echo $CTR; [ -t 0 ] || echo no-tty"}, 0, "1\nno-tty\n", ""},
		{[]string{"nosuch", "true"}, 1, "", "No such container: nosuch"},
	}
	for _, tc := range cases {
		out, errs, code := c.run(nil, append([]string{"exec"}, tc.args...)...)
		if code != tc.code || out != tc.out || !strings.Contains(errs, tc.err) {
			t.Errorf("exec %v: exit %d, stdout %q, stderr %q; want %d %q %q", tc.args, code, out, errs, tc.code, tc.out, tc.err)
		}
	}

	// The container's capabilities are kept unless --privileged.
	capBnd := func(args ...string) string {
		out := c.ok(append(append([]string{"exec"}, args...), "ex", "grep", "CapBnd", "/proc/self/status")...)
		return strings.TrimSpace(out)
	}
	init := strings.TrimSpace(c.ok("exec", "ex", "sh", "-c", "grep CapBnd /proc/1/status"))
	if got := capBnd(); got != init {
		t.Errorf("exec bounding set %q, the container's %q", got, init)
	}
	if got := capBnd("--privileged"); got == init {
		t.Errorf("exec --privileged kept the container's bounding set %q", got)
	}

	// -i: stdin reaches the process and its end closes it.
	if out, _, code := c.run(strings.NewReader("one\ntwo\n"), "exec", "-i", "ex", "sh", "-c", "cat; echo eof"); code != 0 || out != "one\ntwo\neof\n" {
		t.Errorf("exec -i: %d %q", code, out)
	}

	// -d returns at once; the process runs and is listed in ExecIDs.
	c.ok("exec", "-d", "ex", "sleep", "300")
	var insp []struct{ ExecIDs []string }
	if err := json.Unmarshal([]byte(c.ok("inspect", "ex")), &insp); err != nil {
		t.Fatal(err)
	}
	if len(insp) != 1 || len(insp[0].ExecIDs) != 1 || len(insp[0].ExecIDs[0]) != 64 {
		t.Errorf("inspect ExecIDs after exec -d: %+v", insp)
	}

	// -d -t: a pty that something keeps draining (docker's daemon does;
	// strata leaves a holder process), so lots of output never blocks.
	c.ok("exec", "ex", "mkfifo", "/tmp/done")
	c.ok("exec", "-d", "-t", "ex", "sh", "-c", `[ -t 1 ] && i=0 && while [ $i -lt 5000 ]; do echo line-$i; i=$((i+1)); done; echo finished > /tmp/done`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, strataBin, "--root", c.root, "exec", "ex", "cat", "/tmp/done").Output(); err != nil || string(out) != "finished\n" {
		t.Errorf("exec -d -t: %q %v", out, err)
	}

	// A stopped container.
	c.ok("create", "--name", "stopped", "busybox", "true")
	if _, errs, code := c.run(nil, "exec", "stopped", "true"); code != 1 || !strings.Contains(errs, "is not running") {
		t.Errorf("exec in a created container: %d %q", code, errs)
	}
	c.ok("kill", "ex")
	c.ok("wait", "ex")
	if _, errs, code := c.run(nil, "exec", "ex", "true"); code != 1 || !strings.Contains(errs, "is not running") {
		t.Errorf("exec in an exited container: %d %q", code, errs)
	}
}

func TestExecSignalAndTty(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	c.ok("run", "-d", "--name", "ex", "busybox", "sleep", "300")

	// A signal to strata reaches the exec'd process.
	cmd := exec.Command(strataBin, "--root", c.root, "exec", "ex", "sh", "-c", `trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 1; done`)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := stdout.Read(buf); err != nil || string(buf[:n]) != "ready\n" {
		t.Fatalf("exec: %q %v", buf[:n], err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, 0, 64)
	for {
		n, err := stdout.Read(buf)
		rest = append(rest, buf[:n]...)
		if err != nil {
			break
		}
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || string(rest) != "got-term\n" {
		t.Fatalf("exec after SIGTERM: %v, output %q", err, rest)
	}

	// -it: a real pty of the user's terminal size, following resizes.
	tty := exec.Command(strataBin, "--root", c.root, "exec", "-it", "ex", "sh", "-c",
		`tty; stty size; while read x; do stty size; [ "$x" = q ] && exit 4; done`)
	master, err := pty.StartWithSize(tty, &pty.Winsize{Rows: 40, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	out := readPTY(master)
	out.waitFor(t, "the first size", func(s string) bool { return strings.Contains(s, "/dev/pts/") && strings.Contains(s, "40 100") })
	if err := pty.Setsize(master, &pty.Winsize{Rows: 50, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	// SIGWINCH reaches strata asynchronously: ask again until the new size
	// shows (bounded; each answer is awaited, nothing sleeps).
	resized := false
	for i := 0; i < 100 && !resized; i++ {
		want := strings.Count(out.String(), "\n") + 2 // the echoed line and the answer
		if _, err := master.Write([]byte("x\r")); err != nil {
			t.Fatal(err)
		}
		out.waitFor(t, "an answer", func(s string) bool { return strings.Count(s, "\n") >= want })
		resized = strings.HasSuffix(strings.TrimRight(out.String(), "\r\n"), "50 120")
	}
	if !resized {
		t.Fatalf("the pty never took the new size: %q", out.String())
	}
	if _, err := master.Write([]byte("q\r")); err != nil {
		t.Fatal(err)
	}
	err = tty.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 4 {
		t.Fatalf("exec -it: %v, output %q", err, out.String())
	}
}
