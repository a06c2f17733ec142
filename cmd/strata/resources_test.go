package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-project/strata/internal/cgroup"
)

// requireV1 skips on hosts with only the unified hierarchy: these tests read
// the v1 files of this machine's (and CI's) hybrid layout.
func requireV1(t *testing.T) {
	t.Helper()
	if cgroup.Unified() {
		t.Skip("cgroup v2 only host: the tests read v1 controller files")
	}
}

func TestResourceLimitsVisible(t *testing.T) {
	t.Parallel()
	requireV1(t)
	c := newBusyboxCLI(t)
	out := c.ok("run", "--rm", "-m", "64m", "--memory-reservation", "32m", "--cpus", "0.5", "--cpu-shares", "512",
		"--cpuset-cpus", "0", "--pids-limit", "50", "--shm-size", "8m", "--ulimit", "nproc=100:200",
		"busybox", "sh", "-c", `cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes \
memory/memory.soft_limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.shares pids/pids.max cpuset/cpuset.cpus; \
df -k /dev/shm | tail -1 | awk '{print $2}'; ulimit -u; ulimit -Hu; grep -c strata /proc/self/cgroup; true`)
	want := "67108864\n134217728\n33554432\n50000\n512\n50\n0\n8192\n100\n200\n0\n"
	if out != want {
		t.Errorf("limits inside the container:\n%s\nwant\n%s", out, want)
	}
	// The cgroup is /strata/ID on the host and goes with the container.
	id := strings.TrimSpace(c.ok("run", "-d", "--pids-limit", "7", "busybox", "sleep", "100"))
	b, err := os.ReadFile(filepath.Join(cgroup.Root, "pids", "strata", id, "pids.max"))
	if err != nil || string(b) != "7\n" {
		t.Errorf("host side pids.max: %q %v", b, err)
	}
	// update changes a running container's limits and its record.
	c.ok("update", "-m", "128m", "--pids-limit", "9", id)
	b, _ = os.ReadFile(filepath.Join(cgroup.Root, "pids", "strata", id, "pids.max"))
	m, _ := os.ReadFile(filepath.Join(cgroup.Root, "memory", "strata", id, "memory.limit_in_bytes"))
	if string(b) != "9\n" || string(m) != "134217728\n" {
		t.Errorf("after update: pids.max %q, memory.limit_in_bytes %q", b, m)
	}
	if got := c.ok("inspect", "-f", "{{json .HostConfig.PidsLimit}}", id); got != "9\n" {
		t.Errorf("inspect after update: PidsLimit %q", got)
	}
	c.ok("rm", "-f", id)
	if _, err := os.Stat(filepath.Join(cgroup.Root, "pids", "strata", id)); !os.IsNotExist(err) {
		t.Errorf("cgroup left after rm: %v", err)
	}
}

func TestResourceLimitsEnforced(t *testing.T) {
	t.Parallel()
	requireV1(t)
	c := newBusyboxCLI(t)
	// A fork bomb stops at the pids limit: the subshell dies on a failed
	// fork with its sleeps left, and the count stays at the limit.
	out := c.ok("run", "--rm", "--pids-limit", "20", "busybox", "sh", "-c",
		`( i=0; while [ $i -lt 60 ]; do sleep 100 & i=$((i+1)); done ) 2>/dev/null; read n < /sys/fs/cgroup/pids/pids.current; echo $n`)
	if n, err := strconv.Atoi(strings.TrimSpace(out)); err != nil || n > 20 || n < 10 {
		t.Errorf("pids.current after the fork bomb: %q", out)
	}
	// A memory hog is OOM-killed: exit 137, OOMKilled in inspect.
	_, _, code := c.run(nil, "run", "--name", "hog", "-m", "8m", "--memory-swap", "8m", "busybox", "sh", "-c", `a=$(head -c 64m /dev/zero | tr '\0' a); echo survived`)
	if code != 137 {
		t.Errorf("memory hog exit %d, want 137", code)
	}
	if got := c.ok("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "hog"); got != "true 137\n" {
		t.Errorf("inspect of the OOM-killed container: %q", got)
	}
	if ps := c.ok("ps", "-a", "--filter", "name=hog", "--format", "{{.Status}}"); !strings.HasPrefix(ps, "Exited (137)") {
		t.Errorf("ps: %q", ps)
	}
	// A container within its limit is not marked.
	c.ok("run", "--name", "fine", "-m", "64m", "busybox", "true")
	if got := c.ok("inspect", "-f", "{{.State.OOMKilled}}", "fine"); got != "false\n" {
		t.Errorf("OOMKilled of a container that was not: %q", got)
	}
}

func TestResourceFlagErrors(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	for _, bad := range [][]string{
		{"-m", "1m"},
		{"-m", "lots"},
		{"-m", "64m", "--memory-swap", "32m"},
		{"--cpus", "99"},
		{"--cpuset-cpus", "77"},
		{"--blkio-weight", "5"},
		{"--ulimit", "nofile=10:999999999"}, // above strata's own hard limit
		{"--ulimit", "bogus=1"},
	} {
		args := append(append([]string{"run", "--rm"}, bad...), "busybox", "true")
		if _, errs, code := c.run(nil, args...); code != 125 || !strings.HasPrefix(errs, "Error") {
			t.Errorf("%v: exit %d, %q; want 125 and an error", bad, code, errs)
		}
	}
	if _, errs, code := c.run(nil, "update", "busybox"); code != 125 || !strings.Contains(errs, "one or more flags") {
		t.Errorf("update without flags: %d %q", code, errs)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	requireV1(t)
	c := newBusyboxCLI(t)
	c.ok("run", "-d", "--name", "s1", "-m", "64m", "busybox", "sleep", "100")
	out := c.ok("stats", "--no-stream")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "CONTAINER ID NAME CPU % MEM USAGE / LIMIT MEM % NET I/O BLOCK I/O PIDS" {
		t.Fatalf("stats table:\n%s", out)
	}
	f := strings.Fields(lines[1])
	// ID NAME CPU% USAGE / LIMIT MEM% NET / NET BLOCK / BLOCK PIDS
	if len(f) != 14 || f[1] != "s1" || !strings.HasSuffix(f[2], "%") || f[5] != "64MiB" || f[13] != "1" {
		t.Errorf("stats row: %q", lines[1])
	}
	if got := c.ok("stats", "--no-stream", "--format", "{{.Name}}:{{.PIDs}}", "s1"); got != "s1:1\n" {
		t.Errorf("stats --format: %q", got)
	}
}
