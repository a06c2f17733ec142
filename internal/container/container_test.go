package container

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-project/strata/internal/testutil/requires"

	"github.com/moby/sys/mountinfo"

	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/store"
)

func TestStatusText(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		st   State
		want string
	}{
		{State{Status: StatusCreated}, "Created"},
		{State{Status: StatusRunning, StartedAt: now.Add(-3 * time.Second)}, "Up 3 seconds"},
		{State{Status: StatusExited, ExitCode: 7, FinishedAt: now.Add(-2 * time.Second)}, "Exited (7) 2 seconds ago"},
	} {
		if got := (Container{State: tc.st}).StatusText(now); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.st, got, tc.want)
		}
	}
}

// The log round trip: what jsonLog writes, Logs reads back per stream, and
// --tail keeps only the last lines, including a final line without newline.
func TestJSONLogRoundTripAndTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, err := openJSONLog(path, LogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	out := &lineWriter{log: l, stream: "stdout"}
	out.Write([]byte("one\ntwo\nthr"))
	out.Write([]byte("ee")) // a line in two writes is one entry
	out.Close()
	errw := &lineWriter{log: l, stream: "stderr"}
	errw.Write([]byte("oops\n"))
	errw.Close()
	l.close()

	read := func(n int, o LogOptions) (string, string) {
		r, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out, errb bytes.Buffer
		o.Tail = n
		if err := tailAll([]*lineReader{{f: r}}, n, logWriter{stdout: &out, stderr: &errb, o: o}.write); err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String()
	}
	if out, errs := read(-1, LogOptions{}); out != "one\ntwo\nthree" || errs != "oops\n" {
		t.Errorf("all: %q %q", out, errs)
	}
	if out, errs := read(2, LogOptions{}); out != "three" || errs != "oops\n" {
		t.Errorf("tail 2: %q %q", out, errs)
	}
	if out, errs := read(0, LogOptions{}); out != "" || errs != "" {
		t.Errorf("tail 0: %q %q", out, errs)
	}
	if out, _ := read(-1, LogOptions{Details: true}); out != " one\n two\n three" {
		t.Errorf("details: %q", out)
	}
	future := time.Now().Add(time.Hour)
	if out, errs := read(-1, LogOptions{Since: future}); out != "" || errs != "" {
		t.Errorf("since the future: %q %q", out, errs)
	}
	if out, errs := read(-1, LogOptions{Until: future}); out != "one\ntwo\nthree" || errs != "oops\n" {
		t.Errorf("until the future: %q %q", out, errs)
	}
	if out, _ := read(-1, LogOptions{Until: time.Now().Add(-time.Hour)}); out != "" {
		t.Errorf("until an hour ago: %q", out)
	}
}

// Rotation keeps max-file files of about max-size each, and reading
// returns the kept lines oldest first across them.
func TestJSONLogRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, err := openJSONLog(path, LogConfig{Opts: map[string]string{"max-size": "200", "max-file": "3"}})
	if err != nil {
		t.Fatal(err)
	}
	lw := &lineWriter{log: l, stream: "stdout"}
	for i := range 40 {
		fmt.Fprintf(lw, "line %02d\n", i)
	}
	l.close()
	for _, p := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(p)
		if err != nil || st.Size() > 200 {
			t.Fatalf("%s: %v size %d", p, err, st.Size())
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Fatal("a fourth file was kept")
	}
	var readers []*lineReader
	for _, p := range []string{path + ".2", path + ".1", path} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		readers = append(readers, &lineReader{f: f})
	}
	var out bytes.Buffer
	if err := tailAll(readers, -1, logWriter{stdout: &out}.write); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) < 5 || lines[len(lines)-1] != "line 39" {
		t.Fatalf("read back %q", lines)
	}
	for i := 1; i < len(lines); i++ {
		if lines[i] <= lines[i-1] {
			t.Fatalf("out of order: %q", lines)
		}
	}
	for _, bad := range []map[string]string{{"max-size": "x"}, {"max-file": "0"}, {"compress": "true"}} {
		if err := (LogConfig{Opts: bad}).Validate(); err == nil {
			t.Errorf("log opts %v accepted", bad)
		}
	}
	if err := (LogConfig{Driver: "syslog"}).Validate(); err == nil {
		t.Error("log driver syslog accepted")
	}
}

// newManager opens a store in a temp dir with the busybox image imported.
func newManager(t *testing.T) (*Manager, *store.Store) {
	t.Helper()
	requires.Root(t)
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "busybox.tar")
	if out, err := exec.Command("../../hack/busybox-rootfs.sh", tarPath).CombinedOutput(); err != nil {
		t.Fatalf("busybox-rootfs.sh: %v %s", err, out)
	}
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{Root: filepath.Join(dir, "root")})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := s.Import(ctx, f, store.ImportOptions{Source: tarPath}); err != nil {
		t.Fatal(err)
	}
	return NewManager(s, "runc"), s
}

