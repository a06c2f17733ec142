// Command limits measures what this machine allows the push, save and load
// pipelines at most: sha256, gzip (pgzip, both cores) and zstd (both
// cores) compression, and disk write with fsync, over one input file read
// from the page cache. bench/share/share.sh divides the engines' speeds by
// these. Usage: go run ./bench/share/limits -in FILE -dir DIR
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

func main() {
	in := flag.String("in", "", "input file (an uncompressed image archive)")
	dir := flag.String("dir", os.TempDir(), "directory on the disk to measure writes on")
	runs := flag.Int("runs", 3, "best of this many runs")
	flag.Parse()
	data, err := os.ReadFile(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mb := float64(len(data)) / 1e6
	best := func(name string, fn func() error) {
		var b time.Duration
		for range *runs {
			start := time.Now()
			if err := fn(); err != nil {
				fmt.Fprintln(os.Stderr, name, err)
				os.Exit(1)
			}
			if d := time.Since(start); b == 0 || d < b {
				b = d
			}
		}
		fmt.Printf("%s\t%.0f\n", name, mb/b.Seconds())
	}
	fmt.Printf("input MB\t%.0f\n", mb)
	fmt.Printf("cores\t%d\n", runtime.GOMAXPROCS(0))
	best("sha256 MB/s", func() error {
		h := sha256.New()
		_, err := h.Write(data)
		return err
	})
	best("gzip (pgzip, default level) MB/s", func() error {
		zw := pgzip.NewWriter(io.Discard)
		if _, err := zw.Write(data); err != nil {
			return err
		}
		return zw.Close()
	})
	best("zstd (default level) MB/s", func() error {
		zw, err := zstd.NewWriter(io.Discard, zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
		if err != nil {
			return err
		}
		if _, err := io.Copy(zw, bytes.NewReader(data)); err != nil {
			return err
		}
		return zw.Close()
	})
	best("disk write + fsync MB/s", func() error {
		p := filepath.Join(*dir, ".limits-write")
		defer os.Remove(p)
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.Write(data); err != nil {
			return err
		}
		return f.Sync()
	})
}
