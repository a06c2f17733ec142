package builder

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/archive"
	"github.com/strata-project/strata/internal/compression"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/rootfs"
	"github.com/strata-project/strata/internal/snapshot"
)

// heredocSources writes `COPY <<EOF dest` bodies to files and selects them.
func (b *builder) heredocSources(sd instructions.SourcesAndDest) (*sources, error) {
	dir := b.stepDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	src := &sources{release: func() { os.RemoveAll(dir) }}
	root, err := holdRoot(src, dir)
	if err != nil {
		src.close()
		return nil, err
	}
	h := sha256.New()
	for _, sc := range sd.SourceContents {
		name := path.Base("/" + sc.Path)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(sc.Data), 0o644); err != nil {
			src.close()
			return nil, err
		}
		m, err := walkSource(root, name, nil)
		if err != nil {
			src.close()
			return nil, err
		}
		if err := digestMatch(h, m, false); err != nil {
			src.close()
			return nil, err
		}
		src.matches = append(src.matches, m)
	}
	src.digest = digest.NewDigest(digest.SHA256, h)
	return src, nil
}

// owner is who copied files belong to.
type owner struct {
	set      bool // --chown given
	uid, gid int
}

// parseChown resolves --chown against the image's own passwd and group
// files. A user without a group gets the user's number as group, as docker
// documents.
func parseChown(rootfs, spec string) (owner, error) {
	if spec == "" {
		return owner{}, nil
	}
	uid, gid, _, err := oci.ResolveUser(rootfs, spec)
	if err != nil {
		return owner{}, err
	}
	if !strings.Contains(spec, ":") {
		gid = uid
	}
	return owner{set: true, uid: int(uid), gid: int(gid)}, nil
}

// copyMode is how a COPY/ADD writes.
type copyMode struct {
	add     bool // ADD: local archives are unpacked
	parents bool // --parents: sources keep their paths
	link    bool // --link: written into an empty filesystem (see link.go)
}

// copy runs COPY or ADD: the selected sources are written into the step's
// snapshot, mounted, so paths resolve through the lower layers' symlinks
// as in docker (on overlay, files below directories the copy creates go
// straight to the upper dir: see copyfast.go). With --link they are written into an empty snapshot whose
// layer is then laid on the parent.
func (b *builder) copy(ctx context.Context, st *stageState, loc []parser.Range, sd instructions.SourcesAndDest, chown, chmod string, src *sources, cm copyMode) (*layer.Layer, error) {
	name := "COPY"
	if cm.add {
		name = "ADD"
	}
	dest := sd.DestPath
	destIsDir := strings.HasSuffix(dest, "/") || strings.HasSuffix(dest, "/.") || dest == "." || dest == ".."
	dest = image.JoinWorkdir(st.cfg.Config.WorkingDir, dest)
	if dest == "/" || cm.parents {
		destIsDir = true
	}
	if len(src.matches) > 1 && !destIsDir {
		return nil, b.df.at(loc, "When using %s with more than one source file, the destination must be a directory and end with a /", name)
	}
	mode, err := parseChmod(chmod)
	if err != nil {
		return nil, b.df.at(loc, "%s --chmod: %v", name, err)
	}
	parent := st.chainID()
	if cm.link {
		parent = ""
	}
	w, err := b.prepare(ctx, parent)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			b.discard(ctx, w)
		}
	}()
	own, err := parseChown(w.rootfs, chown)
	if err != nil {
		return nil, b.df.at(loc, "%s --chown=%s: %v", name, chown, err)
	}
	upper := ""
	if b.s.Snapshots().Whiteouts() == snapshot.WhiteoutsOverlay {
		if upper, err = b.s.Snapshots().Dir(ctx, w.key); err != nil {
			return nil, err
		}
	}
	c, err := newCopier(w.rootfs, upper)
	if err != nil {
		return nil, err
	}
	defer c.close()
	c.own, c.mode, c.keepOwners = own, mode, src.fromImage
	// Only a single source is recorded: with more, a later one may
	// replace what an earlier one wrote at the same path.
	if c.upper != nil && !cm.link && len(src.matches) == 1 {
		c.recording = true
		c.copied.m = make(map[string]*copiedFile, len(src.matches[0].entries))
		if !b.opts.NoCache {
			c.prev = b.openPrevLayer(ctx, src.place)
		}
	}
	for _, m := range src.matches {
		var err error
		switch {
		case m.keep != "" && m.isDir:
			err = c.tree(m, path.Join(dest, m.keep))
		case m.keep != "":
			err = c.file(m.entries[0], path.Join(dest, m.keep))
		case m.isDir:
			err = c.tree(m, dest)
		case cm.add && !m.remote && isArchive(&m.entries[0]):
			err = c.extract(ctx, &m.entries[0], dest)
		default:
			target := dest
			if destIsDir || c.isDir(dest) {
				target = path.Join(dest, m.name)
			}
			err = c.file(m.entries[0], target)
		}
		if err != nil {
			return nil, b.df.at(loc, "%s %s: %v", name, m.name, err)
		}
	}
	var l *layer.Layer
	if cm.link {
		l, err = b.commitOnto(ctx, w, st.chainID())
	} else {
		l, err = b.commitSums(ctx, w, c.copied.payloadSums())
	}
	if err != nil {
		return nil, err
	}
	ok = true
	if c.recording {
		b.saveCopied(src.place, l.ChainID, c)
	}
	return l, nil
}

