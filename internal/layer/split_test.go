package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/tar/asm"
	"github.com/vbatts/tar-split/tar/storage"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/archive"
)

// entryList is a Packer keeping what it is given, with adjacent segments
// merged: where tar-split cuts a run of raw bytes depends on read sizes,
// and the cut does not change the stream the entries reproduce.
type entryList struct{ es []storage.Entry }

func (l *entryList) AddEntry(e storage.Entry) (int, error) {
	e.Payload = bytes.Clone(e.Payload)
	if n := len(l.es); e.Type == storage.SegmentType && n > 0 && l.es[n-1].Type == storage.SegmentType {
		l.es[n-1].Payload = append(l.es[n-1].Payload, e.Payload...)
		return n - 1, nil
	}
	l.es = append(l.es, e)
	return len(l.es) - 1, nil
}

// disassemble is what tar-split itself records for tb.
func disassemble(t *testing.T, tb []byte) []storage.Entry {
	t.Helper()
	var l entryList
	its, done, err := asm.NewInputTarStreamWithDone(bytes.NewReader(tb), &l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, its); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return l.es
}

func compareEntries(t *testing.T, got, want []storage.Entry) {
	t.Helper()
	for i := range max(len(got), len(want)) {
		if i >= len(got) || i >= len(want) {
			t.Fatalf("recorded %d entries, tar-split %d", len(got), len(want))
		}
		g, w := got[i], want[i]
		if g.Type != w.Type || g.GetName() != w.GetName() || g.Size != w.Size || !bytes.Equal(g.Payload, w.Payload) {
			t.Fatalf("entry %d: recorded type %d %q size %d payload %d bytes, tar-split type %d %q size %d payload %d bytes",
				i, g.Type, g.GetName(), g.Size, len(g.Payload), w.Type, w.GetName(), w.Size, len(w.Payload))
		}
	}
}

