// Package layer turns tar changesets into committed snapshots and back.
//
// A layer lives on disk once, as the snapshot named by its chainID. What
// cannot be recovered from the extracted files (the tar headers, their order,
// padding) is kept as tar-split metadata beside it, so the exact original tar
// stream, and so the same diffID, can be reproduced for save and push.
package layer

import (
	"archive/tar"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/tar/storage"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/archive"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/rootfs"
	"github.com/strata-project/strata/internal/snapshot"
)

const bucket = "layers" // chainID -> record

// Layer is one committed layer in a stack.
type Layer struct {
	ChainID digest.Digest `json:"-"`
	DiffID  digest.Digest `json:"diffID"`
	Parent  digest.Digest `json:"parent,omitempty"` // chainID of the stack below
	Size    int64         `json:"size"`             // bytes of file content, as docker counts a layer
	TarSize int64         `json:"tarSize"`          // bytes of the uncompressed tar
	Created time.Time     `json:"created"`
	// Owner is the lockfile.Owner ID of the process that made the layer or
	// last committed onto it: while that process lives, the layer is
	// leased to it (see store.Lease), even before an image names it.
	Owner string `json:"owner,omitempty"`
}

// Store creates and reads layers.
type Store struct {
	dir   string // tar-split metadata files
	db    *metadata.DB
	sn    snapshot.Snapshotter
	owner string
	guard func(context.Context, func() error) error
}

// SetGuard makes claims of existing layers run inside guard: the store
// passes its shared lock, so a claim and a sweep that would remove the
// claimed layer never interleave.
func (s *Store) SetGuard(guard func(context.Context, func() error) error) { s.guard = guard }

// New returns the layer store keeping tar-split files in dir. owner is this
// process's lockfile.Owner ID: the ingest snapshots it makes carry it, so
// that garbage collection can tell those of a dead process.
func New(dir string, db *metadata.DB, sn snapshot.Snapshotter, owner string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("layer store: %w", err)
	}
	db.Own(bucket)
	return &Store{dir: dir, db: db, sn: sn, owner: owner}, nil
}

// Snapshotter is the snapshotter the layers live in.
func (s *Store) Snapshotter() snapshot.Snapshotter { return s.sn }

// IngestKeyPrefix starts the keys of active snapshots that are layers being
// made; one left behind by a dead process is garbage.
const IngestKeyPrefix = "ingest/"

// IngestKey is a fresh active-snapshot key owned by this process.
func (s *Store) IngestKey() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%s%s/%x", IngestKeyPrefix, s.owner, b)
}

// IngestOwner is the owner ID in an ingest key, or "" when key is not one.
func IngestOwner(key string) string {
	rest, ok := strings.CutPrefix(key, IngestKeyPrefix)
	if !ok {
		return ""
	}
	owner, _, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return owner
}

// Unpack extracts the uncompressed tar stream r as a new layer on top of the
// stack parent ("" for a base layer). The stream is read once: it is hashed
// for the diffID, recorded as tar-split and extracted in the same pass. If
// the resulting chainID exists already, the new copy is dropped and the
// existing layer returned.
func (s *Store) Unpack(ctx context.Context, parent digest.Digest, r io.Reader) (Layer, error) {
	return s.unpackOn(ctx, parent, r, expect{})
}

// unpackOn unpacks the tar r as a layer on the committed stack parent and
// commits it, if it is what want expects.
func (s *Store) unpackOn(ctx context.Context, parent digest.Digest, r io.Reader, want expect) (Layer, error) {
	key := s.IngestKey()
	if _, err := s.sn.Prepare(ctx, key, string(parent)); err != nil {
		return Layer{}, fmt.Errorf("prepare layer on %s: %w", short(parent), err)
	}
	l, err := s.unpack(ctx, key, parent, r, want)
	if err != nil {
		s.sn.Remove(context.WithoutCancel(ctx), key)
		return Layer{}, err
	}
	return l, nil
}

// verifiedEnd passes r through and, at r's end, reads src (the compressed
// stream under r) to its end, so its verification error replaces EOF.
type verifiedEnd struct {
	r   io.Reader
	src io.Reader
}

func (v *verifiedEnd) Read(b []byte) (int, error) {
	n, err := v.r.Read(b)
	if err == io.EOF {
		if _, derr := io.Copy(io.Discard, v.src); derr != nil {
			return n, derr
		}
	}
	return n, err
}

