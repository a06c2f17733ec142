// Package volume keeps named volumes: a directory under the store,
// <root>/volumes/NAME/_data, and a record in the metadata database (bucket
// "volumes": name -> JSON). Anonymous volumes are volumes with a generated
// 64-hex name, marked anonymous, owned by the container that made them.
// A volume is never part of a layer: containers get it bind-mounted by the
// runtime, so commit, diff and export never see its contents.
//
// The local driver's options are docker's: none (a plain directory), or
// type=tmpfs,device=tmpfs,o=size=..., a tmpfs mounted on _data the first
// time a container uses it and unmounted when the volume is removed.
package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/errdefs"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/store"
)

const bucket = "volumes"

// DriverLocal is the only driver: directories (or tmpfs) on this host.
const DriverLocal = "local"

// Volume is one volume's record.
type Volume struct {
	Name      string            `json:"name"`
	Driver    string            `json:"driver"`
	CreatedAt time.Time         `json:"createdAt"`
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
	Anonymous bool              `json:"anonymous,omitempty"`
}

// ErrNotFound is wrapped by lookups of a volume that does not exist.
var ErrNotFound = fmt.Errorf("no such volume: %w", metadata.ErrNotFound)

type notFound struct{ name string }

func (e notFound) Error() string { return "No such volume: " + e.name }
func (e notFound) Unwrap() error { return ErrNotFound }

// InUseError is a volume that containers use.
type InUseError struct {
	Name       string
	Containers []string // IDs
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("remove %s: volume is in use - [%s]", e.Name, strings.Join(e.Containers, ", "))
}

// Is makes an InUseError of kind ErrConflict.
func (e *InUseError) Is(target error) bool { return target == errdefs.ErrConflict }

// Store is what volumes need of the store: a directory for their content,
// their own records, the removal lock and the deletion owner.
type Store interface {
	Root() string
	Records(buckets ...string) *metadata.Scope
	Exclusive(ctx context.Context, fn func() error) error
	PruneVolumes(ctx context.Context, vs store.VolumeSet, o store.VolumePruneOptions) (removed []string, freed int64, err error)
}

// Volumes are the volumes of one store.
type Volumes struct {
	s Store
}

// New returns s's volumes.
func New(s Store) *Volumes { return &Volumes{s: s} }

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ValidateName refuses names that are not docker's (which also keeps a
// name from ever being a path: no "/", no "..").
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return errdefs.Invalidf("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name, name)
	}
	return nil
}

// validateOptions checks the local driver's options: type, device and o,
// for tmpfs only (docker's other types mount arbitrary devices).
func validateOptions(opts map[string]string) error {
	for k := range opts {
		switch k {
		case "type", "device", "o":
		default:
			return errdefs.Invalidf("invalid option: %q", k)
		}
	}
	if len(opts) == 0 {
		return nil
	}
	if opts["type"] != "tmpfs" {
		return errdefs.Invalidf("volume option type=%q is not supported by strata's local driver (only type=tmpfs)", opts["type"])
	}
	if d := opts["device"]; d != "" && d != "tmpfs" {
		return errdefs.Invalidf("a tmpfs volume's device must be tmpfs, not %q", d)
	}
	for _, o := range strings.Split(opts["o"], ",") {
		k, _, _ := strings.Cut(o, "=")
		switch k {
		case "", "size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "noexec", "nosuid", "nodev", "exec", "suid", "dev", "ro", "rw":
		default:
			return errdefs.Invalidf("tmpfs volume option o=%q: unknown option %q", opts["o"], k)
		}
	}
	return nil
}

// Dir is the volume's directory; its content lives in Dir/_data.
func (v *Volumes) Dir(name string) string { return filepath.Join(v.s.Root(), "volumes", name) }

// Path is where the volume's content is (docker's Mountpoint).
func (v *Volumes) Path(name string) string { return filepath.Join(v.Dir(name), "_data") }

// NewAnonymousName is a fresh anonymous volume's name.
func NewAnonymousName() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// Create makes the volume, or returns the existing one of that name (as
// docker does, when the driver and options agree).
func (v *Volumes) Create(ctx context.Context, vol Volume) (Volume, error) {
	if vol.Driver == "" {
		vol.Driver = DriverLocal
	}
	if vol.Driver != DriverLocal {
		return Volume{}, errdefs.Invalidf("volume driver %q is not supported (only %q)", vol.Driver, DriverLocal)
	}
	if err := ValidateName(vol.Name); err != nil {
		return Volume{}, err
	}
	if err := validateOptions(vol.Options); err != nil {
		return Volume{}, err
	}
	var out Volume
	err := v.records().Update(func(tx *metadata.Tx) error {
		b, err := tx.CreateBucket(bucket)
		if err != nil {
			return err
		}
		if cur := b.Get([]byte(vol.Name)); cur != nil {
			if err := json.Unmarshal(cur, &out); err != nil {
				return err
			}
			if len(vol.Options) > 0 && !sameOptions(out.Options, vol.Options) {
				return fmt.Errorf("create %s: volume already exists with different options: %w", vol.Name, errdefs.ErrConflict)
			}
			return nil
		}
		if err := os.MkdirAll(v.Path(vol.Name), 0o755); err != nil {
			return fmt.Errorf("create volume %s: %w", vol.Name, err)
		}
		vol.CreatedAt = time.Now().UTC().Truncate(time.Second)
		data, err := json.Marshal(vol)
		if err != nil {
			return err
		}
		out = vol
		return b.Put([]byte(vol.Name), data)
	})
	return out, err
}

