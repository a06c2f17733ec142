package layer

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/strata-project/strata/internal/archive"
)

// fillCopyLayer writes what a large COPY step leaves in an upper dir:
// 10,000 files, 50 MB in all, 100 per directory.
func fillCopyLayer(b *testing.B, dir string) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 10<<10)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for d := range 100 {
		sub := filepath.Join(dir, "app", fmt.Sprintf("pkg%03d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			n := 1 + rng.IntN(len(buf)-1) // mean ~5 KB
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("file%03d.js", f)), buf[:n], 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func copyLayerSnapshot(b *testing.B) (*Store, string, string) {
	s := newStore(b, "overlay")
	ctx := context.Background()
	key := s.IngestKey()
	if _, err := s.sn.Prepare(ctx, key, ""); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.sn.Remove(ctx, key) })
	dir, err := s.sn.Dir(ctx, key)
	if err != nil {
		b.Fatal(err)
	}
	fillCopyLayer(b, dir)
	return s, key, dir
}

// BenchmarkCommitDiff measures the part of Commit that reads the snapshot:
// the diff walk, hashing and tar-split recording.
func BenchmarkCommitDiff(b *testing.B) {
	s, key, dir := copyLayerSnapshot(b)
	ctx := context.Background()
	b.ResetTimer()
	cpu := cpuTime()
	b.Cleanup(func() { b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/op") })
	for b.Loop() {
		rec, err := s.recordDiff(ctx, key, dir, archive.DiffOptions{}, PayloadSums{})
		if err != nil {
			b.Fatal(err)
		}
		if st, err := os.Stat(rec.tarSplit); err == nil {
			b.ReportMetric(float64(st.Size()), "tar-split-bytes")
		}
		os.Remove(rec.tarSplit)
		b.SetBytes(rec.tarSize)
	}
}

// BenchmarkUnpack measures applying and recording the same layer's tar.
func BenchmarkUnpack(b *testing.B) {
	src, key, _ := copyLayerSnapshot(b)
	ctx := context.Background()
	var tb bytes.Buffer
	if err := src.WriteDiff(ctx, &tb, key, archive.DiffOptions{}); err != nil {
		b.Fatal(err)
	}
	s := newStore(b, "overlay")
	b.SetBytes(int64(tb.Len()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		k := s.IngestKey()
		if _, err := s.sn.Prepare(ctx, k, ""); err != nil {
			b.Fatal(err)
		}
		dir, err := s.sn.Dir(ctx, k)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		rec, err := s.recordApply(ctx, dir, bytes.NewReader(tb.Bytes()), archive.ApplyOptions{Whiteouts: archive.WhiteoutOverlay})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.Remove(rec.tarSplit)
		if err := s.sn.Remove(ctx, k); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkCommit is the whole of a builder step's Commit of a fresh
// 10k-file upper dir, including the filesystem sync.
func BenchmarkCommit(b *testing.B) {
	s := newStore(b, "overlay")
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		k := s.IngestKey()
		if _, err := s.sn.Prepare(ctx, k, ""); err != nil {
			b.Fatal(err)
		}
		dir, err := s.sn.Dir(ctx, k)
		if err != nil {
			b.Fatal(err)
		}
		fillCopyLayer(b, dir)
		os.WriteFile(filepath.Join(dir, fmt.Sprint("run", i)), nil, 0o644) // a new layer each time
		b.StartTimer()
		l, err := s.Commit(ctx, k, "", archive.DiffOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Remove(ctx, l.ChainID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkCommitOnto is a container commit of a 10k-file change: the
// diff of a snapshot laid as a new layer on another stack. cpu-s/op is the
// process's CPU time, steadier than wall time on a shared machine.
func BenchmarkCommitOnto(b *testing.B) {
	s, key, _ := copyLayerSnapshot(b)
	ctx := context.Background()
	cpu := cpuTime()
	b.Cleanup(func() { b.ReportMetric((cpuTime()-cpu).Seconds()/float64(b.N), "cpu-s/op") })
	for i := 0; i < b.N; i++ {
		l, err := s.CommitOnto(ctx, key, "", archive.DiffOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.SetBytes(l.TarSize)
		if err := s.Remove(ctx, l.ChainID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEntries reads back the headers of a committed 10k-file layer
// from its tar-split alone (what image analyze and build advice do).
func BenchmarkEntries(b *testing.B) {
	s, key, _ := copyLayerSnapshot(b)
	ctx := context.Background()
	l, err := s.Commit(ctx, key, "", archive.DiffOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		if err := s.Entries(ctx, l.ChainID, func(Entry) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n < 10000 {
			b.Fatalf("%d entries", n)
		}
	}
}
