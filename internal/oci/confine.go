package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/profiles/seccomp"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Security is how a container is confined beyond docker's defaults: the
// values of `--privileged`, `--cap-add`, `--cap-drop`, `--security-opt`,
// `--device`, `--group-add` and `--sysctl`, kept as docker's HostConfig
// keeps them (a seccomp profile file is stored as its JSON content, so the
// container does not depend on the file staying where it was).
type Security struct {
	Privileged  bool              `json:"privileged,omitempty"`
	CapAdd      []string          `json:"capAdd,omitempty"`
	CapDrop     []string          `json:"capDrop,omitempty"`
	SecurityOpt []string          `json:"securityOpt,omitempty"`
	Devices     []string          `json:"devices,omitempty"` // HOST[:CTR[:rwm]]
	GroupAdd    []string          `json:"groupAdd,omitempty"`
	Sysctls     map[string]string `json:"sysctls,omitempty"`
}

// securityOpts is the parsed form of Security.SecurityOpt.
type securityOpts struct {
	seccomp         string // "" default, "unconfined", or a profile's JSON
	noNewPrivileges bool
	apparmor        string
	labels          []string // SELinux label parts ("disable" is dropped)
	unmaskPaths     bool     // systempaths=unconfined
}

// Validate checks everything about s that can be checked before the
// container starts, so that create fails with the reason rather than start.
// hostNet says whether the container shares the host's network namespace
// (net.* sysctls are then refused).
func (s Security) Validate(hostNet bool) error {
	if _, err := capabilities(defaultCapabilities(), s.CapAdd, s.CapDrop); err != nil {
		return err
	}
	if _, err := parseSecurityOpts(s.SecurityOpt); err != nil {
		return err
	}
	for _, d := range s.Devices {
		if _, err := ParseDevice(d); err != nil {
			return err
		}
	}
	for k, v := range s.Sysctls {
		if err := validateSysctl(k, v, hostNet); err != nil {
			return err
		}
	}
	return nil
}

// SetSecuritySeccompFile turns `seccomp=FILE` entries of opts into
// `seccomp=JSON`, as docker's client does before it sends them: the profile
// is read once, at create. Other entries are returned unchanged.
func SetSecuritySeccompFile(opts []string) ([]string, error) {
	out := slices.Clone(opts)
	for i, o := range out {
		k, v, ok := splitSecurityOpt(o)
		if !ok || k != "seccomp" || v == "unconfined" || strings.HasPrefix(strings.TrimSpace(v), "{") {
			continue
		}
		data, err := os.ReadFile(v)
		if err != nil {
			return nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
		}
		out[i] = "seccomp=" + string(data)
	}
	return out, nil
}

// splitSecurityOpt splits KEY=VALUE, or docker's deprecated KEY:VALUE.
func splitSecurityOpt(o string) (key, value string, ok bool) {
	if k, v, ok := strings.Cut(o, "="); ok {
		return k, v, true
	}
	return strings.Cut(o, ":")
}

func parseSecurityOpts(opts []string) (securityOpts, error) {
	var p securityOpts
	for _, o := range opts {
		if o == "no-new-privileges" {
			p.noNewPrivileges = true
			continue
		}
		if o == "disable" { // docker's old spelling of label=disable
			continue
		}
		k, v, ok := splitSecurityOpt(o)
		if !ok {
			return p, fmt.Errorf("invalid --security-opt: %q", o)
		}
		switch k {
		case "seccomp":
			if v == "" {
				return p, fmt.Errorf("invalid --security-opt %q: empty seccomp profile", o)
			}
			p.seccomp = v
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return p, fmt.Errorf("invalid --security-opt: %q", o)
			}
			p.noNewPrivileges = b
		case "apparmor":
			// "unconfined" is what a container without AppArmor is anyway.
			if v != "unconfined" && !appArmorEnabled() {
				return p, fmt.Errorf("invalid --security-opt %q: AppArmor is not enabled on this host", o)
			}
			p.apparmor = v
		case "label":
			if v == "disable" {
				continue
			}
			if !seLinuxEnabled() {
				return p, fmt.Errorf("invalid --security-opt %q: SELinux is not enabled on this host", o)
			}
			part, _, _ := strings.Cut(v, ":")
			switch part {
			case "user", "role", "type", "level", "filetype", "nested":
			default:
				return p, fmt.Errorf("invalid --security-opt %q: label must be user:, role:, type:, level: or disable", o)
			}
			p.labels = append(p.labels, v)
		case "systempaths":
			if v != "unconfined" {
				return p, fmt.Errorf("invalid --security-opt %q: systempaths only takes unconfined", o)
			}
			p.unmaskPaths = true
		default:
			return p, fmt.Errorf("invalid --security-opt: %q", o)
		}
	}
	return p, nil
}

func appArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(b), "Y")
}

func seLinuxEnabled() bool {
	b, err := os.ReadFile("/sys/fs/selinux/enforce")
	return err == nil && len(b) > 0
}

// defaultCapabilities is docker's default capability set.
func defaultCapabilities() []string {
	return []string{
		"CAP_CHOWN",
		"CAP_DAC_OVERRIDE",
		"CAP_FSETID",
		"CAP_FOWNER",
		"CAP_MKNOD",
		"CAP_NET_RAW",
		"CAP_SETGID",
		"CAP_SETUID",
		"CAP_SETFCAP",
		"CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT",
		"CAP_KILL",
		"CAP_AUDIT_WRITE",
	}
}

// capName is the runtime spec's name of c.
func capName(c capability.Cap) string { return "CAP_" + strings.ToUpper(c.String()) }

// knownCapabilities are all capabilities by name, those this kernel lacks
// included (docker validates names against its own list, not the kernel's).
func knownCapabilities() []string {
	var out []string
	for _, c := range capability.ListKnown() {
		out = append(out, capName(c))
	}
	return out
}

// BoundingCapabilities splits the capabilities this kernel supports into
// those this process's bounding set holds (all a container can be given:
// the runtime fails to start one asking for more) and those it lacks. A
// strata running inside another container commonly lacks some.
func BoundingCapabilities() (held, missing []string, err error) {
	supported, err := capability.ListSupported()
	if err != nil {
		return nil, nil, fmt.Errorf("list capabilities: %w", err)
	}
	for _, c := range supported {
		ok, err := capability.GetBound(c)
		if err != nil {
			return nil, nil, fmt.Errorf("read bounding set: %w", err)
		}
		if ok {
			held = append(held, capName(c))
		} else {
			missing = append(missing, capName(c))
		}
	}
	return held, missing, nil
}

