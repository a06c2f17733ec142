package main

import (
	"archive/tar"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// bigLayerRSSLimit is the most memory a command may use on a layer of any
// size: layers stream, so the peak must not grow with the layer.
const bigLayerRSSLimit = 256 << 20

// STRATA_BIG_LAYER_GIB=N applies (import), diffs (commit of a container
// that wrote N GiB) and re-reads (save) an N GiB layer, and fails when a
// command's peak RSS passes bigLayerRSSLimit. Not in make test's run: it
// writes several times N GiB. The peaks are in BENCHMARKS.md.
func TestBigLayerBoundedMemory(t *testing.T) {
	gib, _ := strconv.Atoi(os.Getenv("STRATA_BIG_LAYER_GIB"))
	if gib <= 0 {
		t.Skip("set STRATA_BIG_LAYER_GIB=N to apply and diff an N GiB layer")
	}
	c := newBusyboxCLI(t)
	peak := func(stdin io.Reader, args ...string) int64 {
		t.Helper()
		cmd := exec.Command(strataBin, append([]string{"--root", c.root}, args...)...)
		cmd.Stdin = stdin
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("strata %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		kb := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
		t.Logf("strata %s: peak RSS %d MiB", args[0], kb>>10)
		if kb<<10 > bigLayerRSSLimit {
			t.Errorf("strata %s on a %d GiB layer: peak RSS %d MiB, limit %d MiB", args[0], gib, kb>>10, bigLayerRSSLimit>>20)
		}
		return kb << 10
	}

	// Apply: a streamed tar of one N GiB file of incompressible bytes
	// plus 20000 small files.
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeBigTar(pw, int64(gib)<<30)) }()
	peak(pr, "import", "-", "big:apply")

	// Diff: a container writes N GiB; commit diffs its layer.
	c.ok("run", "--name", "bigw", "--network", "none", "busybox", "dd", "if=/dev/urandom", "of=/big", "bs=1M", "count="+strconv.Itoa(gib<<10))
	peak(nil, "commit", "bigw", "big:diff")
	for _, ref := range []string{"big:apply", "big:diff"} {
		size, _ := strconv.ParseInt(strings.TrimSpace(c.ok("image", "inspect", "-f", "{{.Size}}", ref)), 10, 64)
		if size < int64(gib)<<30 {
			t.Fatalf("%s is %d bytes, want at least %d GiB", ref, size, gib)
		}
	}
	c.ok("rm", "bigw")

	// Re-read: save reproduces both layers' tars and hashes them.
	out := filepath.Join(t.TempDir(), "big.tar")
	peak(nil, "save", "-o", out, "big:apply", "big:diff")
	os.Remove(out)
}

// writeBigTar writes a layer tar of size bytes in one file plus many small
// files, without holding more than a MiB of it.
func writeBigTar(w io.Writer, size int64) error {
	tw := tar.NewWriter(w)
	block := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	if err := tw.WriteHeader(&tar.Header{Name: "big", Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	for left := size; left > 0; {
		for i := 0; i < len(block); i += 8 {
			v := rng.Uint64()
			for j := range 8 {
				block[i+j] = byte(v >> (8 * j))
			}
		}
		n := min(left, int64(len(block)))
		if _, err := tw.Write(block[:n]); err != nil {
			return err
		}
		left -= n
	}
	for i := range 20000 {
		body := fmt.Sprintf("file %d\n", i)
		hdr := &tar.Header{Name: fmt.Sprintf("small/%03d/%d", i%100, i), Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, body); err != nil {
			return err
		}
	}
	return tw.Close()
}
