// Command apply benchmarks archive.Apply against GNU tar on one layer.
//
// It generates a realistic tree (a few thousand files, log-uniform sizes from
// a few bytes to a few MiB, nested dirs, symlinks, hardlinks), writes it as a
// layer tar with archive.WriteTreeDiff, then extracts that tar file with
// archive.Apply and with `tar -xf` into fresh dirs on the same filesystem,
// alternating the two, best of -runs each. Every run starts from a synced,
// page-cache-warm tar file; neither extractor fsyncs; the order alternates
// and nothing is deleted until all runs are done. Run it as root (both
// extractors then restore owners).
//
//	go run ./bench/apply -dir /var/tmp -size 300
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/strata-project/strata/internal/archive"
	"golang.org/x/sys/unix"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "work dir (tree, tar file and extraction targets go here)")
	sizeMB := flag.Int("size", 300, "layer size in MB (10^6 bytes) of file content")
	files := flag.Int("files", 8000, "number of regular files")
	runs := flag.Int("runs", 3, "runs per extractor; the best one counts")
	keep := flag.Bool("keep", false, "keep the work dir (tar file and extracted trees) for inspection")
	flag.Parse()
	if err := run(*dir, int64(*sizeMB)*1e6, *files, *runs, *keep); err != nil {
		log.Fatal(err)
	}
}

func run(dir string, size int64, nfiles, runs int, keep bool) error {
	work, err := os.MkdirTemp(dir, "strata-bench-apply-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("work dir:", work)
	} else {
		defer os.RemoveAll(work)
	}

	tree := filepath.Join(work, "tree")
	st, err := generateTree(tree, size, nfiles)
	if err != nil {
		return fmt.Errorf("generate tree: %w", err)
	}
	tarPath := filepath.Join(work, "layer.tar")
	t0 := time.Now()
	if err := writeTar(tree, tarPath); err != nil {
		return fmt.Errorf("write layer tar: %w", err)
	}
	diffTime := time.Since(t0)
	fi, err := os.Stat(tarPath)
	if err != nil {
		return err
	}
	tarMB := float64(fi.Size()) / 1e6
	fmt.Printf("layer: %.1f MB tar, %d files, %d dirs, %d symlinks, %d hardlinks\n",
		tarMB, st.files, st.dirs, st.symlinks, st.hardlinks)
	fmt.Printf("WriteTreeDiff of the tree: %.2fs (%.0f MB/s, cold-ish cache)\n", diffTime.Seconds(), tarMB/diffTime.Seconds())
	if err := os.RemoveAll(tree); err != nil {
		return err
	}

	// Each extractor returns the CPU time (user+sys) it used: on a shared
	// machine wall time is noisy, CPU time much less so.
	extractors := []struct {
		name string
		fn   func(dest string) (time.Duration, error)
	}{
		{"strata Apply", func(dest string) (time.Duration, error) {
			before := selfCPU()
			err := applyFile(tarPath, dest)
			return selfCPU() - before, err
		}},
		{"GNU tar -xf", func(dest string) (time.Duration, error) {
			cmd := exec.Command("tar", "-xf", tarPath, "-C", dest)
			out, err := cmd.CombinedOutput()
			if err != nil {
				return 0, fmt.Errorf("tar: %v: %s", err, out)
			}
			return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
		}},
	}
	best := make([]time.Duration, len(extractors))
	bestCPU := make([]time.Duration, len(extractors))
	for i := range runs {
		// Alternate who goes first, so neither always inherits the other's
		// background writeback.
		order := []int{0, 1}
		if i%2 == 1 {
			order = []int{1, 0}
		}
		for _, j := range order {
			e := extractors[j]
			dest := filepath.Join(work, fmt.Sprintf("dest-%d-%d", i, j))
			if err := os.Mkdir(dest, 0o755); err != nil {
				return err
			}
			// Same starting point for both: no dirty pages from the previous
			// run, tar file in the page cache.
			unix.Sync()
			if err := warm(tarPath); err != nil {
				return err
			}
			t := time.Now()
			cpu, err := e.fn(dest)
			if err != nil {
				return fmt.Errorf("%s: %w", e.name, err)
			}
			d := time.Since(t)
			fmt.Printf("run %d: %-13s %6.2fs %7.1f MB/s  cpu %5.2fs\n", i+1, e.name, d.Seconds(), tarMB/d.Seconds(), cpu.Seconds())
			if best[j] == 0 || d < best[j] {
				best[j] = d
			}
			if bestCPU[j] == 0 || cpu < bestCPU[j] {
				bestCPU[j] = cpu
			}
			// Extracted trees are removed only at the end: deleting 300 MB
			// on a filesystem mounted with discard issues TRIMs that would
			// slow down whichever run comes next.
		}
	}
	for j, e := range extractors {
		fmt.Printf("best: %-13s %6.2fs %7.1f MB/s  cpu %5.2fs\n", e.name, best[j].Seconds(), tarMB/best[j].Seconds(), bestCPU[j].Seconds())
	}
	fmt.Printf("ratio Apply/tar throughput (best wall): %.2f\n", best[1].Seconds()/best[0].Seconds())
	fmt.Printf("ratio Apply/tar CPU time (best): %.2f\n", bestCPU[0].Seconds()/bestCPU[1].Seconds())
	return nil
}

