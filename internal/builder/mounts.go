package builder

// RUN --mount: what each mount type puts into the RUN container, and what
// of it the step's cache key records.
//
//   - cache: a directory under the store (<root>/buildcache-mounts/), kept
//     across builds and shared by every build on the store; made on first
//     use with the mount's uid, gid and mode. Its contents never reach a
//     layer. sharing=shared lets steps use it at once, locked makes them
//     take turns, private gives a step that finds it busy a directory of
//     its own (kept too, for the next step that finds the first busy).
//   - tmpfs: a fresh tmpfs.
//   - bind: files of the build context (default), of a named build
//     context, or of a stage or image (from=), read-only unless rw; writes
//     of an rw mount are thrown away with a private copy or snapshot.
//   - secret: a --secret value, copied into a tmpfs on this machine and
//     bound read-only (default /run/secrets/<id>, mode 0400), or put in an
//     environment variable (env=). Its bytes are in no layer, history
//     entry or cache key.
//
// The key records each mount's fields and, for a bind mount, the digest of
// the files it shows (or the identity of the layers they come from); never
// a secret's value nor a cache directory's contents.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/lockfile"
	"github.com/strata-project/strata/internal/rootfs"
)

// CacheMountsDir is the directory under the store root that holds the
// directories of RUN --mount=type=cache.
const CacheMountsDir = "buildcache-mounts"

// mountPlan is one RUN --mount after validation, with its defaults filled in.
type mountPlan struct {
	m      *instructions.Mount
	target string // absolute path in the container; "" = not mounted (env-only secret)
	id     string // cache and secret id
	env    string // secret: environment variable to set ("" = none)
	origin origin // bind: where the files come from
	source string // bind: path inside the origin, relative
	// walked is, for a bind of a directory on this machine, the walk the
	// key's digest was made of: what the RUN sees must still be that.
	walked *match
	key    string // what the cache key records
}

