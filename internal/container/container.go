// Package container keeps container records and runs their lifecycle.
//
// A container is three things that change together:
//   - a record in the metadata file (bucket "containers": ID -> JSON, and
//     "container-names": name -> ID);
//   - an active snapshot, container/<id>, over the image's top layer: the
//     container's writable layer;
//   - a directory, <store>/containers/<id>, which is the OCI bundle
//     (config.json, rootfs/ as the mount point) and holds the hostname,
//     hosts and resolv.conf files, the json-file log and running.lock.
//
// There is no daemon. Whoever runs a container — strata itself for a
// foreground `run`, or a monitor process that strata re-executes for `run -d`
// and `start` — holds an exclusive flock on running.lock for as long as the
// container lives, and is the only writer of its state while it does. Other
// commands learn that a container ended by taking that lock (wait, stop,
// logs -f, rm -f), and a record that says "running" while the lock is free
// belongs to a runner that died: it is reconciled to "exited" when read.
package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/errdefs"
	"github.com/strata-project/strata/internal/events"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/network"
	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/snapshot"
	"github.com/strata-project/strata/internal/store"
	"github.com/strata-project/strata/internal/volume"
)

// Buckets of the metadata file owned by this package.
const (
	containersBucket = "containers"      // ID -> record JSON
	namesBucket      = "container-names" // name -> ID
)

// SnapshotPrefix starts the key of every container's active snapshot.
const SnapshotPrefix = "container/"

// Status is docker's container state name.
type Status string

const (
	StatusCreated Status = "created"
	StatusRunning Status = "running"
	StatusExited  Status = "exited"
)

// Config is what `create`/`run` were given, kept so that every start of the
// container runs the same thing.
type Config struct {
	Cmd           []string `json:"cmd,omitempty"`
	Entrypoint    []string `json:"entrypoint,omitempty"`
	EntrypointSet bool     `json:"entrypointSet,omitempty"`
	Env           []string `json:"env,omitempty"` // KEY=VALUE, host values already resolved
	WorkingDir    string   `json:"workingDir,omitempty"`
	User          string   `json:"user,omitempty"`
	Hostname      string   `json:"hostname,omitempty"`
	Binds         []string `json:"binds,omitempty"` // HOST:CTR[:ro], validated at create
	// Network is "default" (docker's name for no --network: bridge),
	// network.Bridge, Host, None or "container:<id>". Records from before
	// strata had networks say "" for host.
	Network string `json:"network,omitempty"`
	// PortBindings are the -p values as given (docker's
	// HostConfig.PortBindings); PublishAll is -P; ExposedPorts --expose.
	PortBindings network.PortMap `json:"portBindings,omitempty"`
	PublishAll   bool            `json:"publishAll,omitempty"`
	ExposedPorts []network.Port  `json:"exposedPorts,omitempty"`
	// Name resolution as --add-host (NAME:IP, NAME:host-gateway), --dns,
	// --dns-search, --dns-option and --domainname gave it.
	ExtraHosts []string `json:"extraHosts,omitempty"`
	DNS        []string `json:"dns,omitempty"`
	DNSSearch  []string `json:"dnsSearch,omitempty"`
	DNSOptions []string `json:"dnsOptions,omitempty"`
	Domainname string   `json:"domainname,omitempty"`
	ReadOnly   bool     `json:"readOnly,omitempty"`
	Tty        bool     `json:"tty,omitempty"`
	OpenStdin  bool     `json:"openStdin,omitempty"`
	AutoRemove bool     `json:"autoRemove,omitempty"`
	Runtime    string   `json:"runtime,omitempty"` // "runc" or "crun"
	// Labels are --label's, over the image's.
	Labels map[string]string `json:"labels,omitempty"`
	// Healthcheck is --health-* and --no-healthcheck (Test ["NONE"]),
	// over the image's HEALTHCHECK field by field.
	Healthcheck *dockerspec.HealthcheckConfig `json:"healthcheck,omitempty"`
	// Security is --privileged, --cap-add/--cap-drop, --security-opt,
	// --device, --group-add and --sysctl, validated at create.
	Security oci.Security `json:"security,omitzero"`
	// Resources are the limits of run/create and update.
	Resources oci.Resources `json:"resources,omitzero"`
	// Log is --log-driver and --log-opt, validated at create.
	Log LogConfig `json:"log,omitzero"`

	RestartPolicy RestartPolicy `json:"restartPolicy,omitzero"`
	StopSignal    string        `json:"stopSignal,omitempty"`  // over the image's
	StopTimeout   *int          `json:"stopTimeout,omitempty"` // seconds; nil: 10
	Init          bool          `json:"init,omitempty"`        // tini as PID 1
	CIDFile       string        `json:"cidFile,omitempty"`     // --cidfile, as given
	// --mount, --tmpfs and --volumes-from as given (-v is Binds).
	MountSpecs  []string `json:"mountSpecs,omitempty"`
	Tmpfs       []string `json:"tmpfs,omitempty"`
	VolumesFrom []string `json:"volumesFrom,omitempty"`
	// Mounts are all of them resolved at create, the image's VOLUMEs
	// included: what every start mounts. A record without them (made
	// before strata had volumes) mounts its Binds.
	Mounts []Mount `json:"mounts,omitempty"`
}

