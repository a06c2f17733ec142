package builder

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A build context's file digests, kept between builds so that a rebuild
// reads only the files that changed: a cached rebuild of a 200 MB context
// otherwise spends most of its time hashing it again. A digest is reused
// only while everything stat says about the file is as it was when it was
// hashed (device, inode, size, mode, owner, and modification and change
// times to the nanosecond). The change time cannot be set from user space,
// so any write, rename over, chmod or chown since shows.
//
// The one way a write could hide is within the filesystem's timestamp
// granularity (a clock tick) of the stat that was cached, as git's "racily
// clean" index entries: so a digest is only remembered for a file whose
// change time is at least racyWindow older than when it was stat'ed; a file
// changed just before a build is hashed again by the next one.
const racyWindow = 2 * time.Second

// hashCacheDir holds one cache file per context directory, named by the
// digest of the directory's path.
const hashCacheDir = "build/contexts"

// fileStamp is what stat says of a file, as far as its content goes.
type fileStamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // ns
	mode         uint32
	uid, gid     uint32
}

func stampOf(st *syscall.Stat_t) fileStamp {
	return fileStamp{
		dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
		mode: st.Mode, uid: st.Uid, gid: st.Gid,
	}
}

type cachedSum struct {
	stamp fileStamp
	sum   [sha256.Size]byte
	// crc is the tar-split checksum of the content, when this build's
	// digest pass summed it (never saved: a COPY's commit summing it
	// again costs a fraction of what hashing the context does).
	crc []byte
}

// hashCache is one context directory's digests: those the last build
// left (old) and those this build saw (seen), which replace them when the
// build saves the cache, so files gone from the context drop out.
type hashCache struct {
	path string
	// old and seen are keyed by the file's path in the context directory
	// (entry.path).
	old map[string]cachedSum

	mu    sync.Mutex
	seen  map[string]cachedSum
	dirty bool
}

// contextHashes returns the digest cache of the directory dir on this
// machine, loading it on first use in this build.
func (b *builder) contextHashes(dir string) *hashCache {
	b.hashMu.Lock()
	defer b.hashMu.Unlock()
	if c, ok := b.hashCaches[dir]; ok {
		return c
	}
	if b.hashCaches == nil {
		b.hashCaches = map[string]*hashCache{}
	}
	name := sha256.Sum256([]byte(dir))
	c := loadHashCache(filepath.Join(b.s.Root(), hashCacheDir, fmt.Sprintf("%x", name[:16])))
	b.hashCaches[dir] = c
	return c
}

// saveContextHashes writes back the caches this build changed. A build
// that succeeded hashed every source it reads, so what it saw replaces the
// cache (files gone from the context drop out); a failed one may have
// stopped before some, so what it saw is added. A cache is only an
// optimisation: failing to write one costs the next build time, not
// correctness, so errors are not the build's.
func (b *builder) saveContextHashes(succeeded bool) {
	b.hashMu.Lock()
	defer b.hashMu.Unlock()
	for _, c := range b.hashCaches {
		c.save(b.s.Owner(), succeeded)
	}
}

// lookup returns the cached digest of the file at p (in the context
// directory) whose stat is st.
func (c *hashCache) lookup(p string, st *syscall.Stat_t) (cachedSum, bool) {
	stamp := stampOf(st)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.seen[p]; ok && e.stamp == stamp {
		return e, true // hashed earlier in this build (prehash.go)
	}
	e, ok := c.old[p]
	if !ok || e.stamp != stamp {
		return cachedSum{}, false
	}
	c.seen[p] = e
	return e, true
}

// keeps says whether record would keep the digest of a file whose stat st
// was taken at statTime.
func (c *hashCache) keeps(st *syscall.Stat_t, statTime time.Time) bool {
	return statTime.UnixNano()-st.Ctim.Nano() >= int64(racyWindow)
}

