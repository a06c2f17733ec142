// Package content is strata's content-addressed blob store: image configs,
// manifests and, where they are kept, compressed layer blobs, each named by
// the sha256 digest of its bytes.
//
// Layout under the store root:
//
//	blobs/sha256/<hex>   committed blobs, read-only
//	ingest/<tmp>         blobs being written
//
// The one invariant: a blob appears under blobs/ only after its bytes have
// been hashed and checked against the digest (and size) the caller expected,
// flushed to disk, and renamed into place in one step. A writer that crashes
// or is killed at any point leaves at most a file in ingest/, which
// CleanIngest removes later; it never leaves a partial blob under a name.
//
// Several processes may share one store. Renames are atomic and a blob's
// name is its content, so two writers committing the same digest both
// succeed with identical bytes. Each live writer holds an flock on its
// ingest file, so cleanup in another process never removes a write that is
// still in progress; the kernel drops that lock when the writer dies.
package content

import (
	"bytes"
	"context"
	_ "crypto/sha256" // go-digest's sha256 panics unless the hash is linked in
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/lockfile"
	"github.com/strata-project/strata/internal/metadata"
)

// ErrInvalidDigest is returned (wrapped) for a digest that is malformed or
// not sha256. Such a string never reaches a file path.
var ErrInvalidDigest = errors.New("invalid digest")

// ErrVerify is returned (wrapped) by Commit and Put when the written bytes
// do not match the expected digest or size.
var ErrVerify = errors.New("content verification failed")

const (
	blobsDir  = "blobs/sha256"
	ingestDir = "ingest"
	blobMode  = 0o444
	copyBuf   = 1 << 20
)

// Store is a blob store rooted at one directory. It keeps no state in
// memory, so any number of Stores (in any number of processes) may share a
// root.
type Store struct {
	root string
}

// Info describes a committed blob.
type Info struct {
	Digest  digest.Digest
	Size    int64
	ModTime time.Time
}

// New opens the store at root, creating its directories on first use.
func New(root string) (*Store, error) {
	for _, dir := range []string{blobsDir, ingestDir} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			return nil, fmt.Errorf("create content store %s: %w", root, err)
		}
	}
	return &Store{root: root}, nil
}

// Root returns the directory the store lives in.
func (s *Store) Root() string { return s.root }

// validate accepts only well-formed sha256 digests. After it passes, the
// encoded part is exactly 64 characters of [a-f0-9], so joining it to the
// blobs directory cannot name anything outside it.
func validate(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w %q: %w", ErrInvalidDigest, string(d), err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("%w %q: only sha256 is supported", ErrInvalidDigest, string(d))
	}
	return nil
}

// BlobPath returns where the blob d lives (or would live) on disk. Callers
// that hand blob files to other tools use it; writing there directly would
// break the store's invariant.
func (s *Store) BlobPath(d digest.Digest) (string, error) {
	if err := validate(d); err != nil {
		return "", err
	}
	return filepath.Join(s.root, blobsDir, d.Encoded()), nil
}

// Open opens the blob d for reading. A missing blob is metadata.ErrNotFound.
func (s *Store) Open(ctx context.Context, d digest.Digest) (*os.File, error) {
	p, err := s.BlobPath(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, blobError("open", d, err)
	}
	return f, nil
}

// ReadAll returns the whole blob d. It is meant for configs and manifests;
// it trusts the store and does not re-hash what it reads.
func (s *Store) ReadAll(ctx context.Context, d digest.Digest) ([]byte, error) {
	p, err := s.BlobPath(d)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, blobError("read", d, err)
	}
	return b, nil
}

// Info returns the size and time of blob d.
func (s *Store) Info(ctx context.Context, d digest.Digest) (Info, error) {
	p, err := s.BlobPath(d)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Info{}, blobError("stat", d, err)
	}
	return Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Walk calls fn for every committed blob, in name order. Files under blobs/
