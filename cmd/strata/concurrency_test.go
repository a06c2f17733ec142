package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

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
