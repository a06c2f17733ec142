package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHealthTransitions(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	status := func() string { return strings.TrimSpace(c.ok("ps", "--filter", "name=hc", "--format", "{{.Status}}")) }
	// The check passes while the host file exists; --restart always must
	// not restart an unhealthy container.
	c.ok("run", "-d", "--name", "hc", "--restart", "always", "-v", dir+":/w",
		"--health-cmd", "test -f /w/ok && echo fine", "--health-interval", "100ms", "--health-retries", "2", "busybox", "sleep", "300")
	if st := status(); !strings.HasSuffix(st, "(health: starting)") {
		t.Errorf("first status %q", st)
	}
	eventually(t, "unhealthy", func() bool { return strings.HasSuffix(status(), "(unhealthy)") })
	if err := os.WriteFile(ok, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "healthy", func() bool { return strings.HasSuffix(status(), "(healthy)") })
	if got := c.ok("ps", "--filter", "health=healthy", "--format", "{{.Names}}"); got != "hc\n" {
		t.Errorf("ps --filter health=healthy: %q", got)
	}
	h := c.ok("inspect", "-f", `{{.State.Health.Status}} {{.State.Health.FailingStreak}} {{(index .State.Health.Log 0).ExitCode}} {{len .State.Health.Log}}`, "hc")
	if !strings.HasPrefix(h, "healthy 0 1 ") {
		t.Errorf("inspect .State.Health: %q", h)
	}
	last := c.ok("inspect", "-f", `{{range .State.Health.Log}}{{.Output}}{{end}}`, "hc")
	if !strings.HasSuffix(last, "fine\n\n") {
		t.Errorf("probe output: %q", last)
	}
	if err := os.Remove(ok); err != nil {
		t.Fatal(err)
	}
	eventually(t, "unhealthy again", func() bool { return strings.HasSuffix(status(), "(unhealthy)") })
	if got := c.ok("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "hc"); got != "0 running\n" {
		t.Errorf("an unhealthy container was restarted: %q", got)
	}
	ev := c.ok("events", "--since", "1h", "--until", "0s", "--filter", "container=hc", "--filter", "event=health_status", "--format", "{{.Action}}")
	if !strings.HasPrefix(ev, "health_status: unhealthy\nhealth_status: healthy\nhealth_status: unhealthy\n") {
		t.Errorf("health events:\n%s", ev)
	}
	c.ok("rm", "-f", "hc")

	// The image's HEALTHCHECK runs; a hung probe fails on its timeout;
	// --no-healthcheck turns it off.
	c.ok("import", "-c", `HEALTHCHECK --interval=100ms --timeout=200ms --retries=1 CMD sleep 5`, "-c", `CMD ["sleep", "300"]`, busyboxTar(t), "hcimg")
	c.ok("run", "-d", "--name", "hi", "hcimg")
	eventually(t, "the image's check to time out", func() bool {
		return strings.Contains(c.ok("inspect", "-f", `{{range .State.Health.Log}}{{.Output}}{{end}}`, "hi"), "Health check exceeded timeout (200ms)")
	})
	if st := c.ok("inspect", "-f", "{{.State.Health.Status}}", "hi"); st != "unhealthy\n" {
		t.Errorf("after a timed-out probe: %q", st)
	}
	c.ok("run", "-d", "--name", "hn", "--no-healthcheck", "hcimg")
	if st := c.ok("ps", "--filter", "name=hn", "--format", "{{.Status}}"); strings.Contains(st, "health") {
		t.Errorf("--no-healthcheck: %q", st)
	}
	if got := c.ok("inspect", "-f", "{{json .State.Health}} {{json .Config.Healthcheck.Test}}", "hn"); got != `null ["NONE"]`+"\n" {
		t.Errorf("--no-healthcheck inspect: %q", got)
	}
	if _, errs, code := c.run(nil, "run", "--no-healthcheck", "--health-cmd", "true", "busybox", "true"); code != 125 || !strings.Contains(errs, "conflicts") {
		t.Errorf("--no-healthcheck with --health-cmd: %d %q", code, errs)
	}
}