// whose names are not sha256 hex are not blobs and are skipped. An error from
// fn stops the walk and is returned as it is.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	dir := filepath.Join(s.root, blobsDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("walk content store %s: %w", s.root, err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if !e.Type().IsRegular() || validate(d) != nil {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since ReadDir
		}
		if err != nil {
			return fmt.Errorf("walk content store: stat %s: %w", d, err)
		}
		if err := fn(Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes blob d. Deleting a missing blob is metadata.ErrNotFound.
//
// The directory is not fsynced: a delete lost in a crash leaves a complete,
// valid blob that the next garbage collection finds again.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	p, err := s.BlobPath(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return blobError("delete", d, err)
	}
	return nil
}

// Put streams r into the store and commits it as Writer.Commit does. The
// reader is always consumed (up to size+1 bytes when size is known), so a
// caller teeing r elsewhere sees every byte even if the blob already exists.
func (s *Store) Put(ctx context.Context, r io.Reader, expected digest.Digest, size int64) (Info, error) {
	if expected != "" {
		if err := validate(expected); err != nil {
			return Info{}, err
		}
	}
	w, err := s.Writer()
	if err != nil {
		return Info{}, err
	}
	defer w.Close()
	if size >= 0 {
		// One byte past the expected size is enough to prove a mismatch;
		// a hostile source must not be able to fill the disk.
		r = io.LimitReader(r, size+1)
	}
	buf := make([]byte, copyBuf)
	if _, err := io.CopyBuffer(w, ctxReader{ctx, r}, buf); err != nil {
		return Info{}, fmt.Errorf("put blob %s: %w", expectedOr(expected, "(unknown digest)"), err)
	}
	return w.Commit(expected, size)
}

// PutBytes stores b under its own digest.
func (s *Store) PutBytes(ctx context.Context, b []byte) (Info, error) {
	return s.Put(ctx, bytes.NewReader(b), digest.FromBytes(b), int64(len(b)))
}

// CleanIngest removes ingest files left by writers that died, if they were
// last written more than age ago. A file whose writer is still alive (in
// this or another process) is locked and is never removed, whatever age is.
func (s *Store) CleanIngest(age time.Duration) error {
	dir := filepath.Join(s.root, ingestDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("clean ingest %s: %w", dir, err)
	}
	cutoff := time.Now().Add(-age)
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue // writers only make regular files; leave anything else alone
		}
		if err := removeStale(filepath.Join(dir, e.Name()), cutoff); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean ingest %s: %w", dir, err)
	}
	return nil
}

// removeStale removes one ingest file if it is unlocked and older than
// cutoff. The lock is taken before the check and held across the unlink, so
// a writer cannot take the file back in between.
func removeStale(path string, cutoff time.Time) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // committed or abandoned meanwhile
	}
	if err != nil {
		return err
	}
	defer f.Close()
	locked, err := lockfile.TryFd(int(f.Fd()), lockfile.Exclusive)
	if err != nil || !locked {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.ModTime().After(cutoff) {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Writer streams one new blob into ingest/, hashing as it goes.
type Writer struct {
	store    *Store
	f        *os.File
	digester digest.Digester
	size     int64
	done     bool
}

// Writer starts a new blob. The caller must Commit or Close it.
func (s *Store) Writer() (*Writer, error) {
	f, err := createLocked(filepath.Join(s.root, ingestDir))
	if err != nil {
		return nil, fmt.Errorf("start blob write: %w", err)
	}
	return &Writer{store: s, f: f, digester: digest.SHA256.Digester()}, nil
}

// createLocked creates an ingest file and takes its lock. Between create and
// lock a cleaner could remove the fresh file, so the writer checks that the
// name it holds a lock on is still its file, and starts over if not.
func createLocked(dir string) (*os.File, error) {
	for {
		f, err := os.CreateTemp(dir, "blob-")
		if err != nil {
			return nil, err
		}
		if err := lockfile.Fd(int(f.Fd()), lockfile.Exclusive); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		held, err1 := f.Stat()
		named, err2 := os.Stat(f.Name())
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return f, nil
		}
		f.Close()
		if err1 != nil {
			return nil, err1
		}
		if err2 != nil && !errors.Is(err2, fs.ErrNotExist) {
			return nil, err2
		}
	}
}

// Write appends p to the blob.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("write to a finished blob writer")
	}
	n, err := w.f.Write(p)
	w.digester.Hash().Write(p[:n])
	w.size += int64(n)
	return n, err
}

