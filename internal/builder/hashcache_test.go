package builder

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// digestWith digests the context source "d" of dir with cache c, as if
// its stat had been taken at statTime.
func digestWith(t *testing.T, dir string, c *hashCache, statTime time.Time) string {
	t.Helper()
	m, err := walkSource(testRoot(t, dir), "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	m.walked = statTime
	h := sha256.New()
	if err := digestMatchInto(h, &m, false, false, "d", c, hashPass{}); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func TestContextHashCache(t *testing.T) {
	dir := t.TempDir()
	cachePath := filepath.Join(t.TempDir(), "cache")
	os.MkdirAll(filepath.Join(dir, "d", "sub"), 0o755)
	f := filepath.Join(dir, "d", "sub", "f")
	os.WriteFile(f, []byte("one"), 0o644)
	os.WriteFile(filepath.Join(dir, "d", "g"), []byte("two"), 0o644)
	load := func() *hashCache {
		c := loadHashCache(cachePath)
		return c
	}
	later := time.Now().Add(time.Hour) // the files' times are long past by then

	c := load()
	first := digestWith(t, dir, c, later)
	c.save("owner", true)
	c = load()
	if len(c.old) != 2 {
		t.Fatalf("cache holds %d files, want 2", len(c.old))
	}

	// The cache is what a rebuild reads: a wrong digest in it for a file
	// whose stat is unchanged shows in the result.
	e := c.old["d/sub/f"]
	e.sum[0] ^= 0xff
	c.old["d/sub/f"] = e
	if digestWith(t, dir, c, later) == first {
		t.Fatal("the cached digest was not used")
	}

	// A same-size rewrite with the old modification time put back still
	// changes the change time: the file is read again.
	fi, _ := os.Stat(f)
	os.WriteFile(f, []byte("ONE"), 0o644)
	os.Chtimes(f, fi.ModTime(), fi.ModTime())
	c = load()
	changed := digestWith(t, dir, c, later)
	if changed == first {
		t.Fatal("a rewritten file kept its cached digest")
	}
	if digestWith(t, dir, nil, later) != changed {
		t.Fatal("cached and uncached digests differ")
	}

	// Files changed within the racy window of their stat (all of them,
	// here) are not remembered.
	racy := loadHashCache(filepath.Join(t.TempDir(), "racy"))
	digestWith(t, dir, racy, time.Now())
	racy.save("owner", true)
	if racy = loadHashCache(racy.path); len(racy.old) != 0 {
		t.Fatalf("racily changed files were cached: %v", racy.old)
	}

	// A torn or foreign file is ignored as a whole.
	c = load()
	digestWith(t, dir, c, later)
	c.save("owner", true)
	data, _ := os.ReadFile(cachePath)
	os.WriteFile(cachePath, data[:len(data)-1], 0o600)
	if c = load(); len(c.old) != 0 {
		t.Fatal("a torn cache file was used")
	}
}

func TestContextHashCacheFailedBuildMerges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache")
	c := loadHashCache(path)
	c.seen["a"] = cachedSum{sum: [32]byte{1}}
	c.dirty = true
	c.save("owner", true)
	c = loadHashCache(path)
	c.seen["b"] = cachedSum{sum: [32]byte{2}}
	c.dirty = true
	c.save("owner", false) // a failed build keeps what it did not see
	if c = loadHashCache(path); len(c.old) != 2 {
		t.Fatalf("after a failed build the cache holds %d files, want 2", len(c.old))
	}
	c.seen["b"] = c.old["b"]
	c.save("owner", true) // a successful one drops files it did not see
	if c = loadHashCache(path); len(c.old) != 1 {
		t.Fatalf("after a successful build the cache holds %d files, want 1", len(c.old))
	}
}

// A build whose files are all too recent to remember (a context just
// unpacked from stdin, in a temp dir no later build names) leaves no cache
// file behind: one per such build would pile up in the store.
func TestContextHashCacheNothingToRemember(t *testing.T) {
	dir := t.TempDir()
	cachePath := filepath.Join(t.TempDir(), "cache")
	os.MkdirAll(filepath.Join(dir, "d"), 0o755)
	os.WriteFile(filepath.Join(dir, "d", "f"), []byte("one"), 0o644)
	c := loadHashCache(cachePath)
	digestWith(t, dir, c, time.Now())
	c.save("owner", true)
	if _, err := os.Stat(cachePath); !os.IsNotExist(err) {
		t.Fatalf("a cache file was written with nothing in it (%v)", err)
	}
}

// The source walk lists a tree parents first with names sorted whatever
// walks ran on other cores: the same list as a plain sequential walk.
func TestWalkSourceOrder(t *testing.T) {
	dir := t.TempDir()
	for i := range 12 {
		for j := range 7 {
			sub := filepath.Join(dir, "d", fmt.Sprintf("a%02d", i), fmt.Sprintf("b%d", j))
			os.MkdirAll(sub, 0o755)
			for k := range 5 {
				os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d", k)), []byte("x"), 0o644)
			}
		}
		os.WriteFile(filepath.Join(dir, "d", fmt.Sprintf("a%02d.txt", i)), nil, 0o644)
		os.Symlink("gone", filepath.Join(dir, "d", fmt.Sprintf("a%02d", i), "link"))
	}
	var want []string
	filepath.WalkDir(filepath.Join(dir, "d"), func(p string, _ os.DirEntry, err error) error {
		rel, _ := filepath.Rel(filepath.Join(dir, "d"), p)
		if rel == "." {
			rel = ""
		}
		want = append(want, rel)
		return err
	})
	for range 5 {
		m, err := walkSource(testRoot(t, dir), "d", nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range m.entries {
			got = append(got, e.rel)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("walk order:\n got %v\nwant %v", got, want)
		}
	}
}

// digestLine writes the bytes fmt wrote before it (the cache keys of
// existing stores stay valid).
func TestDigestLineIsTheFmtLine(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "d", "sub dir"), 0o750)
	os.WriteFile(filepath.Join(dir, "d", "sub dir", "é\"q\x01"), []byte("content"), 0o4755)
	os.Symlink("../t\target", filepath.Join(dir, "d", "link"))
	os.Chown(filepath.Join(dir, "d", "link"), 12, 34)
	m, err := walkSource(testRoot(t, dir), "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, owners := range []bool{false, true} {
		if err := digestMatchInto(io.Discard, &m, owners, true, "d", nil, hashPass{}); err != nil {
			t.Fatal(err)
		}
		for i, e := range m.entries {
			want := fmt.Sprintf("%q %o %q", e.rel, uint32(e.fi.Mode()), e.link)
			if owners {
				st := e.fi.Sys().(*syscall.Stat_t)
				want += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
			}
			if e.fi.Mode().IsRegular() {
				want += fmt.Sprintf(" %d %x", e.fi.Size(), m.sums[i][:])
			}
			if got := string(m.digestLine(nil, i)); got != want+"\n" {
				t.Errorf("line %q, want %q", got, want+"\n")
			}
		}
	}
}