// mountPlans validates a RUN's mounts and resolves their defaults and
// sources.
func (b *builder) mountPlans(ctx context.Context, sp *stagePlan, st *stageState, c *instructions.RunCommand, deps map[int]*stageState) ([]mountPlan, error) {
	var out []mountPlan
	targets := map[string]bool{}
	sshMounts := 0
	for _, m := range instructions.GetMounts(c) {
		p := mountPlan{m: m, id: m.CacheID}
		if m.Target != "" {
			p.target = image.JoinWorkdir(st.cfg.Config.WorkingDir, m.Target)
		}
		switch m.Type {
		case instructions.MountTypeSecret:
			if p.id == "" {
				p.id = m.Source
			}
			if p.id == "" {
				p.id = path.Base(p.target)
			}
			if m.Env != nil {
				p.env = *m.Env
				if p.env == "" {
					p.env = p.id
				}
			}
			if p.target == "" && p.env == "" {
				p.target = "/run/secrets/" + path.Base(p.id)
			}
		case instructions.MountTypeCache:
			if p.id == "" {
				p.id = path.Clean(m.Target) // as docker: the target as written
			}
		case instructions.MountTypeBind:
			p.source = strings.TrimPrefix(path.Clean("/"+m.Source), "/")
		case instructions.MountTypeSSH:
			if p.id == "" {
				p.id = "default"
			}
			if p.target == "" {
				p.target = fmt.Sprintf("/run/buildkit/ssh_agent.%d", sshMounts)
			}
			if sshMounts == 0 && !hasEnv(st.cfg.Config.Env, "SSH_AUTH_SOCK") {
				p.env = "SSH_AUTH_SOCK"
			}
			sshMounts++
		}
		if p.target == "" && p.env == "" {
			return nil, b.df.at(c.Location(), "RUN --mount=type=%s: a target is required", m.Type)
		}
		if p.target == "/" {
			return nil, b.df.at(c.Location(), "RUN --mount=type=%s: cannot mount over /", m.Type)
		}
		if p.target != "" {
			if targets[p.target] {
				return nil, b.df.at(c.Location(), "RUN --mount: %s is mounted twice", p.target)
			}
			targets[p.target] = true
		}
		spec, err := json.Marshal(struct {
			*instructions.Mount
			Target, ID, Env string
		}{m, p.target, p.id, p.env})
		if err != nil {
			return nil, err
		}
		p.key = "mount " + string(spec)
		if m.Type == instructions.MountTypeBind {
			if err := b.bindOrigin(ctx, sp, &p, deps); err != nil {
				from := ""
				if m.From != "" {
					from = ",from=" + m.From
				}
				return nil, b.df.at(c.Location(), "RUN --mount=type=bind%s,source=%s: %v", from, m.Source, err)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// bindOrigin finds where a bind mount's files come from and adds their
// identity to its key: the digest of the files for a directory, the layers'
// identity for a stage or image.
func (b *builder) bindOrigin(ctx context.Context, sp *stagePlan, p *mountPlan, deps map[int]*stageState) error {
	if p.m.From == "" {
		p.origin = origin{dir: b.opts.ContextDir, ig: b.ig}
	} else {
		j, isStage := sp.mountFrom[p.m.From]
		o, err := b.resolveOrigin(ctx, p.m.From, j, isStage, deps)
		if err != nil {
			return err
		}
		p.origin = o
	}
	if p.origin.layers {
		p.key += " " + p.origin.ident
		return nil
	}
	if p.origin.ig.excluded(p.source) {
		return fmt.Errorf("source %q: excluded by .dockerignore", p.source)
	}
	root, m, err := p.walkDir()
	if err != nil {
		return err
	}
	defer root.Close()
	h := sha256.New()
	if err := digestMatch(h, m, false); err != nil {
		return err
	}
	p.key += fmt.Sprintf(" content sha256:%x", h.Sum(nil))
	p.walked = &m
	return nil
}

// walkDir walks a bind's source in its directory on this machine, through
// a root the caller closes.
func (p *mountPlan) walkDir() (*rootfs.Root, match, error) {
	root, err := rootfs.Open(p.origin.dir)
	if err != nil {
		return nil, match{}, err
	}
	m, err := walkSource(root, p.source, p.origin.ig)
	if err != nil {
		root.Close()
		return nil, match{}, err
	}
	return root, m, nil
}

// runMounts are a RUN's mounts set up on this machine.
type runMounts struct {
	mounts  []specs.Mount
	env     []string
	release []func()
	// secrets is the tmpfs holding this step's secrets and, when there
	// are any, its runtime bundle ("" = none).
	secrets string
	// checks tell, after the RUN, whether a bound directory on this
	// machine still holds what the step's key was made of.
	checks []func() error
}

// check runs the checks: the first failure is the step's.
func (rm *runMounts) check() error {
	for _, c := range rm.checks {
		if err := c(); err != nil {
			return err
		}
	}
	return nil
}

// close undoes the setup, last first. It may be called more than once.
func (rm *runMounts) close() {
	for i := len(rm.release) - 1; i >= 0; i-- {
		rm.release[i]()
	}
	rm.release = nil
}

// setupMounts makes what the plans describe available for the RUN of w.
func (b *builder) setupMounts(ctx context.Context, w *work, plans []mountPlan) (*runMounts, error) {
	rm := &runMounts{}
	for i, p := range plans {
		var err error
		switch p.m.Type {
		case instructions.MountTypeCache:
			err = b.setupCache(ctx, rm, p)
		case instructions.MountTypeTmpfs:
			opts := []string{"nosuid", "nodev"}
			if p.m.SizeLimit > 0 {
				opts = append(opts, "size="+strconv.FormatInt(p.m.SizeLimit, 10))
			}
			rm.mounts = append(rm.mounts, specs.Mount{Destination: p.target, Type: "tmpfs", Source: "tmpfs", Options: opts})
		case instructions.MountTypeBind:
			err = b.setupBind(ctx, rm, w, i, p)
		case instructions.MountTypeSecret:
			err = b.setupSecret(rm, w, i, p)
		case instructions.MountTypeSSH:
			if err = b.setupSSH(rm, p); err == nil && p.env != "" && len(rm.mounts) > 0 && rm.mounts[len(rm.mounts)-1].Destination == p.target {
				// The first agent is the default one, as in BuildKit.
				rm.env = append(rm.env, p.env+"="+p.target)
			}
		default:
			err = fmt.Errorf("mount type %s is not supported", p.m.Type)
		}
		if err != nil {
			rm.close()
			return nil, fmt.Errorf("RUN --mount=type=%s,target=%s: %w", p.m.Type, p.target, err)
		}
	}
	// Parents before children, whatever order the Dockerfile gave.
	sort.SliceStable(rm.mounts, func(i, j int) bool { return depth(rm.mounts[i].Destination) < depth(rm.mounts[j].Destination) })
	return rm, nil
}

func depth(p string) int { return strings.Count(path.Clean(p), "/") }

func bindOptions(readOnly bool) []string {
	if readOnly {
		return []string{"rbind", "rprivate", "ro"}
	}
	return []string{"rbind", "rprivate"}
}

func (b *builder) setupCache(ctx context.Context, rm *runMounts, p mountPlan) error {
	dir, unlock, err := b.cacheMountDir(ctx, p)
	if err != nil {
		return err
	}
	rm.release = append(rm.release, unlock)
	rm.mounts = append(rm.mounts, specs.Mount{Destination: p.target, Type: "bind", Source: dir, Options: bindOptions(p.m.ReadOnly)})
	return nil
}

// cacheMountDir returns the directory of cache mount p and holds it as its
// sharing mode says until release.
func (b *builder) cacheMountDir(ctx context.Context, p mountPlan) (string, func(), error) {
	parent := filepath.Join(b.s.Root(), CacheMountsDir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", nil, err
	}
	base := filepath.Join(parent, digest.FromString(p.id).Encoded())
	dir, release := base, func() {}
	switch p.m.CacheSharing {
	case instructions.MountSharingShared, "":
		// Held shared so that builder prune leaves the directory alone.
		l, err := lockfile.Wait(ctx, base+".lock", lockfile.Shared)
		if err != nil {
			return "", nil, err
		}
		release = l.Unlock
	case instructions.MountSharingLocked:
		l, err := lockfile.Wait(ctx, base+".lock", lockfile.Exclusive)
		if err != nil {
			return "", nil, err
		}
		release = l.Unlock
	case instructions.MountSharingPrivate:
		for i := 0; ; i++ {
			dir = base
			if i > 0 {
				dir = base + "-" + strconv.Itoa(i)
			}
			l, ok, err := lockfile.TryLock(dir+".lock", lockfile.Exclusive)
			if err != nil {
				return "", nil, err
			}
			if ok {
				release = l.Unlock
				break
			}
		}
	}
	if err := ensureCacheDir(dir, p.m); err != nil {
		release()
		return "", nil, err
	}
	return dir, release, nil
}

// ensureCacheDir makes a cache directory on first use, owned and moded as
// the mount says. It appears whole or not at all: made under a temporary
// name, then renamed without replacing one another build made meanwhile.
func ensureCacheDir(dir string, m *instructions.Mount) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	tmp := dir + ".new-" + randomHex(4)
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	uid, gid, mode := 0, 0, uint32(0o755)
	if m.UID != nil {
		uid = int(*m.UID)
	}
	if m.GID != nil {
		gid = int(*m.GID)
	}
	if m.Mode != nil {
		mode = uint32(*m.Mode)
	}
	err := os.Lchown(tmp, uid, gid)
	if err == nil {
		err = unix.Chmod(tmp, mode)
	}
	if err == nil {
		err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EEXIST) {
			err = nil
		}
	}
	os.Remove(tmp) // gone after the rename; left only when another build won
	if err != nil {
		return fmt.Errorf("make cache mount directory: %w", err)
	}
	return nil
}

func (b *builder) setupBind(ctx context.Context, rm *runMounts, w *work, i int, p mountPlan) error {
	root, release, err := b.openOrigin(ctx, p.origin)
	if err != nil {
		return err
	}
	rm.release = append(rm.release, release)
	// As docker: symlinks on the source path are followed, inside the
	// root; what they name is held open from here on.
	fd, err := root.OpenPath(p.source, true)
	if err != nil {
		return fmt.Errorf("source %q: %w", p.source, errors.Unwrap(err))
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("source %q: %w", p.source, err)
	}
	// A directory on this machine is bound as it is only when that shows
	// nothing more and changes nothing: rw writes and .dockerignore'd files
	// call for a private copy.
	if !p.origin.layers && (!p.m.ReadOnly || p.origin.ig.pm != nil) {
		m, err := walkSource(root, p.source, p.origin.ig)
		if err != nil {
			return err
		}
		// The copy checks each file against this walk while copying it.
		if err := p.walked.sameAs(&m); err != nil {
			return err
		}
		dst := filepath.Join(w.dir, "bind-"+strconv.Itoa(i))
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		c, err := newCopier(dst, "")
		if err != nil {
			return err
		}
		src := dst
		if m.isDir {
			err = c.tree(m, "/")
		} else {
			err = c.file(m.entries[0], "/"+m.name)
			src = filepath.Join(dst, m.name)
		}
		c.close()
		if err != nil {
			return fmt.Errorf("copy bind source: %w", err)
		}
		rm.mounts = append(rm.mounts, specs.Mount{Destination: p.target, Type: "bind", Source: src, Options: bindOptions(p.m.ReadOnly)})
		return nil
	}
	at := filepath.Join(w.dir, "bind-"+strconv.Itoa(i)+"-src")
	undo, err := mountFd(fd, rootfs.IsDir(&st), at, p.m.ReadOnly)
	if err != nil {
		return fmt.Errorf("source %q: %w", p.source, err)
	}
	rm.release = append(rm.release, undo)
	rm.mounts = append(rm.mounts, specs.Mount{Destination: p.target, Type: "bind", Source: at, Options: bindOptions(p.m.ReadOnly)})
	if p.walked != nil {
		// The RUN reads the files themselves: once it is done, they must
		// still be what the key was made of.
		rm.checks = append(rm.checks, func() error {
			root, m, err := p.walkDir()
			if err != nil {
				return fmt.Errorf("source %q: %w", p.source, err)
			}
			defer root.Close()
			return p.walked.sameAs(&m)
		})
	}
	return nil
}

// mountFd bind-mounts what fd (O_PATH, resolved inside its root) holds
// on a new mount point at, read-only when ro, and returns how to undo it.
// The RUN container then binds at, a path of the build's own that holds
// exactly that file or directory, rather than a path into the root that
// would be resolved again, following whatever symlinks it has by then.
// A build killed before the undo leaves the mount in its step dir, which
// the sweep unmounts before removing anything.
func mountFd(fd int, isDir bool, at string, ro bool) (func(), error) {
	if isDir {
		if err := os.Mkdir(at, 0o700); err != nil {
			return nil, err
		}
	} else if err := os.WriteFile(at, nil, 0o600); err != nil {
		return nil, err
	}
	undo := func() {
		unix.Unmount(at, unix.MNT_DETACH)
		os.Remove(at)
	}
	if err := unix.Mount("/proc/self/fd/"+strconv.Itoa(fd), at, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		os.Remove(at)
		return nil, fmt.Errorf("bind mount: %w", err)
	}
	// Private, so nothing mounted under either side shows on the other.
	if err := unix.Mount("", at, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		undo()
		return nil, fmt.Errorf("make bind mount private: %w", err)
	}
	if ro {
		if err := unix.Mount("", at, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			undo()
			return nil, fmt.Errorf("make bind mount read-only: %w", err)
		}
	}
	return undo, nil
}

// setupSecret puts a secret where the RUN finds it. The file lives in a
// tmpfs on this machine, never on disk, and is bound read-only.
func (b *builder) setupSecret(rm *runMounts, w *work, i int, p mountPlan) error {
	data, ok := b.opts.Secrets[p.id]
	if !ok {
		if p.m.Required {
			return fmt.Errorf("secret %s is required but was not given (strata build --secret id=%s,src=FILE)", p.id, p.id)
		}
		return nil // docker: an absent optional secret mounts nothing
	}
	// An env secret ends up in the bundle's config.json: the bundle then
	// goes in the tmpfs too (see run).
	if err := rm.mountSecretsDir(w); err != nil {
		return err
	}
	if p.env != "" {
		rm.env = append(rm.env, p.env+"="+string(data))
	}
	if p.target == "" {
		return nil
	}
	f := filepath.Join(rm.secrets, strconv.Itoa(i))
	if err := os.WriteFile(f, data, 0o400); err != nil {
		return err
	}
	uid, gid, mode := 0, 0, uint32(0o400)
	if p.m.UID != nil {
		uid = int(*p.m.UID)
	}
	if p.m.GID != nil {
		gid = int(*p.m.GID)
	}
	if p.m.Mode != nil {
		mode = uint32(*p.m.Mode)
	}
	if err := os.Lchown(f, uid, gid); err != nil {
		return err
	}
	if err := unix.Chmod(f, mode); err != nil {
		return err
	}
	rm.mounts = append(rm.mounts, specs.Mount{Destination: p.target, Type: "bind", Source: f, Options: bindOptions(true)})
	return nil
}

// mountSecretsDir mounts the step's tmpfs for secrets, once.
func (rm *runMounts) mountSecretsDir(w *work) error {
	if rm.secrets != "" {
		return nil
	}
	dir := filepath.Join(w.dir, "secrets")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700"); err != nil {
		return fmt.Errorf("mount tmpfs for secrets: %w", err)
	}
	rm.secrets = dir
	rm.release = append(rm.release, func() {
		_ = unix.Unmount(dir, unix.MNT_DETACH)
		_ = os.Remove(dir)
	})
	return nil
}

// realDev makes /dev a directory for a RUN when the image has a symlink
// there, and returns what puts the symlink back (once; later calls do
// nothing). The runtime mounts a tmpfs on /dev resolved inside the root,
// but creates /dev/fd, /dev/ptmx... by host path, which would follow the
// image's symlink out of the root.
func realDev(root *rootfs.Root) (restore func(), err error) {
	st, err := root.Lstat("dev")
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return func() {}, nil
	}
	target, err := root.Readlink("dev")
	if err != nil {
		return nil, err
	}
	if err := root.Remove("dev"); err != nil {
		return nil, err
	}
	if err := root.Mkdir("dev", 0o755); err != nil {
		return nil, err
	}
	done := false
	return func() {
		if done {
			return
		}
		done = true
		if root.Remove("dev") != nil || root.Symlink(target, "dev") != nil {
			return // a RUN that left something in /dev keeps it
		}
		_ = root.Lchown("dev", int(st.Uid), int(st.Gid))
		_ = root.Lutimes("dev", time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix()))
	}, nil
}

// missingPaths lists the components of dst that do not exist in root,
// outermost first, as clean relative paths with the symlinks above them
// resolved inside the root: what the runtime will create to mount on dst.
func missingPaths(root *rootfs.Root, dst string) []string {
	var out []string
	cur, real := "", ""
	for _, part := range strings.Split(rootfs.Clean(dst), "/") {
		if part == "" {
			continue
		}
		cur = path.Join(cur, part)
		if real != "" { // below a missing one: missing too
			real = path.Join(real, part)
			out = append(out, real)
			continue
		}
		if _, err := root.Lstat(cur); !errors.Is(err, unix.ENOENT) {
			continue
		}
		p, err := root.RealPath(cur)
		if err != nil {
			return out
		}
		real = p
		out = append(out, real)
	}
	return out
}
