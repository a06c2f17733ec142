package builder

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/store"
)

// benchStore makes a store on driver with a busybox image.
func benchStore(tb testing.TB, driver string) *store.Store {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root")
	}
	s, err := store.Open(context.Background(), store.Options{Root: tb.TempDir(), Driver: driver})
	if err != nil {
		tb.Fatal(err)
	}
	tarPath := filepath.Join(tb.TempDir(), "bb.tar")
	if out, err := exec.Command("../../hack/busybox-rootfs.sh", tarPath).CombinedOutput(); err != nil {
		tb.Fatalf("busybox-rootfs.sh: %v %s", err, out)
	}
	f, err := os.Open(tarPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	ref, _ := image.ParseTagged("busybox")
	if _, err := s.Import(context.Background(), f, store.ImportOptions{Source: tarPath, Ref: ref}); err != nil {
		tb.Fatal(err)
	}
	return s
}

// genTree writes dirs×perDir files of size bytes of random data under dir.
func genTree(tb testing.TB, dir string, dirs, perDir, size int) {
	tb.Helper()
	buf := make([]byte, size)
	for d := range dirs {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			tb.Fatal(err)
		}
		for f := range perDir {
			rand.Read(buf)
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d", f)), buf, 0o644); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// BenchmarkCopyTree rebuilds `COPY data/ /app/data/` of a generated
// 10,000 file, 50 MB tree after one file changed (bench/build's "change"
// scenario): source digest, copy and layer commit. Every build makes a new
// layer, so none is deleted on the way (deleting 10,000 inodes makes the
// next creates slower on ext4).
func BenchmarkCopyTree(b *testing.B) {
	for _, driver := range []string{"overlay", "native"} {
		b.Run(driver, func(b *testing.B) {
			s := benchStore(b, driver)
			ctxDir := b.TempDir()
			genTree(b, filepath.Join(ctxDir, "data"), 100, 100, 5000)
			os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM busybox\nWORKDIR /app\nCOPY data/ /app/data/\n"), 0o644)
			b.SetBytes(100 * 100 * 5000)
			b.ResetTimer()
			changed := filepath.Join(ctxDir, "data", "d50", "f0042")
			i := 0
			for b.Loop() {
				i++
				b.StopTimer()
				f, err := os.OpenFile(changed, os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					b.Fatal(err)
				}
				fmt.Fprintln(f, i)
				f.Close()
				b.StartTimer()
				if _, err := Build(context.Background(), s, Options{ContextDir: ctxDir}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
