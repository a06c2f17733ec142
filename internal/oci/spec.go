// Package runtime turns an image config plus `docker run`-style options into an
// OCI runtime bundle config (Spec) and drives an OCI runtime binary (runc, or
// crun) on that bundle (Runtime).
//
// The package knows nothing about images on disk, snapshots or container
// records: callers mount a root filesystem, resolve the user against it
// (ResolveUser), generate the spec, write the bundle (WriteBundle) and then
// Run it in the foreground or Create+Start it.
package oci

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// OCIVersion is written into every config.json. It is deliberately older than
// the runtime-spec module we build against: crun 1.8.1 rejects 1.2.0 and
// later with "unknown version specified", runc 1.1.5 accepts anything, and
// nothing we generate needs a newer field.
const OCIVersion = "1.0.2"

// DefaultPath is the PATH a container gets when neither the image nor the
// caller sets one (the value Docker uses).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Network modes. strata has no bridge networking, so there are only two.
const (
	// NetworkHost shares the host's network namespace. It is the default
	// (Network == "") because it is the nearest thing to Docker's default
	// bridge from inside the container: outbound traffic and DNS work, which
	// most RUN steps and interactive containers expect.
	NetworkHost = "host"
	// NetworkNone gives the container a fresh network namespace with only
	// the loopback interface, which runc brings up.
	NetworkNone = "none"
)

// ErrNoCommand is returned by Spec when neither the options nor the image
// give a command, matching Docker's "no command specified".
var ErrNoCommand = errors.New("no command specified")

// Bind is one mount a container asks for: a bind of a host path (or a
// volume's directory), or, with Type "tmpfs", a fresh tmpfs.
type Bind struct {
	Source      string // absolute host path; unused for tmpfs
	Destination string // absolute path inside the container
	ReadOnly    bool
	Type        string   // "" (bind) or "tmpfs"
	Options     []string // tmpfs options (size=, mode=)
	Propagation string   // a bind's propagation; "" is rprivate
}

// ParseBind parses Docker's `-v` syntax for host bind mounts:
// HOST:CTR[:OPTS] where OPTS is a comma list of "ro" or "rw". Named volumes
// (a HOST part that is not an absolute path) are not supported.
func ParseBind(s string) (Bind, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Bind{}, fmt.Errorf("invalid volume specification %q: want HOST:CONTAINER[:ro]", s)
	}
	b := Bind{Source: parts[0], Destination: parts[1]}
	if !path.IsAbs(b.Source) {
		return Bind{}, fmt.Errorf("invalid volume specification %q: host path %q is not absolute (named volumes are not supported)", s, b.Source)
	}
	if !path.IsAbs(b.Destination) {
		return Bind{}, fmt.Errorf("invalid volume specification %q: container path %q is not absolute", s, b.Destination)
	}
	if len(parts) == 3 {
		for _, opt := range strings.Split(parts[2], ",") {
			switch opt {
			case "ro":
				b.ReadOnly = true
			case "rw":
				b.ReadOnly = false
			default:
				return Bind{}, fmt.Errorf("invalid volume specification %q: unknown option %q", s, opt)
			}
		}
	}
	b.Source = path.Clean(b.Source)
	b.Destination = path.Clean(b.Destination)
	return b, nil
}

