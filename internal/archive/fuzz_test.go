package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// FuzzApply applies arbitrary bytes as a layer, in both whiteout modes, and
// checks that nothing next to the root changed. Errors are fine; escapes and
// panics are not. The seeds are small crafted layers that reach the
// interesting code paths (symlinked parents, whiteouts, opaque dirs, links).
func FuzzApply(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("needs root")
	}
	f.Add(mkTar(f, symlink("lnk", "../.."), file("lnk/x", "1")))
	f.Add(mkTar(f, symlink("lnk", "/"), file("lnk/lnk/.wh.x", ""), file("lnk/.wh..wh..opq", "")))
	f.Add(mkTar(f, file("a", "1"), hardlink("b", "a"), symlink("c", "b"), hardlink("d", "c"), file("d", "2")))
	f.Add(mkTar(f, dir("d/"), symlink("d/e", "../../../out"), dir("d/e/"), file("d/e/f", "x")))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Random mutations break header checksums, and archive/tar then
		// rejects the stream before Apply sees an entry: repair them so
		// the fuzzer explores entry handling, not just checksum errors.
		data = fixChecksums(data)
		if !smallTar(data) {
			t.Skip("declares more content than a fuzz run should write")
		}
		base := t.TempDir()
		out := base + "/out"
		writeFile(t, out+"/canary", "canary", 0o644)
		roots := []string{out + "/root-delete", out + "/root-overlay"}
		for _, r := range roots {
			must(t, os.Mkdir(r, 0o755))
		}
		before := outsideState(t, base, roots...)
		for i, mode := range both {
			_, _ = Apply(context.Background(), roots[i], bytes.NewReader(data), ApplyOptions{Whiteouts: mode})
		}
		diffManifests(t, before, outsideState(t, base, roots...))
	})
}

// fixChecksums walks data as a chain of tar headers (each followed by its
// content blocks) and rewrites every header's checksum.
func fixChecksums(data []byte) []byte {
	data = bytes.Clone(data)
	for off := 0; off+512 <= len(data); {
		blk := data[off : off+512]
		if bytes.Count(blk, []byte{0}) == 512 {
			break
		}
		copy(blk[148:156], "        ")
		sum := 0
		for _, c := range blk {
			sum += int(c)
		}
		copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
		size, err := strconv.ParseInt(strings.TrimRight(strings.TrimSpace(string(blk[124:136])), "\x00"), 8, 64)
		if err != nil || size < 0 || size > int64(len(data)) {
			break
		}
		off += 512 + int((size+511)/512*512)
	}
	return data
}

// smallTar reports whether every entry that archive/tar can parse from data
// declares at most 1 MiB (a sparse header can declare terabytes of holes).
func smallTar(data []byte) bool {
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			return true
		}
		if h.Size > 1<<20 {
			return false
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return true
		}
	}
}
