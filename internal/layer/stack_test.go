package layer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/snapshot"
)

// blobs makes a stack of StackLayers of tars, each opened as a plain reader.
func blobs(tars ...[]byte) []StackLayer {
	out := make([]StackLayer, len(tars))
	for i, tb := range tars {
		out[i] = StackLayer{DiffID: digest.FromBytes(tb), Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(tb)), nil
		}}
	}
	return out
}

// gatedReader gives nothing until gate is closed, then r.
type gatedReader struct {
	gate <-chan struct{}
	r    io.Reader
}

func (g *gatedReader) Read(b []byte) (int, error) {
	<-g.gate
	return g.r.Read(b)
}

// eofReader closes eof when r ends.
type eofReader struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func (e *eofReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err == io.EOF {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}

// snapshotCount counts the snapshots of s by kind.
func snapshotCount(t *testing.T, s *Store) (active, committed int) {
	t.Helper()
	err := s.sn.Walk(context.Background(), func(i snapshot.Info) error {
		switch i.Kind {
		case snapshot.KindCommitted:
			committed++
		case snapshot.KindActive:
			active++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return active, committed
}

func layerTotal(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.Walk(context.Background(), func(Layer) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func tempFiles(t *testing.T, s *Store) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.dir, tmpDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// A stack unpacks to the layers, parents and files that unpacking its
// layers one after another gives: whiteouts, a hard link to a file of a
// lower layer and a directory a tar only implies (which takes the lower
// dir's mode) included.
func TestUnpackStackMatchesOneByOne(t *testing.T) {
	l0 := makeTar(t, dir("etc/"), file("etc/a", "a"), file("etc/gone", "g"), entry{name: "opt/", typ: '5', mode: 0o750}, file("opt/x", "x"))
	l1 := makeTar(t, hardlink("etc/b", "etc/a"), file("opt/sub/y", "y"))
	l2 := makeTar(t, dir("etc/"), whiteout("etc/.wh.gone"), file("new", "n"))
	forEachDriver(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		base := unpackAll(t, s, makeTar(t, file("base", "b")))[0]
		var done []digest.Digest
		stack := blobs(l0, l1, l2)
		for i := range stack {
			stack[i].Done = func(l Layer) { done = append(done, l.ChainID) }
		}
		got, err := s.UnpackStack(ctx, base.ChainID, stack)
		if err != nil {
			t.Fatal(err)
		}
		ref := newStore(t, "native")
		want := unpackAll(t, ref, makeTar(t, file("base", "b")), l0, l1, l2)[1:]
		for i := range want {
			if got[i].ChainID != want[i].ChainID || got[i].DiffID != want[i].DiffID || got[i].Parent != want[i].Parent || got[i].Size != want[i].Size {
				t.Errorf("layer %d: %+v, one by one %+v", i, got[i], want[i])
			}
			info, err := s.sn.Stat(ctx, string(got[i].ChainID))
			if err != nil || info.Parent != string(got[i].Parent) || info.Kind != snapshot.KindCommitted {
				t.Errorf("layer %d snapshot: %+v, %v; want committed on %s", i, info, err, got[i].Parent)
			}
		}
		if !slices.Equal(done, []digest.Digest{got[0].ChainID, got[1].ChainID, got[2].ChainID}) {
			t.Errorf("Done calls %v, want the layers in order", done)
		}
		root := mountView(t, s, got[2].ChainID)
		for name, body := range map[string]string{"base": "b", "etc/a": "a", "etc/b": "a", "opt/x": "x", "opt/sub/y": "y", "new": "n"} {
			if b, err := os.ReadFile(filepath.Join(root, name)); err != nil || string(b) != body {
				t.Errorf("%s: %q, %v; want %q", name, b, err, body)
			}
		}
		if _, err := os.Lstat(filepath.Join(root, "etc/gone")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("etc/gone after its whiteout: %v", err)
		}
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(root, "opt"), &st); err != nil || st.Mode&0o7777 != 0o750 {
			t.Errorf("opt mode %o (%v), want the lower dir's 0750", st.Mode&0o7777, err)
		}
		if a, c := snapshotCount(t, s); a != 0 || c != 4 {
			t.Errorf("%d active and %d committed snapshots, want 0 and 4", a, c)
		}
		if names := tempFiles(t, s); len(names) != 0 {
			t.Errorf("temp files left: %v", names)
		}
	})
}

// On overlay the layers of a stack unpack at once and are committed in
// order only when all have: layers above one whose blob is slow finish
// unpacking meanwhile, and a layer linking to a file of the slow one
// waits for it.
func TestUnpackStackAtOnceCommitsInOrder(t *testing.T) {
	s := newStore(t, "overlay")
	ctx := context.Background()
	l0 := makeTar(t, dir("etc/"), file("etc/a", "slow"))
	l1 := makeTar(t, dir("etc/"), hardlink("etc/b", "etc/a"))
	l2 := makeTar(t, file("top", "t"))
	gate := make(chan struct{})
	eof2 := make(chan struct{})
	stack := blobs(l0, l1, l2)
	stack[0].Open = func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(&gatedReader{gate: gate, r: bytes.NewReader(l0)}), nil
	}
	stack[2].Open = func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(&eofReader{r: bytes.NewReader(l2), eof: eof2}), nil
	}
	var mu sync.Mutex
	var order []int
	for i := range stack {
		stack[i].Done = func(Layer) {
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		}
	}
	type result struct {
		ls  []Layer
		err error
	}
	res := make(chan result, 1)
	go func() {
		ls, err := s.UnpackStack(ctx, "", stack)
		res <- result{ls, err}
	}()
	// The top layer has been read whole while the bottom one has not
	// started: nothing may be committed yet.
	select {
	case <-eof2:
	case r := <-res:
		t.Fatalf("UnpackStack returned %v before the bottom layer's blob came", r.err)
	case <-time.After(time.Minute):
		t.Fatal("timed out waiting for the top layer's blob to be read")
	}
	mu.Lock()
	if len(order) != 0 {
		t.Errorf("layers %v committed before the bottom one unpacked", order)
	}
	mu.Unlock()
	if n := layerTotal(t, s); n != 0 {
		t.Errorf("%d layers recorded before the bottom one unpacked", n)
	}
	close(gate)
	var r result
	select {
	case r = <-res:
	case <-time.After(time.Minute):
		t.Fatal("UnpackStack did not return")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !slices.Equal(order, []int{0, 1, 2}) {
		t.Errorf("committed in order %v, want 0 1 2", order)
	}
	root := mountView(t, s, r.ls[2].ChainID)
	if b, err := os.ReadFile(filepath.Join(root, "etc/b")); err != nil || string(b) != "slow" {
		t.Errorf("etc/b (a link to the slow layer's file): %q, %v", b, err)
	}
}

// errAfter gives n bytes of r, then err.
type errAfter struct {
	r   io.Reader
	n   int
	err error
}

func (e *errAfter) Read(b []byte) (int, error) {
	if e.n == 0 {
		return 0, e.err
	}
	n, err := e.r.Read(b[:min(len(b), e.n)])
	e.n -= n
	return n, err
}

// A blob that fails part way stops the layers above it (their blobs see
// the stack's context end) and leaves the store as it was on overlay; on
// the copying driver the layers below it may stay.
func TestUnpackStackFailureStopsTheRest(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		l0 := makeTar(t, file("a", "a"))
		l1 := makeTar(t, file("b", string(bytes.Repeat([]byte("b"), 64<<10))))
		l2 := makeTar(t, file("c", "c"))
		boom := errors.New("connection reset")
		atOnce := s.sn.Name() == "overlay"
		opened2 := make(chan struct{})
		stack := blobs(l0, l1, l2)
		stack[1].Open = func(context.Context) (io.ReadCloser, error) {
			r := io.Reader(&errAfter{r: bytes.NewReader(l1), n: 4096, err: boom})
			if atOnce {
				// Fails once the layer above is waiting for its download.
				r = io.MultiReader(io.LimitReader(bytes.NewReader(l1), 4096), &gatedReader{gate: opened2, r: &errAfter{err: boom}})
			}
			return io.NopCloser(r), nil
		}
		stack[2].Open = func(ctx context.Context) (io.ReadCloser, error) {
			close(opened2)
			// A download that never finishes: only the stack's end stops it.
			return io.NopCloser(readerFunc(func([]byte) (int, error) {
				<-ctx.Done()
				return 0, ctx.Err()
			})), nil
		}
		_, err := s.UnpackStack(ctx, "", stack)
		var se *StackError
		if !errors.As(err, &se) || se.Index != 1 || !errors.Is(err, boom) {
			t.Fatalf("UnpackStack: %v, want layer 1's error", err)
		}
		maxLayers := 0
		if !atOnce {
			maxLayers = 1
		}
		if n := layerTotal(t, s); n > maxLayers {
			t.Errorf("%d layers after the failure, want at most %d", n, maxLayers)
		}
		if a, c := snapshotCount(t, s); a != 0 || c > maxLayers {
			t.Errorf("%d active and %d committed snapshots after the failure", a, c)
		}
		if names := tempFiles(t, s); len(names) != 0 {
			t.Errorf("temp files left: %v", names)
		}
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

// A later layer whose tar is not the one its config names fails the stack
// before anything is committed (overlay) or before that layer is.
func TestUnpackStackBadDiffIDInALaterLayer(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		l0 := makeTar(t, file("a", "a"))
		l1 := makeTar(t, file("b", "b"))
		l2 := makeTar(t, file("c", "c"))
		stack := blobs(l0, l1, l2)
		stack[2].DiffID = digest.FromBytes(l1)
		_, err := s.UnpackStack(ctx, "", stack)
		var se *StackError
		var de *DiffIDError
		if !errors.As(err, &se) || se.Index != 2 || !errors.As(err, &de) || de.Got != digest.FromBytes(l2) {
			t.Fatalf("UnpackStack: %v, want layer 2's diffID mismatch", err)
		}
		want := 0
		if s.sn.Name() != "overlay" {
			want = 2
		}
		if n := layerTotal(t, s); n != want {
			t.Errorf("%d layers after the failure, want %d", n, want)
		}
		if a, _ := snapshotCount(t, s); a != 0 {
			t.Errorf("%d active snapshots after the failure", a)
		}
		if names := tempFiles(t, s); len(names) != 0 {
			t.Errorf("temp files left: %v", names)
		}
	})
}

// A blob's digest is checked whether the blob is compressed (its own
// hash) or not (the diffID's hash, the same bytes): a wrong one fails the
// layer before it is committed.
func TestUnpackStackBlobDigest(t *testing.T) {
	tb := makeTar(t, file("a", "a"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tb)
	zw.Close()
	for _, tc := range []struct {
		name string
		blob []byte
	}{{"uncompressed", tb}, {"gzip", gz.Bytes()}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, "overlay")
			ctx := context.Background()
			stack := blobs(tb)
			stack[0].Open = func(context.Context) (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(tc.blob)), nil
			}
			stack[0].Digest = digest.FromBytes(tc.blob[:len(tc.blob)-1])
			_, err := s.UnpackStack(ctx, "", stack)
			var de *DigestError
			if !errors.As(err, &de) || de.Want != stack[0].Digest || de.Got != digest.FromBytes(tc.blob) {
				t.Fatalf("UnpackStack of a blob under another digest: %v, want a digest error", err)
			}
			if n := layerTotal(t, s); n != 0 {
				t.Errorf("%d layers after the failure", n)
			}
			stack[0].Digest = digest.FromBytes(tc.blob)
			if _, err := s.UnpackStack(ctx, "", stack); err != nil {
				t.Fatalf("UnpackStack of a blob under its digest: %v", err)
			}
		})
	}
}