func TestCreateGetUsersWithRootfsRemove(t *testing.T) {
	m, s := newManager(t)
	ctx := context.Background()
	imgs, err := s.Images().List(ctx)
	if err != nil || len(imgs) != 1 {
		t.Fatalf("images: %v %v", imgs, err)
	}
	img := imgs[0].ID
	c, err := m.Create(ctx, img.Encoded()[:12], "box", Config{Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Remove(context.Background(), c, true) })
	if c.SnapshotKey != SnapshotPrefix+c.ID || c.Image != img || c.Config.Network != "default" || c.Config.Runtime != "runc" {
		t.Fatalf("created %+v", c)
	}
	for _, ref := range []string{"box", "/box", c.ID, c.ID[:5]} {
		if got, err := m.Get(ctx, ref); err != nil || got.ID != c.ID {
			t.Errorf("Get(%q) = %v, %v", ref, got.ID, err)
		}
	}
	if _, err := m.Get(ctx, "nope"); err == nil || !store.IsNotFound(err) || err.Error() != "No such container: nope" {
		t.Errorf("Get(nope) = %v", err)
	}
	if roots, err := m.ImageRoots(ctx); err != nil || len(roots) != 1 || roots[img].What != "box" {
		t.Errorf("ImageRoots = %v, %v", roots, err)
	}

	// Writes through WithRootfs land in the container's layer and are seen
	// by the next mount; nothing stays mounted in between.
	var where string
	err = m.WithRootfs(ctx, c, func(rootfs string) error {
		where = rootfs
		if _, err := os.Stat(filepath.Join(rootfs, "bin", "busybox")); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(rootfs, "made-here"), []byte("x"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if where == m.RootfsDir(c.ID) {
		t.Errorf("a stopped container was mounted at its bundle rootfs, not a separate path")
	}
	if mounted, _ := mountinfo.Mounted(where); mounted {
		t.Errorf("%s still mounted after WithRootfs", where)
	}
	err = m.WithRootfs(ctx, c, func(rootfs string) error {
		_, err := os.Stat(filepath.Join(rootfs, "made-here"))
		return err
	})
	if err != nil {
		t.Fatalf("second mount does not see the write: %v", err)
	}

	if err := m.Remove(ctx, c, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshots().Stat(ctx, c.SnapshotKey); !store.IsNotFound(err) {
		t.Errorf("snapshot after Remove: %v", err)
	}
	if _, err := os.Stat(m.Dir(c.ID)); !os.IsNotExist(err) {
		t.Errorf("dir after Remove: %v", err)
	}
	if n, err := m.Count(ctx); err != nil || n != 0 {
		t.Errorf("Count after Remove = %d, %v", n, err)
	}
	// The name is free again.
	c2, err := m.Create(ctx, img.String(), "box", Config{Cmd: []string{"true"}})
	if err != nil {
		t.Fatalf("reuse of a removed name: %v", err)
	}
	if err := m.Remove(ctx, c2, false); err != nil {
		t.Fatal(err)
	}
}

// Frozen pauses a running container for the duration of fn (commit --pause)
// and resumes it after.
func TestFrozenPausesAndResumes(t *testing.T) {
	m, s := newManager(t)
	ctx := context.Background()
	imgs, err := s.Images().List(ctx)
	if err != nil || len(imgs) != 1 {
		t.Fatalf("images: %v %v", imgs, err)
	}
	c, err := m.Create(ctx, imgs[0].ID.String(), "frozen", Config{Cmd: []string{"sh", "-c", "echo up; exec sleep 1000"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Remove(context.Background(), c, true) })
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	done := make(chan error, 1)
	go func() {
		_, err := m.RunAttached(ctx, c, AttachIO{Stdin: devnull, Stdout: pw, Stderr: pw})
		pw.Close()
		done <- err
	}()
	line := make([]byte, 3)
	if _, err := io.ReadFull(pr, line); err != nil || string(line) != "up\n" {
		t.Fatalf("container did not start: %q %v", line, err)
	}
	if c, err = m.Get(ctx, c.ID); err != nil || c.State.Status != StatusRunning {
		t.Fatalf("status %v %v", c.State.Status, err)
	}
	rt, err := oci.New("runc", m.runtimeRoot("runc"))
	if err != nil {
		t.Fatal(err)
	}
	var during oci.Status
	if err := m.Frozen(ctx, c, func() error {
		st, err := rt.State(ctx, c.ID)
		during = st.Status
		return err
	}); err != nil {
		t.Fatal(err)
	}
	after, err := rt.State(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if during != oci.StatusPaused || after.Status != oci.StatusRunning {
		t.Fatalf("status during fn %q, after %q; want paused, running", during, after.Status)
	}
	if err := m.Kill(ctx, c, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
