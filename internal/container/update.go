package container

import (
	"context"
	"errors"
	"fmt"

	"github.com/strata-project/strata/internal/oci"
)

// Update changes c's resource limits: in its record, so every later start
// uses them, and, when it runs, in its cgroup at once (`docker update`).
func (m *Manager) Update(ctx context.Context, c Container, res oci.Resources) error {
	if err := res.Validate(); err != nil {
		return err
	}
	if err := m.updateRecord(c.ID, func(cur *Container) error {
		cur.Config.Resources = res
		return nil
	}); err != nil {
		return err
	}
	if !isRunnerAlive(m.lockPath(c.ID)) {
		return nil
	}
	rt, err := oci.New(c.Config.Runtime, m.runtimeRoot(c.Config.Runtime))
	if err != nil {
		return err
	}
	err = rt.Update(ctx, c.ID, res.LinuxResources())
	if errors.Is(err, oci.ErrNotExist) || errors.Is(err, oci.ErrNotRunning) {
		return nil // it ended meanwhile; the record holds the new limits
	}
	if err != nil {
		return fmt.Errorf("cannot update container %s: %w", c.ID[:12], err)
	}
	return nil
}
