package oci

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/cgroup"
)

// Resources are a container's limits, with docker's HostConfig names and
// units: bytes, nano-CPUs, relative weights.
type Resources struct {
	Memory            int64    `json:"memory,omitempty"`     // --memory
	MemorySwap        int64    `json:"memorySwap,omitempty"` // --memory-swap: memory+swap; -1 unlimited
	MemoryReservation int64    `json:"memoryReservation,omitempty"`
	OomKillDisable    bool     `json:"oomKillDisable,omitempty"`
	NanoCPUs          int64    `json:"nanoCpus,omitempty"` // --cpus × 1e9
	CPUShares         int64    `json:"cpuShares,omitempty"`
	CpusetCpus        string   `json:"cpusetCpus,omitempty"`
	CpusetMems        string   `json:"cpusetMems,omitempty"`
	PidsLimit         int64    `json:"pidsLimit,omitempty"` // 0 unset, -1 unlimited
	BlkioWeight       uint16   `json:"blkioWeight,omitempty"`
	Ulimits           []string `json:"ulimits,omitempty"` // NAME=SOFT[:HARD]
	ShmSize           int64    `json:"shmSize,omitempty"`
}

// Validate checks r the way docker's daemon does at create, against this
// host: minimums, ranges, and controllers that must exist.
func (r Resources) Validate() error {
	const minMemory = 6 << 20
	if r.Memory != 0 && r.Memory < minMemory {
		return fmt.Errorf("minimum memory limit allowed is 6MB")
	}
	if r.MemorySwap > 0 && r.Memory == 0 {
		return fmt.Errorf("you should always set the memory limit when using memoryswap limit, see usage")
	}
	if r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return fmt.Errorf("minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.MemorySwap > 0 && !cgroup.HasFile("memory", "memory.memsw.limit_in_bytes", "memory.swap.max") {
		return fmt.Errorf("--memory-swap: this kernel does not support swap limits")
	}
	if r.MemoryReservation < 0 || r.Memory < 0 {
		return fmt.Errorf("invalid memory limit: negative")
	}
	if r.Memory > 0 && r.MemoryReservation > r.Memory {
		return fmt.Errorf("minimum memory limit can not be less than memory reservation limit, see usage")
	}
	if r.NanoCPUs < 0 {
		return fmt.Errorf("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", runtime.NumCPU(), runtime.NumCPU())
	}
	if r.NanoCPUs > int64(runtime.NumCPU())*1e9 {
		return fmt.Errorf("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", runtime.NumCPU(), runtime.NumCPU())
	}
	if r.NanoCPUs > 0 && r.NanoCPUs < 1e7 {
		return fmt.Errorf("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", runtime.NumCPU(), runtime.NumCPU())
	}
	if r.CPUShares < 0 {
		return fmt.Errorf("invalid CPU shares %d: negative", r.CPUShares)
	}
	if r.CpusetCpus != "" {
		if err := checkCpuset(r.CpusetCpus, "cpuset.cpus", "CPUs"); err != nil {
			return err
		}
	}
	if r.CpusetMems != "" {
		if err := checkCpuset(r.CpusetMems, "cpuset.mems", "memory nodes"); err != nil {
			return err
		}
	}
	if r.BlkioWeight != 0 {
		if r.BlkioWeight < 10 || r.BlkioWeight > 1000 {
			return fmt.Errorf("range of blkio weight is from 10 to 1000")
		}
		if !cgroup.HasFile("blkio", "blkio.weight", "blkio.bfq.weight", "io.weight", "io.bfq.weight") {
			return fmt.Errorf("--blkio-weight: this host has no block I/O weight controller (no blkio.weight or blkio.bfq.weight: the I/O scheduler is not CFQ or BFQ)")
		}
	}
	if r.ShmSize < 0 {
		return fmt.Errorf("SHM size can not be less than 0")
	}
	_, err := r.rlimits()
	return err
}

// checkCpuset checks a cpuset list ("0-2,4") against what the host has.
func checkCpuset(list, file, what string) error {
	want, err := parseCPUList(list)
	if err != nil {
		return fmt.Errorf("invalid value %s for cpuset %s", list, strings.TrimPrefix(file, "cpuset."))
	}
	avail := ""
	for _, p := range []string{filepath.Join(cgroup.Root, "cpuset", file), filepath.Join(cgroup.Root, file+".effective")} {
		if b, err := os.ReadFile(p); err == nil {
			avail = strings.TrimSpace(string(b))
			break
		}
	}
	if avail == "" {
		return nil // nothing to check against; the runtime will say
	}
	have, err := parseCPUList(avail)
	if err != nil {
		return nil
	}
	for n := range want {
		if !have[n] {
			return fmt.Errorf("requested %s are not available - requested %s, available: %s", what, list, avail)
		}
	}
	return nil
}

// parseCPUList parses the kernel's list format: "0-3,5".
func parseCPUList(s string) (map[int]bool, error) {
	out := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad list %q", s)
			}
		}
		for n := a; n <= b; n++ {
			out[n] = true
		}
	}
	return out, nil
}

