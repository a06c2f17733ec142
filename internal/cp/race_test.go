package cp

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-project/strata/internal/testutil/swap"
)

// A container that keeps swapping /dir between a directory and a symlink to
// a host directory never gets cp to write into that host directory, nor to
// read a host file. The swapper runs here, in-process, so that the race is
// hit thousands of times a second (TestCpRacingContainer in cmd/strata runs
// the same race inside a real container).
func TestCpRaceDirSwappedForSymlink(t *testing.T) {
	base := t.TempDir()
	ctr, canary, host := filepath.Join(base, "ctr"), filepath.Join(base, "canary"), filepath.Join(base, "host")
	for _, d := range []string{ctr, canary, host} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(canary, "f"), "host secret")
	write(t, filepath.Join(host, "payload"), "payload")

	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		dir := filepath.Join(ctr, "dir")
		for !stop.Load() {
			os.RemoveAll(dir)
			if os.Mkdir(dir, 0o755) == nil {
				os.WriteFile(filepath.Join(dir, "f"), []byte("inside"), 0o644)
			}
			os.RemoveAll(dir)
			os.Symlink(canary, dir)
		}
	}()
	defer func() { stop.Store(true); <-done }()

	ctx := context.Background()
	deadline := time.Now().Add(3 * time.Second)
	tries := 0
	for ; tries < 3000 && time.Now().Before(deadline); tries++ {
		_ = Copy(ctx, Endpoint{Root: "/", Path: filepath.Join(host, "payload")}, Endpoint{Root: ctr, Path: "/dir/"})
		var buf bytes.Buffer
		if WriteSource(ctx, &buf, Endpoint{Root: ctr, Path: "/dir/f"}) == nil {
			tr := tar.NewReader(&buf)
			if _, err := tr.Next(); err == nil {
				if b, _ := io.ReadAll(tr); strings.Contains(string(b), "host secret") {
					t.Fatalf("try %d: cp read the host file through the swapped symlink", tries)
				}
			}
		}
		if _, err := os.Lstat(filepath.Join(canary, "payload")); err == nil {
			t.Fatalf("try %d: cp wrote into the host directory", tries)
		}
	}
	t.Logf("%d tries", tries)
}

// cp of a tar is not a layer: a member .wh.passwd is a file of that name,
// and /etc/passwd stays (docker writes the literal file).
func TestExtractWritesWhiteoutNamesLiterally(t *testing.T) {
	_, ctr := setup(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range []string{".wh.passwd", ".wh..wh..opq", ".wh..wh.plnk"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
		tw.Write([]byte("x"))
	}
	tw.Close()
	if err := Extract(context.Background(), &buf, Endpoint{Root: ctr, Path: "/etc"}); err != nil {
		t.Fatal(err)
	}
	if read(t, filepath.Join(ctr, "etc/passwd")) != "root" {
		t.Error("/etc/passwd was deleted by a .wh. member")
	}
	for _, name := range []string{".wh.passwd", ".wh..wh..opq", ".wh..wh.plnk"} {
		if read(t, filepath.Join(ctr, "etc", name)) != "x" {
			t.Errorf("%s not written as a file", name)
		}
	}
}

// The walk below an opened source directory is as safe as the open of the
// directory itself, without pausing anything: a container that keeps
// swapping a subdirectory for a symlink to a host directory never gets a
// host file's contents into `cp C:/top -`, whichever moment the swap hits
// (between listing a directory, stating an entry, opening it, reading it).
func TestCpRaceWalkBelowSourceUnpaused(t *testing.T) {
	ctr := t.TempDir()
	write(t, filepath.Join(ctr, "top", "a"), "inside")
	swap.Subdir(t, filepath.Join(ctr, "top"))

	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Second)
	tries, walked := 0, 0
	for ; tries < 2000 && time.Now().Before(deadline); tries++ {
		var buf bytes.Buffer
		if WriteSource(ctx, &buf, Endpoint{Root: ctr, Path: "/top"}) != nil {
			continue // the swap made the walk fail: nothing was read outside
		}
		tr := tar.NewReader(&buf)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if h.Name == "top/sub/f" || h.Name == "top/sub/deeper/g" {
				walked++
			}
			if b, _ := io.ReadAll(tr); strings.Contains(string(b), swap.HostContent) {
				t.Fatalf("try %d: %s has a host file's contents", tries, h.Name)
			}
		}
	}
	t.Logf("%d tries, %d files read below the swapped directory", tries, walked)
}
