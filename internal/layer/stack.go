package layer

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/archive"
	"github.com/strata-project/strata/internal/compression"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/snapshot"
)

// StackLayer is one layer of a stack to unpack (UnpackStack).
type StackLayer struct {
	// DiffID is the digest the layer's tar must have: its image config's.
	DiffID digest.Digest
	// Open returns the layer's blob as a registry or an archive holds it,
	// compressed or not. It is called when the layer's unpack starts, with
	// a context that ends when the stack stops (a blob that waits for a
	// download must stop waiting then), and read to its end, where its
	// reader fails if the blob does not verify.
	Open func(ctx context.Context) (io.ReadCloser, error)
	// Digest, when set, is the digest the blob must have. An uncompressed
	// blob is its layer's tar, whose hash is the diffID: it is hashed once.
	Digest digest.Digest
	// Done, when set, is told the layer once it is committed.
	Done func(Layer)
}

// StackError is the failure of one layer of a stack: the first one that
// failed, which stopped the others.
type StackError struct {
	Index int // into the stack's layers
	Err   error
}

func (e *StackError) Error() string { return e.Err.Error() }
func (e *StackError) Unwrap() error { return e.Err }

// stacker is a snapshotter whose snapshot directories hold only their own
// layer's changes (overlay): a snapshot prepared on no parent can be
// committed onto any committed one.
type stacker interface {
	CommitOn(ctx context.Context, name, key, parent string) error
}

// stackJobs is how many layers of a stack unpack at once. Each is one
// stream (inflate, hash, file creation), and the small layers of an image
// are mostly waits on the disk and the metadata database: a few at once
// keep both cores busy without holding many read-ahead buffers.
const stackJobs = 3

// UnpackStack unpacks layers as a stack on the committed stack parent ("" for
// none): layer i's parent is layer i-1, the first one's is parent. A layer
// is committed only after its blob has verified and its tar has matched its
// DiffID, and only after every layer below it. It returns the layers, or
// an error: a *StackError when a layer failed.
//
// Where the snapshotter is a stacker (overlay), the layers unpack at once,
// stackJobs at a time started in stack order, each into a snapshot of its
// own made on nothing; one whose tar needs files of the layers below (a hard
// link to one, a directory its tar does not create) waits until those have
// unpacked. When all have, one sync makes them durable and they are
// committed in order onto their parents; when one fails, the others stop
// and none is committed. The copying driver needs a layer's parent whole
// before the layer can start, so there each is unpacked and committed in
// turn, and a failure leaves those below it committed (the caller's lease
// holds them; garbage once it ends).
func (s *Store) UnpackStack(ctx context.Context, parent digest.Digest, layers []StackLayer) ([]Layer, error) {
	if _, ok := s.sn.(stacker); !ok || s.sn.Whiteouts() != snapshot.WhiteoutsOverlay {
		return s.unpackInTurn(ctx, parent, layers)
	}
	return s.unpackAtOnce(ctx, parent, layers)
}

// unpackInTurn unpacks each layer on its committed parent, one after another.
func (s *Store) unpackInTurn(ctx context.Context, parent digest.Digest, layers []StackLayer) ([]Layer, error) {
	out := make([]Layer, len(layers))
	for i, sl := range layers {
		l, err := s.unpackBlobOn(ctx, parent, sl)
		if err != nil {
			return nil, &StackError{Index: i, Err: err}
		}
		out[i], parent = l, l.ChainID
		if sl.Done != nil {
			sl.Done(l)
		}
	}
	return out, nil
}

func (s *Store) unpackBlobOn(ctx context.Context, parent digest.Digest, sl StackLayer) (Layer, error) {
	tr, want, err := sl.openTar(ctx)
	if err != nil {
		return Layer{}, err
	}
	defer tr.Close()
	return s.unpackOn(ctx, parent, tr, want)
}

// openTar opens the layer's blob and the tar in it, and says what the
// tar must hash to. A compressed blob's own digest is checked at its end.
func (sl StackLayer) openTar(ctx context.Context) (io.ReadCloser, expect, error) {
	want := expect{diffID: sl.DiffID}
	blob, err := sl.Open(ctx)
	if err != nil {
		return nil, want, err
	}
	src := io.Reader(blob)
	var dr *digestReader
	if sl.Digest != "" {
		dr = &digestReader{r: blob, h: sha256.New(), want: sl.Digest}
		src = dr
	}
	dc, format, err := compression.Decompress(src)
	if err != nil {
		blob.Close()
		return nil, want, err
	}
	if dr != nil && format == compression.Uncompressed {
		dr.h, want.blob = nil, sl.Digest
	}
	return struct {
		io.Reader
		io.Closer
	}{&verifiedEnd{r: dc, src: src}, closerFunc(func() error {
		dc.Close()
		return blob.Close()
	})}, want, nil
}

// VerifyBlob reads a layer's blob to its end without unpacking it and
// checks it as UnpackStack would: the blob's digest and its tar's diffID.
func VerifyBlob(ctx context.Context, sl StackLayer) error {
	tr, want, err := sl.openTar(ctx)
	if err != nil {
		return err
	}
	defer tr.Close()
	h := sha256.New()
	if _, err := io.Copy(h, tr); err != nil {
		return err
	}
	return want.check(digest.NewDigest(digest.SHA256, h))
}