// rlimitNames maps docker's --ulimit names to the runtime spec's.
var rlimitNames = map[string]struct {
	spec string
	res  int
}{
	"core": {"RLIMIT_CORE", unix.RLIMIT_CORE}, "cpu": {"RLIMIT_CPU", unix.RLIMIT_CPU},
	"data": {"RLIMIT_DATA", unix.RLIMIT_DATA}, "fsize": {"RLIMIT_FSIZE", unix.RLIMIT_FSIZE},
	"locks": {"RLIMIT_LOCKS", unix.RLIMIT_LOCKS}, "memlock": {"RLIMIT_MEMLOCK", unix.RLIMIT_MEMLOCK},
	"msgqueue": {"RLIMIT_MSGQUEUE", unix.RLIMIT_MSGQUEUE}, "nice": {"RLIMIT_NICE", unix.RLIMIT_NICE},
	"nofile": {"RLIMIT_NOFILE", unix.RLIMIT_NOFILE}, "nproc": {"RLIMIT_NPROC", unix.RLIMIT_NPROC},
	"rss": {"RLIMIT_RSS", unix.RLIMIT_RSS}, "rtprio": {"RLIMIT_RTPRIO", unix.RLIMIT_RTPRIO},
	"rttime": {"RLIMIT_RTTIME", unix.RLIMIT_RTTIME}, "sigpending": {"RLIMIT_SIGPENDING", unix.RLIMIT_SIGPENDING},
	"stack": {"RLIMIT_STACK", unix.RLIMIT_STACK}, "as": {"RLIMIT_AS", unix.RLIMIT_AS},
}

// rlimits parses --ulimit values. A hard limit above strata's own is an
// error: raising one needs CAP_SYS_RESOURCE, which a strata in a sandbox
// lacks, and the runtime would fail every start with a vaguer message.
func (r Resources) rlimits() ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	for _, v := range r.Ulimits {
		u, err := units.ParseUlimit(v)
		if err != nil {
			return nil, fmt.Errorf("invalid --ulimit %q: %w", v, err)
		}
		name, ok := rlimitNames[u.Name]
		if !ok {
			return nil, fmt.Errorf("invalid --ulimit %q: unknown limit %q", v, u.Name)
		}
		hard, soft := uint64(u.Hard), uint64(u.Soft)
		if u.Hard < 0 {
			hard = unix.RLIM_INFINITY
		}
		if u.Soft < 0 {
			soft = unix.RLIM_INFINITY
		}
		if !canRaiseRlimits() {
			var own unix.Rlimit
			if err := unix.Getrlimit(name.res, &own); err == nil && hard > own.Max {
				return nil, fmt.Errorf("--ulimit %s: hard limit %s is above strata's own hard limit %s, which it cannot raise (no CAP_SYS_RESOURCE)", v, rlimitString(hard), rlimitString(own.Max))
			}
		}
		out = append(out, specs.POSIXRlimit{Type: name.spec, Hard: hard, Soft: soft})
	}
	return out, nil
}

func rlimitString(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(v, 10)
}

// canRaiseRlimits tells whether this process has CAP_SYS_RESOURCE.
func canRaiseRlimits() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	const bit = unix.CAP_SYS_RESOURCE
	return data[bit/32].Effective&(1<<(bit%32)) != 0
}

// LinuxResources is r as the runtime spec's linux.resources (devices
// aside), also what `runc update` takes.
func (r Resources) LinuxResources() *specs.LinuxResources {
	lr := &specs.LinuxResources{}
	mem := &specs.LinuxMemory{}
	if r.Memory > 0 {
		mem.Limit = ptr(r.Memory)
		swap := r.MemorySwap
		if swap == 0 && cgroup.HasFile("memory", "memory.memsw.limit_in_bytes", "memory.swap.max") {
			// docker: as much swap as memory unless told otherwise.
			swap = 2 * r.Memory
		}
		if swap != 0 {
			mem.Swap = ptr(swap)
		}
	}
	if r.MemoryReservation > 0 {
		mem.Reservation = ptr(r.MemoryReservation)
	}
	if r.OomKillDisable {
		mem.DisableOOMKiller = ptr(true)
	}
	if *mem != (specs.LinuxMemory{}) {
		lr.Memory = mem
	}
	cpu := &specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}
	if r.NanoCPUs > 0 {
		const period = 100000
		cpu.Period = ptr(uint64(period))
		cpu.Quota = ptr(r.NanoCPUs * period / 1e9)
	}
	if r.CPUShares > 0 {
		cpu.Shares = ptr(uint64(r.CPUShares))
	}
	if cpu.Period != nil || cpu.Shares != nil || cpu.Cpus != "" || cpu.Mems != "" {
		lr.CPU = cpu
	}
	if r.PidsLimit != 0 {
		lim := r.PidsLimit
		if lim < 0 {
			lim = -1
		}
		lr.Pids = &specs.LinuxPids{Limit: ptr(lim)}
	}
	if r.BlkioWeight != 0 {
		lr.BlockIO = &specs.LinuxBlockIO{Weight: ptr(r.BlkioWeight)}
	}
	return lr
}

// limit applies r to s: cgroup resources, rlimits and the /dev/shm size.
func limit(s *specs.Spec, r Resources) error {
	lr := r.LinuxResources()
	lr.Devices = s.Linux.Resources.Devices
	s.Linux.Resources = lr
	rl, err := r.rlimits()
	if err != nil {
		return err
	}
	for _, l := range rl {
		replaced := false
		for i := range s.Process.Rlimits {
			if s.Process.Rlimits[i].Type == l.Type {
				s.Process.Rlimits[i], replaced = l, true
			}
		}
		if !replaced {
			s.Process.Rlimits = append(s.Process.Rlimits, l)
		}
	}
	if r.ShmSize > 0 {
		for i, m := range s.Mounts {
			if m.Destination != "/dev/shm" || m.Type != "tmpfs" {
				continue
			}
			opts := make([]string, 0, len(m.Options))
			for _, o := range m.Options {
				if !strings.HasPrefix(o, "size=") {
					opts = append(opts, o)
				}
			}
			s.Mounts[i].Options = append(opts, "size="+strconv.FormatInt(r.ShmSize/1024, 10)+"k")
		}
	}
	return nil
}