func (s *Store) unpack(ctx context.Context, key string, parent digest.Digest, r io.Reader, want expect) (Layer, error) {
	dir, opts, err := s.applyTarget(ctx, key)
	if err != nil {
		return Layer{}, err
	}
	wb := startWriteback()
	rec, err := s.applyLayer(ctx, dir, wb.reader(r, dir), opts, want)
	wb.stop()
	if err != nil {
		return Layer{}, err
	}
	return s.commit(ctx, key, parent, dir, rec)
}

// expect is what a layer's tar must hash to ("": anything): the diffID its
// image's config lists, and, when the blob is the tar itself (uncompressed),
// the digest the blob is known by, which the diffID's hash checks too.
type expect struct{ diffID, blob digest.Digest }

// applyLayer extracts the tar r into dir, recording it, and checks that
// it is what want expects.
func (s *Store) applyLayer(ctx context.Context, dir string, r io.Reader, opts archive.ApplyOptions, want expect) (recording, error) {
	rec, err := s.recordApply(ctx, dir, r, opts)
	if err != nil {
		return recording{}, fmt.Errorf("apply layer: %w", err)
	}
	if err := want.check(rec.diffID); err != nil {
		os.Remove(rec.tarSplit)
		return recording{}, err
	}
	return rec, nil
}

// check says whether a tar that hashed to diffID is what w expects.
func (w expect) check(diffID digest.Digest) error {
	switch {
	case w.blob != "" && diffID != w.blob:
		return &DigestError{Got: diffID, Want: w.blob}
	case w.diffID != "" && diffID != w.diffID:
		return &DiffIDError{Got: diffID, Want: w.diffID}
	}
	return nil
}

// DiffIDError is a layer tar whose digest is not the one its image's
// config lists.
type DiffIDError struct{ Got, Want digest.Digest }

func (e *DiffIDError) Error() string {
	return fmt.Sprintf("unpacked to diffID %s, the config says %s", e.Got, e.Want)
}

// DigestError is a layer blob whose bytes do not have the digest it is
// known by.
type DigestError struct{ Got, Want digest.Digest }

func (e *DigestError) Error() string {
	return fmt.Sprintf("blob has digest %s, want %s", e.Got, e.Want)
}

// applyTarget is where a layer tar goes for the new snapshot key, and how
// its whiteouts are stored there: the layer policy of the driver.
func (s *Store) applyTarget(ctx context.Context, key string) (string, archive.ApplyOptions, error) {
	opts := archive.ApplyOptions{Whiteouts: archive.WhiteoutDelete}
	dir, err := s.sn.Dir(ctx, key)
	if err != nil {
		return "", opts, err
	}
	if s.sn.Whiteouts() == snapshot.WhiteoutsOverlay {
		opts.Whiteouts = archive.WhiteoutOverlay
		if opts.Lower, err = s.sn.LowerDirs(ctx, key); err != nil {
			return "", opts, err
		}
	}
	return dir, opts, nil
}

// CommitOnto makes a layer on the stack parent out of what active snapshot
// src changed, when src sits on another stack than parent (a container on
// its init layer, a COPY --link step on nothing). The changeset tar of src
// is written once: as it is written it is hashed and recorded (the writer
// reports each entry, so nothing parses the stream to record it) and
// applied onto a new snapshot over parent. src is left as it was.
func (s *Store) CommitOnto(ctx context.Context, src string, parent digest.Digest, opts archive.DiffOptions) (Layer, error) {
	srcDir, err := s.sn.Dir(ctx, src)
	if err != nil {
		return Layer{}, err
	}
	key := s.IngestKey()
	if _, err := s.sn.Prepare(ctx, key, string(parent)); err != nil {
		return Layer{}, fmt.Errorf("prepare layer on %s: %w", short(parent), err)
	}
	l, err := s.commitOnto(ctx, src, srcDir, key, parent, opts)
	if err != nil {
		s.sn.Remove(context.WithoutCancel(ctx), key)
		return Layer{}, fmt.Errorf("commit %s onto %s: %w", src, short(parent), err)
	}
	return l, nil
}

