package container

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/strata-project/strata/internal/cgroup"
	"github.com/strata-project/strata/internal/lockfile"
	"github.com/strata-project/strata/internal/oci"
)

// Stats is one sample of a running container's usage.
type Stats struct {
	cgroup.Stats
	NetRx, NetTx uint64 // bytes through its own network namespace
}

// Stats samples c's cgroup and network counters. A container on the host's
// network has no counters of its own: they stay 0, as docker shows them.
func (m *Manager) Stats(c Container) (Stats, error) {
	if c.State.Status != StatusRunning || !lockfile.Held(m.lockPath(c.ID)) {
		return Stats{}, fmt.Errorf("container %s is not running: %w", c.ID[:12], ErrNotRunning)
	}
	cs, err := cgroup.Open(cgroup.Path(c.ID)).Stats()
	if err != nil {
		return Stats{}, err
	}
	s := Stats{Stats: cs}
	if c.Config.Network != oci.NetworkHost && c.State.Pid > 0 {
		s.NetRx, s.NetTx = netDev(c.State.Pid)
	}
	return s, nil
}

// netDev sums the received and sent bytes of pid's network namespace,
// loopback left out.
func netDev(pid int) (rx, tx uint64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/dev")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(f[0], 10, 64)
		t, _ := strconv.ParseUint(f[8], 10, 64)
		rx, tx = rx+r, tx+t
	}
	return rx, tx
}
