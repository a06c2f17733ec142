package builder

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/progress"
	"github.com/strata-project/strata/internal/store"
)

// buildLayer builds ctxDir on s and returns the image's last layer (the
// COPY's), its snapshot directory and the image's files below app/data.
func buildLayer(t *testing.T, s *store.Store, ctxDir string, opts Options) (digest.Digest, digest.Digest, string, map[string]string) {
	t.Helper()
	ctx := context.Background()
	opts.ContextDir, opts.Network = ctxDir, "none"
	res, err := Build(ctx, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Images().Get(ctx, string(res.ID))
	if err != nil {
		t.Fatal(err)
	}
	ids := img.Config.RootFS.DiffIDs
	chain := image.ChainID(ids)
	dir, err := s.Snapshots().Dir(ctx, string(chain))
	if err != nil {
		t.Fatal(err)
	}
	// The tar-split and the snapshot reproduce the tar of the diffID
	// (Tar fails its last read otherwise).
	rc, err := s.Layers().Tar(ctx, chain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatalf("layer tar: %v", err)
	}
	rc.Close()
	files := map[string]string{}
	for p, d := range listTree(t, mountImage(t, s, string(res.ID))) {
		if strings.HasPrefix(p, "app/data") {
			files[p] = d
		}
	}
	return ids[len(ids)-1], chain, dir, files
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// A COPY that rebuilds after a few source files changed links the other
// files from its previous layer, and makes the same layer (diffID) and the
// same files as a --no-cache build of the same inputs on another store:
// a file changed in content only (same size and mtime), added, removed,
// re-moded, touched, or re-owned by --chown is written anew, an unchanged
// one is linked.
func TestIncrementalCopyMatchesFreshCopy(t *testing.T) {
	t.Parallel()
	inc := benchStore(t, "overlay")
	fresh := benchStore(t, "overlay")
	ctxDir := t.TempDir()
	data := filepath.Join(ctxDir, "data")
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM busybox\nARG OWN=0:0\nCOPY --chown=$OWN data/ /app/data/\n"), 0o644)
	old := time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC)
	write := func(rel, content string, mode os.FileMode, mtime time.Time) {
		p := filepath.Join(data, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"a.txt", "b.txt", "c.txt", "d.txt", "sub/e.txt", "sub/deeper/f.txt"} {
		write(f, "content of "+f, 0o644, old)
	}
	os.Symlink("a.txt", filepath.Join(data, "link"))
	// Directory times are in the layer too: the same in every build.
	epoch := time.Now().Add(-time.Minute)
	opts := Options{SourceDateEpoch: &epoch}

	_, chain1, dir1, _ := buildLayer(t, inc, ctxDir, opts)

	write("a.txt", "content of a.txx", 0o644, old) // same size and mtime, other bytes
	write("new.txt", "new", 0o644, old)
	os.Remove(filepath.Join(data, "b.txt"))
	os.Chmod(filepath.Join(data, "c.txt"), 0o600)
	later := old.Add(time.Hour)
	os.Chtimes(filepath.Join(data, "d.txt"), later, later)

	diff2, chain2, dir2, files2 := buildLayer(t, inc, ctxDir, opts)
	if chain2 == chain1 {
		t.Fatal("the changed context made the same layer")
	}
	freshOpts := opts
	freshOpts.NoCache = true
	wantDiff, wantChain, _, wantFiles := buildLayer(t, fresh, ctxDir, freshOpts)
	if diff2 != wantDiff {
		t.Errorf("incremental COPY made layer %s, a fresh copy %s", diff2, wantDiff)
	}
	assertSameFiles(t, files2, wantFiles)
	// The checksums taken from the record are the ones a fresh commit
	// computes (image analysis compares files by them).
	assertSameFiles(t, layerCRCs(t, inc, chain2), layerCRCs(t, fresh, wantChain))
	// A fresh copy takes its files' checksums from the pass that digested
	// them (hashPass.crc): they are those of the files' contents.
	want := map[string]string{}
	for p := range layerCRCs(t, fresh, wantChain) {
		b, err := os.ReadFile(filepath.Join(ctxDir, "data", strings.TrimPrefix(p, "app/data/")))
		if err != nil {
			t.Fatal(err)
		}
		h := layer.NewPayloadHash()
		h.Write(b)
		want[p] = hex.EncodeToString(h.Sum(nil))
	}
	assertSameFiles(t, layerCRCs(t, fresh, wantChain), want)
	for _, f := range []string{"sub/e.txt", "sub/deeper/f.txt"} {
		if inode(t, filepath.Join(dir1, "app/data", f)) != inode(t, filepath.Join(dir2, "app/data", f)) {
			t.Errorf("unchanged %s was not linked from the previous layer", f)
		}
	}
	// The next commit of a linked file takes its tar-split checksum from
	// this record (compared with a fresh commit's above).
	if rec := copiedRecords(t, inc); len(rec) != 1 || !strings.Contains(rec[0].Files["app/data/sub/e.txt"], "/") {
		t.Errorf("copied records %+v: want one, with the checksum of app/data/sub/e.txt", rec)
	}
	for _, f := range []string{"a.txt", "c.txt", "d.txt"} {
		if inode(t, filepath.Join(dir1, "app/data", f)) == inode(t, filepath.Join(dir2, "app/data", f)) {
			t.Errorf("changed %s was linked from the previous layer", f)
		}
	}

	// Another owner: nothing of the previous layer fits.
	opts.BuildArgs = map[string]string{"OWN": "1000:1001"}
	diff3, _, dir3, files3 := buildLayer(t, inc, ctxDir, opts)
	freshOpts.BuildArgs = opts.BuildArgs
	wantDiff, _, _, wantFiles = buildLayer(t, fresh, ctxDir, freshOpts)
	if diff3 != wantDiff {
		t.Errorf("re-owned incremental COPY made layer %s, a fresh copy %s", diff3, wantDiff)
	}
	assertSameFiles(t, files3, wantFiles)
	if inode(t, filepath.Join(dir2, "app/data/sub/e.txt")) == inode(t, filepath.Join(dir3, "app/data/sub/e.txt")) {
		t.Error("a file of another owner was linked")
	}

	// --no-cache uses nothing of earlier builds: it copies every file.
	write("sub/deeper/f.txt", "changed", 0o644, old)
	nc := opts
	nc.NoCache = true
	_, _, dir4, _ := buildLayer(t, inc, ctxDir, nc)
	if inode(t, filepath.Join(dir3, "app/data/sub/e.txt")) == inode(t, filepath.Join(dir4, "app/data/sub/e.txt")) {
		t.Error("--no-cache linked a file from the previous layer")
	}

	// Once a layer is gone (builder prune, after its builder's lease), its
	// record goes too.
	ctx := context.Background()
	gone := []byte("elsewhere/Dockerfile\x00\x000" + copiedSuffix)
	err := records(inc).Update(func(tx *metadata.Tx) error {
		bk, err := tx.CreateBucket(stepsBucket)
		if err != nil {
			return err
		}
		return bk.Put(gone, []byte(`{"chain":"`+string(digest.FromString("gone"))+`","files":{"a":"00"}}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := forgetCopiedOfGoneLayers(ctx, inc); err != nil {
		t.Fatal(err)
	}
	if rec := copiedRecords(t, inc); len(rec) != 1 || rec[0].Chain == digest.FromString("gone") {
		t.Errorf("after forgetting gone layers' records: %+v, want only the one of the existing layer", rec)
	}
}

// layerCRCs maps each file of layer chain with a payload to its tar-split
// checksum.
func layerCRCs(t *testing.T, s *store.Store, chain digest.Digest) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := s.Layers().Entries(context.Background(), chain, func(e layer.Entry) error {
		if e.CRC != nil {
			out[e.Header.Name] = hex.EncodeToString(e.CRC)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copiedRecords lists the store's copiedRecords.
func copiedRecords(t *testing.T, s *store.Store) []copiedRecord {
	t.Helper()
	var out []copiedRecord
	err := records(s).View(func(tx *metadata.Tx) error {
		bk := tx.Bucket(stepsBucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			if strings.HasSuffix(string(k), copiedSuffix) {
				var r copiedRecord
				if err := json.Unmarshal(v, &r); err != nil {
					return err
				}
				out = append(out, r)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertSameFiles(t *testing.T, got, want map[string]string) {
	t.Helper()
	if len(got) == 0 {
		t.Fatal("nothing to compare")
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: incremental %q, fresh %q", p, got[p], w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: only in the incremental build", p)
		}
	}
}

// A cold build whose context is older than the racy window hashes a later
// COPY's sources while the steps before it run (prehash.go) and takes
// their digests and tar-split checksums from that pass: the layer holds
// the files' checksums, and a rebuild finds every step's key the same.
func TestPrehashedCopyBuild(t *testing.T) {
	t.Parallel()
	s := benchStore(t, "overlay")
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM busybox\nRUN true\nCOPY data/ /app/data/\n"), 0o644)
	for i := range 40 {
		p := filepath.Join(ctxDir, "data", fmt.Sprintf("d%d", i%4), fmt.Sprintf("f%d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(strings.Repeat(fmt.Sprint(i), 100+i)), 0o644)
	}
	// Until then the files' change times are too recent to trust a
	// digest made ahead of their step (hashcache.go).
	time.Sleep(racyWindow + 100*time.Millisecond)
	_, chain, _, _ := buildLayer(t, s, ctxDir, Options{NoCache: true})
	got := layerCRCs(t, s, chain)
	if len(got) != 40 {
		t.Fatalf("layer has checksums of %d files, want 40", len(got))
	}
	for p, crc := range got {
		b, err := os.ReadFile(filepath.Join(ctxDir, "data", strings.TrimPrefix(p, "app/data/")))
		if err != nil {
			t.Fatal(err)
		}
		h := layer.NewPayloadHash()
		h.Write(b)
		if want := hex.EncodeToString(h.Sum(nil)); crc != want {
			t.Errorf("%s: checksum %s, want %s", p, crc, want)
		}
	}
	var misses []string
	_, err := Build(context.Background(), s, Options{ContextDir: ctxDir, Network: "none", Events: func(e progress.Event) {
		if e.Kind == progress.EventDone && strings.Contains(e.Name, "COPY") {
			misses = append(misses, e.Name)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(misses) != 0 {
		t.Errorf("the rebuild ran %v again: the prehashed key differs", misses)
	}
}