func (s *Store) commitOnto(ctx context.Context, src, srcDir, key string, parent digest.Digest, opts archive.DiffOptions) (Layer, error) {
	dir, aopts, err := s.applyTarget(ctx, key)
	if err != nil {
		return Layer{}, err
	}
	rec, err := s.recordTar(func(sr *splitRecorder) error {
		pr, pw := io.Pipe()
		applied := make(chan error, 1)
		go func() {
			_, err := archive.Apply(ctx, dir, pr, aopts)
			// Unblocks the writer if Apply stopped early.
			pr.CloseWithError(cmp.Or(err, io.ErrClosedPipe))
			applied <- err
		}()
		opts.EntryWritten = sr.entry
		werr := s.writeDiff(ctx, io.MultiWriter(sr, pw), src, srcDir, opts)
		pw.CloseWithError(werr)
		// Both ends are done before the recording is used or removed.
		aerr := <-applied
		if werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
			return fmt.Errorf("diff: %w", werr)
		}
		if aerr != nil {
			return fmt.Errorf("apply: %w", aerr)
		}
		return werr
	})
	if err != nil {
		return Layer{}, err
	}
	return s.commit(ctx, key, parent, dir, rec)
}

// recordApply extracts the tar r into dir with one tar reader: Apply's own.
// The raw stream is teed into the recorder, which Apply tells where each
// header ends, so hashing and tar-split recording need no second parser.
func (s *Store) recordApply(ctx context.Context, dir string, r io.Reader, opts archive.ApplyOptions) (recording, error) {
	return s.recordTar(func(sr *splitRecorder) error {
		bg := newBgRecorder(sr)
		opts.EntryRead = func(hdr *tar.Header) error {
			if isSparse(hdr) {
				// Its payload in the tar is shorter than hdr.Size, and
				// tar-split could not reproduce it from the extracted file.
				return errors.New("sparse files are not supported in layers")
			}
			size := hdr.Size
			switch hdr.Typeflag {
			case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
				// The reader ignores a size these claim: no payload follows.
				size = 0
			}
			bg.entry(hdr.Name, size)
			return nil
		}
		// Apply reads r to its very end, so padding after the end marker
		// is hashed and recorded too: it belongs to the diffID.
		_, err := archive.Apply(ctx, dir, io.TeeReader(r, bg), opts)
		if rerr := bg.wait(); err == nil {
			err = rerr
		}
		return err
	})
}

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// Commit turns the active snapshot key, whose parent is the stack parent,
// into a layer: the snapshot's directory is kept as it is and only its
// changeset tar is computed (hashed and recorded, never stored).
func (s *Store) Commit(ctx context.Context, key string, parent digest.Digest, opts archive.DiffOptions) (Layer, error) {
	return s.CommitSums(ctx, key, parent, opts, PayloadSums{})
}

// PayloadSums passes the tar-split checksums (crc64) of regular files'
// payloads between a commit and its caller. Known gives those the caller
// vouches for: files that are hard links of a committed layer's files
// whose checksums that layer's commit reported, or copies of files whose
// content it summed (NewPayloadHash) as it read them for their digest
// (Entries hands them to image analysis, which takes equal checksums for
// equal content). Report,
// when set, is told every regular file's.
type PayloadSums struct {
	Known  func(name string, size int64) (crc []byte, ok bool)
	Report func(name string, crc []byte)
}

// CommitSums is Commit taking the checksums sums knows instead of
// computing them, and reporting them to it.
func (s *Store) CommitSums(ctx context.Context, key string, parent digest.Digest, opts archive.DiffOptions, sums PayloadSums) (Layer, error) {
	dir, err := s.sn.Dir(ctx, key)
	if err != nil {
		return Layer{}, err
	}
	// The snapshot's files are written and stay as they are: flushing them
	// to disk (I/O) runs while the diff is read back and hashed (CPU), and
	// commit's own sync then finds little left to write.
	synced := make(chan error, 1)
	go func() { synced <- syncDir(dir) }()
	rec, err := s.recordDiff(ctx, key, dir, opts, sums)
	if serr := <-synced; err == nil && serr != nil {
		os.Remove(rec.tarSplit)
		return Layer{}, serr
	}
	if err != nil {
		return Layer{}, fmt.Errorf("diff %s: %w", key, err)
	}
	return s.commit(ctx, key, parent, dir, rec)
}

