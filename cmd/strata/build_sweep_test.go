package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A build killed in the middle of a RUN leaves a running container, its
// mounts and scratch directories; the next build on the store cleans them up.
func TestKilledBuildIsCleanedUpByTheNext(t *testing.T) {
	c := newBusyboxCLI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	dir := t.TempDir()
	df := "FROM busybox\nRUN --mount=type=tmpfs,target=/scratch nc 127.0.0.1 " + port + "\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command(strataBin, "--root", c.root, "build", "--progress", "plain", dir)
	if err := build.Start(); err != nil {
		t.Fatal(err)
	}
	// The RUN connecting here means its mounts are in place.
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(2 * time.Minute))
	conn, err := ln.Accept()
	if err != nil {
		build.Process.Kill()
		build.Wait()
		t.Fatalf("the RUN never connected: %v", err)
	}
	defer conn.Close()
	build.Process.Signal(syscall.SIGKILL)
	build.Wait()

	steps := filepath.Join(c.root, "build", "steps")
	if !mountedBelow(t, steps) {
		t.Fatal("the killed build left nothing mounted: the test does not exercise the clean-up")
	}
	next := t.TempDir()
	os.WriteFile(filepath.Join(next, "Dockerfile"), []byte("FROM busybox\nRUN true\n"), 0o644)
	c.ok("build", "--progress", "plain", next)

	assertNothingMounted(t, c.root)
	if ents, _ := os.ReadDir(steps); len(ents) != 0 {
		t.Fatalf("scratch dirs left: %v", ents)
	}
	out, err := exec.Command("runc", "--root", filepath.Join(c.root, "build", "runtime"), "list", "-q").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("RUN containers left: %q %v", out, err)
	}
}

func mountedBelow(t *testing.T, dir string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			return true
		}
	}
	return false
}
