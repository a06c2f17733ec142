package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-project/strata/internal/errdefs"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/netconf"
	"github.com/strata-project/strata/internal/network"
	"github.com/strata-project/strata/internal/oci"
)

// Create makes a container from image imageRef: its record, its writable
// snapshot and its directory. name "" picks a random one.
func (m *Manager) Create(ctx context.Context, imageRef, name string, cfg Config) (Container, error) {
	if name != "" {
		if err := ValidateName(name); err != nil {
			return Container{}, err
		}
	}
	// Checked before anything is made: the image's VOLUMEs join later.
	if _, err := m.resolveMounts(cfg.mountFlags(), nil); err != nil {
		return Container{}, err
	}
	mode, ref, err := network.ParseMode(cfg.Network)
	if err != nil {
		return Container{}, err
	}
	if cfg.Network == "" {
		cfg.Network = "default" // docker's NetworkMode when none is given
	} else {
		cfg.Network = mode
	}
	switch mode {
	case network.Host:
		// As docker: published ports mean nothing on the host's network
		// (the CLI warns).
		cfg.PortBindings, cfg.PublishAll = nil, false
	case network.ContainerPrefix:
		if len(cfg.PortBindings) > 0 || cfg.PublishAll {
			return Container{}, errors.New("conflicting options: port publishing and the container type network mode")
		}
		if cfg.Hostname != "" {
			return Container{}, errors.New("conflicting options: hostname and the network mode")
		}
		if len(cfg.DNS)+len(cfg.DNSSearch)+len(cfg.DNSOptions) > 0 {
			return Container{}, errors.New("conflicting options: dns and the network mode")
		}
		if len(cfg.ExtraHosts) > 0 {
			return Container{}, errors.New("conflicting options: custom host-to-IP mapping and the network mode")
		}
		other, err := m.lookup(ref)
		if err != nil {
			return Container{}, err
		}
		cfg.Network = network.ContainerPrefix + other.ID
		cfg.Hostname = other.Config.Hostname // and its files, at start
	}
	if err := cfg.Security.Validate(cfg.Network == oci.NetworkHost); err != nil {
		return Container{}, err
	}
	if err := cfg.Resources.Validate(); err != nil {
		return Container{}, err
	}
	if cfg.WorkingDir != "" && !path.IsAbs(cfg.WorkingDir) {
		// docker refuses it at create, not at the first start.
		return Container{}, errdefs.Invalidf("working directory %q is invalid, it needs to be an absolute path", cfg.WorkingDir)
	}
	if err := cfg.Log.Validate(); err != nil {
		return Container{}, err
	}
	if cfg.AutoRemove && !cfg.RestartPolicy.IsNone() {
		return Container{}, errdefs.Invalidf("Conflicting options: --restart and --rm")
	}
	if cfg.StopSignal != "" {
		if _, err := oci.ParseSignal(cfg.StopSignal); err != nil {
			return Container{}, err
		}
	}
	if cfg.Init {
		if _, err := oci.InitBinary(); err != nil {
			return Container{}, err
		}
	}
	if cfg.Runtime == "" {
		cfg.Runtime = m.defaultRuntime
	}
	id, err := newID()
	if err != nil {
		return Container{}, err
	}
	var c Container
	// Shared: rmi (exclusive) must not delete the image between our lookup
	// and the snapshot that pins its layers.
	err = m.store.Shared(ctx, func() error {
		img, err := m.store.Images().Get(ctx, imageRef)
		if err != nil {
			return err
		}
		if _, err := oci.Args(img.Config.Config.ImageConfig, cfg.Entrypoint, cfg.EntrypointSet, cfg.Cmd); err != nil {
			return err
		}
		if cfg.Hostname == "" {
			cfg.Hostname = defaultHostname(id, cfg.Network)
		}
		if cfg.Mounts, err = m.resolveMounts(cfg.mountFlags(), img.Config.Config.Volumes); err != nil {
			return err
		}
		// Named volumes are created on first use, anonymous ones for
		// this container; under the shared store lock, so no volume rm
		// (exclusive) removes one before the record below names it.
		if cfg.Mounts, err = m.createVolumes(ctx, cfg.Mounts); err != nil {
			m.discardAnonymousVolumes(cfg.Mounts)
			return err
		}
		c = Container{
			ID: id, Name: name, Image: img.ID, ImageRef: imageRef,
			SnapshotKey: SnapshotPrefix + id, Created: time.Now().UTC(),
			Config: cfg, ImageConfig: img.Config.Config,
			State: State{Status: StatusCreated},
		}
		if c.Name, err = m.reserve(c); err != nil {
			m.discardAnonymousVolumes(cfg.Mounts)
			return err
		}
		if err := m.prepare(ctx, c, string(image.ChainID(img.Config.RootFS.DiffIDs))); err != nil {
			m.discard(context.WithoutCancel(ctx), c)
			m.discardAnonymousVolumes(cfg.Mounts)
			return err
		}
		return nil
	})
	if err == nil {
		m.event(c, "create", nil)
	}
	return c, err
}