func (c Config) mountFlags() MountFlags {
	return MountFlags{Volumes: c.Binds, Mounts: c.MountSpecs, Tmpfs: c.Tmpfs, VolumesFrom: c.VolumesFrom}
}

// State is the container's lifecycle state.
type State struct {
	Status     Status    `json:"status"`
	Pid        int       `json:"pid,omitempty"`
	ExitCode   int       `json:"exitCode"`
	OOMKilled  bool      `json:"oomKilled,omitempty"` // the kernel's OOM killer killed a process of it
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	Error      string    `json:"error,omitempty"` // why the last start failed
	// Ports are the published ports with the host ports they got, while
	// the container runs; PastaPid is the pasta serving them.
	Ports    network.PortMap `json:"ports,omitempty"`
	PastaPid int             `json:"pastaPid,omitempty"`
	// Paused: its processes are frozen (Status stays running, as docker's).
	Paused bool `json:"paused,omitempty"`
	// Restarting: it exited and its monitor waits to start it again
	// (Status stays running, as docker's).
	Restarting bool `json:"restarting,omitempty"`
	// Health is the health check's state; nil without one.
	Health *Health `json:"health,omitempty"`
}

// Container is one container record.
type Container struct {
	ID          string        `json:"id"` // 64 hex digits
	Name        string        `json:"name"`
	Image       digest.Digest `json:"image"`    // image ID
	ImageRef    string        `json:"imageRef"` // the image as the user named it
	SnapshotKey string        `json:"snapshotKey"`
	Created     time.Time     `json:"created"`
	Config      Config        `json:"config"`
	// ImageConfig is the image's config as it was at create: the container
	// keeps running the same thing even if the image is removed (rmi -f).
	ImageConfig image.RunConfig `json:"imageConfig"`
	State       State           `json:"state"`
	// RestartCount counts the restarts of its policy since the last start
	// by the user.
	RestartCount int `json:"restartCount,omitempty"`
	// ManuallyStopped is set by stop and kill: the restart policy then
	// leaves it stopped until the user starts it.
	ManuallyStopped bool `json:"manuallyStopped,omitempty"`
}

// Labels are the image's labels with the container's over them.
func (c Container) Labels() map[string]string {
	out := map[string]string{}
	for k, v := range c.ImageConfig.Labels {
		out[k] = v
	}
	for k, v := range c.Config.Labels {
		out[k] = v
	}
	return out
}

// ShortID is the 12-digit form of the ID that docker prints.
func (c Container) ShortID() string { return c.ID[:12] }

// ErrRunning is returned for operations that need a stopped container.
var ErrRunning = fmt.Errorf("container is running: %w", errdefs.ErrConflict)

// ErrNotRunning is returned for operations that need a running container.
var ErrNotRunning = fmt.Errorf("container is not running: %w", errdefs.ErrConflict)

// Store is what containers need of the store: their records and files
// under its root, the images they are made from, the snapshots they run
// on and the layer store to diff them, the shared lock for creation, and
// volumes.
type Store interface {
	volume.Store
	Images() *image.Store
	Snapshots() snapshot.Snapshotter
	Layers() *layer.Store
	Shared(ctx context.Context, fn func() error) error
}

// Manager owns the containers of one store.
type Manager struct {
	store          Store
	defaultRuntime string
	events         *events.Log
}

// NewManager returns the manager of s's containers. runtimeName is the OCI
// runtime given to containers created without one ("" means runc).
func NewManager(s Store, runtimeName string) *Manager {
	if runtimeName == "" {
		runtimeName = "runc"
	}
	return &Manager{store: s, defaultRuntime: runtimeName, events: events.Open(s.Root())}
}

// Dir is the container's directory: the bundle and its files.
func (m *Manager) Dir(id string) string {
	return filepath.Join(m.store.Root(), "containers", id)
}

// RootfsDir is where the container's root filesystem is mounted while it runs.
func (m *Manager) RootfsDir(id string) string { return filepath.Join(m.Dir(id), "rootfs") }

// LogPath is the container's json-file log.
func (m *Manager) LogPath(id string) string {
	return filepath.Join(m.Dir(id), id+"-json.log")
}

// lockPath is the running lock: the runner holds it exclusively for as long
// as the container runs (see package lockfile), so the kernel releases it
// when the runner dies, however it dies. wait, stop and logs -f learn of
// the exit by taking it.
func (m *Manager) lockPath(id string) string { return filepath.Join(m.Dir(id), "running.lock") }

// runtimeRoot is the runtime's --root: per store, so two stores (or test
// runs) never see each other's containers.
func (m *Manager) runtimeRoot(name string) string {
	return filepath.Join(m.store.Root(), "runtime", name)
}

// Get finds a container by full ID, name, or unique ID prefix. A record
// that says running but whose runner is gone is reconciled first.
func (m *Manager) Get(ctx context.Context, ref string) (Container, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return Container{}, err
	}
	return m.reconcile(ctx, c)
}