// record remembers the digest (and checksum) of the file at p, whose stat
// st was taken at statTime (before it was read), unless it changed too
// recently to trust its times.
func (c *hashCache) record(p string, st *syscall.Stat_t, statTime time.Time, e cachedSum) {
	if !c.keeps(st, statTime) {
		return
	}
	e.stamp = stampOf(st)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty = true
	c.seen[p] = e
}

// The file: a magic line, then per file its path and stamp as varints and
// its digest, and a CRC-32 of everything before it, so a torn or foreign
// file is ignored as a whole.
const hashCacheMagic = "strata context digests v1\n"

func loadHashCache(path string) *hashCache {
	c := &hashCache{path: path, old: map[string]cachedSum{}, seen: map[string]cachedSum{}}
	data, err := os.ReadFile(path)
	if err != nil {
		return c
	}
	if old, err := decodeHashCache(data); err == nil {
		c.old = old
	}
	return c
}

var errBadHashCache = errors.New("bad context digest cache")

func decodeHashCache(data []byte) (map[string]cachedSum, error) {
	if len(data) < len(hashCacheMagic)+4 || !strings.HasPrefix(string(data), hashCacheMagic) {
		return nil, errBadHashCache
	}
	body, tail := data[:len(data)-4], data[len(data)-4:]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(tail) {
		return nil, errBadHashCache
	}
	b := body[len(hashCacheMagic):]
	out := make(map[string]cachedSum, len(b)/64) // a record is ~60-100 bytes
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	for len(b) > 0 {
		n, ok := uvarint()
		if !ok || n > uint64(len(b)) {
			return nil, errBadHashCache
		}
		name := string(b[:n])
		b = b[n:]
		var v [8]uint64
		for i := range v {
			if v[i], ok = uvarint(); !ok {
				return nil, errBadHashCache
			}
		}
		var e cachedSum
		e.stamp = fileStamp{dev: v[0], ino: v[1], size: int64(v[2]), mtime: int64(v[3]), ctime: int64(v[4]),
			mode: uint32(v[5]), uid: uint32(v[6]), gid: uint32(v[7])}
		if len(b) < len(e.sum) {
			return nil, errBadHashCache
		}
		b = b[copy(e.sum[:], b):]
		out[name] = e
	}
	return out, nil
}

func encodeHashCache(w io.Writer, m map[string]cachedSum) error {
	crc := crc32.NewIEEE()
	bw := bufio.NewWriter(io.MultiWriter(w, crc))
	bw.WriteString(hashCacheMagic)
	var buf [binary.MaxVarintLen64]byte
	put := func(v uint64) { bw.Write(buf[:binary.PutUvarint(buf[:], v)]) }
	for name, e := range m {
		put(uint64(len(name)))
		bw.WriteString(name)
		s := e.stamp
		for _, v := range []uint64{s.dev, s.ino, uint64(s.size), uint64(s.mtime), uint64(s.ctime), uint64(s.mode), uint64(s.uid), uint64(s.gid)} {
			put(v)
		}
		bw.Write(e.sum[:])
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	var tail [4]byte
	binary.LittleEndian.PutUint32(tail[:], crc.Sum32())
	_, err := w.Write(tail[:])
	return err
}

// save writes what this build saw (replacing what it loaded, or merged
// into it), when that differs from what it loaded. The temp file carries
// the writer's owner ID so that one a killed build left is recognised
// (sweepHashCacheTemps).
func (c *hashCache) save(owner string, replace bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty && (!replace || len(c.seen) == len(c.old)) {
		return
	}
	if !replace {
		for p, e := range c.old {
			if _, ok := c.seen[p]; !ok {
				c.seen[p] = e
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(c.path), ".tmp-"+owner+"-*")
	if err != nil {
		return
	}
	err = encodeHashCache(f, c.seen)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
}

// sweepHashCacheTemps removes cache temp files whose writer is gone.
func sweepHashCacheTemps(root string, alive func(owner string) bool) {
	dir := filepath.Join(root, hashCacheDir)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), ".tmp-")
		if !ok {
			continue
		}
		if owner, _, ok := strings.Cut(rest, "-"); ok && !alive(owner) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
