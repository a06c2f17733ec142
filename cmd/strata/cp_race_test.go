package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A running container that keeps swapping /dir between a directory and a
// symlink to a host directory: `cp HOSTFILE C:/dir/` never writes into the
// host directory and `cp C:/dir/f -` never returns the host file (docker:
// it pauses the container; strata also resolves each open inside the root).
func TestCpRacingContainer(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	canary := t.TempDir()
	if err := os.WriteFile(filepath.Join(canary, "f"), []byte("host secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	payload := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(payload, []byte("payload"), 0o644); err != nil {
		t.Fatal(err)
	}
	swap := fmt.Sprintf("while :; do rm -rf /dir; mkdir /dir && echo inside > /dir/f; rm -rf /dir; ln -s %s /dir; done", canary)
	c.ok("run", "-d", "--name", "racer", "busybox", "sh", "-c", swap)
	deadline := time.Now().Add(6 * time.Second)
	tries := 0
	for ; tries < 150 && time.Now().Before(deadline); tries++ {
		c.run(nil, "cp", payload, "racer:/dir/")
		if out, _, code := c.run(nil, "cp", "racer:/dir/f", "-"); code == 0 && strings.Contains(out, "host secret") {
			t.Fatalf("try %d: cp returned the host file's contents", tries)
		}
		if _, err := os.Lstat(filepath.Join(canary, "payload")); err == nil {
			t.Fatalf("try %d: cp wrote into the host directory", tries)
		}
	}
	if !strings.Contains(c.ok("ps", "--filter", "name=racer"), "racer") {
		t.Fatal("the racing container stopped: the race was not run")
	}
	t.Logf("%d tries", tries)
}
