package container

import (
	"context"
	"errors"
	"fmt"

	"github.com/strata-project/strata/internal/errdefs"
	"github.com/strata-project/strata/internal/lockfile"
	"github.com/strata-project/strata/internal/oci"
)

// Update changes c's resource limits: in its record, so every later start
// uses them, and, when it runs, in its cgroup at once (`docker update`).
// A non-nil policy replaces its restart policy.
func (m *Manager) Update(ctx context.Context, c Container, res oci.Resources, policy *RestartPolicy) error {
	if err := res.Validate(); err != nil {
		return err
	}
	if err := m.updateRecord(c.ID, func(cur *Container) error {
		if policy != nil {
			if !policy.IsNone() && cur.Config.AutoRemove {
				return errdefs.Invalidf("Restart policy cannot be updated because AutoRemove is enabled for the container")
			}
			cur.Config.RestartPolicy = *policy
		}
		cur.Config.Resources = res
		return nil
	}); err != nil {
		return err
	}
	m.event(c, "update", nil)
	if !lockfile.Held(m.lockPath(c.ID)) || c.State.Restarting {
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