// nameInUse is a container name another container holds, in docker's
// words (create, run and rename say the same).
type nameInUse struct{ name, id string }

func (e nameInUse) Error() string {
	return fmt.Sprintf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", "/"+e.name, e.id)
}

func (e nameInUse) Unwrap() []error { return []error{metadata.ErrExists, errdefs.ErrConflict} }

// reserve stores the record and its name in one transaction, so two creates
// can never take one name. It returns the name it took.
func (m *Manager) reserve(c Container) (string, error) {
	random := c.Name == ""
	for attempt := 0; ; attempt++ {
		if random {
			c.Name = randomName(attempt)
		}
		err := m.records().Update(func(tx *metadata.Tx) error {
			nb, err := tx.CreateBucket(namesBucket)
			if err != nil {
				return err
			}
			if other := nb.Get([]byte(c.Name)); other != nil {
				return nameInUse{name: c.Name, id: string(other)}
			}
			if err := nb.Put([]byte(c.Name), []byte(c.ID)); err != nil {
				return err
			}
			return put(tx, c)
		})
		if err == nil || !random || !errors.Is(err, metadata.ErrExists) || attempt > 20 {
			return c.Name, err
		}
	}
}

// prepare makes the writable snapshot and the container directory.
func (m *Manager) prepare(ctx context.Context, c Container, parent string) error {
	initSnap, err := m.prepareInit(ctx, c.ID, parent)
	if err != nil {
		return err
	}
	if _, err := m.store.Snapshots().Prepare(ctx, c.SnapshotKey, initSnap); err != nil {
		return fmt.Errorf("create container layer: %w", err)
	}
	dir := m.Dir(c.ID)
	if err := os.MkdirAll(filepath.Join(dir, "rootfs"), 0o700); err != nil {
		return fmt.Errorf("create container dir: %w", err)
	}
	hosts, err := extraHosts(c.Config)
	if err != nil {
		return err
	}
	files, err := netconf.Make(netconf.Config{
		HostNetwork: c.Config.Network == oci.NetworkHost,
		Hostname:    c.Config.Hostname, Domainname: c.Config.Domainname,
		DNS: c.Config.DNS, DNSSearch: c.Config.DNSSearch, DNSOptions: c.Config.DNSOptions,
		ExtraHosts: hosts,
	}, netconf.ReadHost())
	if err != nil {
		return err
	}
	if _, err := files.Write(dir); err != nil {
		return fmt.Errorf("container network files: %w", err)
	}
	return nil
}

// discard undoes a half-made create, best effort.
func (m *Manager) discard(ctx context.Context, c Container) {
	_ = m.store.Snapshots().Remove(ctx, c.SnapshotKey)
	_ = m.store.Snapshots().Remove(ctx, initName(c.ID))
	_ = os.RemoveAll(m.Dir(c.ID))
	_ = m.deleteRecord(c)
}

// defaultHostname is docker's: the host's own name on the host network,
// otherwise the short container ID.
func defaultHostname(id, network string) string {
	if network == oci.NetworkHost {
		if h, err := os.Hostname(); err == nil && h != "" {
			return h
		}
	}
	return id[:12]
}

// extraHosts parses --add-host values. host-gateway is the address at
// which the container reaches the host: its own loopback on the host's
// network, else the gateway address pasta maps to the host's loopback.
func extraHosts(cfg Config) ([]netconf.Host, error) {
	var out []netconf.Host
	for _, e := range cfg.ExtraHosts {
		if name, ok := hostGatewayName(e); ok {
			ip := "127.0.0.1"
			if cfg.Network != oci.NetworkHost {
				if ip = network.HostAddress().Gateway; ip == "" {
					return nil, fmt.Errorf("--add-host %s: the host has no IPv4 default route to map host-gateway to", e)
				}
			}
			e = name + ":" + ip
		}
		h, err := netconf.ParseHost(e)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// hostGatewayName is NAME when e is NAME:host-gateway (or NAME=...).
func hostGatewayName(e string) (string, bool) {
	for _, sep := range []string{"=", ":"} {
		if name, v, ok := strings.Cut(e, sep); ok && v == network.HostGateway {
			return name, true
		}
	}
	return "", false
}