// SpecOptions is everything Spec needs: the image's config and the
// `docker run` options that override it.
type SpecOptions struct {
	Image ocispec.ImageConfig

	// Entrypoint replaces the image's entrypoint when EntrypointSet is true
	// (`--entrypoint`); an empty value (or a single "") clears it, and, as in
	// Docker, also drops the image's Cmd unless Cmd is given.
	Entrypoint    []string
	EntrypointSet bool
	// Cmd holds the arguments after the image name; when non-empty they
	// replace the image's Cmd.
	Cmd []string
	// Env entries (KEY=VAL) are merged over the image's env, later wins. A
	// bare KEY (take the host's value) must be resolved by the caller.
	Env []string

	WorkingDir string // absolute; overrides the image's; default "/"
	// User is the `-u` value. Spec does not read it: resolve it with
	// ResolveUser(Rootfs, o.EffectiveUser()) into UID, GID, AdditionalGids.
	User     string
	Hostname string
	// Domainname is the UTS namespace's NIS domain name (--domainname).
	Domainname string

	ReadOnly bool // read-only root filesystem
	Terminal bool // allocate a pty (the caller must then use a ConsoleSocket)

	Network string // NetworkHost (default when empty) or NetworkNone
	// NetworkNamespace, when set, is the path of a network namespace the
	// container joins instead (its own, which pasta connects, or another
	// container's); Network is then ignored.
	NetworkNamespace string
	Binds            []Bind

	Rootfs string // absolute path of the mounted root filesystem

	// Files the container directory provides, bind-mounted over the image's
	// own (writable unless ReadOnly, as Docker does). Empty means not mounted.
	HostsPath, ResolvConfPath, HostnamePath string

	UID, GID       uint32
	AdditionalGids []uint32

	// Security is the confinement beyond docker's defaults. Its GroupAdd
	// is not read here: resolve it with ResolveGroups into AdditionalGids.
	Security Security
	// Resources are the cgroup limits, rlimits and /dev/shm size.
	Resources Resources
	// InitPath, when set, is a static init on the host (see InitBinary):
	// it is bind-mounted at InitMountPoint and runs the command as PID 1.
	InitPath string

	// CgroupsPath is passed through; empty lets the runtime choose (runc
	// uses /<container id> under each hierarchy).
	CgroupsPath string
	Annotations map[string]string
}

// EffectiveUser is the user spec the process runs as: the `-u` value, else
// the image's USER.
func (o SpecOptions) EffectiveUser() string {
	if o.User != "" {
		return o.User
	}
	return o.Image.User
}

// Spec builds the runtime config for o. Of the system it reads only this
// process's RLIMIT_NOFILE and capability bounding set, and the host's
// device nodes that --device and --privileged hand to the container.
func Spec(o SpecOptions) (*specs.Spec, error) {
	if !path.IsAbs(o.Rootfs) {
		return nil, fmt.Errorf("rootfs %q is not an absolute path", o.Rootfs)
	}
	args, err := Args(o.Image, o.Entrypoint, o.EntrypointSet, o.Cmd)
	if err != nil {
		return nil, err
	}
	if o.InitPath != "" {
		args = append([]string{InitMountPoint, "--"}, args...)
	}
	cwd := o.WorkingDir
	if cwd == "" {
		cwd = o.Image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return nil, fmt.Errorf("working directory %q is invalid, it needs to be an absolute path", cwd)
	}
	env, err := Env(o.Image.Env, o.Env, o.Hostname, o.Terminal)
	if err != nil {
		return nil, err
	}
	netns := specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: o.NetworkNamespace}
	switch {
	case o.NetworkNamespace != "":
	case o.Network == "" || o.Network == NetworkHost:
		netns.Type = "" // the host's
	case o.Network == NetworkNone:
	default:
		return nil, fmt.Errorf("network %q is not supported (use %q or %q)", o.Network, NetworkHost, NetworkNone)
	}

	nofile := nofileLimit()
	s := &specs.Spec{
		Version: OCIVersion,
		Process: &specs.Process{
			Terminal: o.Terminal,
			User: specs.User{
				UID:            o.UID,
				GID:            o.GID,
				AdditionalGids: supplementaryGroups(o.GID, o.AdditionalGids),
			},
			Args: args,
			Env:  env,
			Cwd:  path.Clean(cwd),
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: nofile, Soft: nofile},
			},
		},
		Root:        &specs.Root{Path: o.Rootfs, Readonly: o.ReadOnly},
		Hostname:    o.Hostname,
		Mounts:      mounts(o),
		Annotations: o.Annotations,
		Linux: &specs.Linux{
			Namespaces:  namespaces(netns),
			Devices:     defaultDevices(),
			CgroupsPath: o.CgroupsPath,
			Resources: &specs.LinuxResources{
				Devices: defaultDeviceRules(),
			},
			MaskedPaths:   maskedPaths(),
			ReadonlyPaths: readonlyPaths(),
		},
	}
	if o.Domainname != "" {
		// runc 1.1 ignores the spec's domainname field; the UTS
		// namespace's sysctl sets the same thing.
		s.Domainname = o.Domainname
		s.Linux.Sysctl = map[string]string{"kernel.domainname": o.Domainname}
	}
	if err := limit(s, o.Resources); err != nil {
		return nil, err
	}
	if err := confine(s, o.Security); err != nil {
		return nil, err
	}
	return s, nil
}

