package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/rootfs"
)

// ignore is the context's .dockerignore.
type ignore struct {
	pm *patternmatcher.PatternMatcher // nil: nothing ignored
}

// loadIgnore reads the context's .dockerignore, resolved inside the
// context like every other file of it: a symlink to the host names the
// context's own copy of that path.
func loadIgnore(ctxDir string) (*ignore, error) {
	root, err := rootfs.Open(ctxDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.OpenFile(".dockerignore", os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return &ignore{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pats, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf(".dockerignore: %w", err)
	}
	if len(pats) == 0 {
		return &ignore{}, nil
	}
	pm, err := patternmatcher.New(pats)
	if err != nil {
		return nil, fmt.Errorf(".dockerignore: %w", err)
	}
	return &ignore{pm: pm}, nil
}

// excluded tells whether rel (slash-separated, relative to the context
// root) is left out of the context.
func (ig *ignore) excluded(rel string) bool {
	if ig == nil || ig.pm == nil || rel == "" || rel == "." {
		return false
	}
	m, err := ig.pm.MatchesOrParentMatches(filepath.FromSlash(rel))
	return err == nil && m
}

// mayInclude tells whether an excluded directory can still hold included
// entries (a `!` exception below it), so it must be walked.
func (ig *ignore) mayInclude() bool { return ig != nil && ig.pm != nil && ig.pm.Exclusions() }

// entry is one file of a COPY source.
type entry struct {
	// root holds the source's root filesystem (the context, a stage's
	// rootfs) open; path is where the entry is in it, with no symlink on
	// the way: the file is opened by resolving path in root again, at the
	// moment of reading, refusing any symlink (entry.open).
	root *rootfs.Root
	path string
	rel  string // slash path below the matched source ("" = the source itself)
	fi   os.FileInfo
	link string
}

// open opens the entry's file for reading (a raw fd the caller owns).
// Each component is resolved inside the source's root now, and a symlink
// swapped in anywhere since the walk is refused, never followed.
func (e *entry) open() (int, error) {
	return e.root.OpenExact(e.path, unix.O_RDONLY)
}

// sameAs fails when the walk now is not of the same files as m (nil: no
// walk to compare with) as stat tells them: each entry's identity, type,
// mode, owner, size and times (see unchanged).
func (m *match) sameAs(now *match) error {
	if m == nil {
		return nil
	}
	if len(m.entries) != len(now.entries) {
		return fmt.Errorf("%s changed while the build was reading it: build again", m.entries[0].path)
	}
	for i := range m.entries {
		was, is := &m.entries[i], &now.entries[i]
		a, ok1 := was.fi.Sys().(*syscall.Stat_t)
		b, ok2 := is.fi.Sys().(*syscall.Stat_t)
		if was.rel != is.rel || was.link != is.link || !ok1 || !ok2 ||
			a.Dev != b.Dev || a.Ino != b.Ino || a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Size != b.Size ||
			a.Mtim != b.Mtim || a.Ctim != b.Ctim {
			return fmt.Errorf("%s changed while the build was reading it: build again", is.path)
		}
	}
	return nil
}

// unchanged fails when the file open at fd is no longer what the walk saw
// of e. The step's cache key is made of that view and of a digest read
// after it (or kept for that same stat), so content written since would go
// into a layer whose key names other content, and a later build of the
// content the key names would be served that layer from the cache. A write
// changes the size or the change time (which user space cannot set back).
func (e *entry) unchanged(fd int) error {
	was, ok := e.fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return &os.PathError{Op: "stat", Path: e.path, Err: err}
	}
	if now.Dev != was.Dev || now.Ino != was.Ino || now.Size != was.Size ||
		now.Mtim.Sec != was.Mtim.Sec || now.Mtim.Nsec != was.Mtim.Nsec ||
		now.Ctim.Sec != was.Ctim.Sec || now.Ctim.Nsec != was.Ctim.Nsec {
		return fmt.Errorf("%s changed while the build was reading it: build again", e.path)
	}
	return nil
}

// match is one source path (after wildcard expansion) of a COPY.
type match struct {
	name    string // base name
	isDir   bool
	entries []entry // the source itself first, then the tree below, sorted
	// keep is, for COPY --parents, the source's path as the copy keeps it
	// under the destination ("" = copy as usual).
	keep   string
	remote bool // downloaded by ADD: never unpacked
	// walked is when the walk that stat'ed the entries began.
	walked time.Time
	// sums are the sha256 of each regular file among entries (zero for
	// the others), once the match is digested for a cache key: COPY
	// links an unchanged file from the step's previous layer by them.
	sums [][sha256.Size]byte
	// crcs are, when the digest pass summed them (hashPass.crc), the
	// regular files' tar-split checksums (nil for the others).
	crcs [][]byte
	// fingerprinted: the entries' fingerprints belong in the step's record,
	// under prefix (the source's path), with owners or not.
	fingerprinted bool
	prefix        string
	owners        bool
}

// sources are the files a COPY/ADD step reads, and their digest.
type sources struct {
	matches   []match
	digest    digest.Digest
	fromImage bool        // keep owners (COPY --from); the context's become 0:0
	mounts    []mountPlan // RUN --mount
	release   func()      // unmounts a --from view
	// place is the step's place (see stepPlace), where COPY finds the
	// layer its previous build made.
	place []byte
}

func (s *sources) close() {
	if s != nil && s.release != nil {
		s.release()
		s.release = nil
	}
}

// onClose adds f to what close releases; later additions run first.
func (s *sources) onClose(f func()) {
	prev := s.release
	s.release = func() {
		f()
		if prev != nil {
			prev()
		}
	}
}

// excludePatterns are COPY/ADD --exclude's patterns.
func excludePatterns(c instructions.Command) []string {
	switch c := c.(type) {
	case *instructions.CopyCommand:
		return c.ExcludePatterns
	case *instructions.AddCommand:
		return c.ExcludePatterns
	}
	return nil
}

// excludedMatch tells whether --exclude drops a matched source. A match is
// tested by its name in the directory the source pattern names, and the
// entries below a matched directory by their path relative to it (as
// .dockerignore patterns are relative to the context).
func excludedMatch(pm *patternmatcher.PatternMatcher, rel string) bool {
	if pm == nil || rel == "" {
		return false
	}
	ok, err := pm.MatchesOrParentMatches(path.Base(rel))
	return err == nil && ok
}

// excludeBelow drops the entries below a directory match that --exclude
// patterns name.
func (m *match) excludeBelow(pm *patternmatcher.PatternMatcher) {
	if pm == nil || !m.isDir {
		return
	}
	kept := m.entries[:1]
	for _, e := range m.entries[1:] {
		if ok, err := pm.MatchesOrParentMatches(filepath.FromSlash(e.rel)); err == nil && ok {
			continue
		}
		kept = append(kept, e)
	}
	m.entries = kept
}

// keptPath is the path COPY --parents recreates under the destination for
// the source rel that pattern matched: rel itself, or, when the pattern
// has a "/./" pivot, the part of rel after the pivot.
func keptPath(pattern, rel string) string {
	pattern = filepath.ToSlash(pattern)
	if i := strings.Index(pattern, "/./"); i >= 0 {
		pivot := strings.TrimPrefix(path.Clean("/"+pattern[:i]), "/")
		if pivot != "" && strings.HasPrefix(rel, pivot+"/") {
			return strings.TrimPrefix(rel, pivot+"/")
		}
	}
	return rel
}

// selectSourcesPass resolves the sources of a COPY/ADD in the context or,
// with --from, in a named build context or a stage's or image's root
// filesystem, and digests them as pass says.
func (b *builder) selectSourcesPass(ctx context.Context, sp *stagePlan, c instructions.Command, sd instructions.SourcesAndDest, from string, deps map[int]*stageState, pass hashPass) (*sources, error) {
	if len(sd.SourceContents) > 0 {
		return b.heredocSources(sd)
	}
	src := &sources{}
	var o origin
	if from != "" {
		cp, _ := c.(*instructions.CopyCommand)
		j, isStage := sp.copyFrom[cp]
		var err error
		if o, err = b.resolveOrigin(ctx, from, j, isStage, deps); err != nil {
			return nil, b.df.at(c.Location(), "COPY --from=%s: %v", from, err)
		}
	} else {
		o = origin{dir: b.opts.ContextDir, ig: b.ig}
	}
	root, release, err := b.openOrigin(ctx, o)
	if err != nil {
		return nil, err
	}
	src.fromImage = o.layers
	src.onClose(release)
	var excl *patternmatcher.PatternMatcher
	if pats := excludePatterns(c); len(pats) > 0 {
		if excl, err = patternmatcher.New(pats); err != nil {
			src.close()
			return nil, b.df.at(c.Location(), "%s --exclude: %v", strings.ToUpper(c.Name()), err)
		}
	}
	cp, _ := c.(*instructions.CopyCommand)
	parents := cp != nil && cp.Parents
	h := sha256.New()
	for _, p := range sd.SourcePaths {
		if _, isAdd := c.(*instructions.AddCommand); isAdd && isHTTP(p) {
			m, err := b.download(ctx, src, p, addChecksum(c))
			if err != nil {
				src.close()
				return nil, b.df.at(c.Location(), "ADD %s: %v", p, err)
			}
			if err := digestMatch(h, m, false); err != nil {
				src.close()
				return nil, err
			}
			src.matches = append(src.matches, m)
			continue
		}
		ms, err := globInRoot(root, p, o.ig)
		if err != nil {
			src.close()
			return nil, b.df.at(c.Location(), "%v", err)
		}
		var kept []string
		for _, rel := range ms {
			if !excludedMatch(excl, rel) {
				kept = append(kept, rel)
			}
		}
		if len(kept) == 0 {
			src.close()
			return nil, b.df.at(c.Location(), "%s %s: %q: not found", strings.ToUpper(c.Name()), p, path.Clean("/"+p))
		}
		for _, rel := range kept {
			m, err := walkSource(root, rel, o.ig)
			if err != nil {
				src.close()
				return nil, b.df.at(c.Location(), "%v", err)
			}
			m.excludeBelow(excl)
			if parents {
				m.keep = keptPath(p, rel)
				fmt.Fprintf(h, "keep %q\n", m.keep)
			}
			var cache *hashCache
			if o.dir != "" {
				cache = b.contextHashes(o.dir)
			}
			if err := digestMatchInto(h, &m, src.fromImage, true, rel, cache, pass); err != nil {
				src.close()
				return nil, err
			}
			src.matches = append(src.matches, m)
		}
	}
	src.digest = digest.NewDigest(digest.SHA256, h)
	return src, nil
}

// origin is where COPY --from and RUN --mount=type=bind read files: a
// directory on this machine (the build context, a named build context) or
// a stack of layers (a stage's or a stored image's root filesystem).
type origin struct {
	dir    string // "" for layers
	ig     *ignore
	layers bool
	chain  digest.Digest
	ident  string // names the layers in cache keys
}

// resolveOrigin finds what a --from names: an earlier stage (stage, when
// isStage), a --build-context, or an image in the store.
func (b *builder) resolveOrigin(ctx context.Context, from string, stage int, isStage bool, deps map[int]*stageState) (origin, error) {
	if isStage {
		chain := deps[stage].chainID()
		return origin{layers: true, chain: chain, ident: "layers " + string(chain)}, nil
	}
	ref := from
	if bc, ok := b.buildContext(from); ok {
		if !bc.isImage {
			return origin{dir: bc.dir, ig: bc.ig}, nil
		}
		ref = bc.image
	}
	img, err := b.imageFor(ctx, ref, b.opts.Platform)
	if err != nil {
		return origin{}, err
	}
	return origin{layers: true, chain: image.ChainID(img.Config.RootFS.DiffIDs), ident: "image " + string(img.ID)}, nil
}

// openOrigin holds the origin's root directory open until release; every
// path in it is then resolved inside it (rootfs.Root). Layers are mounted
// as a throwaway writable snapshot: writes to it (RUN
// --mount=type=bind,rw) are discarded.
func (b *builder) openOrigin(ctx context.Context, o origin) (*rootfs.Root, func(), error) {
	dir, release := o.dir, func() {}
	if o.layers {
		var err error
		if dir, release, err = b.view(ctx, o.chain); err != nil {
			return nil, nil, err
		}
	}
	root, err := rootfs.Open(dir)
	if err != nil {
		release()
		return nil, nil, err
	}
	return root, func() { root.Close(); release() }, nil
}

// holdRoot opens dir (a scratch directory of the build) as the root its
// entries are read through, until src is closed.
func holdRoot(src *sources, dir string) (*rootfs.Root, error) {
	r, err := rootfs.Open(dir)
	if err != nil {
		return nil, err
	}
	src.onClose(func() { r.Close() })
	return r, nil
}

// view mounts the layers chain read-only and returns where.
func (b *builder) view(ctx context.Context, chain digest.Digest) (string, func(), error) {
	dir := b.stepDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	if chain == "" {
		return dir, func() { os.RemoveAll(dir) }, nil
	}
	w, err := b.prepare(ctx, chain)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	os.RemoveAll(dir)
	return w.rootfs, func() { b.discard(ctx, w) }, nil
}

// globInRoot expands a source path with wildcards inside root. Each
// directory is resolved inside root, so image symlinks cannot lead out.
// Ignored paths do not match, nor do symlinks whose target is missing.
func globInRoot(root *rootfs.Root, pattern string, ig *ignore) ([]string, error) {
	clean := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(pattern)), "/")
	if clean == "" {
		return []string{""}, nil
	}
	parts := strings.Split(clean, "/")
	cur := []string{""}
	for _, part := range parts {
		var next []string
		for _, dir := range cur {
			if !hasMeta(part) {
				rel := path.Join(dir, part)
				if _, err := root.Stat(rel); err == nil && !ig.excluded(rel) {
					next = append(next, rel)
				}
				continue
			}
			names, err := readNames(root, dir)
			if err != nil {
				continue
			}
			for _, n := range names {
				ok, err := path.Match(part, n)
				if err != nil {
					return nil, fmt.Errorf("bad pattern %q: %w", pattern, err)
				}
				rel := path.Join(dir, n)
				if ok && !ig.excluded(rel) {
					next = append(next, rel)
				}
			}
		}
		cur = next
	}
	return cur, nil
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// readNames lists the directory dir, resolved inside root, sorted.
func readNames(root *rootfs.Root, dir string) ([]string, error) {
	f, err := root.OpenFile(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

// walkSource lists a matched source and, for a directory, the tree below
// it (minus ignored paths), sorted so digests and copies are stable. The
// source itself is followed if it is a symlink, inside root; entries below
// it are not: each directory is opened relative to its parent's
// descriptor without following, and entries are stat'ed through it, so a
// symlink below the source is listed as a symlink, never walked.
func walkSource(root *rootfs.Root, rel string, ig *ignore) (match, error) {
	walked := time.Now()
	fd, err := root.OpenPath(rel, true)
	if err != nil {
		return match{}, fmt.Errorf("%s: %w", rel, errors.Unwrap(err))
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return match{}, fmt.Errorf("%s: %w", rel, err)
	}
	real, err := root.PathOf(fd)
	if err != nil {
		return match{}, fmt.Errorf("%s: %w", rel, err)
	}
	fi := rootfs.FileInfo(path.Base("/"+real), &st)
	m := match{name: path.Base("/" + rel), isDir: fi.IsDir(), walked: walked}
	if rel == "" {
		m.name = "."
	}
	m.entries = append(m.entries, entry{root: root, path: real, fi: fi})
	if !fi.IsDir() {
		return m, nil
	}
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return match{}, fmt.Errorf("%s: %w", rel, err)
	}
	w := &treeWalk{root: root, rel: rel, ig: ig, slots: make(chan struct{}, runtime.GOMAXPROCS(0)-1)}
	below, err := w.dir(dfd, real, "")
	if err != nil {
		return match{}, err
	}
	m.entries = append(m.entries, below...)
	return m, nil
}

// treeWalk lists a source directory's tree, parents first and names
// sorted. Listing is system calls (getdents, a stat per entry), so
// subdirectories are walked on the other cores when one is free, each into
// its own list, and the lists are joined in order: the result does not
// depend on scheduling.
type treeWalk struct {
	root  *rootfs.Root
	rel   string // the source, relative to the root
	ig    *ignore
	slots chan struct{} // walks running besides the caller's
}

// subtree is one directory entry and, when it is a directory, what the
// walk below it found (filled in by the time wait returns).
type subtree struct {
	e     entry
	isDir bool
	below []entry
	err   error
	done  chan struct{} // closed when below is filled; nil when walked inline
}

// dir lists the tree below the directory open as dfd (closed on return),
// which is dir in the root and sub below the source.
func (w *treeWalk) dir(dfd int, dir, sub string) ([]entry, error) {
	defer unix.Close(dfd)
	ents, err := rootfs.ReadDir(dfd, make([]byte, rootfs.DirBufSize))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path.Join(w.rel, sub), err)
	}
	var items []*subtree
	fail := func(err error) ([]entry, error) {
		for _, it := range items {
			if it.done != nil {
				<-it.done
			}
		}
		return nil, err
	}
	for _, d := range ents {
		n := d.Name
		r := path.Join(sub, n)
		ctxRel := path.Join(w.rel, r)
		excluded := w.ig.excluded(ctxRel)
		if excluded && (!w.ig.mayInclude() || (d.Type != unix.DT_DIR && d.Type != unix.DT_UNKNOWN)) {
			continue // no need to stat it
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fail(&os.PathError{Op: "lstat", Path: ctxRel, Err: err})
		}
		fi := rootfs.FileInfo(n, &st)
		if excluded && !(fi.IsDir() && w.ig.mayInclude()) {
			continue
		}
		if fi.Mode()&os.ModeSocket != 0 {
			continue // as docker: a socket cannot be copied, and is skipped
		}
		it := &subtree{e: entry{root: w.root, path: path.Join(dir, n), rel: r, fi: fi}, isDir: fi.IsDir()}
		items = append(items, it)
		if fi.Mode()&os.ModeSymlink != 0 {
			if it.e.link, err = readlinkAt(dfd, n); err != nil {
				return fail(&os.PathError{Op: "readlink", Path: ctxRel, Err: err})
			}
		}
		if !it.isDir {
			continue
		}
		cfd, err := unix.Openat(dfd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(&os.PathError{Op: "open", Path: ctxRel, Err: err})
		}
		select {
		case w.slots <- struct{}{}:
			it.done = make(chan struct{})
			go func() {
				defer func() { <-w.slots; close(it.done) }()
				it.below, it.err = w.dir(cfd, it.e.path, r)
			}()
		default:
			if it.below, it.err = w.dir(cfd, it.e.path, r); it.err != nil {
				return fail(it.err)
			}
		}
	}
	var out []entry
	for _, it := range items {
		if it.done != nil {
			<-it.done
		}
		if it.err != nil {
			return fail(it.err)
		}
		if it.isDir && len(it.below) == 0 && w.ig.excluded(path.Join(w.rel, it.e.rel)) {
			// Walked only for a `!` exception that matched nothing
			// inside: the directory stays out, as in docker.
			continue
		}
		out = append(out, it.e)
		out = append(out, it.below...)
	}
	return out, nil
}