// recordDiff writes the changeset tar of dir straight into the recorder:
// the writer reports each entry as it goes, so the stream is hashed and its
// tar-split recorded without a pipe or a second tar parser.
func (s *Store) recordDiff(ctx context.Context, key, dir string, opts archive.DiffOptions, sums PayloadSums) (recording, error) {
	return s.recordTar(func(sr *splitRecorder) error {
		sr.sums = sums
		opts.EntryWritten = sr.entry
		return s.writeDiff(ctx, sr, key, dir, opts)
	})
}

// WriteDiff writes the changeset tar of active snapshot key to w.
func (s *Store) WriteDiff(ctx context.Context, w io.Writer, key string, opts archive.DiffOptions) error {
	dir, err := s.sn.Dir(ctx, key)
	if err != nil {
		return err
	}
	return s.writeDiff(ctx, w, key, dir, opts)
}

func (s *Store) writeDiff(ctx context.Context, w io.Writer, key, dir string, opts archive.DiffOptions) error {
	if s.sn.Whiteouts() == snapshot.WhiteoutsOverlay {
		return archive.WriteOverlayDiff(ctx, w, dir, opts)
	}
	lowers, err := s.sn.LowerDirs(ctx, key)
	if err != nil {
		return err
	}
	lower := ""
	if len(lowers) > 0 {
		lower = lowers[0]
	}
	return archive.WriteTreeDiff(ctx, w, lower, dir, opts)
}

// Changes lists what active snapshot key changed, like `docker diff`.
func (s *Store) Changes(ctx context.Context, key string, fn func(archive.Change) error) error {
	dir, err := s.sn.Dir(ctx, key)
	if err != nil {
		return err
	}
	lowers, err := s.sn.LowerDirs(ctx, key)
	if err != nil {
		return err
	}
	if s.sn.Whiteouts() == snapshot.WhiteoutsOverlay {
		return archive.OverlayChanges(ctx, dir, lowers, fn)
	}
	lower := ""
	if len(lowers) > 0 {
		lower = lowers[0]
	}
	return archive.TreeChanges(ctx, lower, dir, fn)
}

// recording is what one pass over a layer tar learned.
type recording struct {
	diffID   digest.Digest
	tarSize  int64
	size     int64
	tarSplit string // temp file with the gzip'd tar-split metadata
}

// recordTar gives pass a recorder to put one whole tar stream through, and
// returns what it learned, with the tar-split metadata in a durable temp
// file for commit to rename.
func (s *Store) recordTar(pass func(*splitRecorder) error) (rec recording, err error) {
	sf, err := s.createSplitFile()
	if err != nil {
		return rec, err
	}
	defer func() {
		if err != nil {
			sf.abort()
		}
	}()
	sr := newSplitRecorder(newSplitPacker(sf.zw))
	defer sr.sha.stop()
	if err := pass(sr); err != nil {
		return rec, err
	}
	if err := sr.finish(); err != nil {
		return rec, err
	}
	if err := sf.close(); err != nil {
		return rec, err
	}
	return recording{
		diffID:   digest.NewDigestFromBytes(digest.SHA256, sr.sha.sum()),
		tarSize:  sr.n,
		size:     sr.size,
		tarSplit: sf.f.Name(),
	}, nil
}

// splitFile is a temp file receiving gzip'd tar-split metadata.
type splitFile struct {
	f  *os.File
	zw *gzip.Writer
}

// tmpDir holds tar-split files being written, named <owner ID>-<random>.
const tmpDir = "tmp"

// CleanTemps removes the tar-split temp files of writers that died (and any
// left by older versions as .tmp-tar-split-* beside the layers) and says
// how many went.
func (s *Store) CleanTemps(alive func(owner string) bool) (int, error) {
	n := 0
	dir := filepath.Join(s.dir, tmpDir)
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	for _, e := range ents {
		owner, _, ok := strings.Cut(e.Name(), "-")
		if ok && alive(owner) {
			continue
		}
		if os.Remove(filepath.Join(dir, e.Name())) == nil {
			n++
		}
	}
	legacy, _ := filepath.Glob(filepath.Join(s.dir, ".tmp-tar-split-*"))
	for _, p := range legacy {
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > time.Hour && os.Remove(p) == nil {
			n++
		}
	}
	return n, nil
}