// supplementaryGroups is the process's group list: like docker's, it holds
// the primary group too, then the groups that list the user and --group-add.
func supplementaryGroups(gid uint32, additional []uint32) []uint32 {
	out := []uint32{gid}
	for _, g := range additional {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// Args combines entrypoint and cmd the way `docker run` does: an explicit
// entrypoint drops the image's Cmd unless cmd is given; cmd, when non-empty,
// replaces the image's Cmd.
func Args(img ocispec.ImageConfig, entrypoint []string, entrypointSet bool, cmd []string) ([]string, error) {
	ep := img.Entrypoint
	c := img.Cmd
	if entrypointSet {
		ep = entrypoint
		// `--entrypoint ""` arrives as [""]: Docker treats it as "clear".
		if len(ep) == 1 && ep[0] == "" {
			ep = nil
		}
		c = nil
	}
	if len(cmd) > 0 {
		c = cmd
	}
	args := make([]string, 0, len(ep)+len(c))
	args = append(args, ep...)
	args = append(args, c...)
	if len(args) == 0 {
		return nil, ErrNoCommand
	}
	return args, nil
}

// Env builds the process environment like Docker: PATH (default), HOSTNAME
// and, with a terminal, TERM=xterm come first; the image's env and then the
// caller's are merged over them. A later value for a key replaces the
// earlier one in place, so the order of first appearance is kept.
func Env(imageEnv, env []string, hostname string, terminal bool) ([]string, error) {
	base := []string{"PATH=" + DefaultPath}
	if hostname != "" {
		base = append(base, "HOSTNAME="+hostname)
	}
	if terminal {
		base = append(base, "TERM=xterm")
	}
	out := make([]string, 0, len(base)+len(imageEnv)+len(env))
	index := map[string]int{}
	for _, list := range [][]string{base, imageEnv, env} {
		for _, kv := range list {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("invalid environment variable %q: want KEY=VALUE", kv)
			}
			if i, seen := index[k]; seen {
				out[i] = kv
				continue
			}
			index[k] = len(out)
			out = append(out, kv)
		}
	}
	return out, nil
}

// DefaultNofile is the RLIMIT_NOFILE a container gets (Docker's usual value).
const DefaultNofile = 1048576

// nofileLimit is DefaultNofile, lowered to this process's own hard limit:
// raising a hard limit needs CAP_SYS_RESOURCE, which sandboxed hosts (this
// kind of CI machine among them: hard limit 20000) do not grant, and the
// runtime would then fail to start every container.
func nofileLimit() uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && rl.Max < DefaultNofile {
		return rl.Max
	}
	return DefaultNofile
}

// namespaces are the container's own namespaces plus netns, unless its
// Type is empty (the host's network).
func namespaces(netns specs.LinuxNamespace) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace},
		{Type: specs.MountNamespace},
		{Type: specs.CgroupNamespace},
	}
	if netns.Type != "" {
		ns = append(ns, netns)
	}
	return ns
}

