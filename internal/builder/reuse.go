package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash/crc64"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/rootfs"
	"github.com/strata-project/strata/internal/snapshot"
)

// An incremental COPY. When a COPY step misses the cache because a few of
// its source files changed, most of the files it writes are the same as in
// the layer its previous build made. On overlay that layer is a committed
// snapshot whose files never change (a container or a later step writes a
// copy-up, never the lower file), so a file that would be written with the
// same content, mode, owner, times and (no) xattrs is hard-linked from
// there instead of created and copied: the cost of the copy follows the
// change, not the tree. The layer tar cannot tell the difference (it holds
// no link count, and the diff writer only makes tar hardlinks of two paths
// of the same layer), so the layer is byte for byte the one a fresh copy
// makes. --no-cache uses nothing of earlier builds, this included.

// copiedRecord is what a COPY step's last build wrote into its layer: the
// layer's chainID, and the sha256 of each regular file the copy wrote into
// the snapshot's upper dir, by its path there, with the tar-split checksum
// (crc64) the layer's commit reported for it, so a commit that links the
// file takes that instead of reading the file for it again. It is kept
// beside the step's inputs (stepsBucket) under copiedKey.
type copiedRecord struct {
	Chain digest.Digest     `json:"chain"`
	Files map[string]string `json:"files"` // upper-dir path -> hex sha256 [ "/" hex crc64 ]
}

const copiedSuffix = "\x00copied"

func copiedKey(place []byte) []byte { return append(append([]byte{}, place...), copiedSuffix...) }

func (b *builder) loadCopied(place []byte) *copiedRecord {
	var rec copiedRecord
	if !b.loadStepRecord(copiedKey(place), &rec) {
		return nil
	}
	return &rec
}

// saveCopied records what the copy c wrote into layer chain, or forgets
// the step's record when the copy wrote nothing that a later build could
// link (best effort: only the speed of a later build depends on it).
func (b *builder) saveCopied(place []byte, chain digest.Digest, c *copier) {
	if len(place) == 0 {
		return
	}
	var v []byte
	if len(c.copied.m) > 0 {
		rec := copiedRecord{Chain: chain, Files: make(map[string]string, len(c.copied.m))}
		for p, f := range c.copied.m {
			v := hex.EncodeToString(f.sum[:])
			if f.crc != nil {
				v += "/" + hex.EncodeToString(f.crc)
			}
			rec.Files[p] = v
		}
		var err error
		if v, err = json.Marshal(rec); err != nil {
			return
		}
	}
	records(b.s).Update(func(tx *metadata.Tx) error {
		bk, err := tx.CreateBucket(stepsBucket)
		if err != nil {
			return err
		}
		if v == nil {
			return bk.Delete(copiedKey(place))
		}
		return bk.Put(copiedKey(place), v)
	})
}

