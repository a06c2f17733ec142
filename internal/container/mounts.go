package container

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/cp"
	"github.com/strata-project/strata/internal/errdefs"
	"github.com/strata-project/strata/internal/lockfile"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/rootfs"
	"github.com/strata-project/strata/internal/volume"
)

// Mount types, docker's names.
const (
	MountBind   = "bind"
	MountVolume = "volume"
	MountTmpfs  = "tmpfs"
)

// Mount is one resolved mount of a container: every -v, --mount, --tmpfs,
// --volumes-from and image VOLUME ends up as one, at create.
type Mount struct {
	Type   string `json:"type"`
	Source string `json:"source,omitempty"` // host path (bind) or volume name
	Target string `json:"target"`
	// ReadOnly mounts it read-only.
	ReadOnly bool `json:"readOnly,omitempty"`
	// Mode is the -v option string as given ("ro", "z"...), for inspect.
	Mode string `json:"mode,omitempty"`
	// NoCopy: a new volume is not filled with the image's content.
	NoCopy bool `json:"noCopy,omitempty"`
	// Anonymous volumes were created for this container: rm -v and
	// run --rm remove them.
	Anonymous bool `json:"anonymous,omitempty"`
	// Propagation is a bind's mount propagation ("rprivate" by default).
	Propagation string `json:"propagation,omitempty"`
	// TmpfsOptions are a tmpfs mount's options (size=, mode=).
	TmpfsOptions []string `json:"tmpfsOptions,omitempty"`
	// FromMountFlag marks --mount entries (inspect's HostConfig.Mounts).
	FromMountFlag bool `json:"fromMountFlag,omitempty"`
	// VolumeOptions are --mount volume-opt values for a volume created
	// on first use.
	VolumeOptions map[string]string `json:"volumeOptions,omitempty"`
}

// checkTarget is docker's rule for a mount destination.
func checkTarget(spec, target string) (string, error) {
	if !path.IsAbs(target) {
		return "", errdefs.Invalidf("invalid volume specification: '%s': invalid mount config for type \"volume\": invalid mount path: '%s' mount path must be absolute", spec, target)
	}
	target = path.Clean(target)
	if target == "/" {
		return "", errdefs.Invalidf("invalid volume specification: '%s': invalid mount config: destination can't be '/'", spec)
	}
	return target, nil
}

// ParseVolumeFlag parses one -v value: /CTR (anonymous volume),
// NAME:/CTR[:OPTS] (named volume) or /HOST:/CTR[:OPTS] (bind); OPTS is a
// comma list of ro, rw, nocopy (volumes) and a bind propagation.
func ParseVolumeFlag(spec string) (Mount, error) {
	parts := strings.Split(spec, ":")
	var m Mount
	switch len(parts) {
	case 1:
		m = Mount{Type: MountVolume, Target: parts[0], Anonymous: true}
	case 2, 3:
		m = Mount{Source: parts[0], Target: parts[1]}
		if len(parts) == 3 {
			m.Mode = parts[2]
		}
	default:
		return Mount{}, errdefs.Invalidf("invalid volume specification: '%s'", spec)
	}
	if m.Source == "" && len(parts) > 1 {
		return Mount{}, errdefs.Invalidf("invalid volume specification: '%s'", spec)
	}
	target, err := checkTarget(spec, m.Target)
	if err != nil {
		return Mount{}, err
	}
	m.Target = target
	if m.Type == "" {
		if path.IsAbs(m.Source) {
			m.Type, m.Source = MountBind, path.Clean(m.Source)
		} else {
			m.Type = MountVolume
			if err := volume.ValidateName(m.Source); err != nil {
				return Mount{}, err
			}
		}
	}
	if m.Mode != "" {
		for _, o := range strings.Split(m.Mode, ",") {
			switch o {
			case "ro":
				m.ReadOnly = true
			case "rw":
				m.ReadOnly = false
			case "nocopy":
				if m.Type != MountVolume {
					return Mount{}, errdefs.Invalidf("invalid volume specification: '%s': nocopy applies to volumes only", spec)
				}
				m.NoCopy = true
			case "shared", "rshared", "slave", "rslave", "private", "rprivate":
				if m.Type != MountBind {
					return Mount{}, errdefs.Invalidf("invalid volume specification: '%s': propagation applies to binds only", spec)
				}
				m.Propagation = o
			default:
				return Mount{}, errdefs.Invalidf("invalid mode: %s", o)
			}
		}
	}
	return m, nil
}