// Digest returns the digest of the bytes written so far.
func (w *Writer) Digest() digest.Digest { return w.digester.Digest() }

// Size returns the number of bytes written so far.
func (w *Writer) Size() int64 { return w.size }

// Commit makes the written bytes a visible blob. expected "" accepts
// whatever was written; size < 0 means the size is unknown. On a mismatch
// (ErrVerify) the temp file is removed and nothing becomes visible. If the
// blob already exists the write is dropped and the existing blob returned.
// The Writer is finished afterwards, whatever the outcome.
func (w *Writer) Commit(expected digest.Digest, size int64) (Info, error) {
	if w.done {
		return Info{}, errors.New("commit of a finished blob writer")
	}
	defer w.Close()
	actual := w.Digest()
	if expected != "" {
		if err := validate(expected); err != nil {
			return Info{}, err
		}
	}
	if err := check(expected, size, actual, w.size); err != nil {
		return Info{}, err
	}
	target, _ := w.store.BlobPath(actual)
	if fi, err := os.Stat(target); err == nil {
		return Info{Digest: actual, Size: fi.Size(), ModTime: fi.ModTime()}, nil
	}
	if err := w.f.Chmod(blobMode); err != nil {
		return Info{}, fmt.Errorf("commit blob %s: %w", actual, err)
	}
	if err := w.f.Sync(); err != nil {
		return Info{}, fmt.Errorf("commit blob %s: sync: %w", actual, err)
	}
	fi, err := w.f.Stat()
	if err != nil {
		return Info{}, fmt.Errorf("commit blob %s: %w", actual, err)
	}
	// A concurrent writer of the same digest may rename first; replacing
	// its file with identical bytes is harmless, and readers holding the
	// old one keep reading the same content.
	if err := os.Rename(w.f.Name(), target); err != nil {
		return Info{}, fmt.Errorf("commit blob %s: %w", actual, err)
	}
	w.done = true
	if err := syncDir(filepath.Dir(target)); err != nil {
		return Info{}, fmt.Errorf("commit blob %s: %w", actual, err)
	}
	return Info{Digest: actual, Size: w.size, ModTime: fi.ModTime()}, nil
}

// check is Commit's verdict on the bytes written, apart from any I/O.
func check(expected digest.Digest, expectedSize int64, actual digest.Digest, actualSize int64) error {
	if expectedSize >= 0 && expectedSize != actualSize {
		return fmt.Errorf("%w: blob %s: expected size %d, got %d bytes", ErrVerify, expectedOr(expected, actual), expectedSize, actualSize)
	}
	if expected != "" && expected != actual {
		return fmt.Errorf("%w: expected digest %s, got %s", ErrVerify, expected, actual)
	}
	return nil
}

func expectedOr(expected, actual digest.Digest) digest.Digest {
	if expected != "" {
		return expected
	}
	return actual
}

// Close abandons an uncommitted write and removes its temp file. After a
// Commit it does nothing.
func (w *Writer) Close() error {
	if w.f == nil {
		return nil
	}
	f := w.f
	w.f = nil
	// Remove before closing: closing drops the lock, and the file must not
	// be seen unlocked by a cleaner while it still has this name.
	var rmErr error
	if !w.done {
		w.done = true
		if err := os.Remove(f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			rmErr = fmt.Errorf("abandon blob write: %w", err)
		}
	}
	return errors.Join(rmErr, f.Close())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func blobError(op string, d digest.Digest, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s blob %s: %w", op, d, metadata.ErrNotFound)
	}
	return fmt.Errorf("%s blob %s: %w", op, d, err)
}

// ctxReader stops a long copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
