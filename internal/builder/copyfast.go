package builder

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/rootfs"
)

// The fast path of COPY for directory trees. Measured on this kind of host
// (ext4 without a journal, overlay snapshots), creating the inodes is what
// a big COPY spends its time on: ext4 skips recently deleted inodes when
// it allocates, and each skip looks up an inode table block, so a create
// costs hundreds of microseconds while the filesystem churns. That work is
// kernel CPU time spent per file, so files are written by a small pool of
// workers (in parallel on each core), with as few system calls each as the
// job allows, and, on overlay, straight into the snapshot's upper
// directory where that is the same as writing through the mount.

// writeDir gives the directory to create the entries of a fresh directory
// in: fd (an O_PATH fd of the directory at rel, made through the mount), or
// a new fd of the same directory in the upper dir, which the caller then
// owns. On overlay a directory made through the mount is the upper dir's
// directory of the same path, and nothing of the lower layers shows
// through it (it is new, or opaque), so writing into the upper dir directly
// gives the same tree while skipping overlayfs, whose files also refuse
// copy_file_range from the context. The inode numbers prove the mapping:
// overlayfs reports the upper inode's number for a directory only there.
func (c *copier) writeDir(fd int, rel string) (int, error) {
	if c.upper == nil {
		return fd, nil
	}
	up, err := c.upper.OpenDir(rootfs.Clean(rel))
	if err != nil {
		return fd, nil
	}
	var ms, us unix.Stat_t
	if unix.Fstat(fd, &ms) != nil || unix.Fstat(up, &us) != nil ||
		ms.Ino != us.Ino || !rootfs.IsDir(&ms) || !rootfs.IsDir(&us) {
		unix.Close(up)
		return fd, nil
	}
	return up, nil
}

// copyJob writes one regular file or symlink, name, into a fresh directory
// held open as dir.
type copyJob struct {
	e    entry
	dir  int
	name string
	up   *upperFile // set when dir is in the upper dir and the copy records
}

// upperFile is, for a file a tree copy writes into the upper dir, its path
// there, the sha256 of its content, and the O_PATH fd of the same
// directory in the step's previous layer (-1 for none).
type upperFile struct {
	key     string
	sum     *[sha256.Size]byte
	crc     []byte // its tar-split checksum, when the digest pass summed it
	prevDir int
}

// copyPool runs copy jobs on a few workers. The first failure (in job
// order) is the one reported, so errors do not depend on scheduling.
type copyPool struct {
	c    *copier
	jobs chan indexedJob
	wg   sync.WaitGroup
	n    int // jobs queued

	mu     sync.Mutex
	errIdx int
	err    error
}

type indexedJob struct {
	i int
	j copyJob
}

// copyWorkers is how many files are written at once: the per-file cost is
// mostly kernel CPU time, with some waiting on reads of cold sources.
func copyWorkers() int { return min(2*runtime.GOMAXPROCS(0), 8) }

