package lockfile

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/strata-project/strata/internal/testutil/requires"
)

// Not parallel: a test beside it that starts a process forks this one,
// and the child holds every open file (the lock's too) until it execs, so
// Held could see the lock for a moment after Unlock.
func TestTryLockConflicts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	a, ok, err := TryLock(p, Exclusive)
	if err != nil || !ok {
		t.Fatalf("first lock: ok=%v err=%v", ok, err)
	}
	if _, ok, err := TryLock(p, Shared); ok || err != nil {
		t.Fatalf("shared lock beside an exclusive one: ok=%v err=%v", ok, err)
	}
	if !Held(p) {
		t.Fatal("Held is false while a lock is held")
	}
	a.Unlock()
	a.Unlock() // twice is fine
	if Held(p) {
		t.Fatal("Held is true after Unlock")
	}
	s1, ok1, _ := TryLock(p, Shared)
	s2, ok2, _ := TryLock(p, Shared)
	if !ok1 || !ok2 {
		t.Fatal("two shared locks conflict")
	}
	s1.Unlock()
	s2.Unlock()
}

func TestWaitGetsTheLockWhenReleasedAndStopsWithContext(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "l")
	a, _, _ := TryLock(p, Exclusive)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Wait(ctx, p, Exclusive); err == nil {
		t.Fatal("Wait returned a lock while another was held and ctx was done")
	}
	rel := Released(p)
	got := make(chan *Lock)
	go func() {
		l, err := Wait(context.Background(), p, Exclusive)
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	select {
	case <-rel:
		t.Fatal("Released closed while the lock was held")
	default:
	}
	a.Unlock()
	l := <-got
	l.Unlock()
	<-rel
}

// A lock held by another process disappears with that process, however it
// ends: that is what makes a lock file a liveness signal.
func TestOwnerDiesWithItsProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	me, err := NewOwner(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !Alive(dir, me.ID) {
		t.Fatal("own registration is not alive")
	}
	if Alive(dir, "nosuch") || Alive(dir, "../x") || Alive(dir, "") {
		t.Fatal("an unknown owner is alive")
	}
	// A child process holds a registration of its own, then is killed.
	lockPath := filepath.Join(dir, "child"+ownerSuffix)
	f, err := os.Create(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	requires.Command(t, "sh", "flock")
	cmd := exec.Command("/bin/sh", "-c", "exec 9<>\"$1\"; flock -x 9; echo locked; exec sleep 60", "sh", lockPath)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil {
		cmd.Process.Kill()
		t.Fatalf("the child never took its lock: %v", err)
	}
	if !Alive(dir, "child") {
		t.Fatal("a live child's registration is not alive")
	}
	if n, _ := SweepOwners(dir); n != 0 {
		t.Fatalf("sweep removed %d live registrations", n)
	}
	cmd.Process.Kill()
	cmd.Wait() // reaped: its files are closed
	if Alive(dir, "child") {
		t.Fatal("a killed child's registration is still alive")
	}
	if n, _ := SweepOwners(dir); n != 1 {
		t.Fatalf("sweep removed %d dead registrations, want 1", n)
	}
	me.Close()
	if Alive(dir, me.ID) {
		t.Fatal("closed registration is alive")
	}
}