// normalizeCaps upper-cases names and adds the CAP_ prefix, as docker does;
// "ALL" stays as it is. Unknown names are an error.
func normalizeCaps(names []string) ([]string, error) {
	known := knownCapabilities()
	out := make([]string, 0, len(names))
	for _, n := range names {
		c := strings.ToUpper(strings.TrimSpace(n))
		if c == "ALL" {
			out = append(out, c)
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if !slices.Contains(known, c) {
			return nil, fmt.Errorf("unknown capability: %q", n)
		}
		out = append(out, c)
	}
	return out, nil
}

// capabilities applies --cap-add and --cap-drop to base the way docker
// does: ALL in add starts from every capability (minus drops), ALL in drop
// starts from nothing (plus adds), otherwise base minus drops plus adds.
func capabilities(base, add, drop []string) ([]string, error) {
	if len(add) == 0 && len(drop) == 0 {
		return base, nil
	}
	adds, err := normalizeCaps(add)
	if err != nil {
		return nil, err
	}
	drops, err := normalizeCaps(drop)
	if err != nil {
		return nil, err
	}
	var out []string
	switch {
	case slices.Contains(adds, "ALL"):
		for _, c := range knownCapabilities() {
			if !slices.Contains(drops, c) {
				out = append(out, c)
			}
		}
		return out, nil
	case slices.Contains(drops, "ALL"):
		for _, c := range adds {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
		return out, nil
	}
	for _, c := range base {
		if !slices.Contains(drops, c) {
			out = append(out, c)
		}
	}
	for _, c := range adds {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// Device is one `--device` mapping.
type Device struct {
	Host, Container string
	Permissions     string // some of "rwm"
}

// ParseDevice parses docker's HOST[:CTR][:PERMS] (PERMS some of r, w, m;
// default rwm).
func ParseDevice(s string) (Device, error) {
	parts := strings.Split(s, ":")
	d := Device{Permissions: "rwm"}
	switch len(parts) {
	case 3:
		d.Container, d.Permissions = parts[1], parts[2]
	case 2:
		if validDeviceMode(parts[1]) {
			d.Permissions = parts[1]
		} else {
			d.Container = parts[1]
		}
	case 1:
	default:
		return d, fmt.Errorf("invalid device specification: %s", s)
	}
	d.Host = parts[0]
	if d.Container == "" {
		d.Container = d.Host
	}
	if !validDeviceMode(d.Permissions) {
		return d, fmt.Errorf("invalid device specification: %s: bad mode %q", s, d.Permissions)
	}
	if !path.IsAbs(d.Host) || !path.IsAbs(d.Container) {
		return d, fmt.Errorf("invalid device specification: %s: paths must be absolute", s)
	}
	d.Host, d.Container = path.Clean(d.Host), path.Clean(d.Container)
	return d, nil
}

func validDeviceMode(m string) bool {
	if m == "" || len(m) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range m {
		if !strings.ContainsRune("rwm", c) || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// hostDevices reads the device nodes d names on the host: one node, or
// every node under a directory (mapped below d.Container), as docker does.
func hostDevices(d Device) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	src, err := filepath.EvalSymlinks(d.Host)
	if err != nil {
		return nil, nil, fmt.Errorf("error gathering device information while adding custom device %q: %w", d.Host, err)
	}
	st, err := os.Stat(src)
	if err != nil {
		return nil, nil, fmt.Errorf("error gathering device information while adding custom device %q: %w", d.Host, err)
	}
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	add := func(p, dst string) error {
		dev, ok, err := deviceNode(p, dst)
		if err != nil || !ok {
			return err
		}
		devs = append(devs, dev)
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: dev.Type, Major: ptr(dev.Major), Minor: ptr(dev.Minor), Access: d.Permissions})
		return nil
	}
	if !st.IsDir() {
		if err := add(src, d.Container); err != nil {
			return nil, nil, err
		}
		if len(devs) == 0 {
			return nil, nil, fmt.Errorf("error gathering device information while adding custom device %q: not a device node", d.Host)
		}
		return devs, rules, nil
	}
	err = filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		return add(p, path.Join(d.Container, filepath.ToSlash(rel)))
	})
	if err != nil {
		return nil, nil, fmt.Errorf("error gathering device information while adding custom device %q: %w", d.Host, err)
	}
	return devs, rules, nil
}

// deviceNode describes the host node p as a device at dst; ok is false
// when p is not a character or block device.
func deviceNode(p, dst string) (specs.LinuxDevice, bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return specs.LinuxDevice{}, false, err
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, false, nil
	}
	return specs.LinuxDevice{
		Path: dst, Type: typ,
		Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
		FileMode: ptr(os.FileMode(st.Mode & 0o7777)), UID: ptr(st.Uid), GID: ptr(st.Gid),
	}, true, nil
}

// allHostDevices is every device node under the host's /dev, for
// --privileged. Like docker it leaves out the pty, shm, mqueue and fd trees
// the container gets its own of, and the host's console.
func allHostDevices() ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir("/dev", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() {
			switch e.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				return filepath.SkipDir
			}
			return nil
		}
		if p == "/dev/console" || e.Type()&fs.ModeDevice == 0 {
			return nil
		}
		dev, ok, err := deviceNode(p, p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if ok {
			out = append(out, dev)
		}
		return nil
	})
	return out, err
}

// namespacedSysctls are the kernel.* sysctls that belong to the IPC
// namespace; fs.mqueue.* does too, and net.* belongs to the network
// namespace. Anything else would change the host and is refused.
var namespacedSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}

