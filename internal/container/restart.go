package container

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RestartPolicy is docker's --restart: Name is "no", "on-failure",
// "always" or "unless-stopped"; MaximumRetryCount bounds on-failure (0: no
// bound).
type RestartPolicy struct {
	Name              string `json:"Name"`
	MaximumRetryCount int    `json:"MaximumRetryCount"`
}

// ParseRestartPolicy parses docker's no|on-failure[:N]|always|unless-stopped.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := RestartPolicy{Name: name}
	switch name {
	case "", "no":
		p.Name = "no"
	case "always", "unless-stopped":
	case "on-failure":
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 {
				return p, fmt.Errorf("invalid restart policy %q: maximum retry count must be a non-negative integer", s)
			}
			p.MaximumRetryCount = n
		}
		return p, nil
	default:
		return p, fmt.Errorf("invalid restart policy %q: want no, on-failure[:N], always or unless-stopped", s)
	}
	if hasCount {
		return p, fmt.Errorf("invalid restart policy %q: maximum retry count cannot be used with restart policy '%s'", s, name)
	}
	return p, nil
}

// IsNone tells whether the policy never restarts.
func (p RestartPolicy) IsNone() bool { return p.Name == "" || p.Name == "no" }

// shouldRestart is docker's rule: a container the user stopped (stop,
// kill) stays stopped; on-failure restarts on a non-zero exit until its
// retries are used; always and unless-stopped restart whatever the exit.
// Health does not matter.
func (p RestartPolicy) shouldRestart(code, restarts int, manuallyStopped bool) bool {
	if manuallyStopped {
		return false
	}
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return code != 0 && (p.MaximumRetryCount == 0 || restarts < p.MaximumRetryCount)
	}
	return false
}

// Docker's restart backoff: the delay starts at 100ms and doubles after
// each restart, and goes back to the start once a run lasted 10 seconds.
const (
	restartDelayMin   = 100 * time.Millisecond
	restartDelayMax   = time.Minute
	restartResetAfter = 10 * time.Second
)

// nextDelay is the delay before the next restart after one that used
// delay and ran for ran.
func nextDelay(delay, ran time.Duration) time.Duration {
	if ran >= restartResetAfter || delay == 0 {
		return restartDelayMin
	}
	return min(2*delay, restartDelayMax)
}

// waitRestart records c as restarting after exit code and waits delay.
// It returns false when the user stopped it meanwhile (or ctx ended): the
// record then says exited.
func (m *Manager) waitRestart(ctx context.Context, id string, delay time.Duration, exited State) bool {
	st := exited
	st.Status, st.Restarting = StatusRunning, true
	if err := m.setState(id, st); err != nil {
		return false
	}
	deadline := time.Now().Add(delay)
	for {
		c, err := m.lookup(id)
		if err != nil {
			return false
		}
		if c.ManuallyStopped || ctx.Err() != nil {
			_ = m.setState(id, exited)
			return false
		}
		left := time.Until(deadline)
		if left <= 0 {
			return true
		}
		// Poll: a stop during the backoff is seen within this bound.
		t := time.NewTimer(min(left, 50*time.Millisecond))
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}