func sameOptions(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Get returns the named volume.
func (v *Volumes) Get(name string) (Volume, error) {
	var vol Volume
	err := v.records().View(func(tx *metadata.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return notFound{name}
		}
		data := b.Get([]byte(name))
		if data == nil {
			return notFound{name}
		}
		return json.Unmarshal(data, &vol)
	})
	return vol, err
}

// List returns every volume, by name.
func (v *Volumes) List() ([]Volume, error) {
	var out []Volume
	err := v.records().View(func(tx *metadata.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, data []byte) error {
			var vol Volume
			if err := json.Unmarshal(data, &vol); err != nil {
				return err
			}
			out = append(out, vol)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// Remove deletes the volume and its content. users lists the containers
// that use it, under the store's exclusive lock so no container creation
// races it; a volume in use is refused.
func (v *Volumes) Remove(ctx context.Context, name string, users func(name string) ([]string, error)) error {
	return v.s.Exclusive(ctx, func() error {
		if _, err := v.Get(name); err != nil {
			return err
		}
		ids, err := users(name)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			return &InUseError{Name: name, Containers: ids}
		}
		return v.removeLocked(name)
	})
}

// Discard removes a volume that its creator found it cannot use (a failed
// container create): no user check, the caller holds the store lock.
func (v *Volumes) Discard(name string) error { return v.removeLocked(name) }

func (v *Volumes) removeLocked(name string) error {
	p := v.Path(name)
	if mounted, _ := mountinfo.Mounted(p); mounted {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("remove volume %s: unmount: %w", name, err)
		}
	}
	if err := os.RemoveAll(v.Dir(name)); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return v.records().Update(func(tx *metadata.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.Delete([]byte(name))
	})
}

// Prune removes the volumes no container uses: only anonymous ones unless
// all (docker 23's rule), and those matching keep() only. The store's
// deletion owner decides which go. It returns the names removed and the
// bytes freed.
func (v *Volumes) Prune(ctx context.Context, all bool, keep func(Volume) bool, users func(name string) ([]string, error)) ([]string, int64, error) {
	set := &pruneSet{v: v, byName: map[string]Volume{}}
	return v.s.PruneVolumes(ctx, set, store.VolumePruneOptions{
		All:   all,
		Match: func(name string) bool { return keep == nil || keep(set.byName[name]) },
		Users: users,
	})
}

// pruneSet shows the volumes to the deletion owner.
type pruneSet struct {
	v      *Volumes
	byName map[string]Volume
}

func (p *pruneSet) Candidates() ([]store.VolumeCandidate, error) {
	vols, err := p.v.List()
	if err != nil {
		return nil, err
	}
	out := make([]store.VolumeCandidate, len(vols))
	for i, vol := range vols {
		p.byName[vol.Name] = vol
		out[i] = store.VolumeCandidate{Name: vol.Name, Anonymous: vol.Anonymous}
	}
	return out, nil
}

func (p *pruneSet) Remove(name string) (int64, error) {
	size := p.v.Size(name)
	return size, p.v.removeLocked(name)
}

// Size is the disk space of the volume's content (allocated blocks).
func (v *Volumes) Size(name string) int64 {
	var total int64
	_ = filepath.WalkDir(v.Path(name), func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				total += st.Blocks * 512
			}
		}
		return nil
	})
	return total
}

// Mount makes the volume's content ready for a container and returns its
// path: a tmpfs volume gets its tmpfs mounted on _data the first time.
func (v *Volumes) Mount(name string) (string, error) {
	vol, err := v.Get(name)
	if err != nil {
		return "", err
	}
	p := v.Path(name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return "", err
	}
	if vol.Options["type"] != "tmpfs" {
		return p, nil
	}
	if mounted, err := mountinfo.Mounted(p); err != nil || mounted {
		return p, err
	}
	if err := unix.Mount("tmpfs", p, "tmpfs", 0, vol.Options["o"]); err != nil {
		return "", fmt.Errorf("mount tmpfs volume %s: %w", name, err)
	}
	return p, nil
}

// Release unmounts a tmpfs volume's tmpfs, whose content then goes as
// docker's does when its last container stops; a plain volume keeps its
// directory and nothing happens.
func (v *Volumes) Release(name string) error {
	p := v.Path(name)
	if mounted, err := mountinfo.Mounted(p); err != nil || !mounted {
		return err
	}
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount tmpfs volume %s: %w", name, err)
	}
	return nil
}

// IsEmpty tells whether the volume has no content yet (copy-up fills only
// an empty volume, as docker does).
func (v *Volumes) IsEmpty(name string) (bool, error) {
	f, err := os.Open(v.Path(name))
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}

// records is where volumes keep their records.
func (v *Volumes) records() *metadata.Scope { return v.s.Records(bucket) }