// ParseMountFlag parses one --mount value (docker's CSV of key=value).
func ParseMountFlag(spec string) (Mount, error) {
	r := csv.NewReader(strings.NewReader(spec))
	fields, err := r.Read()
	if err != nil {
		return Mount{}, errdefs.Invalidf("invalid --mount %q: %v", spec, err)
	}
	m := Mount{Type: MountVolume, FromMountFlag: true}
	var tmpfsSize, tmpfsMode string
	for _, f := range fields {
		k, v, hasValue := strings.Cut(f, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		boolValue := func() (bool, error) {
			if !hasValue {
				return true, nil
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return false, errdefs.Invalidf("invalid value for %s: %s", k, v)
			}
			return b, nil
		}
		switch k {
		case "type":
			switch v {
			case MountBind, MountVolume, MountTmpfs:
				m.Type = v
			default:
				return Mount{}, errdefs.Invalidf("invalid mount type %q (use bind, volume or tmpfs)", v)
			}
		case "source", "src":
			m.Source = v
		case "target", "destination", "dst":
			m.Target = v
		case "readonly", "ro":
			if m.ReadOnly, err = boolValue(); err != nil {
				return Mount{}, err
			}
		case "volume-nocopy":
			if m.NoCopy, err = boolValue(); err != nil {
				return Mount{}, err
			}
		case "volume-opt":
			ok, ov, found := strings.Cut(v, "=")
			if !found {
				return Mount{}, errdefs.Invalidf("invalid volume-opt %q: want KEY=VALUE", v)
			}
			if m.VolumeOptions == nil {
				m.VolumeOptions = map[string]string{}
			}
			m.VolumeOptions[ok] = ov
		case "bind-propagation":
			switch v {
			case "shared", "rshared", "slave", "rslave", "private", "rprivate":
				m.Propagation = v
			default:
				return Mount{}, errdefs.Invalidf("invalid bind-propagation %q", v)
			}
		case "tmpfs-size":
			tmpfsSize = v
		case "tmpfs-mode":
			tmpfsMode = v
		default:
			return Mount{}, errdefs.Invalidf("unexpected key '%s' in '%s'", k, f)
		}
	}
	if m.Target == "" {
		return Mount{}, errdefs.Invalidf("invalid mount config: target is required")
	}
	if m.Target, err = checkTarget(spec, m.Target); err != nil {
		return Mount{}, err
	}
	switch m.Type {
	case MountBind:
		if m.Source == "" {
			return Mount{}, errdefs.Invalidf("invalid mount config for type \"bind\": field Source must not be empty")
		}
		if !path.IsAbs(m.Source) {
			return Mount{}, errdefs.Invalidf("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", m.Source)
		}
		m.Source = path.Clean(m.Source)
		// --mount, unlike -v, never creates the host path.
		if _, err := os.Stat(m.Source); err != nil {
			return Mount{}, errdefs.Invalidf("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source)
		}
		if m.NoCopy || m.VolumeOptions != nil || tmpfsSize != "" || tmpfsMode != "" {
			return Mount{}, errdefs.Invalidf("invalid mount config for type \"bind\": only bind options apply")
		}
	case MountVolume:
		if m.Source == "" {
			m.Anonymous = true
		} else if err := volume.ValidateName(m.Source); err != nil {
			return Mount{}, err
		}
		if m.Propagation != "" || tmpfsSize != "" || tmpfsMode != "" {
			return Mount{}, errdefs.Invalidf("invalid mount config for type \"volume\": only volume options apply")
		}
	case MountTmpfs:
		if m.Source != "" {
			return Mount{}, errdefs.Invalidf("invalid mount config for type \"tmpfs\": field Source must be empty")
		}
		if m.NoCopy || m.VolumeOptions != nil || m.Propagation != "" {
			return Mount{}, errdefs.Invalidf("invalid mount config for type \"tmpfs\": only tmpfs options apply")
		}
		if tmpfsSize != "" {
			n, err := units.RAMInBytes(tmpfsSize)
			if err != nil || n < 0 {
				return Mount{}, errdefs.Invalidf("invalid tmpfs-size %q", tmpfsSize)
			}
			m.TmpfsOptions = append(m.TmpfsOptions, "size="+strconv.FormatInt(n, 10))
		}
		if tmpfsMode != "" {
			if _, err := strconv.ParseUint(tmpfsMode, 8, 32); err != nil {
				return Mount{}, errdefs.Invalidf("invalid tmpfs-mode %q", tmpfsMode)
			}
			m.TmpfsOptions = append(m.TmpfsOptions, "mode="+tmpfsMode)
		}
	}
	return m, nil
}

// ParseTmpfsFlag parses one --tmpfs value: /CTR[:OPTS], OPTS being mount
// options such as size=64m,mode=1777,noexec.
func ParseTmpfsFlag(spec string) (Mount, error) {
	target, opts, _ := strings.Cut(spec, ":")
	target, err := checkTarget(spec, target)
	if err != nil {
		return Mount{}, err
	}
	m := Mount{Type: MountTmpfs, Target: target}
	if opts != "" {
		for _, o := range strings.Split(opts, ",") {
			k, v, _ := strings.Cut(o, "=")
			switch k {
			case "size":
				n, err := units.RAMInBytes(v)
				if err != nil || n < 0 {
					return Mount{}, errdefs.Invalidf("invalid tmpfs option %q", o)
				}
				o = "size=" + strconv.FormatInt(n, 10)
			case "mode", "uid", "gid", "nr_inodes", "nr_blocks", "noexec", "exec", "nosuid", "suid", "nodev", "dev", "ro", "rw":
			default:
				return Mount{}, errdefs.Invalidf("invalid tmpfs option %q", o)
			}
			m.TmpfsOptions = append(m.TmpfsOptions, o)
		}
	}
	return m, nil
}

// MountFlags are the raw mount flags of create/run.
type MountFlags struct {
	Volumes     []string // -v
	Mounts      []string // --mount
	Tmpfs       []string // --tmpfs
	VolumesFrom []string // --volumes-from C[:ro|rw]
}

// resolveMounts turns the flags, the containers named by --volumes-from
// and the image's VOLUMEs into the container's mounts, docker's way: a
// target given twice is an error; volumes-from and then image VOLUMEs
// fill only targets nobody else took. Volumes are not created here (see
// createVolumes).
func (m *Manager) resolveMounts(f MountFlags, imageVolumes map[string]struct{}) ([]Mount, error) {
	var out []Mount
	taken := map[string]bool{}
	add := func(mt Mount) error {
		if taken[mt.Target] {
			return errdefs.Invalidf("Duplicate mount point: %s", mt.Target)
		}
		taken[mt.Target] = true
		out = append(out, mt)
		return nil
	}
	for _, s := range f.Volumes {
		mt, err := ParseVolumeFlag(s)
		if err != nil {
			return nil, err
		}
		if err := add(mt); err != nil {
			return nil, err
		}
	}
	for _, s := range f.Mounts {
		mt, err := ParseMountFlag(s)
		if err != nil {
			return nil, err
		}
		if err := add(mt); err != nil {
			return nil, err
		}
	}
	for _, s := range f.Tmpfs {
		mt, err := ParseTmpfsFlag(s)
		if err != nil {
			return nil, err
		}
		if err := add(mt); err != nil {
			return nil, err
		}
	}
	for _, s := range f.VolumesFrom {
		ref, mode, _ := strings.Cut(s, ":")
		switch mode {
		case "", "ro", "rw":
		default:
			return nil, errdefs.Invalidf("invalid mode for volumes-from: %s", mode)
		}
		from, err := m.lookup(ref)
		if err != nil {
			return nil, err
		}
		for _, mt := range from.Config.Mounts {
			if mt.Type == MountTmpfs || taken[mt.Target] {
				continue
			}
			mt.Anonymous, mt.FromMountFlag = false, false
			switch mode {
			case "ro":
				mt.ReadOnly = true
			case "rw":
				mt.ReadOnly = false
			}
			taken[mt.Target] = true
			out = append(out, mt)
		}
	}
	targets := make([]string, 0, len(imageVolumes))
	for t := range imageVolumes {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, t := range targets {
		if !path.IsAbs(t) {
			return nil, errdefs.Invalidf("image VOLUME %q is not an absolute path", t)
		}
		t = path.Clean(t)
		if t == "/" || taken[t] {
			continue
		}
		taken[t] = true
		out = append(out, Mount{Type: MountVolume, Target: t, Anonymous: true})
	}
	return out, nil
}

// createVolumes gives each volume mount its volume: a fresh anonymous one,
// or the named one, created on first use.
func (m *Manager) createVolumes(ctx context.Context, mounts []Mount) ([]Mount, error) {
	vols := volume.New(m.store)
	for i, mt := range mounts {
		if mt.Type != MountVolume {
			continue
		}
		if mt.Anonymous && mt.Source == "" {
			name, err := volume.NewAnonymousName()
			if err != nil {
				return nil, err
			}
			mounts[i].Source = name
		}
		_, err := vols.Create(ctx, volume.Volume{Name: mounts[i].Source, Options: mt.VolumeOptions, Anonymous: mt.Anonymous})
		if err != nil {
			return nil, err
		}
	}
	return mounts, nil
}

// discardAnonymousVolumes removes the anonymous volumes a failed create
// made; the caller holds the store lock and no record names them.
func (m *Manager) discardAnonymousVolumes(mounts []Mount) {
	vols := volume.New(m.store)
	for _, mt := range mounts {
		if mt.Type == MountVolume && mt.Anonymous && mt.Source != "" {
			_ = vols.Discard(mt.Source)
		}
	}
}

// RemoveAnonymousVolumes deletes the volumes created for removed container
// c (rm -v) that no other container uses; named volumes are never removed
// implicitly.
func (m *Manager) RemoveAnonymousVolumes(ctx context.Context, c Container) error {
	return m.removeAnonymousVolumes(ctx, c)
}

func (m *Manager) removeAnonymousVolumes(ctx context.Context, c Container) error {
	vols := volume.New(m.store)
	var errs []error
	for _, mt := range c.Config.Mounts {
		if mt.Type != MountVolume || !mt.Anonymous {
			continue
		}
		err := vols.Remove(ctx, mt.Source, m.VolumeUsers)
		var inUse *volume.InUseError
		if err != nil && !errors.As(err, &inUse) && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// VolumeUsers lists the IDs of the containers, in any state, whose mounts
// use volume name.
func (m *Manager) VolumeUsers(name string) ([]string, error) {
	var out []string
	err := m.records().View(func(tx *metadata.Tx) error {
		b := tx.Bucket(containersBucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			c, err := load(tx, string(k))
			if err != nil {
				return err
			}
			for _, mt := range c.Config.Mounts {
				if mt.Type == MountVolume && mt.Source == name {
					out = append(out, c.ID)
					break
				}
			}
			return nil
		})
	})
	return out, err
}

// specMounts prepares c's mounts for a start over the mounted rootfs: a
// volume's content is made ready (a tmpfs volume mounted) and, when the
// volume is still empty, filled with what the image has at the target
// (docker's copy-up: content, owner and mode), unless nocopy. The image
// side is read through the rootfs package, resolved inside the container's
// root, so a VOLUME path through a symlink reads only from the container.
func (m *Manager) specMounts(ctx context.Context, c Container, rootfsDir string) ([]oci.Bind, error) {
	vols := volume.New(m.store)
	var out []oci.Bind
	for _, mt := range c.Config.Mounts {
		b := oci.Bind{Destination: mt.Target, ReadOnly: mt.ReadOnly, Propagation: mt.Propagation}
		switch mt.Type {
		case MountTmpfs:
			b.Type, b.Options = MountTmpfs, mt.TmpfsOptions
		case MountBind:
			b.Source = mt.Source
			// Like docker's -v, a missing host path becomes an empty
			// directory rather than a failed start.
			if _, err := os.Lstat(b.Source); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(b.Source, 0o755); err != nil {
					return nil, fmt.Errorf("create bind source %s: %w", b.Source, err)
				}
			}
		case MountVolume:
			p, err := vols.Mount(mt.Source)
			if err != nil {
				return nil, err
			}
			if !mt.NoCopy {
				if err := copyUp(ctx, vols, mt.Source, rootfsDir, mt.Target); err != nil {
					return nil, fmt.Errorf("copy the image's %s into volume %s: %w", mt.Target, mt.Source, err)
				}
			}
			b.Source = p
		}
		out = append(out, b)
	}
	return out, nil
}

// copyUp fills an empty volume with the image's directory at target.
func copyUp(ctx context.Context, vols *volume.Volumes, name, rootfsDir, target string) error {
	empty, err := vols.IsEmpty(name)
	if err != nil || !empty {
		return err
	}
	root, err := rootfs.Open(rootfsDir)
	if err != nil {
		return err
	}
	defer root.Close()
	st, err := root.Stat(target)
	if err != nil || !rootfs.IsDir(&st) {
		return nil // nothing there, or not a directory: nothing to copy
	}
	dst := vols.Path(name)
	if err := cp.Copy(ctx, cp.Endpoint{Root: rootfsDir, Path: target + "/.", FollowLink: true}, cp.Endpoint{Root: dst, Path: "/"}); err != nil {
		return err
	}
	// The volume's root takes the image directory's owner and mode.
	vr, err := rootfs.Open(dst)
	if err != nil {
		return err
	}
	defer vr.Close()
	fd, err := vr.OpenPath(".", false)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return rootfs.SetOwnerMode(fd, int(st.Uid), int(st.Gid), st.Mode&0o7777)
}

// releaseVolumes lets go of the tmpfs volumes c used that no running
// container uses any more.
func (m *Manager) releaseVolumes(c Container) {
	vols := volume.New(m.store)
	for _, mt := range c.Config.Mounts {
		if mt.Type != MountVolume {
			continue
		}
		if v, err := vols.Get(mt.Source); err != nil || v.Options["type"] != "tmpfs" {
			continue
		}
		users, err := m.VolumeUsers(mt.Source)
		if err != nil {
			continue
		}
		inUse := false
		for _, id := range users {
			if id != c.ID && lockfile.Held(m.lockPath(id)) {
				inUse = true
			}
		}
		if !inUse {
			_ = vols.Release(mt.Source)
		}
	}
}

// Volumes is the store's volumes, as containers use them.
func (m *Manager) Volumes() *volume.Volumes { return volume.New(m.store) }

// CopyRoot is where path p of container c lives for cp, as docker's cp
// sees it: inside the volume or host directory mounted over p (the mount
// with the longest target containing p), else inside rootfs. It returns
// that root, p relative to it (keeping a trailing "/" or "/." that cp's
// rules depend on), and whether the mount is read-only. tmpfs mounts live
// only in the container's mount namespace and are not reached.
func (m *Manager) CopyRoot(c Container, rootfs, p string) (root, rel string, readOnly bool) {
	clean := path.Clean("/" + p)
	var best *Mount
	for i, mt := range c.Config.Mounts {
		if mt.Type != MountVolume && mt.Type != MountBind {
			continue
		}
		t := path.Clean(mt.Target)
		if (clean == t || strings.HasPrefix(clean, t+"/")) && (best == nil || len(t) > len(path.Clean(best.Target))) {
			best = &c.Config.Mounts[i]
		}
	}
	if best == nil {
		return rootfs, p, false
	}
	root = best.Source
	if best.Type == MountVolume {
		root = m.Volumes().Path(best.Source)
	}
	rel = strings.TrimPrefix(clean, path.Clean(best.Target))
	switch {
	case strings.HasSuffix(p, "/."):
		rel = strings.TrimSuffix(rel, "/") + "/."
	case strings.HasSuffix(p, "/") && !strings.HasSuffix(rel, "/"):
		rel += "/"
	}
	if rel == "" {
		rel = "/"
	}
	return root, rel, best.ReadOnly
}
