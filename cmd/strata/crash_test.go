package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	rt "github.com/strata-project/strata/internal/registry/registrytest"
)

// crashSeed is the crash suite's seed: STRATA_CRASH_SEED to replay a run.
func crashSeed(t *testing.T) uint64 {
	if v := os.Getenv("STRATA_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("STRATA_CRASH_SEED: %v", err)
		}
		return n
	}
	return 20261127
}

// crashOp is one operation the suite kills: prep runs before each attempt
// (not killed), args is what is killed and then run again to completion.
type crashOp struct {
	name string
	prep func()
	args func() []string
}

// TestCrashSuite kills strata with SIGKILL at seeded random moments during
// import, pull, build, commit of a running container, rmi, prune, save,
// load and push. After each kill: system check passes (after the automatic
// reconcile), the same operation succeeds, no container is left paused,
// nothing is mounted but the running container's root, no build container
// is left. At the end, with everything removed, the store holds what a
// store that never saw a kill holds.
func TestCrashSuite(t *testing.T) {
	c := newBusyboxCLI(t)
	seed := crashSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed))
	t.Logf("seed %d (STRATA_CRASH_SEED=%d replays it)", seed, seed)
	tarPath := busyboxTar(t)
	reg := rt.Start(t)
	reg.Push(t, "crash/img:v1", rt.Image(t, "amd64", true, []string{"/bin/sh"},
		rt.LayerFromFile(t, tarPath),
		rt.Layer(t, rt.Tar(t, rt.File{Name: "big", Body: strings.Repeat("x", 4<<20)}), rt.Gzip)))
	pullRef := reg.Ref("crash/img:v1")

	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "f"), []byte(strings.Repeat("data\n", 1<<18)), 0o644)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox\nCOPY f /f\nRUN cp /f /g && echo $RANDOM > /r\nRUN rm /g\n"), 0o644)
	running := strings.TrimSpace(c.ok("run", "-d", "busybox", "sh", "-c",
		"dd if=/dev/zero of=/big bs=1M count=16 2>/dev/null; touch /ready; exec sleep 3600"))
	for i := 0; i < 600 && !strings.Contains(c.ok("diff", running), "/ready"); i++ {
	}
	archive := filepath.Join(t.TempDir(), "img.tar")
	c.ok("pull", "-q", pullRef)
	c.ok("save", "-o", archive, pullRef)

	ops := []crashOp{
		{name: "import", args: func() []string { return []string{"import", tarPath, "crash/imported"} }},
		{name: "pull", prep: func() { c.run(nil, "rmi", pullRef) }, args: func() []string { return []string{"pull", "-q", pullRef} }},
		{name: "build", args: func() []string { return []string{"build", "-q", "--no-cache", "-t", "crash/built", ctx} }},
		{name: "commit", args: func() []string { return []string{"commit", running, "crash/committed"} }},
		{name: "rmi", prep: func() { c.ok("build", "-q", "-t", "crash/victim", ctx) }, args: func() []string { return []string{"rmi", "crash/victim"} }},
		{name: "prune", prep: func() { c.ok("build", "-q", "--no-cache", ctx) }, args: func() []string { return []string{"system", "prune", "-f"} }},
		{name: "save", args: func() []string { return []string{"save", "-o", filepath.Join(t.TempDir(), "x.tar"), "busybox"} }},
		{name: "load", prep: func() { c.run(nil, "rmi", pullRef) }, args: func() []string { return []string{"load", "-i", archive} }},
		{name: "push", prep: func() { c.ok("tag", "busybox", reg.Ref("crash/pushed:v1")) }, args: func() []string { return []string{"push", "-q", reg.Ref("crash/pushed:v1")} }},
	}
	// How long each takes undisturbed: kills land in [0, that).
	took := map[string]time.Duration{}
	for _, op := range ops {
		if op.prep != nil {
			op.prep()
		}
		start := time.Now()
		c.ok(op.args()...)
		took[op.name] = time.Since(start)
	}
	// At least 50 kills that land before the operation ends, in at most
	// 120 tries.
	killed := map[string]int{}
	landed := 0
	for i := 0; i < 120 && landed < 50; i++ {
		op := ops[i%len(ops)]
		if op.prep != nil {
			op.prep()
		}
		at := time.Duration(rng.Int64N(int64(took[op.name]) + 1))
		cmd := exec.Command(strataBin, append([]string{"--root", c.root}, op.args()...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		timer := time.AfterFunc(at, func() { cmd.Process.Signal(syscall.SIGKILL) })
		err := cmd.Wait()
		timer.Stop()
		if ee, ok := err.(*exec.ExitError); ok && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
			killed[op.name]++
			landed++
		}
		what := fmt.Sprintf("kill %d (%s at %v)", i, op.name, at)
		if out, errs, code := c.run(nil, "system", "check"); code != 0 {
			t.Fatalf("%s: system check: exit %d\n%s%s", what, code, out, errs)
		}
		if op.prep != nil {
			op.prep()
		}
		if out, errs, code := c.run(nil, op.args()...); code != 0 {
			t.Fatalf("%s: the next %s failed: exit %d\n%s%s", what, op.name, code, out, errs)
		}
		if st := runcStatus(t, c, running); st != "running" {
			t.Fatalf("%s: the running container is %q", what, st)
		}
		assertOnlyMounted(t, c.root, filepath.Join(c.root, "containers", running), filepath.Join(c.root, "run", "netns", running))
		if out, _ := exec.Command("runc", "--root", filepath.Join(c.root, "build", "runtime"), "list", "-q").Output(); strings.TrimSpace(string(out)) != "" {
			t.Fatalf("%s: build containers left: %s", what, out)
		}
	}
	t.Logf("kills that landed (others finished first): %v", killed)
	if landed < 50 {
		t.Fatalf("only %d kills landed before their operation ended", landed)
	}

	// Everything removed, the store is what a store that saw no kill is.
	clean := &cli{t: t, root: t.TempDir()}
	clean.ok("import", tarPath, "busybox")
	for _, s := range []*cli{c, clean} {
		if ids := strings.Fields(s.ok("ps", "-aq", "--no-trunc")); len(ids) > 0 {
			s.ok(append([]string{"rm", "-f"}, ids...)...)
		}
		s.ok("builder", "prune", "-af")
		s.ok("image", "prune", "-af")
		s.ok("system", "check", "--full")
	}
	got, want := storeContent(t, c.root), storeContent(t, clean.root)
	if !slices.Equal(got, want) {
		t.Fatalf("after removing everything the store holds\n%s\nwhere an untouched one holds\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func runcStatus(t *testing.T, c *cli, id string) string {
	t.Helper()
	out, _ := exec.Command("runc", "--root", filepath.Join(c.root, "runtime", "runc"), "state", id).Output()
	var st struct{ Status string }
	json.Unmarshal(out, &st)
	return st.Status
}

// assertOnlyMounted fails when anything under root but below the keep
// paths is mounted.
func assertOnlyMounted(t *testing.T, root string, keep ...string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) <= 4 || !strings.HasPrefix(f[4], root+"/") {
			continue
		}
		if !slices.ContainsFunc(keep, func(k string) bool { return f[4] == k || strings.HasPrefix(f[4], k+"/") }) {
			t.Fatalf("still mounted: %s", f[4])
		}
	}
}

// storeContent lists what a store keeps on disk besides its metadata file,
// its event log (history, not garbage) and the lock files of processes:
// path and size of every file, relative to the root.
func storeContent(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case rel == "metadata.db" || rel == "lock" || strings.HasPrefix(rel, "procs/") || strings.HasPrefix(rel, "events.log"):
			return nil
		case fi.Mode().IsRegular():
			out = append(out, fmt.Sprintf("%s %d", rel, fi.Size()))
		}
		return nil
	})
	sort.Strings(out)
	return out
}