// reassemble rebuilds the tar from entries and file contents, the way Tar does.
func reassemble(t *testing.T, es []storage.Entry, files map[string][]byte) []byte {
	t.Helper()
	var js bytes.Buffer
	p := storage.NewJSONPacker(&js)
	for _, e := range es {
		if _, err := p.AddEntry(e); err != nil {
			t.Fatal(err)
		}
	}
	out := asm.NewOutputTarStream(mapGetter(files), storage.NewJSONUnpacker(&js))
	defer out.Close()
	b, err := io.ReadAll(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type mapGetter map[string][]byte

func (m mapGetter) Get(name string) (io.ReadCloser, error) {
	b, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("no payload for %q", name)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// sampleTar writes a tar with every kind of header Go's tar writer produces
// (long names, PAX records, hardlinks, whiteouts, a multi-megabyte file,
// a non-UTF-8 name, padding after the end marker) through a splitRecorder
// told of each header, and returns the tar, its payloads and the recorder.
func sampleTar(t *testing.T) ([]byte, map[string][]byte, *splitRecorder, *entryList) {
	t.Helper()
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16+7) // spans several writes, odd padding
	long := strings.Repeat("very-long-directory-name/", 12) + "file"
	files := map[string][]byte{}
	var l entryList
	rec := newSplitRecorder(&l)
	var raw bytes.Buffer
	tw := tar.NewWriter(io.MultiWriter(rec, &raw))
	mtime := time.Unix(1700000000, 0)
	add := func(h *tar.Header, body []byte) {
		t.Helper()
		h.ModTime, h.Format = mtime, tar.FormatPAX
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if err := rec.entry(h.Name, h.Size); err != nil {
			t.Fatal(err)
		}
		// Small uneven writes, so payload and header bytes meet mid-Write.
		for b := body; len(b) > 0; {
			n := min(len(b), 1000+len(b)%777)
			if _, err := tw.Write(b[:n]); err != nil {
				t.Fatal(err)
			}
			b = b[n:]
		}
		if len(body) > 0 {
			files[h.Name] = body
		}
	}
	add(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("root:x:0:0"))
	add(&tar.Header{Name: "etc/empty", Typeflag: tar.TypeReg, Mode: 0o644}, nil)
	add(&tar.Header{Name: long, Typeflag: tar.TypeReg, Mode: 0o600, Uid: 1000, Gid: 1000}, []byte("deep"))
	add(&tar.Header{Name: "caps", Typeflag: tar.TypeReg, Mode: 0o755, PAXRecords: map[string]string{
		"SCHILY.xattr.user.bin":  "\x01\x00\xff",
		"SCHILY.xattr.user.note": strings.Repeat("x", 2000),
	}}, []byte("#!/bin/sh\n"))
	add(&tar.Header{Name: "big.bin", Typeflag: tar.TypeReg, Mode: 0o644}, big)
	add(&tar.Header{Name: "link-to-big", Typeflag: tar.TypeLink, Linkname: "big.bin", Mode: 0o644}, nil)
	add(&tar.Header{Name: "long-link", Typeflag: tar.TypeSymlink, Linkname: long, Mode: 0o777}, nil)
	add(&tar.Header{Name: "dev/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}, nil)
	add(&tar.Header{Name: "etc/.wh.gone", Typeflag: tar.TypeReg, Mode: 0o644}, nil)
	add(&tar.Header{Name: "etc/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o644}, nil)
	add(&tar.Header{Name: "caf\xe9", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("latin-1 name"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	// Padding after the end marker, as some tools write it.
	pad := make([]byte, 3000)
	rec.Write(pad)
	raw.Write(pad)
	if err := rec.finish(); err != nil {
		t.Fatal(err)
	}
	return raw.Bytes(), files, rec, &l
}

// The recorder, fed by a tar writer that reports its headers, records what
// tar-split's own disassembler records for the same bytes, and the entries
// reproduce the stream.
func TestSplitRecorderMatchesDisassembler(t *testing.T) {
	tb, files, rec, l := sampleTar(t)
	compareEntries(t, l.es, disassemble(t, tb))
	if got := reassemble(t, l.es, files); !bytes.Equal(got, tb) {
		t.Fatalf("entries reproduce %d bytes, differing from the %d-byte tar", len(got), len(tb))
	}
	if rec.n != int64(len(tb)) {
		t.Errorf("counted %d bytes, wrote %d", rec.n, len(tb))
	}
	var content int64
	for _, b := range files {
		content += int64(len(b))
	}
	if rec.size != content {
		t.Errorf("content size %d, want %d", rec.size, content)
	}
}

// Unpack's single pass (Apply's reader reporting headers to a recorder
// teed onto its input) records what tar-split's disassembler records, and
// the diffID, sizes and reproduced tar are those of the input.
func TestUnpackRecordsLikeDisassembler(t *testing.T) {
	tb, files, _, _ := sampleTar(t)
	s := newStore(t, "overlay")
	dir := t.TempDir()
	rec, err := s.recordApply(context.Background(), dir, bytes.NewReader(tb), archive.ApplyOptions{Whiteouts: archive.WhiteoutOverlay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(rec.tarSplit) })
	f, err := os.Open(rec.tarSplit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var l entryList
	for u := storage.NewJSONUnpacker(zr); ; {
		e, err := u.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		l.AddEntry(*e)
	}
	compareEntries(t, l.es, disassemble(t, tb))
	if got := reassemble(t, l.es, files); !bytes.Equal(got, tb) {
		t.Fatal("recorded entries do not reproduce the tar")
	}
	if rec.diffID != digest.FromBytes(tb) || rec.tarSize != int64(len(tb)) {
		t.Errorf("recorded diffID %s size %d, tar has %s size %d", rec.diffID, rec.tarSize, digest.FromBytes(tb), len(tb))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "big.bin")); err != nil || !bytes.Equal(b, files["big.bin"]) {
		t.Errorf("big.bin not extracted intact: %v", err)
	}
}

// The same holds for the diff writer's own reports on a real upper dir with
// overlay whiteouts, opaque dirs, xattrs, hardlinks and long names.
func TestSplitRecorderOnOverlayDiff(t *testing.T) {
	upper := t.TempDir()
	long := strings.Repeat("nested-directory-with-a-long-name/", 6)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(upper, long), 0o755))
	must(os.WriteFile(filepath.Join(upper, long, "leaf"), []byte("leaf"), 0o644))
	must(os.WriteFile(filepath.Join(upper, "big"), bytes.Repeat([]byte{7}, 2<<20+123), 0o644))
	must(os.Link(filepath.Join(upper, "big"), filepath.Join(upper, "big-again")))
	must(os.WriteFile(filepath.Join(upper, "tagged"), []byte("t"), 0o644))
	must(unix.Lsetxattr(filepath.Join(upper, "tagged"), "user.tag", []byte("v"), 0))
	must(unix.Mknod(filepath.Join(upper, "deleted"), unix.S_IFCHR, 0))
	must(os.Mkdir(filepath.Join(upper, "opaque"), 0o755))
	must(unix.Lsetxattr(filepath.Join(upper, "opaque"), "trusted.overlay.opaque", []byte("y"), 0))
	must(os.Symlink("big", filepath.Join(upper, "sym")))

	var l entryList
	rec := newSplitRecorder(&l)
	var raw bytes.Buffer
	opts := archive.DiffOptions{EntryWritten: rec.entry}
	must(archive.WriteOverlayDiff(context.Background(), io.MultiWriter(rec, &raw), upper, opts))
	must(rec.finish())
	compareEntries(t, l.es, disassemble(t, raw.Bytes()))
	if len(l.es) < 20 {
		t.Fatalf("only %d entries recorded", len(l.es))
	}
}

// A writer that reports an entry before the previous payload is complete is
// refused rather than recorded wrongly.
func TestSplitRecorderRefusesShortPayload(t *testing.T) {
	rec := newSplitRecorder(&entryList{})
	rec.Write(make([]byte, 512))
	if err := rec.entry("a", 10); err != nil {
		t.Fatal(err)
	}
	rec.Write([]byte("12345"))
	if err := rec.entry("b", 0); err == nil {
		t.Fatal("entry accepted 5 bytes into a 10-byte payload")
	}
	rec2 := newSplitRecorder(&entryList{})
	rec2.Write(make([]byte, 512))
	rec2.entry("a", 10)
	if err := rec2.finish(); err == nil {
		t.Fatal("finish accepted a missing payload")
	}
}