func validateSysctl(key, value string, hostNet bool) error {
	switch {
	case slices.Contains(namespacedSysctls, key), strings.HasPrefix(key, "fs.mqueue."):
		return nil
	case strings.HasPrefix(key, "net."):
		if hostNet {
			return fmt.Errorf("sysctl %q is not allowed in the host network namespace (use --network none)", key)
		}
		return nil
	}
	return fmt.Errorf("sysctl %q is not allowed: it is not namespaced (only %s, fs.mqueue.* and net.* are)", key, strings.Join(namespacedSysctls, ", "))
}

// ResolveGroups resolves --group-add values (names or ids) against the
// image's /etc/group inside rootfs; ids need no entry.
func ResolveGroups(rootfs string, names []string) ([]uint32, error) {
	if len(names) == 0 {
		return nil, nil
	}
	f, err := openInRoot(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	var groups []GroupEntry
	if f != nil {
		defer f.Close()
		if groups, err = ParseGroup(f); err != nil {
			return nil, err
		}
	}
	out := make([]uint32, 0, len(names))
	for _, n := range names {
		if id, ok := parseID(n); ok {
			out = append(out, id)
			continue
		}
		i := slices.IndexFunc(groups, func(g GroupEntry) bool { return g.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("unable to find group %s: %w", n, ErrNoGroupEntries)
		}
		out = append(out, groups[i].GID)
	}
	return out, nil
}

// confine applies sec to s, whose process, mounts and linux section hold
// docker's defaults: capabilities, seccomp, no_new_privileges, labels,
// devices, sysctls and, for --privileged, the lifting of every default
// restriction.
func confine(s *specs.Spec, sec Security) error {
	opts, err := parseSecurityOpts(sec.SecurityOpt)
	if err != nil {
		return err
	}
	caps, err := capabilities(defaultCapabilities(), sec.CapAdd, sec.CapDrop)
	if err != nil {
		return err
	}
	if sec.Privileged {
		if caps, _, err = BoundingCapabilities(); err != nil {
			return err
		}
	}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps}
	// Like docker, a process that is not root starts with no effective or
	// permitted capabilities; it can only regain bounding ones through
	// file capabilities or setuid binaries.
	if s.Process.User.UID == 0 {
		s.Process.Capabilities.Effective = caps
		s.Process.Capabilities.Permitted = caps
	}
	s.Process.NoNewPrivileges = opts.noNewPrivileges
	if opts.apparmor != "" && opts.apparmor != "unconfined" {
		s.Process.ApparmorProfile = opts.apparmor
	}
	if len(opts.labels) > 0 {
		s.Process.SelinuxLabel = strings.Join(opts.labels, ":")
	}

	if sec.Privileged {
		devs, err := allHostDevices()
		if err != nil {
			return fmt.Errorf("--privileged: list host devices: %w", err)
		}
		s.Linux.Devices = devs
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		for i, m := range s.Mounts {
			if m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup" {
				s.Mounts[i].Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
			}
		}
	} else {
		for _, spec := range sec.Devices {
			d, err := ParseDevice(spec)
			if err != nil {
				return err
			}
			devs, rules, err := hostDevices(d)
			if err != nil {
				return err
			}
			s.Linux.Devices = append(s.Linux.Devices, devs...)
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, rules...)
		}
	}
	if opts.unmaskPaths {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	}

	hostNet := !slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace })
	for k, v := range sec.Sysctls {
		if err := validateSysctl(k, v, hostNet); err != nil {
			return err
		}
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		s.Linux.Sysctl[k] = v
	}

	// Last: the default profile allows some syscalls only to holders of
	// the capabilities that need them, so it reads the final set.
	switch {
	case sec.Privileged || opts.seccomp == "unconfined":
	case opts.seccomp != "":
		if s.Linux.Seccomp, err = seccomp.LoadProfile(opts.seccomp, s); err != nil {
			return fmt.Errorf("seccomp profile: %w", err)
		}
	default:
		if s.Linux.Seccomp, err = seccomp.GetDefaultProfile(s); err != nil {
			return fmt.Errorf("default seccomp profile: %w", err)
		}
	}
	return nil
}