// recordsCopy says whether the COPY or ADD c most likely records what it
// copies (see copy: one source, no --link), so that the digest pass sums
// the files' tar-split checksums for its commit too.
func recordsCopy(c instructions.Command) bool {
	var sd instructions.SourcesAndDest
	link := false
	switch c := c.(type) {
	case *instructions.CopyCommand:
		sd, link = c.SourcesAndDest, c.Link
	case *instructions.AddCommand:
		sd, link = c.SourcesAndDest, c.Link
	default:
		return false
	}
	return !link && len(sd.SourcePaths) == 1 && !hasMeta(sd.SourcePaths[0])
}

// copier writes entries into a root filesystem, only through a
// rootfs.Root: every path is resolved inside the root when it is opened.
type copier struct {
	root *rootfs.Root
	// upper, when set, is the overlay upper dir of the snapshot mounted
	// at root: files below directories the copy creates go there directly
	// (see writeDir).
	upper      *rootfs.Root
	own        owner
	mode       *uint32
	keepOwners bool
	// recording says the files written into the upper dir are recorded
	// (copied) for the next build of the step, which links from prev,
	// this step's previous layer (nil for none): see reuse.go.
	recording bool
	copied    copiedFiles
	prev      *prevLayer
}

// newCopier opens the root filesystem at root (and the overlay upper dir
// of its snapshot, when upper is not "") for a copy.
func newCopier(root, upper string) (*copier, error) {
	r, err := rootfs.Open(root)
	if err != nil {
		return nil, err
	}
	c := &copier{root: r}
	if upper != "" {
		if c.upper, err = rootfs.Open(upper); err != nil {
			r.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *copier) close() {
	c.prev.close()
	c.root.Close()
	if c.upper != nil {
		c.upper.Close()
	}
}

func (c *copier) isDir(p string) bool {
	st, err := c.root.Stat(p)
	return err == nil && rootfs.IsDir(&st)
}

// mkdirAll makes directory p and missing parents (0755, owned by --chown's
// user or root) and returns an O_PATH fd of it that the caller owns.
func (c *copier) mkdirAll(p string) (int, error) {
	fd, err := c.root.MkdirAllMode(p, 0o755, c.own.uid, c.own.gid)
	if errors.Is(err, unix.ENOTDIR) {
		return -1, fmt.Errorf("%s is not a directory", p)
	}
	return fd, err
}

// tree copies a directory's contents (not the directory itself) to dest.
// Entries come parents first; below a directory this copy created, names
// cannot exist yet, so they are written without looking (by the copy
// pool), and everything else goes through file, which merges with or
// replaces what the image has. Fresh directories are held as fds, so
// nothing is resolved by path twice.
func (c *copier) tree(m match, dest string) error {
	existed := c.isDir(dest)
	destFd, err := c.mkdirAll(dest)
	if err != nil {
		return err
	}
	// fresh maps a directory (relative to dest) this copy made to the fd
	// of the directory its entries are created in; upperDirs those of
	// them that are in the upper dir to the fd of the same directory in
	// the previous layer (-1 for none), to link unchanged files from.
	fresh := map[string]int{}
	upperDirs := map[string]int{}
	fds := []int{destFd}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	addFresh := func(rel string, fd int, at string) error {
		w, err := c.writeDir(fd, at)
		if err != nil {
			return err
		}
		if w != fd {
			fds = append(fds, w)
			prev := c.prev.openDir(rootfs.Clean(at))
			if prev >= 0 {
				fds = append(fds, prev)
			}
			upperDirs[rel] = prev
		}
		fresh[rel] = w
		return nil
	}
	if !existed {
		if err := addFresh("", destFd, dest); err != nil {
			return err
		}
	}
	pool := newCopyPool(c)
	var dirs []entry
	for i, e := range m.entries[1:] {
		parent, name := path.Split(e.rel)
		parent = strings.TrimSuffix(parent, "/")
		at, isFresh := fresh[parent]
		prevAt, inUpper := upperDirs[parent]
		switch {
		case isFresh && e.fi.IsDir():
			fd, err := c.mkdirAt(at, name, e)
			if err != nil {
				pool.wait()
				return err
			}
			fds = append(fds, fd)
			fresh[e.rel] = fd
			if inUpper {
				upperDirs[e.rel] = -1
				if prevAt >= 0 {
					if pfd, err := unix.Openat(prevAt, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0); err == nil {
						fds = append(fds, pfd)
						upperDirs[e.rel] = pfd
					}
				}
			}
		case isFresh:
			j := copyJob{e: e, dir: at, name: name}
			if inUpper && c.recording && m.sums != nil && e.fi.Mode().IsRegular() {
				j.up = &upperFile{key: rootfs.Clean(path.Join(dest, e.rel)), sum: &m.sums[i+1], crc: crcOf(m.crcs, i+1), prevDir: prevAt}
			}
			if !pool.add(j) {
				return pool.wait()
			}
		default:
			made, err := c.fileAt(e, path.Join(dest, e.rel))
			if err != nil {
				pool.wait()
				return err
			}
			if made >= 0 {
				fds = append(fds, made)
				if err := addFresh(e.rel, made, path.Join(dest, e.rel)); err != nil {
					pool.wait()
					return err
				}
			}
		}
		if e.fi.IsDir() {
			dirs = append(dirs, e)
		}
	}
	if err := pool.wait(); err != nil {
		return err
	}
	// Directory times last: writing children changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		mt := dirs[i].fi.ModTime()
		if err := c.root.Lutimes(path.Join(dest, dirs[i].rel), mt, mt); err != nil {
			return err
		}
	}
	if !existed {
		top := m.entries[0]
		if err := c.metaFd(destFd, top); err != nil {
			return err
		}
		mt := top.fi.ModTime()
		return c.root.Lutimes(dest, mt, mt)
	}
	return nil
}

// file writes one entry (file, directory, symlink) at target.
func (c *copier) file(e entry, target string) error {
	fd, err := c.fileAt(e, target)
	if fd >= 0 {
		unix.Close(fd)
	}
	return err
}

// fileAt is file, and returns an O_PATH fd (the caller's) of the directory
// it created when e is a directory not merged into an existing one (-1
// otherwise).
func (c *copier) fileAt(e entry, target string) (int, error) {
	target = rootfs.Clean(target)
	pfd, err := c.mkdirAll(path.Dir(target))
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	base := path.Base(target)
	var old unix.Stat_t
	exists := unix.Fstatat(pfd, base, &old, unix.AT_SYMLINK_NOFOLLOW) == nil
	mode := e.fi.Mode()
	if exists && old.Mode&unix.S_IFMT == unix.S_IFLNK && !mode.IsDir() {
		// As docker: a file copied onto a symlink in the image is written
		// where the link points, resolved in the root, even when that does
		// not exist yet; the link stays. (A link to a directory is one
		// the caller already copied into.)
		// The kernel's resolution (ELOOP past 40 links) bounds the chain.
		if st, err := c.root.Stat(target); errors.Is(err, unix.ENOENT) || (err == nil && !rootfs.IsDir(&st)) {
			if link, err := readlinkAt(pfd, base); err == nil {
				if !path.IsAbs(link) {
					link = path.Join(path.Dir(target), link)
				}
				return c.fileAt(e, link)
			}
		}
	}
	switch {
	case mode.IsDir():
		if exists && rootfs.IsDir(&old) {
			return -1, nil // merge into the existing directory
		}
		if exists {
			if err := unix.Unlinkat(pfd, base, 0); err != nil {
				return -1, &os.PathError{Op: "remove", Path: target, Err: err}
			}
		}
		return c.mkdirAt(pfd, base, e)
	case mode&os.ModeSymlink != 0, mode.IsRegular(), mode&os.ModeNamedPipe != 0:
		if exists {
			if err := rootfs.RemoveAllAt(pfd, base); err != nil {
				return -1, &os.PathError{Op: "remove", Path: target, Err: err}
			}
		}
		var buf []byte
		return -1, c.writeNew(copyJob{e: e, dir: pfd, name: base}, &buf)
	}
	return -1, fmt.Errorf("%s: cannot copy %s", e.rel, mode.Type())
}

// readlinkAt reads the symlink name in dir.
func readlinkAt(dir int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// mkdirAt creates directory name in dir for e, with e's owner and mode,
// and returns an O_PATH fd of it that the caller owns.
func (c *copier) mkdirAt(dir int, name string, e entry) (int, error) {
	if err := unix.Mkdirat(dir, name, 0o700); err != nil {
		return -1, &os.PathError{Op: "mkdir", Path: e.rel, Err: err}
	}
	fd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: e.rel, Err: err}
	}
	if err := c.metaFd(fd, e); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func (c *copier) owner(e entry) (int, int) {
	if c.own.set {
		return c.own.uid, c.own.gid
	}
	if c.keepOwners {
		if st, ok := e.fi.Sys().(*syscall.Stat_t); ok {
			return int(st.Uid), int(st.Gid)
		}
	}
	return 0, 0
}

// metaFd sets owner, then mode (chown clears setuid bits) on the directory
// held by the O_PATH fd.
func (c *copier) metaFd(fd int, e entry) error {
	uid, gid := c.owner(e)
	if err := rootfs.SetOwnerMode(fd, uid, gid, c.perm(e)); err != nil {
		return fmt.Errorf("%s: %w", e.rel, err)
	}
	return nil
}

// isArchive tells whether ADD should unpack the file: a tar, plain or
// compressed (gzip, bzip2, xz, zstd), as docker decides.
func isArchive(e *entry) bool {
	fd, err := e.open()
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), e.path)
	defer f.Close()
	r, _, err := compression.Decompress(f)
	if err != nil {
		return false
	}
	defer r.Close()
	_, err = tar.NewReader(r).Next()
	return err == nil
}

// extract unpacks a local archive into directory dest (ADD). Entries keep
// their owners and modes; paths stay inside dest.
func (c *copier) extract(ctx context.Context, e *entry, dest string) error {
	fd, err := c.mkdirAll(dest)
	if err != nil {
		return err
	}
	unix.Close(fd)
	into, err := c.root.Sub(dest)
	if err != nil {
		return err
	}
	defer into.Close()
	fd, err = e.open()
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), e.path)
	defer f.Close()
	r, _, err := compression.Decompress(f)
	if err != nil {
		return err
	}
	defer r.Close()
	// A local archive is not a layer: .wh.* names are plain files, as docker
	// writes them.
	if _, err = archive.ApplyRoot(ctx, into, r, archive.ApplyOptions{Whiteouts: archive.WhiteoutNone}); err != nil {
		return err
	}
	return e.unchanged(fd)
}