// forgetCopiedOfGoneLayers drops the copied records whose layer is gone
// (after a prune): they could no longer be linked from, and each holds a
// line per file of its COPY.
func forgetCopiedOfGoneLayers(ctx context.Context, s Store) error {
	var gone [][]byte
	err := records(s).View(func(tx *metadata.Tx) error {
		bk := tx.Bucket(stepsBucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			if !bytes.HasSuffix(k, []byte(copiedSuffix)) {
				return nil
			}
			var rec struct {
				Chain digest.Digest `json:"chain"`
			}
			if json.Unmarshal(v, &rec) != nil {
				gone = append(gone, bytes.Clone(k))
				return nil
			}
			if info, err := s.Snapshots().Stat(ctx, string(rec.Chain)); err != nil || info.Kind != snapshot.KindCommitted {
				gone = append(gone, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil || len(gone) == 0 {
		return err
	}
	return records(s).Update(func(tx *metadata.Tx) error {
		bk := tx.Bucket(stepsBucket)
		if bk == nil {
			return nil
		}
		for _, k := range gone {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// prevLayer is the committed snapshot of a COPY step's previous build,
// open to link files from.
type prevLayer struct {
	fd   int // O_PATH fd of the snapshot's directory
	sums map[string][sha256.Size]byte
	crcs map[string][]byte
}

// openPrevLayer opens the layer the previous build of the step at place
// made, if its record and its committed snapshot are still there. A layer
// removed meanwhile only fails the links, which then fall back to copies.
func (b *builder) openPrevLayer(ctx context.Context, place []byte) *prevLayer {
	rec := b.loadCopied(place)
	if rec == nil || len(rec.Files) == 0 {
		return nil
	}
	if info, err := b.s.Snapshots().Stat(ctx, string(rec.Chain)); err != nil || info.Kind != snapshot.KindCommitted {
		return nil
	}
	dir, err := b.s.Snapshots().Dir(ctx, string(rec.Chain))
	if err != nil {
		return nil
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	p := &prevLayer{fd: fd, sums: make(map[string][sha256.Size]byte, len(rec.Files)), crcs: make(map[string][]byte, len(rec.Files))}
	for path, v := range rec.Files {
		h, c, _ := strings.Cut(v, "/")
		var sum [sha256.Size]byte
		if n, err := hex.Decode(sum[:], []byte(h)); err != nil || n != sha256.Size {
			continue
		}
		p.sums[path] = sum
		if crc, err := hex.DecodeString(c); err == nil && len(crc) == crc64.Size {
			p.crcs[path] = crc
		}
	}
	return p
}

func (p *prevLayer) close() {
	if p != nil {
		unix.Close(p.fd)
	}
}

// openDir opens directory rel (clean, relative) of the previous layer as an
// O_PATH fd the caller owns, or returns -1. No symlink is followed: a path
// that reaches a file only through one is not the path the record names.
func (p *prevLayer) openDir(rel string) int {
	if p == nil {
		return -1
	}
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV,
	}
	for range 16 {
		fd, err := unix.Openat2(p.fd, rel, &how)
		if err == nil {
			return fd
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			return -1
		}
	}
	return -1
}

// copiedFiles collects what a copy wrote into the upper dir, from the copy
// pool's workers, and then the checksums its layer's commit reports.
type copiedFiles struct {
	mu sync.Mutex
	m  map[string]*copiedFile
}

type copiedFile struct {
	sum [sha256.Size]byte
	// crc is the payload's tar-split checksum: for a linked file the one
	// its previous layer's commit reported (which this commit takes), and
	// after the commit the one it reported.
	crc []byte
}

func (f *copiedFiles) add(key string, sum [sha256.Size]byte, crc []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]*copiedFile{}
	}
	f.m[key] = &copiedFile{sum: sum, crc: crc}
}

// payloadSums gives the layer commit the checksums of the linked files and
// keeps those it reports of every copied one. The commit runs after the
// copy pool is done, on one goroutine.
func (f *copiedFiles) payloadSums() layer.PayloadSums {
	return layer.PayloadSums{
		Known: func(name string, _ int64) ([]byte, bool) {
			if cf := f.m[name]; cf != nil && cf.crc != nil {
				return cf.crc, true
			}
			return nil, false
		},
		Report: func(name string, crc []byte) {
			if cf := f.m[name]; cf != nil {
				cf.crc = crc
			}
		},
	}
}

// linkPrev hard-links j's file from the previous layer when the file there
// is exactly what the copy would write: a regular file with the source's
// content (by the recorded sha256), size and modification time (to the
// nanosecond), the mode and owner the copy gives it, and no xattrs. It
// reports whether it did; on false the caller copies.
func (c *copier) linkPrev(j copyJob, uid, gid int, perm uint32) bool {
	if c.prev == nil || j.up == nil || j.up.prevDir < 0 {
		return false
	}
	if want, ok := c.prev.sums[j.up.key]; !ok || want != *j.up.sum {
		return false
	}
	var st unix.Stat_t
	if unix.Fstatat(j.up.prevDir, j.name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return false
	}
	mt := j.e.fi.ModTime()
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o7777 != perm&0o7777 ||
		int(st.Uid) != uid || int(st.Gid) != gid || st.Size != j.e.fi.Size() ||
		st.Mtim.Sec != mt.Unix() || st.Mtim.Nsec != int64(mt.Nanosecond()) {
		return false
	}
	if n, err := unix.Llistxattr(rootfs.ProcPath(j.up.prevDir, j.name), nil); err != nil || n != 0 {
		return false
	}
	return unix.Linkat(j.up.prevDir, j.name, j.dir, j.name, 0) == nil
}
