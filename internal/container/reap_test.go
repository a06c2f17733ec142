package container

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A runtime process this subreaper adopts is reaped when it exits, so it
// cannot stay a zombie (one in a container's PID namespace kept its init
// from dying: rm -f of a container with a health check hung).
func TestSubreaperReapsAdoptedRuntimeProcesses(t *testing.T) {
	if err := becomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	data, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	// The name runc's second stage has; the parent shell exits at once,
	// so the process is adopted by this one.
	stage := filepath.Join(t.TempDir(), "runc:[2:INIT]")
	if err := os.WriteFile(stage, data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/sh", "-c", `"$1" 0.2 </dev/null >/dev/null 2>&1 & echo $!`, "sh", stage).Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status"); err != nil || !strings.Contains(string(b), "PPid:\t"+strconv.Itoa(os.Getpid())+"\n") {
		t.Fatalf("the process was not adopted by the test: %s %v", b, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			return // exited and reaped
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			t.Fatalf("adopted runtime process %d still there: %s", pid, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