// lookup reads the record ref names, as stored.
func (m *Manager) lookup(ref string) (Container, error) {
	var c Container
	err := m.records().View(func(tx *metadata.Tx) error {
		id, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		c, err = load(tx, id)
		return err
	})
	return c, err
}

func resolve(tx *metadata.Tx, ref string) (string, error) {
	name := strings.TrimPrefix(ref, "/")
	if name == "" {
		return "", errdefs.NotFound("container", ref)
	}
	if nb := tx.Bucket(namesBucket); nb != nil {
		if id := nb.Get([]byte(name)); id != nil {
			return string(id), nil
		}
	}
	cb := tx.Bucket(containersBucket)
	if cb == nil || !isHex(ref) {
		return "", errdefs.NotFound("container", ref)
	}
	var found []string
	c := cb.Cursor()
	for k, _ := c.Seek([]byte(ref)); k != nil && strings.HasPrefix(string(k), ref); k, _ = c.Next() {
		found = append(found, string(k))
	}
	switch len(found) {
	case 0:
		return "", errdefs.NotFound("container", ref)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("multiple IDs found with provided prefix: %s", ref)
}

var hexRE = regexp.MustCompile(`^[0-9a-f]+$`)

func isHex(s string) bool { return hexRE.MatchString(s) }

func load(tx *metadata.Tx, id string) (Container, error) {
	cb := tx.Bucket(containersBucket)
	if cb == nil {
		return Container{}, errdefs.NotFound("container", id)
	}
	v := cb.Get([]byte(id))
	if v == nil {
		return Container{}, errdefs.NotFound("container", id)
	}
	var c Container
	if err := json.Unmarshal(v, &c); err != nil {
		return Container{}, fmt.Errorf("decode container %s: %w", id, err)
	}
	return c, nil
}

func put(tx *metadata.Tx, c Container) error {
	cb, err := tx.CreateBucket(containersBucket)
	if err != nil {
		return err
	}
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode container %s: %w", c.ID, err)
	}
	return cb.Put([]byte(c.ID), v)
}

// setState records st for container id (which must still exist).
func (m *Manager) setState(id string, st State) error {
	return m.updateRecord(id, func(c *Container) error {
		c.State = st
		return nil
	})
}

// updateRecord changes the record of id with fn in one transaction.
func (m *Manager) updateRecord(id string, fn func(*Container) error) error {
	return m.records().Update(func(tx *metadata.Tx) error {
		c, err := load(tx, id)
		if err != nil {
			return err
		}
		if err := fn(&c); err != nil {
			return err
		}
		return put(tx, c)
	})
}

// List returns every container, newest first, reconciled like Get.
func (m *Manager) List(ctx context.Context) ([]Container, error) {
	out, err := m.listRecords()
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i], err = m.reconcile(ctx, out[i]); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Count is the number of containers (for `info`).
func (m *Manager) Count(ctx context.Context) (int, error) {
	n := 0
	err := m.records().View(func(tx *metadata.Tx) error {
		if cb := tx.Bucket(containersBucket); cb != nil {
			n = cb.Stats().KeyN
		}
		return nil
	})
	return n, err
}

// ImageRoots reports the images containers were made from: GC roots, so
// that no removal takes an image from under a container. Its signature
// fits store.RootSource; a container's name is its Root.What.
func (m *Manager) ImageRoots(ctx context.Context) (map[digest.Digest]store.Root, error) {
	all, err := m.listRecords()
	if err != nil {
		return nil, err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name > all[j].Name })
	out := map[digest.Digest]store.Root{}
	for _, c := range all {
		out[c.Image] = store.Root{Kind: store.RootContainer, What: c.Name}
	}
	return out, nil
}

func (m *Manager) listRecords() ([]Container, error) {
	var out []Container
	err := m.records().View(func(tx *metadata.Tx) error {
		cb := tx.Bucket(containersBucket)
		if cb == nil {
			return nil
		}
		return cb.ForEach(func(k, v []byte) error {
			var c Container
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode container %s: %w", k, err)
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// newID returns 64 random hex digits that are not all digits (docker avoids
// those too: a numeric short ID reads like a number in scripts).
func newID() (string, error) {
	for {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("container id: %w", err)
		}
		id := hex.EncodeToString(b[:])
		if strings.ContainsAny(id[:12], "abcdef") {
			return id, nil
		}
	}
}

// Remove-side helper: the record and its name go in one transaction.
func (m *Manager) deleteRecord(c Container) error {
	return m.records().Update(func(tx *metadata.Tx) error {
		if cb := tx.Bucket(containersBucket); cb != nil {
			if err := cb.Delete([]byte(c.ID)); err != nil {
				return err
			}
		}
		if nb := tx.Bucket(namesBucket); nb != nil {
			if id := nb.Get([]byte(c.Name)); string(id) == c.ID {
				if err := nb.Delete([]byte(c.Name)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// records is where containers keep their records and names.
func (m *Manager) records() *metadata.Scope { return m.store.Records(containersBucket, namesBucket) }
