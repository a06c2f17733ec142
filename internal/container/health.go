package container

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/image"
)

// Health statuses, docker's words.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Health is docker's State.Health: the status, the run of failures and the
// last few probes.
type Health struct {
	Status        string      `json:"status"`
	FailingStreak int         `json:"failingStreak"`
	Log           []HealthLog `json:"log"`
}

// HealthLog is one probe.
type HealthLog struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exitCode"`
	Output   string    `json:"output"`
}

// Docker's defaults and bounds for health checks.
const (
	defaultHealthInterval = 30 * time.Second
	defaultHealthTimeout  = 30 * time.Second
	defaultHealthRetries  = 3
	healthLogEntries      = 5    // probes kept in State.Health.Log
	healthMaxOutput       = 4096 // bytes of a probe's output kept
)

// MergeHealthcheck puts the --health-* values over the image's
// HEALTHCHECK field by field, as docker does: a zero value inherits.
func MergeHealthcheck(img, flags *dockerspec.HealthcheckConfig) *dockerspec.HealthcheckConfig {
	if flags == nil {
		return img
	}
	if img == nil {
		return flags
	}
	out := *flags
	if len(out.Test) == 0 {
		out.Test = img.Test
	}
	if out.Interval == 0 {
		out.Interval = img.Interval
	}
	if out.Timeout == 0 {
		out.Timeout = img.Timeout
	}
	if out.StartPeriod == 0 {
		out.StartPeriod = img.StartPeriod
	}
	if out.StartInterval == 0 {
		out.StartInterval = img.StartInterval
	}
	if out.Retries == 0 {
		out.Retries = img.Retries
	}
	return &out
}

// probe is a health check ready to run: its command line and timings with
// the defaults filled in. nil when the container has none (or NONE).
type probe struct {
	args        []string
	interval    time.Duration
	timeout     time.Duration
	startPeriod time.Duration
	startEvery  time.Duration // between checks during the start period
	retries     int
}

func probeOf(c Container) *probe {
	rc := c.RunConfig()
	hc := rc.Healthcheck
	if hc == nil || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
		return nil
	}
	p := &probe{interval: hc.Interval, timeout: hc.Timeout, startPeriod: hc.StartPeriod, startEvery: hc.StartInterval, retries: hc.Retries}
	switch hc.Test[0] {
	case "CMD":
		p.args = hc.Test[1:]
	case "CMD-SHELL":
		p.args = append(append([]string{}, image.Shell(rc)...), hc.Test[1:]...)
	default:
		return nil
	}
	if len(p.args) == 0 {
		return nil
	}
	if p.interval <= 0 {
		p.interval = defaultHealthInterval
	}
	if p.timeout <= 0 {
		p.timeout = defaultHealthTimeout
	}
	if p.retries <= 0 {
		p.retries = defaultHealthRetries
	}
	return p
}

// startHealth runs c's health check every interval, through exec, until
// the returned stop is called (before the exit is recorded). Its results go
// into the record's State.Health; a change of status is an event. Health
// never restarts or stops the container (docker's rule).
func (m *Manager) startHealth(ctx context.Context, c Container) (stop func()) {
	p := probeOf(c)
	if p == nil {
		return func() {}
	}
	started := time.Now()
	_ = m.updateRecord(c.ID, func(cur *Container) error {
		cur.State.Health = &Health{Status: HealthStarting, Log: []HealthLog{}}
		return nil
	})
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		next := func() time.Duration {
			if p.startEvery > 0 && time.Since(started) < p.startPeriod {
				return p.startEvery
			}
			return p.interval
		}
		t := time.NewTimer(next())
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if cur, err := m.lookup(c.ID); err == nil && cur.State.Paused {
				t.Reset(next()) // a frozen container cannot run a probe
				continue
			}
			res := m.runProbe(ctx, c, p)
			if ctx.Err() != nil {
				return // stopped mid-probe: the container is ending
			}
			m.recordProbe(c, p, res, time.Since(started) < p.startPeriod)
			t.Reset(next())
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// runProbe runs the check once in the container and returns its result;
// one that outlives the timeout is killed and fails.
func (m *Manager) runProbe(ctx context.Context, c Container, p *probe) (res HealthLog) {
	res = HealthLog{Start: time.Now().UTC(), ExitCode: -1}
	defer func() { res.End = time.Now().UTC() }()
	out, err := os.CreateTemp(m.Dir(c.ID), "health-*")
	if err != nil {
		res.Output = err.Error()
		return res
	}
	defer os.Remove(out.Name())
	defer out.Close()
	code, err := m.execCapture(ctx, c, p.args, out, p.timeout)
	switch {
	case err == errProbeTimeout:
		res.Output = fmt.Sprintf("Health check exceeded timeout (%s)", p.timeout)
		return res
	case err != nil:
		res.Output = err.Error()
		return res
	}
	res.ExitCode = code
	buf := make([]byte, healthMaxOutput)
	n, _ := io.ReadFull(io.NewSectionReader(out, 0, healthMaxOutput), buf)
	res.Output = string(buf[:n])
	return res
}

var errProbeTimeout = fmt.Errorf("health check timed out")

// execCapture runs args in c as an exec (the one exec path: the process
// inherits the container's confinement) with stdout and stderr into out,
// and returns its exit status; past timeout it is killed.
func (m *Manager) execCapture(ctx context.Context, c Container, args []string, out *os.File, timeout time.Duration) (int, error) {
	cur, err := m.lookup(c.ID)
	if err != nil {
		return -1, err
	}
	rt, err := m.live(cur)
	if err != nil {
		return -1, err
	}
	proc, err := m.execProcess(cur, ExecConfig{Cmd: args}, AttachIO{})
	if err != nil {
		return -1, err
	}
	if err := becomeSubreaper(); err != nil {
		return -1, err
	}
	s := &stdioStreams{user: AttachIO{Stdout: out, Stderr: out}}
	pid, err := m.startExec(ctx, rt, c.ID, proc, s)
	if err != nil {
		return -1, execError(err)
	}
	timer := time.AfterFunc(timeout, func() { _ = unix.Kill(pid, unix.SIGKILL) })
	code, werr := waitPid(pid)
	s.exited()
	if !timer.Stop() {
		return -1, errProbeTimeout
	}
	return code, werr
}

// recordProbe adds res to the record's health: a success makes it
// healthy; failures count (outside the start period) until retries make
// it unhealthy.
func (m *Manager) recordProbe(c Container, p *probe, res HealthLog, inStartPeriod bool) {
	var before, after string
	_ = m.updateRecord(c.ID, func(cur *Container) error {
		h := cur.State.Health
		if h == nil {
			h = &Health{Status: HealthStarting}
		}
		before = h.Status
		h.Log = append(h.Log, res)
		if len(h.Log) > healthLogEntries {
			h.Log = h.Log[len(h.Log)-healthLogEntries:]
		}
		switch {
		case res.ExitCode == 0:
			h.Status, h.FailingStreak = HealthHealthy, 0
		case inStartPeriod && h.Status == HealthStarting:
			// Failures while the container starts up do not count.
		default:
			h.FailingStreak++
			if h.FailingStreak >= p.retries {
				h.Status = HealthUnhealthy
			}
		}
		after = h.Status
		cur.State.Health = h
		return nil
	})
	if after != before {
		m.event(c, "health_status: "+after, nil)
	}
}
