package container

import (
	"fmt"
	"time"

	units "github.com/docker/go-units"
)

// StatusText is docker's STATUS column: "Up 3 seconds", "Exited (7) 2
// seconds ago", "Created".
func (c Container) StatusText(now time.Time) string {
	switch c.State.Status {
	case StatusRunning:
		switch {
		case c.State.Restarting:
			return fmt.Sprintf("Restarting (%d) %s ago", c.State.ExitCode, units.HumanDuration(now.Sub(c.State.FinishedAt)))
		case c.State.Paused:
			return "Up " + units.HumanDuration(now.Sub(c.State.StartedAt)) + " (Paused)"
		}
		up := "Up " + units.HumanDuration(now.Sub(c.State.StartedAt))
		if h := c.State.Health; h != nil {
			if h.Status == HealthStarting {
				return up + " (health: starting)"
			}
			return up + " (" + h.Status + ")"
		}
		return up
	case StatusExited:
		return fmt.Sprintf("Exited (%d) %s ago", c.State.ExitCode, units.HumanDuration(now.Sub(c.State.FinishedAt)))
	}
	return "Created"
}

// StateName is docker's State.Status: created, running, paused,
// restarting, exited.
func (c Container) StateName() string {
	if c.State.Status == StatusRunning {
		switch {
		case c.State.Restarting:
			return "restarting"
		case c.State.Paused:
			return "paused"
		}
	}
	return string(c.State.Status)
}
