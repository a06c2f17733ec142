package build

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/image"
)

// ignore is the context's .dockerignore.
type ignore struct {
	pm *patternmatcher.PatternMatcher // nil: nothing ignored
}

func loadIgnore(ctxDir string) (*ignore, error) {
	f, err := os.Open(filepath.Join(ctxDir, ".dockerignore"))
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
	abs  string // where it is on this machine
	rel  string // slash path below the matched source ("" = the source itself)
	fi   os.FileInfo
	link string
}

// match is one source path (after wildcard expansion) of a COPY.
type match struct {
	name    string // base name
	isDir   bool
	entries []entry // the source itself first, then the tree below, sorted
}

// sources are the files a COPY/ADD step reads, and their digest.
type sources struct {
	matches   []match
	digest    digest.Digest
	fromImage bool   // keep owners (COPY --from); the context's become 0:0
	release   func() // unmounts a --from view
}

func (s *sources) close() {
	if s != nil && s.release != nil {
		s.release()
	}
}

// selectSources resolves the sources of a COPY/ADD in the context or, with
// --from, in a stage's or image's root filesystem, and digests them.
func (b *builder) selectSources(ctx context.Context, sp *stagePlan, c instructions.Command, sd instructions.SourcesAndDest, from string, deps map[int]*stageState) (*sources, error) {
	if len(sd.SourceContents) > 0 {
		return b.heredocSources(sd)
	}
	src := &sources{}
	root, ig := b.opts.ContextDir, b.ig
	if from != "" {
		cp, _ := c.(*instructions.CopyCommand)
		var chain digest.Digest
		if j, ok := sp.copyFrom[cp]; ok {
			chain = deps[j].chainID()
		} else {
			img, err := b.s.Images.Get(ctx, from)
			if err != nil {
				return nil, b.df.at(c.Location(), "COPY --from=%s: %v", from, err)
			}
			chain = image.ChainID(img.Config.RootFS.DiffIDs)
		}
		view, release, err := b.view(ctx, chain)
		if err != nil {
			return nil, err
		}
		root, ig, src.fromImage, src.release = view, nil, true, release
	}
	h := sha256.New()
	for _, p := range sd.SourcePaths {
		ms, err := globInRoot(root, p, ig)
		if err != nil {
			src.close()
			return nil, b.df.at(c.Location(), "%v", err)
		}
		if len(ms) == 0 {
			src.close()
			return nil, b.df.at(c.Location(), "%s %s: %q: not found", strings.ToUpper(c.Name()), p, path.Clean("/"+p))
		}
		for _, rel := range ms {
			m, err := walkSource(root, rel, ig)
			if err != nil {
				src.close()
				return nil, b.df.at(c.Location(), "%v", err)
			}
			if err := digestMatch(h, m, src.fromImage); err != nil {
				src.close()
				return nil, err
			}
			src.matches = append(src.matches, m)
		}
	}
	src.digest = digest.NewDigest(digest.SHA256, h)
	return src, nil
}

// view mounts the layers chain read-only and returns where.
func (b *builder) view(ctx context.Context, chain digest.Digest) (string, func(), error) {
	dir := filepath.Join(b.s.Root, "build", "steps", randomHex(8))
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
// Ignored paths do not match.
func globInRoot(root, pattern string, ig *ignore) ([]string, error) {
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
				p, err := securejoin.SecureJoin(root, rel)
				if err != nil {
					return nil, err
				}
				if _, err := os.Lstat(p); err == nil && !ig.excluded(rel) {
					next = append(next, rel)
				}
				continue
			}
			d, err := securejoin.SecureJoin(root, dir)
			if err != nil {
				return nil, err
			}
			names, err := readNames(d)
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

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
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
// it are not.
func walkSource(root, rel string, ig *ignore) (match, error) {
	abs, err := securejoin.SecureJoin(root, rel)
	if err != nil {
		return match{}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return match{}, fmt.Errorf("%s: %w", rel, err)
	}
	m := match{name: path.Base("/" + rel), isDir: fi.IsDir()}
	if rel == "" {
		m.name = "."
	}
	m.entries = append(m.entries, entry{abs: abs, fi: fi})
	if !fi.IsDir() {
		return m, nil
	}
	var walk func(dir, sub string) error
	walk = func(dir, sub string) error {
		names, err := readNames(dir)
		if err != nil {
			return fmt.Errorf("read %s: %w", dir, err)
		}
		for _, n := range names {
			p := filepath.Join(dir, n)
			r := path.Join(sub, n)
			ctxRel := path.Join(rel, r)
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			if ig.excluded(ctxRel) && !(fi.IsDir() && ig.mayInclude()) {
				continue
			}
			e := entry{abs: p, rel: r, fi: fi}
			if fi.Mode()&os.ModeSymlink != 0 {
				if e.link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			m.entries = append(m.entries, e)
			if fi.IsDir() {
				if err := walk(p, r); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return m, walk(abs, "")
}

// digestMatch feeds one source's names, types, modes, link targets,
// owners (for --from) and contents to h. Modification times are left out:
// touching a file does not invalidate the cache, changing it does.
func digestMatch(h io.Writer, m match, owners bool) error {
	fmt.Fprintf(h, "match %q dir=%v\n", m.name, m.isDir)
	for _, e := range m.entries {
		fmt.Fprintf(h, "%q %o %q", e.rel, uint32(e.fi.Mode()), e.link)
		if owners {
			if st, ok := e.fi.Sys().(*syscall.Stat_t); ok {
				fmt.Fprintf(h, " %d:%d", st.Uid, st.Gid)
			}
		}
		if e.fi.Mode().IsRegular() {
			f, err := os.Open(e.abs)
			if err != nil {
				return err
			}
			fh := sha256.New()
			_, err = io.Copy(fh, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("read %s: %w", e.abs, err)
			}
			fmt.Fprintf(h, " %d %x", e.fi.Size(), fh.Sum(nil))
		}
		fmt.Fprintln(h)
	}
	return nil
}
