package main

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	rt "github.com/strata-project/strata/internal/registry/registrytest"
)

// Six strata processes at once on one store, three rounds: two builds on
// a shared base, two pulls of one image, a run, and an rmi plus prune.
// Each succeeds or fails with a clear conflict; nothing another process
// uses is deleted; the store checks clean afterwards.
func TestConcurrentOperations(t *testing.T) {
	c := newBusyboxCLI(t)
	reg := rt.Start(t)
	reg.Push(t, "conc/img:v1", rt.Image(t, "amd64", true, []string{"/bin/sh"},
		rt.LayerFromFile(t, busyboxTar(t)),
		rt.Layer(t, rt.Tar(t, rt.File{Name: "pulled", Body: strings.Repeat("p", 1<<20)}), rt.Gzip)))
	ref := reg.Ref("conc/img:v1")
	dirs := map[string]string{}
	for _, name := range []string{"a", "b"} {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, "Dockerfile"), []byte("FROM busybox\nRUN echo "+name+" > /"+name+"\nRUN cat /"+name+"\n"), 0o644)
		dirs[name] = d
	}
	clearly := func(errs string) bool {
		for _, s := range []string{"conflict", "in use", "No such image"} {
			if strings.Contains(errs, s) {
				return true
			}
		}
		return false
	}
	for round := 0; round < 3; round++ {
		jobs := [][]string{
			{"build", "-q", "--no-cache", "-t", "conc/a", dirs["a"]},
			{"build", "-q", "--no-cache", "-t", "conc/b", dirs["b"]},
			{"pull", "-q", ref},
			{"pull", "-q", ref},
			{"run", "--rm", "busybox", "true"},
			{"rmi", ref},
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		for i, args := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(strataBin, append([]string{"--root", c.root}, args...)...)
				var errb bytes.Buffer
				cmd.Stderr = &errb
				err := cmd.Run()
				if err == nil {
					return
				}
				// Only the rmi may lose its race, and only clearly.
				if i == len(jobs)-1 && clearly(errb.String()) {
					return
				}
				mu.Lock()
				failures = append(failures, strings.Join(args, " ")+": "+err.Error()+": "+errb.String())
				mu.Unlock()
			}()
		}
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("round %d:\n%s", round, strings.Join(failures, "\n"))
		}
		c.ok("system", "prune", "-f")
		c.ok("system", "check")
		for _, img := range []string{"conc/a", "conc/b"} {
			c.ok("run", "--rm", img, "true")
		}
	}
}

// An import from a slow pipe holds no store lock while it reads: prunes
// and rmi started in the middle finish at once without waiting for it,
// and the import still makes its image.
func TestPruneDuringImportFromPipe(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	var tarb bytes.Buffer
	tw := tar.NewWriter(&tarb)
	body := strings.Repeat("i", 1<<20)
	tw.WriteHeader(&tar.Header{Name: "big", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write([]byte(body))
	tw.Close()
	// An older image whose layer the import will find again: the prune
	// may remove the old image but not the layer the import claims.
	old := bytes.NewReader(tarb.Bytes())
	if _, errs, code := c.run(old, "import", "-", "old:1"); code != 0 {
		t.Fatalf("import old: %s", errs)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	imp := exec.Command(strataBin, "--root", c.root, "import", "-", "slow:1")
	imp.Stdin = pr
	var impErr bytes.Buffer
	imp.Stderr = &impErr
	if err := imp.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	defer imp.Process.Kill()
	// Past the pipe's buffer: once this returns, the import is reading.
	if _, err := pw.Write(tarb.Bytes()[:512<<10]); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"image", "prune", "-a", "-f"}, {"rmi", "old:1"}, {"system", "prune", "-a", "-f"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, strataBin, append([]string{"--root", c.root}, args...)...)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil && !(args[0] == "rmi" && strings.Contains(string(out), "No such image")) {
			t.Fatalf("strata %v during an import: %v\n%s", args, err, out)
		}
		if strings.Contains(string(out), "Waiting") {
			t.Fatalf("strata %v waited for the import:\n%s", args, out)
		}
	}
	pw.Write(tarb.Bytes()[512<<10:])
	pw.Close()
	if err := imp.Wait(); err != nil {
		t.Fatalf("import raced by prunes: %v\n%s", err, impErr.String())
	}
	if id := strings.TrimSpace(c.ok("images", "-q", "slow:1")); id == "" {
		t.Fatal("the imported image is missing")
	}
	c.ok("image", "inspect", "slow:1")
	c.ok("save", "-o", filepath.Join(t.TempDir(), "slow.tar"), "slow:1")
}

// A pull stacking on a layer that is already in the store leases it: an
// rmi of the only image naming that layer and a prune -a, both while the
// pull downloads, return at once, remove the old image, and leave the
// layer for the pull, which succeeds with a store that checks clean.
func TestPruneDuringPullKeepsItsLayers(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	reg := rt.Start(t)
	base := rt.Layer(t, rt.Tar(t, rt.File{Name: "base", Body: "b"}), rt.Gzip)
	top := rt.Layer(t, rt.Tar(t, rt.File{Name: "top", Body: strings.Repeat("t", 1<<20)}), rt.Gzip)
	reg.Push(t, "lease/base:1", rt.Image(t, "amd64", true, []string{"/bin/sh"}, base))
	reg.Push(t, "lease/app:1", rt.Image(t, "amd64", true, []string{"/bin/sh"}, base, top))
	c.ok("pull", "-q", reg.Ref("lease/base:1"))

	px := rt.NewProxy(t, reg.Host)
	d, err := top.Digest()
	if err != nil {
		t.Fatal(err)
	}
	arrived, release := px.HoldBlob(d)
	defer release()
	pull := exec.Command(strataBin, "--root", c.root, "pull", "-q", px.Ref("lease/app:1"))
	var pullOut bytes.Buffer
	pull.Stdout, pull.Stderr = &pullOut, &pullOut
	if err := pull.Start(); err != nil {
		t.Fatal(err)
	}
	defer pull.Process.Kill()
	select {
	case <-arrived:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the pull never asked for its layer:\n%s", pullOut.String())
	}
	for _, args := range [][]string{{"rmi", reg.Ref("lease/base:1")}, {"image", "prune", "-a", "-f"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, strataBin, append([]string{"--root", c.root}, args...)...).CombinedOutput()
		cancel()
		if err != nil || strings.Contains(string(out), "Waiting") {
			t.Fatalf("strata %v during a pull: %v\n%s", args, err, out)
		}
	}
	if out := c.ok("images", "-q"); strings.TrimSpace(out) != "" {
		t.Fatalf("the old image should be gone, have %q", out)
	}
	release()
	if err := pull.Wait(); err != nil {
		t.Fatalf("pull raced by rmi and prune: %v\n%s", err, pullOut.String())
	}
	c.ok("image", "inspect", px.Ref("lease/app:1"))
	c.ok("system", "check", "--full")
}
