// Package cgroup reads the cgroups strata's containers run in: where a
// container's cgroup is, what the host's hierarchies offer, and the
// counters behind `stats` and OOMKilled. The runtime creates and limits the
// cgroups from the spec's linux.resources; this package only reads them.
//
// Both layouts are handled: cgroup v1 (one hierarchy per controller under
// /sys/fs/cgroup, also on hybrid hosts, where runc limits through v1 as
// docker does) and the unified v2 hierarchy mounted at /sys/fs/cgroup.
package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Root is where the cgroup hierarchies are mounted.
const Root = "/sys/fs/cgroup"

// Parent is the cgroup under which every container gets its own, as
// docker's /docker/ID (cgroupfs driver).
const Parent = "/strata"

// Path is the cgroupsPath of container id in its runtime spec.
func Path(id string) string { return Parent + "/" + id }

// Unified tells whether the host has only the v2 hierarchy.
func Unified() bool {
	var st unix.Statfs_t
	return unix.Statfs(Root, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// HasFile tells whether the root of controller's hierarchy (v1) or the
// unified root (v2) has one of files: whether a limit can be set here.
func HasFile(controller string, files ...string) bool {
	dir := filepath.Join(Root, controller)
	if Unified() {
		dir = Root
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

// Cgroup is one container's cgroup.
type Cgroup struct {
	path    string // cgroupsPath, "/strata/ID"
	unified bool
}

// Open returns the cgroup at path (as in the runtime spec).
func Open(path string) Cgroup { return Cgroup{path: path, unified: Unified()} }

// file is the path of a controller's file in this cgroup.
func (c Cgroup) file(controller, name string) string {
	if c.unified {
		return filepath.Join(Root, c.path, name)
	}
	return filepath.Join(Root, controller, c.path, name)
}

// OOMKills counts the processes of the cgroup the kernel's OOM killer
// killed for reaching its memory limit. It must be read before the
// runtime deletes the cgroup.
func (c Cgroup) OOMKills() (uint64, error) {
	name, key := "memory.oom_control", "oom_kill"
	if c.unified {
		name = "memory.events"
	}
	kv, err := readKeyValues(c.file("memory", name))
	if err != nil {
		return 0, err
	}
	return kv[key], nil
}

// Stats are the counters docker's `stats` shows.
type Stats struct {
	CPUUsage    uint64 // ns of CPU time used
	MemoryUsage uint64 // bytes, page cache that can be dropped excluded
	MemoryLimit uint64 // bytes; 0 when unlimited
	BlockRead   uint64 // bytes
	BlockWrite  uint64
	Pids        uint64
}

// unlimited is what v1 reports as no memory limit (a page-rounded
// LLONG_MAX); anything above a petabyte is treated as no limit.
const unlimited = 1 << 50

// Stats reads the cgroup's counters.
func (c Cgroup) Stats() (Stats, error) {
	if c.unified {
		return c.statsV2()
	}
	var s Stats
	var err error
	if s.CPUUsage, err = readUint(c.file("cpuacct", "cpuacct.usage")); err != nil {
		return s, err
	}
	if s.MemoryUsage, err = readUint(c.file("memory", "memory.usage_in_bytes")); err != nil {
		return s, err
	}
	if mem, err := readKeyValues(c.file("memory", "memory.stat")); err == nil {
		// docker's CLI shows usage less the inactive page cache.
		if v := mem["total_inactive_file"]; v < s.MemoryUsage {
			s.MemoryUsage -= v
		}
	}
	if s.MemoryLimit, err = readUint(c.file("memory", "memory.limit_in_bytes")); err != nil {
		return s, err
	}
	if s.MemoryLimit >= unlimited {
		s.MemoryLimit = 0
	}
	s.BlockRead, s.BlockWrite = blkioV1(c.file("blkio", "blkio.throttle.io_service_bytes_recursive"))
	if s.Pids, err = readUint(c.file("pids", "pids.current")); err != nil {
		return s, err
	}
	return s, nil
}

func (c Cgroup) statsV2() (Stats, error) {
	var s Stats
	cpu, err := readKeyValues(c.file("", "cpu.stat"))
	if err != nil {
		return s, err
	}
	s.CPUUsage = cpu["usage_usec"] * 1000
	if s.MemoryUsage, err = readUint(c.file("", "memory.current")); err != nil {
		return s, err
	}
	if mem, err := readKeyValues(c.file("", "memory.stat")); err == nil {
		if v := mem["inactive_file"]; v < s.MemoryUsage {
			s.MemoryUsage -= v
		}
	}
	if b, err := os.ReadFile(c.file("", "memory.max")); err == nil && strings.TrimSpace(string(b)) != "max" {
		s.MemoryLimit, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	if b, err := os.ReadFile(c.file("", "io.stat")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			for _, f := range strings.Fields(line) {
				k, v, _ := strings.Cut(f, "=")
				n, _ := strconv.ParseUint(v, 10, 64)
				switch k {
				case "rbytes":
					s.BlockRead += n
				case "wbytes":
					s.BlockWrite += n
				}
			}
		}
	}
	if s.Pids, err = readUint(c.file("", "pids.current")); err != nil {
		return s, err
	}
	return s, nil
}

// blkioV1 sums the Read and Write lines of a v1 io_service_bytes file
// ("8:0 Read 4096").
func blkioV1(path string) (read, write uint64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.ParseUint(f[2], 10, 64)
		switch f[1] {
		case "Read":
			read += n
		case "Write":
			write += n
		}
	}
	return read, write
}

// ErrNotExist is returned when the cgroup is gone (the container stopped).
var ErrNotExist = errors.New("cgroup does not exist")

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("%s: %w", path, ErrNotExist)
		}
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// readKeyValues reads a flat keyed file ("key value" lines).
func readKeyValues(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", path, ErrNotExist)
		}
		return nil, err
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, nil
}

// clockTicks is USER_HZ, the unit of /proc/stat (100 on every Linux ABI
// strata runs on).
const clockTicks = 100

// SystemUsage is the host's total CPU time (all CPUs, all states) in ns,
// the denominator of docker's CPU %.
func SystemUsage() (uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var ticks uint64
	for _, v := range f[1:8] { // user nice system idle iowait irq softirq
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		ticks += n
	}
	return ticks * (1e9 / clockTicks), nil
}