func newCopyPool(c *copier) *copyPool {
	p := &copyPool{c: c, jobs: make(chan indexedJob, 256)}
	for range copyWorkers() {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

func (p *copyPool) work() {
	defer p.wg.Done()
	buf := make([]byte, 0)
	for ij := range p.jobs {
		if p.failed() {
			continue
		}
		if err := p.c.writeNew(ij.j, &buf); err != nil {
			p.mu.Lock()
			if p.err == nil || ij.i < p.errIdx {
				p.err, p.errIdx = err, ij.i
			}
			p.mu.Unlock()
		}
	}
}

func (p *copyPool) failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err != nil
}

// add queues a job; it returns false once a job has failed.
func (p *copyPool) add(j copyJob) bool {
	if p.failed() {
		return false
	}
	p.jobs <- indexedJob{i: p.n, j: j}
	p.n++
	return true
}

// wait finishes the queued jobs and returns the first error.
func (p *copyPool) wait() error {
	close(p.jobs)
	p.wg.Wait()
	return p.err
}

// writeNew creates j.name in j.dir, which does not exist, as a copy of j.e
// with its owner, mode and times.
func (c *copier) writeNew(j copyJob, buf *[]byte) error {
	mode := j.e.fi.Mode()
	uid, gid := c.owner(j.e)
	what := j.e.rel // the errors' name for the file
	if what == "" {
		what = j.name // a single file (the caller names its source)
	}
	switch {
	case mode&os.ModeSymlink != 0:
		if err := unix.Symlinkat(j.e.link, j.dir, j.name); err != nil {
			return fmt.Errorf("symlink %s: %w", what, err)
		}
		if err := unix.Fchownat(j.dir, j.name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %s: %w", what, err)
		}
		ts := timespecs(j.e.fi.ModTime())
		if err := unix.UtimesNanoAt(j.dir, j.name, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times of %s: %w", what, err)
		}
		return nil
	case mode.IsRegular():
		perm := c.perm(j.e)
		linked := c.linkPrev(j, uid, gid, perm)
		if !linked {
			if err := c.copyRegular(j.e, j, uid, gid, perm, j.e.fi.ModTime(), buf); err != nil {
				return fmt.Errorf("copy %s: %w", what, err)
			}
		}
		if j.up != nil {
			crc := j.up.crc // of the source, which the copy checked is unchanged
			if linked {
				crc = c.prev.crcs[j.up.key]
			}
			c.copied.add(j.up.key, *j.up.sum, crc)
		}
		return nil
	case mode&os.ModeNamedPipe != 0:
		// docker copies a FIFO as a FIFO (never its data).
		if err := unix.Mkfifoat(j.dir, j.name, 0o600); err != nil {
			return fmt.Errorf("mkfifo %s: %w", what, err)
		}
		if err := unix.Fchownat(j.dir, j.name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %s: %w", what, err)
		}
		if err := unix.Fchmodat(j.dir, j.name, c.perm(j.e), 0); err != nil {
			return fmt.Errorf("chmod %s: %w", what, err)
		}
		ts := timespecs(j.e.fi.ModTime())
		if err := unix.UtimesNanoAt(j.dir, j.name, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set times of %s: %w", what, err)
		}
		return nil
	}
	return fmt.Errorf("%s: cannot copy %s", what, mode.Type())
}

// perm is the mode bits a copy of e gets: the source's (setuid, setgid
// and sticky included) or --chmod's.
func (c *copier) perm(e entry) uint32 {
	if c.mode != nil {
		return *c.mode
	}
	return rootfs.FileMode(e.fi.Mode())
}

// copyRegular copies src's bytes into a new file dst and sets its owner,
// then mode (chown clears setuid bits), then times, all on the open
// descriptor. src is opened in its root (entry.open).
func (c *copier) copyRegular(src entry, j copyJob, uid, gid int, perm uint32, mtime time.Time, buf *[]byte) error {
	dst := j.e.rel
	in, err := src.open()
	if err != nil {
		return err
	}
	defer unix.Close(in)
	out, err := unix.Openat(j.dir, j.name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: dst, Err: err}
	}
	ok := false
	defer func() {
		if out >= 0 {
			unix.Close(out)
		}
		if !ok {
			unix.Unlinkat(j.dir, j.name, 0)
		}
	}()
	if err := copyFd(out, in, buf); err != nil {
		return err
	}
	if err := src.unchanged(in); err != nil {
		return err
	}
	if err := unix.Fchown(out, uid, gid); err != nil {
		return &os.PathError{Op: "chown", Path: dst, Err: err}
	}
	if err := unix.Fchmod(out, perm); err != nil {
		return &os.PathError{Op: "chmod", Path: dst, Err: err}
	}
	if err := futimens(out, mtime); err != nil {
		return &os.PathError{Op: "utimens", Path: dst, Err: err}
	}
	// Start writing a large file's data to disk now, while other files are
	// still being copied, so that the layer commit's sync has less left to
	// wait for. Not a small one's: the copying thread then allocates its
	// blocks and submits its few pages on its own, which on ext4 cost the
	// copy of 10k 20 KB files more (0.3 s) than the commit's one sync of
	// all of them together saved (0.1 s).
	if j.e.fi.Size() >= earlyWriteback {
		unix.SyncFileRange(out, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	err = unix.Close(out)
	out = -1
	if err != nil {
		return &os.PathError{Op: "close", Path: dst, Err: err}
	}
	ok = true
	return nil
}

// earlyWriteback is the size from which a copied file's writeback starts
// as soon as it is written.
const earlyWriteback = 1 << 20

// copyFd copies in to out from their current offsets to the end of in:
// in the kernel with copy_file_range where the filesystems allow it, else
// through buf.
func copyFd(out, in int, buf *[]byte) error {
	for {
		n, err := unix.CopyFileRange(in, nil, out, nil, 1<<30, 0)
		if err == nil {
			if n == 0 {
				return nil
			}
			continue
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		// EXDEV (different filesystems before Linux 5.19 or a stacking
		// filesystem), EINVAL, ENOSYS, EOPNOTSUPP...: copy by hand from
		// where the kernel stopped.
		break
	}
	if len(*buf) == 0 {
		*buf = make([]byte, 256<<10)
	}
	b := *buf
	for {
		n, err := unix.Read(in, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return nil
		}
		for w := 0; w < n; {
			m, err := unix.Write(out, b[w:n])
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return fmt.Errorf("write: %w", err)
			}
			w += m
		}
	}
}

// futimens sets the access and modification times of the open file fd
// to t (utimensat with a NULL path, which x/sys does not wrap).
func futimens(fd int, t time.Time) error {
	ts := timespecs(t)
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// timespecs is t as both access and modification time.
func timespecs(t time.Time) [2]unix.Timespec {
	ts := unix.NsecToTimespec(t.UnixNano())
	return [2]unix.Timespec{ts, ts}
}

// fileDigests returns the sha256 of each regular file among entries (zero
// for the others), reading several files at a time: hashing a big context
// is mostly per-file system calls and page cache copies, which spread
// over the cores like the copy does. With a cache (sources in a directory
// on this machine), files whose stat is as when they were last hashed are
// not read again; statTime is when their stat was taken (at the latest).
func fileDigests(entries []entry, cache *hashCache, statTime time.Time, pass hashPass) ([][sha256.Size]byte, [][]byte, error) {
	sums := make([][sha256.Size]byte, len(entries))
	var crcs [][]byte
	if pass.crc {
		crcs = make([][]byte, len(entries))
	}
	errs := make([]error, len(entries))
	next := make(chan int, 256)
	var wg sync.WaitGroup
	for range pass.numWorkers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if pass.idle != nil {
				defer pass.idle.leave(pass.idle.enter())
			}
			buf := make([]byte, 256<<10)
			h := sha256.New()
			var crc hash.Hash64
			if pass.crc {
				crc = layer.NewPayloadHash()
			}
			for i := range next {
				if pass.stop != nil && pass.stopped() {
					continue
				}
				h.Reset()
				if crc != nil {
					crc.Reset()
				}
				if errs[i] = hashFile(h, crc, &entries[i], buf, pass); errs[i] == nil {
					h.Sum(sums[i][:0])
					if crc != nil {
						crcs[i] = crc.Sum(nil)
					}
					if st, ok := entries[i].fi.Sys().(*syscall.Stat_t); ok && cache != nil {
						cache.record(entries[i].path, st, statTime, cachedSum{sum: sums[i], crc: crcOf(crcs, i)})
					}
				}
			}
		}()
	}
	for i, e := range entries {
		if !e.fi.Mode().IsRegular() {
			continue
		}
		st, _ := e.fi.Sys().(*syscall.Stat_t)
		if st != nil && cache != nil {
			if cs, ok := cache.lookup(e.path, st); ok {
				sums[i] = cs.sum
				if crcs != nil {
					crcs[i] = cs.crc
				}
				continue
			}
		}
		if pass.stop != nil {
			// Ahead of the step: only what the cache keeps is worth it.
			if pass.stopped() {
				break
			}
			if st == nil || cache == nil || !cache.keeps(st, statTime) {
				continue
			}
		}
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, nil, err
		}
	}
	return sums, crcs, nil
}

// crcOf is crcs[i], or nil when there are none.
func crcOf(crcs [][]byte, i int) []byte {
	if crcs == nil {
		return nil
	}
	return crcs[i]
}

func hashFile(h hash.Hash, crc hash.Hash64, e *entry, buf []byte, pass hashPass) error {
	fd, err := e.open()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for {
		if pass.stop != nil && pass.stopped() {
			return errStopped
		}
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", e.path, err)
		}
		if n == 0 {
			return nil
		}
		h.Write(buf[:n])
		if crc != nil {
			crc.Write(buf[:n])
		}
	}
}
