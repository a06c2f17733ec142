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
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/archive"
	"github.com/strata-project/strata/internal/compression"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/snapshot"
)

// heredocSources writes `COPY <<EOF dest` bodies to files and selects them.
func (b *builder) heredocSources(sd instructions.SourcesAndDest) (*sources, error) {
	dir := b.stepDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	src := &sources{release: func() { os.RemoveAll(dir) }}
	h := sha256.New()
	for _, sc := range sd.SourceContents {
		name := path.Base("/" + sc.Path)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(sc.Data), 0o644); err != nil {
			src.close()
			return nil, err
		}
		m, err := walkSource(dir, name, nil)
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
	c := copier{root: w.rootfs, own: own, mode: mode, keepOwners: src.fromImage}
	if b.s.Snapshots.Whiteouts() == snapshot.WhiteoutsOverlay {
		if c.upper, err = b.s.Snapshots.Dir(ctx, w.key); err != nil {
			return nil, err
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
		case cm.add && !m.remote && isArchive(m.entries[0].abs):
			err = c.extract(ctx, m.entries[0].abs, dest)
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
		l, err = b.commit(ctx, w)
	}
	if err != nil {
		return nil, err
	}
	ok = true
	return l, nil
}

// copier writes entries into a root filesystem.
type copier struct {
	root string
	// upper, when set, is the overlay upper dir of the snapshot mounted
	// at root: files below directories the copy creates go there directly
	// (see writeDir).
	upper      string
	own        owner
	mode       *uint32
	keepOwners bool
}

// resolve gives the host path of p inside the root: parent directories
// are resolved inside the root (following the image's symlinks), the last
// component is not followed.
func (c *copier) resolve(p string) (string, error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return c.root, nil
	}
	dir, err := securejoin.SecureJoin(c.root, path.Dir(p))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, path.Base(p)), nil
}

func (c *copier) isDir(p string) bool {
	full, err := securejoin.SecureJoin(c.root, p)
	if err != nil {
		return false
	}
	fi, err := os.Stat(full)
	return err == nil && fi.IsDir()
}

// mkdirAll makes directory p and missing parents (0755, owned by --chown's
// user or root) and returns its host path.
func (c *copier) mkdirAll(p string) (string, error) {
	cur := "/"
	for _, part := range strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/") {
		if part == "" {
			continue
		}
		cur = path.Join(cur, part)
		full, err := securejoin.SecureJoin(c.root, cur)
		if err != nil {
			return "", err
		}
		fi, err := os.Stat(full)
		switch {
		case err == nil && fi.IsDir():
			continue
		case err == nil:
			return "", fmt.Errorf("%s is not a directory", cur)
		case !errors.Is(err, os.ErrNotExist):
			return "", err
		}
		if err := os.Mkdir(full, 0o755); err != nil {
			return "", err
		}
		if err := os.Lchown(full, c.own.uid, c.own.gid); err != nil {
			return "", err
		}
	}
	return securejoin.SecureJoin(c.root, p)
}

// tree copies a directory's contents (not the directory itself) to dest.
// Entries come parents first; below a directory this copy created, names
// cannot exist yet, so they are written without looking (by the copy
// pool), and everything else goes through file, which merges with or
// replaces what the image has.
func (c *copier) tree(m match, dest string) error {
	existed := c.isDir(dest)
	full, err := c.mkdirAll(dest)
	if err != nil {
		return err
	}
	// fresh maps a directory (relative to dest) this copy made to where
	// its entries are created.
	fresh := map[string]string{}
	if !existed {
		fresh[""] = c.writeDir(full)
	}
	pool := newCopyPool(c)
	var dirs []entry
	for _, e := range m.entries[1:] {
		parent, name := path.Split(e.rel)
		at, isFresh := fresh[strings.TrimSuffix(parent, "/")]
		switch {
		case isFresh && e.fi.IsDir():
			p := filepath.Join(at, name)
			if err := os.Mkdir(p, 0o755); err != nil {
				pool.wait()
				return err
			}
			if err := c.meta(p, e); err != nil {
				pool.wait()
				return err
			}
			fresh[e.rel] = p
		case isFresh:
			if !pool.add(copyJob{e: e, dst: filepath.Join(at, name)}) {
				return pool.wait()
			}
		default:
			made, err := c.fileAt(e, path.Join(dest, e.rel))
			if err != nil {
				pool.wait()
				return err
			}
			if made != "" {
				fresh[e.rel] = c.writeDir(made)
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
		p, err := c.resolve(path.Join(dest, dirs[i].rel))
		if err != nil {
			return err
		}
		if err := setTimes(p, dirs[i].fi.ModTime()); err != nil {
			return err
		}
	}
	if !existed {
		top := m.entries[0]
		if err := c.meta(full, top); err != nil {
			return err
		}
		return setTimes(full, top.fi.ModTime())
	}
	return nil
}

// file writes one entry (file, directory, symlink) at target.
func (c *copier) file(e entry, target string) error {
	_, err := c.fileAt(e, target)
	return err
}

// fileAt is file, and returns the host path of the directory it created
// when e is a directory not merged into an existing one ("" otherwise).
func (c *copier) fileAt(e entry, target string) (string, error) {
	if _, err := c.mkdirAll(path.Dir(path.Clean("/" + target))); err != nil {
		return "", err
	}
	p, err := c.resolve(target)
	if err != nil {
		return "", err
	}
	old, err := os.Lstat(p)
	exists := err == nil
	mode := e.fi.Mode()
	switch {
	case mode.IsDir():
		if exists && old.IsDir() {
			return "", nil // merge into the existing directory
		}
		if exists {
			if err := os.Remove(p); err != nil {
				return "", err
			}
		}
		if err := os.Mkdir(p, 0o755); err != nil {
			return "", err
		}
		return p, c.meta(p, e)
	case mode&os.ModeSymlink != 0, mode.IsRegular():
		if exists {
			if err := os.RemoveAll(p); err != nil {
				return "", err
			}
		}
		var buf []byte
		return "", c.writeNew(copyJob{e: e, dst: p}, &buf)
	}
	return "", fmt.Errorf("%s: cannot copy %s", e.rel, mode.Type())
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

// meta sets owner, then mode (chown clears setuid bits).
func (c *copier) meta(p string, e entry) error {
	uid, gid := c.owner(e)
	if err := os.Lchown(p, uid, gid); err != nil {
		return err
	}
	return unix.Chmod(p, c.perm(e))
}

func setTimes(p string, t time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// isArchive tells whether ADD should unpack the file: a tar, plain or
// compressed (gzip, bzip2, xz, zstd), as docker decides.
func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
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
func (c *copier) extract(ctx context.Context, archivePath, dest string) error {
	full, err := c.mkdirAll(dest)
	if err != nil {
		return err
	}
	f, err := os.Open(archivePath)
	if err != nil {
		return err
	}
	defer f.Close()
	r, _, err := compression.Decompress(f)
	if err != nil {
		return err
	}
	defer r.Close()
	// A local archive is not a layer: .wh.* names are plain files, as docker
	// writes them.
	_, err = archive.Apply(ctx, full, r, archive.ApplyOptions{Whiteouts: archive.WhiteoutNone})
	return err
}
