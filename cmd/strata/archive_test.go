package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveLoadCLI(t *testing.T) {
	t.Parallel()
	src := newBusyboxCLI(t)
	src.ok("tag", "busybox", "ship/bb:1")
	id := strings.TrimSpace(src.ok("inspect", "--format", "{{.Id}}", "busybox"))
	archive := filepath.Join(t.TempDir(), "bb.tar")
	src.ok("save", "-o", archive, "busybox", "ship/bb:1")

	dst := newCLI(t)
	if out := dst.ok("load", "-i", archive); out != "Loaded image: busybox:latest\nLoaded image: ship/bb:1\n" {
		t.Errorf("load printed %q", out)
	}
	if got := strings.TrimSpace(dst.ok("inspect", "--format", "{{.Id}}", "ship/bb:1")); got != id {
		t.Errorf("loaded image ID %s, saved %s", got, id)
	}
	if out := dst.ok("run", "--rm", "ship/bb:1", "echo", "loaded"); out != "loaded\n" {
		t.Errorf("run printed %q", out)
	}

	// save to stdout, load from stdin; by ID it loads untagged.
	saved, errs, code := src.run(nil, "save", id)
	if code != 0 {
		t.Fatalf("save: %d %s", code, errs)
	}
	third := newCLI(t)
	out, errs, code := third.run(bytes.NewReader([]byte(saved)), "load")
	if code != 0 || out != "Loaded image ID: "+id+"\n" {
		t.Errorf("load from stdin: %d %q %s", code, out, errs)
	}

	// Usage errors exit 125, a broken archive 1 with the store untouched.
	if _, _, code := src.run(nil, "save", "--format", "zip", "busybox"); code != 125 {
		t.Errorf("save --format zip exited %d", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.tar")
	os.WriteFile(bad, []byte("not a tar"), 0o644)
	if _, errs, code := third.run(nil, "load", "-i", bad); code != 1 || !strings.Contains(errs, "invalid image archive") {
		t.Errorf("load of garbage: exit %d, %s", code, errs)
	}
	if _, _, code := src.run(nil, "save", "-o", filepath.Join(t.TempDir(), "x.tar"), "nosuch"); code != 1 {
		t.Errorf("save of a missing image exited %d", code)
	}
}
