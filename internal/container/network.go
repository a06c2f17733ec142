package container

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/network"
)

// NetnsPath is where container id's network namespace is bound while it
// runs (bridge mode): docker's SandboxKey.
func (m *Manager) NetnsPath(id string) string {
	return filepath.Join(m.store.Root(), "run", "netns", id)
}

// runNet is the network of one run of a container.
type runNet struct {
	mode   string         // network.Bridge, Host, None or ContainerPrefix
	netns  string         // namespace path the spec joins; "" for host/none
	own    bool           // netns is this run's: removed at the end
	pasta  *network.Pasta // bridge: connects netns, forwards ports
	ports  network.PortMap
	shared *Container // container: mode: whose network this is
}

// startNetwork sets up c's network for one run: for the default mode, a
// namespace and pasta, started now and awaited (ready) just before the
// container's process starts, so both overlap the runtime's create. Host
// ports are bound first, so a taken one fails the start before anything
// else happens.
func (m *Manager) startNetwork(ctx context.Context, c Container) (*runNet, error) {
	mode, ref, err := network.ParseMode(c.Config.Network)
	if c.Config.Network == "" {
		mode = network.Host // records from before strata had networks
	}
	if err != nil {
		return nil, err
	}
	n := &runNet{mode: mode}
	switch mode {
	case network.Host, network.None:
		return n, nil
	case network.ContainerPrefix:
		return n, m.joinNetwork(ctx, n, ref)
	}
	ns := m.NetnsPath(c.ID)
	// A runner that died left these; pasta leaves with the file.
	m.removeNetwork(c)
	alloc, err := network.Allocate(publishedPorts(c))
	if err != nil {
		return nil, err
	}
	defer alloc.Release()
	if err := network.CreateNamespace(ns); err != nil {
		return nil, err
	}
	n.netns, n.own, n.ports = ns, true, alloc.Ports
	alloc.Release()
	mapGW := false
	for _, e := range c.Config.ExtraHosts {
		_, ok := hostGatewayName(e)
		mapGW = mapGW || ok
	}
	n.pasta, err = network.StartPasta(network.PastaOptions{Namespace: ns, Ports: alloc.Ports, MapGateway: mapGW})
	if err != nil {
		n.stop()
		return nil, err
	}
	return n, nil
}

// joinNetwork makes n share the network of the running container ref.
func (m *Manager) joinNetwork(ctx context.Context, n *runNet, ref string) error {
	other, err := m.Get(ctx, ref)
	if err != nil {
		return err
	}
	if other.State.Status != StatusRunning || other.State.Pid == 0 {
		return fmt.Errorf("cannot join network of a non running container: %s", other.ID[:12])
	}
	n.shared = &other
	switch omode, _, _ := network.ParseMode(other.Config.Network); {
	case other.Config.Network == "" || omode == network.Host:
		n.mode = network.Host
	case omode == network.Bridge:
		n.netns = m.NetnsPath(other.ID)
	default:
		n.netns = "/proc/" + strconv.Itoa(other.State.Pid) + "/ns/net"
	}
	return nil
}

// publishedPorts is what c publishes: its -p bindings and, with -P, every
// exposed port (the image's, --expose's) that has none, on a free port.
func publishedPorts(c Container) network.PortMap {
	out := network.PortMap{}
	out.Merge(c.Config.PortBindings)
	if c.Config.PublishAll {
		for _, p := range exposedPorts(c) {
			if _, ok := out[p]; !ok {
				out[p] = []network.Binding{{}}
			}
		}
	}
	return out
}

// exposedPorts are the image's EXPOSEd ports plus the container's own
// (--expose, -p), sorted.
func exposedPorts(c Container) []network.Port {
	seen := map[network.Port]bool{}
	var out []network.Port
	add := func(p network.Port) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for k := range c.ImageConfig.ExposedPorts {
		if p, err := network.ParsePort(k); err == nil {
			add(p)
		}
	}
	for _, p := range c.Config.ExposedPorts {
		add(p)
	}
	for p := range c.Config.PortBindings {
		add(p)
	}
	network.SortPorts(out)
	return out
}

// ExposedPorts are c's exposed ports: the image's and its own.
func (c Container) ExposedPorts() []network.Port { return exposedPorts(c) }

// ready waits for pasta, if any, to be ready.
func (n *runNet) ready(ctx context.Context) error {
	if n == nil || n.pasta == nil {
		return nil
	}
	if err := n.pasta.Ready(ctx); err != nil {
		return err
	}
	return nil
}

// stop ends pasta (freeing the published ports) and removes the namespace
// the run made. It may be called more than once.
func (n *runNet) stop() {
	if n == nil {
		return
	}
	if n.pasta != nil {
		n.pasta.Stop()
		n.pasta = nil
	}
	if n.own && n.netns != "" {
		_ = network.RemoveNamespace(n.netns)
		n.own = false
	}
}

// stopAsync runs stop in the background; the function it returns waits
// for it to finish.
func (n *runNet) stopAsync() (wait func()) {
	done := make(chan struct{})
	go func() {
		n.stop()
		close(done)
	}()
	return func() { <-done }
}

// pastaPid is pasta's PID while it runs (0 without one).
func (n *runNet) pastaPid() int {
	if n == nil || n.pasta == nil {
		return 0
	}
	return n.pasta.Pid()
}

// removeNetwork removes what a dead runner left of c's network: its pasta
// (which also quits by itself when the namespace file goes) and the bound
// namespace.
func (m *Manager) removeNetwork(c Container) {
	ns := m.NetnsPath(c.ID)
	if pid := c.State.PastaPid; pid > 0 {
		killPasta(pid, ns)
	}
	_ = network.RemoveNamespace(ns)
}

// killPasta kills the pasta serving namespace ns, if pid still is that
// one, and waits (up to 5 s) until it has exited and so freed its ports. It
// is not our child: a pidfd names it without a PID-reuse race and tells
// when it is gone.
func killPasta(pid int, ns string) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone already
	}
	defer unix.Close(fd)
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !strings.Contains(string(b), "\x00"+ns+"\x00") {
		return // another process has that PID now
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		return
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		n, err := unix.Poll(fds, int(time.Until(deadline)/time.Millisecond)+1)
		if n > 0 || (err != nil && err != unix.EINTR) {
			return
		}
	}
}

// NetworkName is the network ps and inspect name: "bridge" for the
// default, "host", "none", and nothing for a shared container's.
func (c Container) NetworkName() string {
	if c.Config.Network == "" {
		return network.Host
	}
	mode, _, err := network.ParseMode(c.Config.Network)
	if err != nil || mode == network.ContainerPrefix {
		return ""
	}
	return mode
}

// PublishedPorts are the container ports c publishes (-p, and with -P its
// exposed ports), whether or not it runs.
func (c Container) PublishedPorts() []network.Port {
	if mode, _, _ := network.ParseMode(c.Config.Network); mode != network.Bridge || c.Config.Network == "" {
		return nil
	}
	return publishedPorts(c).Ports()
}
