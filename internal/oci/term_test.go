package oci

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMakeRawAndRestore(t *testing.T) {
	_, tty := openPTY(t)
	echoOn := func() bool {
		st, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		return st.Lflag&unix.ECHO != 0
	}
	if !echoOn() {
		t.Fatal("fresh pty has echo off")
	}
	restore, err := MakeRaw(tty)
	if err != nil {
		t.Fatal(err)
	}
	if echoOn() {
		t.Error("raw mode left echo on")
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if !echoOn() {
		t.Error("restore did not bring echo back")
	}

	// Not a terminal: nothing to do, no error.
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	restore, err = MakeRaw(f)
	if err != nil || restore() != nil || IsTerminal(f) {
		t.Errorf("MakeRaw on a file: %v", err)
	}
}

func TestForwardResize(t *testing.T) {
	containerMaster, _ := openPTY(t)
	_, userTTY := openPTY(t)
	size := func() unix.Winsize {
		ws, err := unix.IoctlGetWinsize(int(containerMaster.Fd()), unix.TIOCGWINSZ)
		if err != nil {
			t.Fatal(err)
		}
		return *ws
	}
	setUser := func(rows, cols uint16) {
		if err := unix.IoctlSetWinsize(int(userTTY.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
			t.Fatal(err)
		}
	}
	setUser(20, 70)
	stop := ForwardResize(containerMaster, userTTY)
	defer stop()
	if ws := size(); ws.Row != 20 || ws.Col != 70 {
		t.Fatalf("initial size %dx%d, want 20x70", ws.Row, ws.Col)
	}
	setUser(40, 120)
	if err := syscall.Kill(os.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	// The resize happens on the forwarder goroutine; poll, bounded.
	deadline := time.Now().Add(10 * time.Second)
	for ws := size(); ws.Row != 40 || ws.Col != 120; ws = size() {
		if time.Now().After(deadline) {
			t.Fatalf("size %dx%d after SIGWINCH, want 40x120", ws.Row, ws.Col)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReadLogAndErrorKinds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.json")
	writeFile(t, path, `{"level":"info","msg":"starting","time":"x"}
{"level":"warning","msg":"a warning","time":"x"}
{"level":"error","msg":"first error","time":"x"}
{"level":"error","msg":"container \"c1\" does not exist","time":"x"}
{"level":"info","msg":"bye","time":"x"}
`)
	if got := lastLogError(path); got != `container "c1" does not exist` {
		t.Errorf("lastLogError = %q", got)
	}
	errPath := filepath.Join(t.TempDir(), "warn.json")
	writeFile(t, errPath, `{"level":"warning","msg":"only a warning"}`+"\n")
	if got := lastLogError(errPath); got != "" {
		t.Errorf("a warning is not an error, got %q", got)
	}
	if got := failureMessage(errPath, "stderr says\nlast line\n"); got != "last line" {
		t.Errorf("failureMessage = %q, want stderr's last line", got)
	}
	if got := failureMessage(errPath, ""); got != "only a warning" {
		t.Errorf("failureMessage = %q, want the warning", got)
	}

	e := &Error{Runtime: "crun", Op: "kill", ID: "c1", Msg: "container `c1` is not running"}
	if !errors.Is(e, ErrNotRunning) || errors.Is(e, ErrNotExist) {
		t.Errorf("kinds of %v wrong", e)
	}
	if e.Error() != "crun kill c1: container `c1` is not running" {
		t.Errorf("Error() = %q", e.Error())
	}
}
