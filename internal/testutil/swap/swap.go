// Package swap plays a hostile container in tests: it keeps replacing a
// directory with a symlink to a host directory and back, so that a reader
// that resolves a path twice, or follows a symlink below a held directory,
// reads the host.
package swap

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// HostContent is what every file of the host directory holds: a reader's
// output must never contain it.
const HostContent = "host secret"

// Subdir makes dir/sub alternate, until the test ends, between a real
// directory (files f and deeper/g holding "inside") and a symlink to a
// host directory that it returns, whose files of the same names hold
// HostContent. dir must exist; dir/.sub is the swapper's scratch name.
func Subdir(t *testing.T, dir string) (host string) {
	t.Helper()
	host = t.TempDir()
	for _, f := range []string{"f", "deeper/g"} {
		p := filepath.Join(host, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(HostContent), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		sub, tmp := filepath.Join(dir, "sub"), filepath.Join(dir, ".sub")
		for !stop.Load() {
			os.RemoveAll(tmp)
			if os.MkdirAll(filepath.Join(tmp, "deeper"), 0o755) == nil {
				os.WriteFile(filepath.Join(tmp, "f"), []byte("inside"), 0o644)
				os.WriteFile(filepath.Join(tmp, "deeper", "g"), []byte("inside"), 0o644)
			}
			os.RemoveAll(sub)
			os.Rename(tmp, sub)
			os.Remove(tmp)
			os.Symlink(host, tmp)
			os.RemoveAll(sub)
			os.Rename(tmp, sub)
		}
	}()
	t.Cleanup(func() { stop.Store(true); <-done })
	return host
}
