package content

import (
	"bufio"
	"bytes"
	"context"
	// With these linked, go-digest accepts sha512 and sha384 digests as
	// valid, so the store's own sha256-only rule is what the tests exercise.
	_ "crypto/sha512"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/metadata"
)

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := New(filepath.Join(t.TempDir(), "content"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// randomBytes is deterministic per seed so a child process and its parent
// can agree on content without passing it around.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// walkAll returns every committed blob.
func walkAll(t *testing.T, s *Store) []Info {
	t.Helper()
	var out []Info
	if err := s.Walk(context.Background(), func(i Info) error {
		out = append(out, i)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// ingestFiles lists what writers have left in ingest/.
func ingestFiles(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Root(), ingestDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// assertEmpty checks the store shows no blob and holds no temp file.
func assertEmpty(t *testing.T, s *Store) {
	t.Helper()
	if got := walkAll(t, s); len(got) != 0 {
		t.Errorf("store has blobs %v, want none", got)
	}
	if got := ingestFiles(t, s); len(got) != 0 {
		t.Errorf("ingest has %v, want empty", got)
	}
}

func TestPutOpenInfoWalkDelete(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	small := []byte(`{"architecture":"amd64"}`)
	big := randomBytes(1, 3<<20+17)

	si, err := s.PutBytes(ctx, small)
	if err != nil {
		t.Fatal(err)
	}
	if si.Digest != digest.FromBytes(small) || si.Size != int64(len(small)) {
		t.Fatalf("PutBytes info = %+v", si)
	}
	bi, err := s.Put(ctx, bytes.NewReader(big), digest.FromBytes(big), int64(len(big)))
	if err != nil {
		t.Fatal(err)
	}

	got, err := s.ReadAll(ctx, si.Digest)
	if err != nil || !bytes.Equal(got, small) {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	f, err := s.Open(ctx, bi.Digest)
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Open read %d bytes, %v; want the %d put", len(got), err, len(big))
	}

	info, err := s.Info(ctx, bi.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(big)) || !info.ModTime.Equal(bi.ModTime) {
		t.Errorf("Info = %+v, Put returned %+v", info, bi)
	}
	p, _ := s.BlobPath(bi.Digest)
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != blobMode {
		t.Errorf("blob file mode = %v, %v; want read-only %v", fi.Mode(), err, os.FileMode(blobMode))
	}

	walked := walkAll(t, s)
	want := map[digest.Digest]int64{si.Digest: si.Size, bi.Digest: bi.Size}
	if len(walked) != len(want) {
		t.Fatalf("Walk = %v, want %v", walked, want)
	}
	for _, w := range walked {
		if want[w.Digest] != w.Size {
			t.Errorf("Walk gave %+v, want size %d", w, want[w.Digest])
		}
	}

	if err := s.Delete(ctx, bi.Digest); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Info":    errOf(s.Info(ctx, bi.Digest)),
		"Open":    errOf(s.Open(ctx, bi.Digest)),
		"ReadAll": errOf(s.ReadAll(ctx, bi.Digest)),
		"Delete":  s.Delete(ctx, bi.Digest),
	} {
		if !errors.Is(err, metadata.ErrNotFound) || !strings.Contains(err.Error(), bi.Digest.String()) {
			t.Errorf("%s after delete: %v, want ErrNotFound naming the digest", name, err)
		}
	}
	if walked := walkAll(t, s); len(walked) != 1 || walked[0].Digest != si.Digest {
		t.Errorf("Walk after delete = %v, want only %s", walked, si.Digest)
	}
	if got := ingestFiles(t, s); len(got) != 0 {
		t.Errorf("ingest left %v", got)
	}
}

func errOf[T any](_ T, err error) error { return err }

func TestWriterHashesWhileWriting(t *testing.T) {
	s := newStore(t)
	w, err := s.Writer()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Digest() != digest.FromBytes(nil) || w.Size() != 0 {
		t.Fatalf("fresh writer: %s %d", w.Digest(), w.Size())
	}
	parts := [][]byte{[]byte("hello "), []byte("blob "), randomBytes(2, 1<<16)}
	var all []byte
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
		all = append(all, p...)
		if w.Digest() != digest.FromBytes(all) || w.Size() != int64(len(all)) {
			t.Fatalf("after %d bytes: digest %s size %d", len(all), w.Digest(), w.Size())
		}
	}
	info, err := w.Commit("", -1)
	if err != nil {
		t.Fatal(err)
	}
	if info.Digest != digest.FromBytes(all) || info.Size != int64(len(all)) {
		t.Errorf("Commit = %+v", info)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if _, err := w.Commit("", -1); err == nil {
		t.Error("second Commit succeeded")
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close after Commit: %v", err)
	}
	if got, _ := s.ReadAll(context.Background(), info.Digest); !bytes.Equal(got, all) {
		t.Error("committed bytes differ")
	}
}

func TestMismatchLeavesNothing(t *testing.T) {
	data := []byte("the real content")
	actual := digest.FromBytes(data)
	other := digest.FromBytes([]byte("something else"))
	cases := []struct {
		name     string
		expected digest.Digest
		size     int64
		want     []string // the message must name these
	}{
		{"wrong digest", other, int64(len(data)), []string{other.String(), actual.String()}},
		{"wrong digest unknown size", other, -1, []string{other.String(), actual.String()}},
		{"short size", actual, int64(len(data)) - 1, []string{"15", "16"}},
		{"long size", actual, int64(len(data)) + 5, []string{"21", "16"}},
		{"size only", "", 3, []string{"3", "16"}},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/Writer", func(t *testing.T) {
			s := newStore(t)
			w, err := s.Writer()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			_, err = w.Commit(tc.expected, tc.size)
			checkMismatch(t, s, err, tc.want, actual, tc.expected)
			if err := w.Close(); err != nil {
				t.Errorf("Close after failed Commit: %v", err)
			}
		})
		t.Run(tc.name+"/Put", func(t *testing.T) {
			s := newStore(t)
			_, err := s.Put(context.Background(), bytes.NewReader(data), tc.expected, tc.size)
			if tc.size >= 0 && tc.size < int64(len(data)) {
				// Put stops reading one byte past the size, so the actual
				// digest is of that prefix; only the sizes are comparable.
				tc.want = []string{fmt.Sprint(tc.size), fmt.Sprint(tc.size + 1)}
			}
			checkMismatch(t, s, err, tc.want, actual, tc.expected)
		})
	}
}

func checkMismatch(t *testing.T, s *Store, err error, want []string, digests ...digest.Digest) {
	t.Helper()
	if !errors.Is(err, ErrVerify) {
		t.Fatalf("err = %v, want ErrVerify", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	for _, d := range digests {
		if d == "" {
			continue
		}
		if _, err := s.Info(context.Background(), d); !errors.Is(err, metadata.ErrNotFound) {
			t.Errorf("Info(%s) = %v, want ErrNotFound", d, err)
		}
	}
	assertEmpty(t, s)
}

// endless yields bytes as if for ever and counts how many were taken. It
// gives up after a while so a Put that does not stop fails fast instead of
// filling the disk.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	if e.n > 1<<20 {
		return 0, errors.New("endless source read past 1 MiB")
	}
	e.n += int64(len(p))
	return len(p), nil
}

func TestPutStopsReadingPastSize(t *testing.T) {
	s := newStore(t)
	src := &endless{}
	_, err := s.Put(context.Background(), src, "", 1000)
	if !errors.Is(err, ErrVerify) {
		t.Fatalf("err = %v, want ErrVerify", err)
	}
	if src.n != 1001 {
		t.Errorf("Put read %d bytes of an endless source, want 1001", src.n)
	}
	assertEmpty(t, s)
}

func TestPutCancelled(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Put(ctx, &endless{}, "", -1)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertEmpty(t, s)
}

func TestPutTwiceIsNoop(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := randomBytes(3, 4096)
	first, err := s.PutBytes(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Put(ctx, bytes.NewReader(data), first.Digest, first.Size)
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Errorf("second Put = %+v, want the existing %+v", second, first)
	}
	if n := len(walkAll(t, s)); n != 1 {
		t.Errorf("%d blobs, want 1", n)
	}
	if got := ingestFiles(t, s); len(got) != 0 {
		t.Errorf("ingest left %v", got)
	}
}

func TestConcurrentPutSameContent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := randomBytes(4, 2<<20)
	want := digest.FromBytes(data)
	const writers = 16

	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for range writers {
		wg.Go(func() {
			info, err := s.Put(ctx, bytes.NewReader(data), want, int64(len(data)))
			if err == nil && (info.Digest != want || info.Size != int64(len(data))) {
				err = fmt.Errorf("Put returned %+v", info)
			}
			errs <- err
		})
		// Readers race with the renames: whenever the blob is visible it
		// must be whole.
		wg.Go(func() {
			got, err := s.ReadAll(ctx, want)
			if errors.Is(err, metadata.ErrNotFound) {
				err = nil
			} else if err == nil && !bytes.Equal(got, data) {
				err = fmt.Errorf("reader saw %d bytes that differ from the blob", len(got))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := walkAll(t, s); len(got) != 1 || got[0].Digest != want {
		t.Errorf("Walk = %v, want only %s", got, want)
	}
	if got, _ := s.ReadAll(ctx, want); !bytes.Equal(got, data) {
		t.Error("stored blob differs from what was put")
	}
	if got := ingestFiles(t, s); len(got) != 0 {
		t.Errorf("ingest left %v", got)
	}
}

func TestHostileDigests(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := New(filepath.Join(dir, "content"))
	if err != nil {
		t.Fatal(err)
	}
	// A file a traversal would reach from blobs/sha256.
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	hex := strings.Repeat("a", 64)
	hostile := []digest.Digest{
		"",
		"sha256:",
		"sha256:../../../victim",
		digest.Digest("sha256:../../../" + strings.Repeat("a", 55)),
		digest.Digest("sha256:" + strings.Repeat("a", 63) + "/"),
		digest.Digest("sha256:" + strings.ToUpper(hex)),
		digest.Digest("sha256:" + hex[:63]),
		digest.Digest("sha256:" + hex + "a"),
		digest.Digest("sha256:" + hex + "\x00"),
		digest.Digest("sha512:" + strings.Repeat("a", 128)),
		digest.Digest("sha384:" + strings.Repeat("a", 96)),
		digest.Digest("md5:" + hex[:32]),
		digest.Digest(hex),
		"/etc/passwd",
		"../victim",
	}
	for _, d := range hostile {
		ops := map[string]error{
			"Open":     errOf(s.Open(ctx, d)),
			"ReadAll":  errOf(s.ReadAll(ctx, d)),
			"Info":     errOf(s.Info(ctx, d)),
			"Delete":   s.Delete(ctx, d),
			"BlobPath": errOf(s.BlobPath(d)),
		}
		if d != "" { // "" means "accept what was written" for Put and Commit
			ops["Put"] = errOf(s.Put(ctx, strings.NewReader("x"), d, 1))
			w, err := s.Writer()
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte("x"))
			ops["Commit"] = errOf(w.Commit(d, 1))
		}
		for op, err := range ops {
			if !errors.Is(err, ErrInvalidDigest) {
				t.Errorf("%s(%q) = %v, want ErrInvalidDigest", op, d, err)
			}
		}
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep" {
		t.Errorf("victim file = %q, %v", b, err)
	}
	assertEmpty(t, s)
}

func TestWalkSkipsStrangersAndStopsOnError(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	a, _ := s.PutBytes(ctx, []byte("a"))
	b, _ := s.PutBytes(ctx, []byte("b"))
	blobs := filepath.Join(s.Root(), blobsDir)
	os.WriteFile(filepath.Join(blobs, "README"), nil, 0o644)
	os.Mkdir(filepath.Join(blobs, strings.Repeat("c", 64)), 0o755)
	got := walkAll(t, s)
	if len(got) != 2 || (got[0].Digest != a.Digest && got[0].Digest != b.Digest) {
		t.Errorf("Walk = %v, want exactly %s and %s", got, a.Digest, b.Digest)
	}

	stop := errors.New("stop")
	calls := 0
	err := s.Walk(ctx, func(Info) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("Walk returned %v after %d calls, want stop after 1", err, calls)
	}
}

func TestAbandonedWriterLeavesNothing(t *testing.T) {
	s := newStore(t)
	w, err := s.Writer()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(randomBytes(5, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if n := len(ingestFiles(t, s)); n != 1 {
		t.Fatalf("%d ingest files during the write, want 1", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, s)
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if _, err := w.Commit("", -1); err == nil {
		t.Error("Commit after Close succeeded")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCleanIngest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ingest := filepath.Join(s.Root(), ingestDir)

	live, err := s.Writer()
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	live.Write([]byte("in progress"))

	// Files no writer holds, as a crashed writer leaves them.
	old := filepath.Join(ingest, "blob-old")
	fresh := filepath.Join(ingest, "blob-fresh")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}

	if err := s.CleanIngest(time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("old orphan survived CleanIngest(1h): %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh orphan removed by CleanIngest(1h): %v", err)
	}

	if err := s.CleanIngest(0); err != nil {
		t.Fatal(err)
	}
	if got := ingestFiles(t, s); len(got) != 1 || filepath.Join(ingest, got[0]) != live.f.Name() {
		t.Fatalf("after CleanIngest(0) ingest = %v, want only the live writer's file", got)
	}
	// The live write is unharmed and still commits.
	info, err := live.Commit(digest.FromString("in progress"), 11)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := s.ReadAll(ctx, info.Digest); string(b) != "in progress" {
		t.Errorf("committed %q", b)
	}
	if got := ingestFiles(t, s); len(got) != 0 {
		t.Errorf("ingest left %v", got)
	}
}

func TestCheck(t *testing.T) {
	a, b := digest.FromString("a"), digest.FromString("b")
	cases := []struct {
		expected digest.Digest
		size     int64
		ok       bool
	}{
		{"", -1, true},
		{a, -1, true},
		{a, 1, true},
		{"", 1, true},
		{b, -1, false},
		{a, 2, false},
		{"", 0, false},
	}
	for _, tc := range cases {
		err := check(tc.expected, tc.size, a, 1)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrVerify)) {
			t.Errorf("check(%q, %d) = %v, want ok=%v", tc.expected, tc.size, err, tc.ok)
		}
	}
}

const (
	crashEnv     = "STRATA_CONTENT_CRASH_ROOT"
	crashSeed    = 42
	crashChunk   = 1 << 20
	crashWritten = 24 // chunks the child writes before it reports ready
	crashTotal   = 64 // chunks in the blob it never finishes
)

// TestCrashHelper is the child of TestCrashLeavesNothingVisible. It commits
// one small blob, writes part of a big one, reports the partial digest, and
// waits on stdin for a SIGKILL. If it is ever let go instead, it finishes
// and commits the big blob, which the parent would see as a failure.
func TestCrashHelper(t *testing.T) {
	root := os.Getenv(crashEnv)
	if root == "" {
		t.Skip("only run as the child of TestCrashLeavesNothingVisible")
	}
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutBytes(context.Background(), []byte("committed before the crash")); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(crashSeed, crashTotal*crashChunk)
	w, err := s.Writer()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:crashWritten*crashChunk]); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ready %s\n", w.Digest())
	io.ReadAll(os.Stdin)
	w.Write(data[crashWritten*crashChunk:])
	w.Commit("", -1)
}

func TestCrashLeavesNothingVisible(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "content")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+root)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	t.Cleanup(func() {
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})

	var partial digest.Digest
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
			partial = digest.Digest(d)
			break
		}
	}
	if partial == "" {
		cmd.Wait()
		waited = true
		t.Fatalf("child never became ready; stderr:\n%s", stderr.String())
	}

	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	files := ingestFiles(t, s)
	if len(files) != 1 {
		t.Fatalf("ingest during the child's write = %v, want one file", files)
	}
	tmp := filepath.Join(root, ingestDir, files[0])
	if fi, err := os.Stat(tmp); err != nil || fi.Size() != crashWritten*crashChunk {
		t.Fatalf("child's temp file: %v, %v; want %d bytes", fi, err, crashWritten*crashChunk)
	}
	// The child is alive and holds its lock: cleanup must leave it alone.
	if err := s.CleanIngest(0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("CleanIngest removed a live writer's file: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	waited = true
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL; stderr:\n%s", err, stderr.String())
	}

	full := digest.FromBytes(randomBytes(crashSeed, crashTotal*crashChunk))
	for _, d := range []digest.Digest{partial, full} {
		if _, err := s.Info(ctx, d); !errors.Is(err, metadata.ErrNotFound) {
			t.Errorf("Info(%s) after crash = %v, want ErrNotFound", d, err)
		}
	}
	committed := digest.FromString("committed before the crash")
	if got := walkAll(t, s); len(got) != 1 || got[0].Digest != committed {
		t.Errorf("Walk after crash = %v, want only %s", got, committed)
	}
	if b, err := s.ReadAll(ctx, committed); err != nil || string(b) != "committed before the crash" {
		t.Errorf("blob committed before the crash = %q, %v", b, err)
	}

	if err := s.CleanIngest(0); err != nil {
		t.Fatal(err)
	}
	if got := ingestFiles(t, s); len(got) != 0 {
		t.Errorf("ingest after CleanIngest(0) = %v, want empty", got)
	}
}

// repeating serves n bytes by cycling a random block, stamping the stream
// with a counter so each benchmark iteration is a new blob.
type repeating struct {
	block []byte
	left  int64
	off   int
}

func (r *repeating) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := copy(p, r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	r.left -= int64(n)
	return n, nil
}

func BenchmarkPut256MiB(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	const size = 256 << 20
	block := randomBytes(7, 1<<20)
	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		block[0], block[1] = byte(i), byte(i>>8)
		info, err := s.Put(ctx, &repeating{block: block, left: size}, "", size)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Delete(ctx, info.Digest); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