// digestReader fails the read that ends a blob whose bytes do not have
// the digest want; with no hash (h nil) it only passes them on.
type digestReader struct {
	r    io.Reader
	h    hash.Hash
	want digest.Digest
}

func (d *digestReader) Read(b []byte) (int, error) {
	n, err := d.r.Read(b)
	if d.h == nil {
		return n, err
	}
	d.h.Write(b[:n])
	if err == io.EOF {
		if got := digest.NewDigest(digest.SHA256, d.h); got != d.want {
			return n, &DigestError{Got: got, Want: d.want}
		}
	}
	return n, err
}

// stackedLayer is a layer of a stack being unpacked at once.
type stackedLayer struct {
	key, dir string
	rec      recording     // set once applied
	applied  chan struct{} // closed once rec is set
}

func (s *Store) unpackAtOnce(ctx context.Context, parent digest.Digest, layers []StackLayer) (out []Layer, err error) {
	if len(layers) == 0 {
		return nil, nil
	}
	// The lower layers of every layer end with parent's stack.
	var base []string
	if parent != "" {
		dir, err := s.sn.Dir(ctx, string(parent))
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", short(parent), err)
		}
		lowers, err := s.sn.LowerDirs(ctx, string(parent))
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", short(parent), err)
		}
		base = append([]string{dir}, lowers...)
	}
	ls := make([]stackedLayer, len(layers))
	for i := range ls {
		ls[i].applied = make(chan struct{})
	}
	// Whatever is not committed goes when the stack fails.
	defer func() {
		if err == nil {
			return
		}
		bg := context.WithoutCancel(ctx)
		for _, l := range ls {
			if l.key != "" {
				s.sn.Remove(bg, l.key)
			}
			if l.rec.tarSplit != "" {
				os.Remove(l.rec.tarSplit)
			}
		}
	}()

	// The first failure stops the rest and is the one reported.
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := func(i int, err error) { cancel(&StackError{Index: i, Err: err}) }
	var wg sync.WaitGroup
	sem := make(chan struct{}, stackJobs)
	wb := startWriteback()
	for i := range layers {
		select {
		case sem <- struct{}{}:
		case <-sctx.Done():
		}
		if sctx.Err() != nil {
			break
		}
		// Prepared in order, so every layer's lower dirs exist when it starts.
		key := s.IngestKey()
		if _, err := s.sn.Prepare(sctx, key, ""); err != nil {
			fail(i, fmt.Errorf("prepare layer: %w", err))
			break
		}
		ls[i].key = key
		dir, err := s.sn.Dir(sctx, key)
		if err != nil {
			fail(i, err)
			break
		}
		ls[i].dir = dir
		opts := archive.ApplyOptions{Whiteouts: archive.WhiteoutOverlay}
		for j := i - 1; j >= 0; j-- {
			opts.Lower = append(opts.Lower, ls[j].dir)
		}
		opts.Lower = append(opts.Lower, base...)
		opts.LowerReady = func() error {
			for j := range i {
				select {
				case <-ls[j].applied:
				case <-sctx.Done():
					return sctx.Err()
				}
			}
			return nil
		}
		wg.Go(func() {
			defer func() { <-sem }()
			rec, err := s.applyStacked(sctx, layers[i], dir, opts, wb)
			if err != nil {
				fail(i, err)
				return
			}
			ls[i].rec = rec
			close(ls[i].applied)
		})
	}
	wg.Wait()
	wb.stop()
	if err := context.Cause(sctx); err != nil {
		return nil, err
	}

	chain := parent
	for i := range ls {
		chain = image.ChildChainID(chain, ls[i].rec.diffID)
		if err := s.placeTarSplit(&ls[i].rec, chain); err != nil {
			return nil, &StackError{Index: i, Err: err}
		}
	}
	if err := syncDir(ls[0].dir); err != nil {
		return nil, &StackError{Index: 0, Err: err}
	}
	out = make([]Layer, len(layers))
	for i := range ls {
		l, err := s.commitLayer(ctx, ls[i].key, parent, ls[i].dir, ls[i].rec, true)
		// The tar-split file is renamed or removed either way; a snapshot
		// left active by a failure goes with those above it.
		ls[i].rec.tarSplit = ""
		if err != nil {
			return nil, &StackError{Index: i, Err: err}
		}
		ls[i].key = ""
		out[i], parent = l, l.ChainID
		if sd := layers[i].Done; sd != nil {
			sd(l)
		}
	}
	return out, nil
}

// applyStacked extracts one layer's blob into dir, its tar counted by wb.
func (s *Store) applyStacked(ctx context.Context, sl StackLayer, dir string, opts archive.ApplyOptions, wb *writeback) (recording, error) {
	tr, want, err := sl.openTar(ctx)
	if err != nil {
		return recording{}, err
	}
	defer tr.Close()
	return s.applyLayer(ctx, dir, wb.reader(tr, dir), opts, want)
}