func (s *Store) createSplitFile() (*splitFile, error) {
	tmp := filepath.Join(s.dir, tmpDir)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("tar-split temp dir: %w", err)
	}
	f, err := os.CreateTemp(tmp, s.owner+"-")
	if err != nil {
		return nil, fmt.Errorf("tar-split temp file: %w", err)
	}
	// Mostly tar headers, which compress well at any level; the fastest
	// level takes a tenth off a layer commit for 11% more metadata bytes.
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	return &splitFile{f: f, zw: zw}, nil
}

// close makes the file durable; it is renamed into place by commit.
func (sf *splitFile) close() error {
	if err := sf.zw.Close(); err != nil {
		return fmt.Errorf("write tar-split: %w", err)
	}
	if err := sf.f.Sync(); err != nil {
		return fmt.Errorf("write tar-split: %w", err)
	}
	if err := sf.f.Close(); err != nil {
		return fmt.Errorf("write tar-split: %w", err)
	}
	return nil
}

func (sf *splitFile) abort() {
	sf.f.Close()
	os.Remove(sf.f.Name())
}

// commit names the active snapshot key, made on parent, by its chainID
// and records the layer, once its files are on disk.
func (s *Store) commit(ctx context.Context, key string, parent digest.Digest, dir string, rec recording) (Layer, error) {
	return s.commitLayer(ctx, key, parent, dir, rec, false)
}

// commitLayer is commit; stacked says key is a layer of a stack (see
// UnpackStack): made on no parent, to be committed onto parent, its files
// and its tar-split (placed) already synced with the rest of the stack's.
func (s *Store) commitLayer(ctx context.Context, key string, parent digest.Digest, dir string, rec recording, stacked bool) (Layer, error) {
	defer os.Remove(rec.tarSplit)
	l := Layer{
		ChainID: image.ChildChainID(parent, rec.diffID),
		DiffID:  rec.diffID,
		Parent:  parent,
		Size:    rec.size,
		TarSize: rec.tarSize,
		Created: time.Now().UTC(),
		Owner:   s.owner,
	}
	var existing Layer
	var ok bool
	claim := func() (err error) {
		existing, ok, err = s.claim(ctx, l.ChainID)
		return err
	}
	var err error
	if s.guard != nil {
		err = s.guard(ctx, claim)
	} else {
		err = claim()
	}
	if err != nil {
		return Layer{}, err
	}
	if ok {
		s.sn.Remove(ctx, key)
		return existing, nil
	}
	if !stacked {
		if err := s.placeTarSplit(&rec, l.ChainID); err != nil {
			return Layer{}, err
		}
		if err := syncDir(dir); err != nil {
			return Layer{}, err
		}
	}
	commitSnapshot := s.sn.Commit
	if stacked {
		commitSnapshot = func(ctx context.Context, name, key string) error {
			return s.sn.(stacker).CommitOn(ctx, name, key, string(parent))
		}
	}
	switch err := commitSnapshot(ctx, string(l.ChainID), key); {
	case errors.Is(err, metadata.ErrExists):
		// Another process (or one that crashed before recording it) made
		// the same content-addressed snapshot: keep that one.
		s.sn.Remove(ctx, key)
	case err != nil:
		return Layer{}, fmt.Errorf("commit layer %s: %w", short(l.ChainID), err)
	}
	b, err := json.Marshal(l)
	if err != nil {
		return Layer{}, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		bk, err := metadata.Bucket(tx, bucket)
		if err != nil {
			return err
		}
		if bk.Get([]byte(l.ChainID)) != nil {
			return nil
		}
		return bk.Put([]byte(l.ChainID), b)
	})
	if err != nil {
		return Layer{}, fmt.Errorf("record layer %s: %w", short(l.ChainID), err)
	}
	return l, nil
}

// claim makes this process the owner of an existing layer, so that it is
// not collected before the image that will name it exists.
func (s *Store) claim(ctx context.Context, chainID digest.Digest) (l Layer, ok bool, err error) {
	if _, err := s.sn.Stat(ctx, string(chainID)); err != nil {
		return Layer{}, false, nil // no snapshot: the record (if any) is a crash's leftover
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		bk, err := metadata.Bucket(tx, bucket)
		if err != nil {
			return err
		}
		v := bk.Get([]byte(chainID))
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("decode layer %s: %w", short(chainID), err)
		}
		l.ChainID, l.Owner, ok = chainID, s.owner, true
		b, err := json.Marshal(l)
		if err != nil {
			return err
		}
		return bk.Put([]byte(chainID), b)
	})
	return l, ok, err
}