// mounts lists Docker's default mounts, then the container's own
// hosts/resolv.conf/hostname files, then the binds (parents before children).
// A bind whose destination equals a default's replaces that default.
func mounts(o SpecOptions) []specs.Mount {
	defaults := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
	}
	fileOpts := []string{"rbind", "rprivate"}
	if o.ReadOnly {
		fileOpts = append(fileOpts, "ro")
	}
	for _, f := range []struct{ src, dst string }{
		{o.HostsPath, "/etc/hosts"},
		{o.ResolvConfPath, "/etc/resolv.conf"},
		{o.HostnamePath, "/etc/hostname"},
	} {
		if f.src != "" {
			defaults = append(defaults, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: fileOpts})
		}
	}

	bound := map[string]bool{}
	for _, b := range o.Binds {
		bound[path.Clean(b.Destination)] = true
	}
	out := make([]specs.Mount, 0, len(defaults)+len(o.Binds))
	for _, m := range defaults {
		if !bound[m.Destination] {
			out = append(out, m)
		}
	}
	binds := append([]Bind(nil), o.Binds...)
	sort.SliceStable(binds, func(i, j int) bool {
		return depth(binds[i].Destination) < depth(binds[j].Destination)
	})
	for _, b := range binds {
		if b.Type == "tmpfs" {
			// docker's defaults for --tmpfs, then the caller's.
			opts := append([]string{"nosuid", "nodev", "noexec"}, b.Options...)
			if b.ReadOnly {
				opts = append(opts, "ro")
			}
			out = append(out, specs.Mount{Destination: path.Clean(b.Destination), Type: "tmpfs", Source: "tmpfs", Options: opts})
			continue
		}
		prop := b.Propagation
		if prop == "" {
			prop = "rprivate"
		}
		opts := []string{"rbind", prop}
		if b.ReadOnly {
			opts = append(opts, "ro")
		}
		out = append(out, specs.Mount{Destination: path.Clean(b.Destination), Type: "bind", Source: b.Source, Options: opts})
	}
	if o.InitPath != "" {
		out = append(out, specs.Mount{Destination: InitMountPoint, Type: "bind", Source: o.InitPath, Options: []string{"bind", "ro", "nosuid", "nodev"}})
	}
	return out
}

// InitMountPoint is where --init's binary appears in the container, as
// docker's docker-init does.
const InitMountPoint = "/sbin/docker-init"

// initBinaries are the static inits strata can use for --init: Debian's
// tini-static, then catatonit. A dynamically linked one would not run in
// an image without the host's libc.
var initBinaries = []string{"/usr/bin/tini-static", "/usr/bin/catatonit", "/usr/libexec/podman/catatonit"}

// InitBinary finds the init for --init on this host.
func InitBinary() (string, error) {
	for _, p := range initBinaries {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("--init: no static init binary on this host (looked for %s): install Debian's tini package", strings.Join(initBinaries, ", "))
}

func depth(p string) int {
	return strings.Count(path.Clean(p), "/")
}

func maskedPaths() []string {
	return []string{
		"/proc/asound",
		"/proc/acpi",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
}

func readonlyPaths() []string {
	return []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
}

func ptr[T any](v T) *T { return &v }

// defaultDevices are the nodes created in the container's /dev (console,
// ptmx and the pts devices come from the devpts mount and the runtime).
func defaultDevices() []specs.LinuxDevice {
	dev := func(p string, major, minor int64) specs.LinuxDevice {
		return specs.LinuxDevice{Path: p, Type: "c", Major: major, Minor: minor, FileMode: ptr[os.FileMode](0o666), UID: ptr[uint32](0), GID: ptr[uint32](0)}
	}
	return []specs.LinuxDevice{
		dev("/dev/null", 1, 3),
		dev("/dev/zero", 1, 5),
		dev("/dev/full", 1, 7),
		dev("/dev/random", 1, 8),
		dev("/dev/urandom", 1, 9),
		dev("/dev/tty", 5, 0),
	}
}

// defaultDeviceRules is the device cgroup allow list: deny everything, then
// allow mknod of any node (creating one is harmless; opening it is what is
// controlled) and access to the default devices, the pty devices and the
// console.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	rule := func(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
		if major >= 0 {
			r.Major = ptr(major)
		}
		if minor >= 0 {
			r.Minor = ptr(minor)
		}
		return r
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		rule("c", -1, -1, "m"),
		rule("b", -1, -1, "m"),
		rule("c", 1, 3, "rwm"),    // null
		rule("c", 1, 5, "rwm"),    // zero
		rule("c", 1, 7, "rwm"),    // full
		rule("c", 1, 8, "rwm"),    // random
		rule("c", 1, 9, "rwm"),    // urandom
		rule("c", 5, 0, "rwm"),    // tty
		rule("c", 5, 1, "rwm"),    // console
		rule("c", 5, 2, "rwm"),    // ptmx
		rule("c", 136, -1, "rwm"), // pts/*
	}
}