// digestMatch feeds one source's names, types, modes, link targets,
// owners (for --from) and contents to h. Modification times are left out:
// touching a file does not invalidate the cache, changing it does.
func digestMatch(h io.Writer, m match, owners bool) error {
	return digestMatchInto(h, &m, owners, false, "", nil, hashPass{})
}

// digestMatchInto is digestMatch that also records, in fps when not nil, a
// fingerprint of each entry by its path (prefix joined with the entry's),
// for explaining a cache miss file by file, and reuses the digests cache
// kept of unchanged files when not nil.
func digestMatchInto(h io.Writer, m *match, owners, fingerprinted bool, prefix string, cache *hashCache, pass hashPass) error {
	fmt.Fprintf(h, "match %q dir=%v\n", m.name, m.isDir)
	sums, crcs, err := fileDigests(m.entries, cache, m.walked, pass)
	if err != nil {
		return err
	}
	m.sums, m.crcs, m.fingerprinted, m.prefix, m.owners = sums, crcs, fingerprinted, prefix, owners
	var line []byte
	for i := range m.entries {
		line = m.digestLine(line[:0], i)
		h.Write(line)
	}
	return nil
}

// digestLine appends entry i's line of the source digest to b: its path,
// mode and link target, owner (for --from), and size and content digest.
// (The bytes are fmt's "%q %o %q[ %d:%d][ %d %x]\n", built without fmt: a
// cached rebuild digests every context file.)
func (m *match) digestLine(b []byte, i int) []byte {
	e := m.entries[i]
	b = strconv.AppendQuote(b, e.rel)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(uint32(e.fi.Mode())), 8)
	b = append(b, ' ')
	b = strconv.AppendQuote(b, e.link)
	if m.owners {
		if st, ok := e.fi.Sys().(*syscall.Stat_t); ok {
			b = append(b, ' ')
			b = strconv.AppendUint(b, uint64(st.Uid), 10)
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(st.Gid), 10)
		}
	}
	if e.fi.Mode().IsRegular() {
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.fi.Size(), 10)
		b = append(b, ' ')
		b = hex.AppendEncode(b, m.sums[i][:])
	}
	return append(b, '\n')
}

// files fingerprints each source path's type, mode, owner and content, for
// explaining a cache miss file by file. It is made only when the step's
// record is written or a miss explained, not on every cached rebuild.
func (s *sources) files() map[string]string {
	fps := map[string]string{}
	var line []byte
	for mi := range s.matches {
		m := &s.matches[mi]
		if !m.fingerprinted {
			continue
		}
		for i, e := range m.entries {
			line = m.digestLine(line[:0], i)
			p := path.Join(m.prefix, e.rel)
			if p == "" {
				p = "."
			}
			fps[p] = fingerprint(string(line))
		}
	}
	return fps
}