// Get returns the layer that ends the stack chainID.
func (s *Store) Get(ctx context.Context, chainID digest.Digest) (Layer, error) {
	var l Layer
	err := s.db.View(func(tx *bolt.Tx) error {
		bk, _ := metadata.Bucket(tx, bucket)
		if bk == nil {
			return fmt.Errorf("layer %s: %w", short(chainID), metadata.ErrNotFound)
		}
		v := bk.Get([]byte(chainID))
		if v == nil {
			return fmt.Errorf("layer %s: %w", short(chainID), metadata.ErrNotFound)
		}
		return json.Unmarshal(v, &l)
	})
	if err != nil {
		return Layer{}, err
	}
	if _, err := s.sn.Stat(ctx, string(chainID)); err != nil {
		return Layer{}, fmt.Errorf("layer %s snapshot: %w", short(chainID), err)
	}
	l.ChainID = chainID
	return l, nil
}

// Walk calls fn for every layer.
func (s *Store) Walk(ctx context.Context, fn func(Layer) error) error {
	var all []Layer
	err := s.db.View(func(tx *bolt.Tx) error {
		bk, _ := metadata.Bucket(tx, bucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			var l Layer
			if err := json.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("layer record %s: %w", k, err)
			}
			l.ChainID = digest.Digest(k)
			all = append(all, l)
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, l := range all {
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

// ErrInUse is returned (wrapped) by Remove for a layer something is built on.
var ErrInUse = snapshot.ErrInUse

// Remove deletes layer chainID. The snapshot goes first, since it refuses
// while another snapshot is built on it; a crash before the record goes
// leaves a record without a snapshot, which Get treats as missing.
func (s *Store) Remove(ctx context.Context, chainID digest.Digest) error {
	if err := s.sn.Remove(ctx, string(chainID)); err != nil && !errors.Is(err, metadata.ErrNotFound) {
		return fmt.Errorf("remove layer %s: %w", short(chainID), err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk, err := metadata.Bucket(tx, bucket)
		if err != nil {
			return err
		}
		return bk.Delete([]byte(chainID))
	})
	if err != nil {
		return err
	}
	if err := os.Remove(s.tarSplitPath(chainID)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// Tar reproduces the exact uncompressed tar of layer chainID from its
// snapshot and tar-split metadata. The stream is checked against the
// diffID as it is read: a mismatch fails the final Read.
func (s *Store) Tar(ctx context.Context, chainID digest.Digest) (io.ReadCloser, error) {
	l, err := s.Get(ctx, chainID)
	if err != nil {
		return nil, err
	}
	dir, err := s.sn.Dir(ctx, string(chainID))
	if err != nil {
		return nil, err
	}
	root, err := rootfs.Open(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.tarSplitPath(chainID))
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("layer %s tar-split: %w", short(chainID), err)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		root.Close()
		f.Close()
		return nil, fmt.Errorf("layer %s tar-split: %w", short(chainID), err)
	}
	// Three parts of the work run at once: the tar is assembled (each file
	// read) on a goroutine of its own, up to tarAhead bytes ahead of the
	// reader who sends it on (writes it to a file, compresses it), and
	// hashed on a third (bgHash). In one stream the reader both hashed and
	// wrote, and that was a save's whole wall time.
	pr, pw := newRingPipe(tarAhead)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(assembleVerified(rootGetter{root}, newSplitUnpacker(zr), pw, l.DiffID))
	}()
	stop := closerFunc(func() error {
		pr.CloseWithError(errors.New("layer tar closed"))
		<-done // the assembler is done with zr, f and root
		return nil
	})
	return &readClosers{r: pr, closers: []io.Closer{stop, zr, f, root}}, nil
}

// assembleVerified is assembleTar checked against the layer's diffID: the
// hash of the whole stream is compared before the writer is told it ended,
// so a reader of w gets the mismatch instead of its EOF.
func assembleVerified(fg rootGetter, up storage.Unpacker, w io.Writer, want digest.Digest) error {
	h := newBgHash()
	if err := assembleTar(fg, up, io.MultiWriter(w, h)); err != nil {
		h.stop()
		return err
	}
	if got := digest.NewDigestFromBytes(digest.SHA256, h.sum()); got != want {
		return fmt.Errorf("layer tar reproduced as %s, want diffID %s: snapshot was modified", got, want)
	}
	return nil
}

// assembleTar writes the tar that up records, each file's payload read
// from fg: exactly the recorded size of it, so the stream stays a
// well-formed tar whatever happened to the file. Whether the bytes are the
// recorded ones is the diffID's check at the end of the stream
// (assembleVerified); tar-split's own assembler also computed a crc64 of
// every payload for that, the same check again at a sixth of a save's CPU.
func assembleTar(fg rootGetter, up storage.Unpacker, w io.Writer) error {
	buf := make([]byte, 256<<10)
	for {
		e, err := up.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch e.Type {
		case storage.SegmentType:
			if _, err := w.Write(e.Payload); err != nil {
				return err
			}
		case storage.FileType:
			if e.Size == 0 {
				continue
			}
			name := e.GetName()
			f, err := fg.Get(name)
			if err != nil {
				return err
			}
			n, err := io.CopyBuffer(w, io.LimitReader(f, e.Size), buf)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if n != e.Size {
				return fmt.Errorf("%s: %d bytes, the layer recorded %d: snapshot was modified", name, n, e.Size)
			}
		}
	}
}

// tarAhead is how far a layer tar's assembly may run ahead of its reader.
const tarAhead = 1 << 20

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func (s *Store) tarSplitPath(chainID digest.Digest) string {
	return filepath.Join(s.dir, chainID.Encoded()+".tar-split.gz")
}

// rootGetter serves file payloads from inside a snapshot directory only:
// each path is resolved in the root by the kernel (one openat2, where
// os.Root opened and closed every directory on the way: 4 of 7 system
// calls per file of a save), and a final symlink is refused, since a
// payload is a regular file's.
type rootGetter struct{ root *rootfs.Root }

func (g rootGetter) Get(name string) (io.ReadCloser, error) {
	return g.root.OpenFile(name, unix.O_RDONLY|unix.O_NOFOLLOW, 0)
}

// readClosers reads r and closes every closer in order.
type readClosers struct {
	r       io.Reader
	closers []io.Closer
}

func (v *readClosers) Read(p []byte) (int, error) { return v.r.Read(p) }

func (v *readClosers) Close() error {
	var first error
	for _, c := range v.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// placeTarSplit names rec's tar-split file by chainID. Its bytes depend only
// on the tar, so this is idempotent and done before the snapshot is
// committed; it is done before the sync that precedes the layer's record,
// so that the name is on disk with the files (the store's tar-split and
// snapshot directories share its root's filesystem).
func (s *Store) placeTarSplit(rec *recording, chainID digest.Digest) error {
	if err := os.Rename(rec.tarSplit, s.tarSplitPath(chainID)); err != nil {
		return fmt.Errorf("store tar-split: %w", err)
	}
	rec.tarSplit = ""
	return nil
}

// syncDir flushes the filesystem holding dir once, instead of an fsync per
// extracted file.
func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func short(d digest.Digest) string {
	if d == "" {
		return "scratch"
	}
	return image.ShortID(d)
}

// RemoveOrphans removes the records (and tar-split files) of layers whose
// snapshot is gone: what a removal killed between its two steps leaves.
// Layers are listed before snapshots, so a layer committed meanwhile (its
// snapshot is made first) is never taken for an orphan.
func (s *Store) RemoveOrphans(ctx context.Context) (int, error) {
	var layers []digest.Digest
	if err := s.Walk(ctx, func(l Layer) error { layers = append(layers, l.ChainID); return nil }); err != nil {
		return 0, err
	}
	if len(layers) == 0 {
		return 0, nil
	}
	have := map[string]bool{}
	if err := s.sn.Walk(ctx, func(i snapshot.Info) error { have[i.Key] = true; return nil }); err != nil {
		return 0, err
	}
	n := 0
	for _, c := range layers {
		if have[string(c)] {
			continue
		}
		if err := s.Remove(ctx, c); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