func applyFile(tarPath, dest string) error {
	f, err := os.Open(tarPath)
	if err != nil {
		return err
	}
	defer f.Close()
	// Callers feed Apply from a decompressor; a buffered reader is the closest
	// stand-in without measuring gzip.
	_, err = archive.Apply(context.Background(), dest, bufio.NewReaderSize(f, 1<<20), archive.ApplyOptions{})
	return err
}

// selfCPU is the user+sys time this process has used so far.
func selfCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func warm(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

func writeTar(tree, tarPath string) error {
	f, err := os.Create(tarPath)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := archive.WriteTreeDiff(context.Background(), w, "", tree, archive.DiffOptions{}); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type treeStats struct{ files, dirs, symlinks, hardlinks int }

// generateTree writes nfiles regular files totalling about size bytes, with
// log-uniform sizes (most files small, a few large, like /usr), spread over
// nested dirs, plus a symlink per 10 files and a hardlink per 50.
func generateTree(root string, size int64, nfiles int) (treeStats, error) {
	var st treeStats
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := make([]float64, nfiles)
	var sum float64
	for i := range sizes {
		sizes[i] = math.Exp(rng.Float64()*math.Log(8<<20/32)) * 32 // 32 B .. 8 MiB
		sum += sizes[i]
	}
	scale := float64(size) / sum

	// Dirs: a few top-level trees, each with nested subdirs.
	var dirs []string
	for i := range nfiles / 12 {
		d := fmt.Sprintf("usr/lib/pkg%03d", i%40)
		for depth := rng.IntN(4); depth > 0; depth-- {
			d = filepath.Join(d, fmt.Sprintf("sub%d", rng.IntN(6)))
		}
		dirs = append(dirs, d)
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return st, err
		}
		for p := d; p != "." && !seen[p]; p = filepath.Dir(p) {
			seen[p] = true
			st.dirs++
		}
	}

	chacha := rand.NewChaCha8([32]byte{7})
	buf := make([]byte, 8<<20)
	var prev string
	for i, s := range sizes {
		n := int(s * scale)
		if n > len(buf) {
			n = len(buf)
		}
		p := filepath.Join(root, dirs[rng.IntN(len(dirs))], fmt.Sprintf("file%05d.so", i))
		_, _ = chacha.Read(buf[:n])
		if err := os.WriteFile(p, buf[:n], 0o644); err != nil {
			return st, err
		}
		st.files++
		if i%10 == 0 && prev != "" {
			rel, _ := filepath.Rel(filepath.Dir(p), prev)
			if err := os.Symlink(rel, p+".link"); err != nil {
				return st, err
			}
			st.symlinks++
		}
		if i%50 == 0 {
			if err := os.Link(p, p+".hard"); err != nil {
				return st, err
			}
			st.hardlinks++
		}
		prev = p
	}
	return st, nil
}