// A prehash (prehash.go) leaves its digests in the build's cache, where the
// step's own pass finds them by stat; a file written since the prehash is
// read again, so the step's digest is of what the file holds then.
func TestPrehashDigestsReusedUnlessChanged(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "d"), 0o755)
	f := filepath.Join(dir, "d", "f")
	os.WriteFile(f, []byte("one"), 0o644)
	os.WriteFile(filepath.Join(dir, "d", "g"), []byte("two"), 0o644)
	later := time.Now().Add(time.Hour)
	pass := func(c *hashCache, p hashPass) {
		m, err := walkSource(testRoot(t, dir), "d", nil)
		if err != nil {
			t.Fatal(err)
		}
		m.walked = later
		if err := digestMatchInto(io.Discard, &m, false, true, "d", c, p); err != nil {
			t.Fatal(err)
		}
	}
	ahead := func(c *hashCache) { pass(c, hashPass{workers: 1, stop: make(chan struct{})}) }

	c := loadHashCache(filepath.Join(t.TempDir(), "cache"))
	ahead(c)
	if len(c.seen) != 2 {
		t.Fatalf("the prehash left %d digests, want 2", len(c.seen))
	}
	// The step's pass uses them: a wrong one shows in its digest.
	e := c.seen["d/f"]
	e.sum[0] ^= 0xff
	c.seen["d/f"] = e
	if digestWith(t, dir, c, later) == digestWith(t, dir, nil, later) {
		t.Fatal("the step did not use the prehash's digest")
	}

	// Written after the prehash: the step reads it again.
	c = loadHashCache(filepath.Join(t.TempDir(), "cache"))
	ahead(c)
	os.WriteFile(f, []byte("ONE"), 0o644)
	if got, want := digestWith(t, dir, c, later), digestWith(t, dir, nil, later); got != want {
		t.Fatal("a file written after the prehash kept the prehash's digest")
	}

	// A stopped prehash hashes nothing more; one of files too recent to
	// remember hashes nothing at all (the step would read them again).
	c = loadHashCache(filepath.Join(t.TempDir(), "cache"))
	stop := make(chan struct{})
	close(stop)
	pass(c, hashPass{workers: 1, stop: stop})
	if len(c.seen) != 0 {
		t.Fatalf("a stopped prehash hashed %d files", len(c.seen))
	}
	c = loadHashCache(filepath.Join(t.TempDir(), "cache"))
	m, err := walkSource(testRoot(t, dir), "d", nil)
	if err != nil {
		t.Fatal(err)
	}
	m.walked = time.Now()
	sums, _, err := fileDigests(m.entries, c, m.walked, hashPass{workers: 1, stop: make(chan struct{})})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range sums {
		if s != ([sha256.Size]byte{}) {
			t.Fatalf("the prehash read %s, too recent to remember", m.entries[i].rel)
		}
	}
}

// A prehash worker runs at idle priority until its pass is told to stop;
// from then on at normal priority, so that it sees the stop at once on a
// busy machine.
func TestIdleThreadsWake(t *testing.T) {
	policy := func(tid int) uint32 {
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			t.Fatal(err)
		}
		return attr.Policy
	}
	var th idleThreads
	entered, woken, exited := make(chan int), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tid := th.enter()
		defer th.leave(tid)
		entered <- tid
		<-woken
	}()
	tid := <-entered
	if p := policy(tid); p != unix.SCHED_IDLE {
		t.Errorf("worker thread policy %d, want SCHED_IDLE", p)
	}
	th.wake()
	if p := policy(tid); p != unix.SCHED_NORMAL {
		t.Errorf("woken worker thread policy %d, want SCHED_NORMAL", p)
	}
	close(woken)
	<-exited
	// A worker that starts after the wake stays at normal priority.
	hold := make(chan struct{})
	defer close(hold)
	go func() {
		tid := th.enter()
		defer th.leave(tid)
		entered <- tid
		<-hold
	}()
	if p := policy(<-entered); p != unix.SCHED_NORMAL {
		t.Errorf("worker started after the wake has policy %d", p)
	}
}
