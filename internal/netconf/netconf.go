// Package netconf makes the three files through which a container sees its
// network identity: /etc/hostname, /etc/hosts and /etc/resolv.conf.
//
// They are written next to the container (its directory, or a build step's
// scratch dir) and bind-mounted over the image's own, as docker does, so
// they are never part of a layer, a diff or a commit. `run` and every build
// step use this one implementation.
//
// Make is pure (the host's files come in as bytes) so the rules are tested
// without root; ReadHost and Files.Write are the only I/O.
package netconf

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// Config is what the caller knows about the container's network identity.
// The fields map to docker's flags of the same names.
type Config struct {
	// HostNetwork says the container shares the host's network namespace
	// (and so its loopback); otherwise it has a namespace of its own.
	HostNetwork bool
	// Hostname is /etc/hostname and the name /etc/hosts gives the
	// container; Domainname (optional) makes its fully qualified name.
	Hostname, Domainname string

	// DNS, DNSSearch and DNSOptions replace the host's nameservers, search
	// domains and options (--dns, --dns-search, --dns-option); each left
	// empty keeps the host's.
	DNS, DNSSearch, DNSOptions []string
	// ExtraHosts are appended to /etc/hosts (--add-host).
	ExtraHosts []Host

	// Build asks for the hosts file of a build step, as BuildKit writes
	// it: localhost and the hostname only, on every network. Otherwise
	// (`run`) the host network gets a copy of the host's /etc/hosts, as
	// docker's does, so names the host resolves keep resolving.
	Build bool
}

// Host is one --add-host entry.
type Host struct {
	Name string
	IP   netip.Addr
}

// ParseHost reads docker's --add-host NAME:IP (also NAME=IP; the IP may be
// IPv6, optionally in brackets).
func ParseHost(s string) (Host, error) {
	name, ip, ok := strings.Cut(s, "=")
	if !ok {
		name, ip, ok = strings.Cut(s, ":")
	}
	if !ok || name == "" || ip == "" {
		return Host{}, fmt.Errorf("invalid argument %q for \"--add-host\" flag: bad format for add-host: %q", s, s)
	}
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return Host{}, fmt.Errorf("invalid argument %q for \"--add-host\" flag: invalid IP address in add-host: %q", s, ip)
	}
	return Host{Name: name, IP: addr}, nil
}

// HostFiles are the host's own network files, as ReadHost found them.
type HostFiles struct {
	ResolvConf []byte // /etc/resolv.conf
	// ResolvedConf is systemd-resolved's list of real upstream servers,
	// for when /etc/resolv.conf names only its loopback stub.
	ResolvedConf []byte
	Hosts        []byte // /etc/hosts
}

// ReadHost reads the host's files; a missing file reads as empty.
func ReadHost() HostFiles {
	read := func(p string) []byte {
		b, _ := os.ReadFile(p)
		return b
	}
	return HostFiles{
		ResolvConf:   read("/etc/resolv.conf"),
		ResolvedConf: read("/run/systemd/resolve/resolv.conf"),
		Hosts:        read("/etc/hosts"),
	}
}

// Files are the contents of the three files.
type Files struct {
	Hostname, Hosts, ResolvConf []byte
}

// Paths are where Write put them, to be bind-mounted at /etc/hostname,
// /etc/hosts and /etc/resolv.conf.
type Paths struct {
	Hostname, Hosts, ResolvConf string
}

// FallbackNameservers are docker's when the host has no nameserver the
// container can reach.
var FallbackNameservers = []string{"8.8.8.8", "8.8.4.4"}

// Make computes the files for c on a host whose files are h.
func Make(c Config, h HostFiles) (Files, error) {
	if c.Hostname == "" {
		return Files{}, fmt.Errorf("netconf: no hostname")
	}
	for _, ns := range c.DNS {
		if _, err := netip.ParseAddr(ns); err != nil {
			return Files{}, fmt.Errorf("%s is not an ip address", ns)
		}
	}
	return Files{
		Hostname:   []byte(c.Hostname + "\n"),
		Hosts:      hosts(c, h.Hosts),
		ResolvConf: resolvConf(c, h),
	}, nil
}

// hosts is the container's /etc/hosts.
func hosts(c Config, host []byte) []byte {
	var b bytes.Buffer
	names := c.Hostname
	if c.Domainname != "" {
		names = c.Hostname + "." + c.Domainname + " " + c.Hostname
	}
	switch {
	case c.Build:
		// BuildKit's file: the hostname on the loopback line.
		fmt.Fprintf(&b, "127.0.0.1\tlocalhost %s\n", names)
		b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	case c.HostNetwork && len(host) > 0:
		b.Write(host)
		if !bytes.HasSuffix(host, []byte("\n")) {
			b.WriteByte('\n')
		}
	default:
		b.WriteString("127.0.0.1\tlocalhost\n")
		b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
		b.WriteString("fe00::0\tip6-localnet\n")
		b.WriteString("ff00::0\tip6-mcastprefix\n")
		b.WriteString("ff02::1\tip6-allnodes\n")
		b.WriteString("ff02::2\tip6-allrouters\n")
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", names)
	}
	for _, e := range c.ExtraHosts {
		fmt.Fprintf(&b, "%s\t%s\n", e.IP, e.Name)
	}
	return b.Bytes()
}

// resolvConf is the container's /etc/resolv.conf: the host's, with the
// caller's overrides. A container outside the host's network cannot reach
// a nameserver on the host's loopback, so those are dropped there (and
// systemd-resolved's upstream list is read instead of its stub), falling
// back to docker's public resolvers when none is left, as docker does.
func resolvConf(c Config, h HostFiles) []byte {
	src := h.ResolvConf
	host := c.HostNetwork
	overridden := len(c.DNS)+len(c.DNSSearch)+len(c.DNSOptions) > 0
	if host && !overridden && len(parse(src).nameservers) > 0 {
		return src // docker copies the host's file as it is
	}
	if !host && onlyLoopback(parse(src).nameservers) && len(parse(h.ResolvedConf).nameservers) > 0 {
		src = h.ResolvedConf
	}
	rc := parse(src)
	if len(c.DNS) > 0 {
		rc.nameservers = c.DNS
	}
	if len(c.DNSSearch) > 0 {
		rc.search = c.DNSSearch
		if len(c.DNSSearch) == 1 && c.DNSSearch[0] == "." {
			rc.search = nil // docker's way to ask for none
		}
	}
	if len(c.DNSOptions) > 0 {
		rc.options = c.DNSOptions
	}
	if !host || len(rc.nameservers) == 0 {
		var kept []string
		for _, ns := range rc.nameservers {
			if a, err := netip.ParseAddr(ns); err == nil && !a.IsLoopback() {
				kept = append(kept, ns)
			}
		}
		if len(kept) == 0 {
			kept = FallbackNameservers
		}
		rc.nameservers = kept
	}
	return rc.bytes()
}

func onlyLoopback(nameservers []string) bool {
	for _, ns := range nameservers {
		if a, err := netip.ParseAddr(ns); err != nil || !a.IsLoopback() {
			return false
		}
	}
	return true
}

// resolv is a parsed resolv.conf; other lines (comments, sortlist, ...)
// are kept as they were.
type resolv struct {
	nameservers, search, options []string
	other                        []string
}

func parse(b []byte) resolv {
	var rc resolv
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				rc.nameservers = append(rc.nameservers, f[1])
			}
		case "search", "domain":
			// The last of search/domain wins, as in resolv.conf(5).
			rc.search = append([]string(nil), f[1:]...)
		case "options":
			rc.options = append(rc.options, f[1:]...)
		default:
			if line[0] != '#' && line[0] != ';' {
				rc.other = append(rc.other, line)
			}
		}
	}
	return rc
}

func (rc resolv) bytes() []byte {
	var b bytes.Buffer
	for _, l := range rc.other {
		b.WriteString(l + "\n")
	}
	if len(rc.search) > 0 {
		b.WriteString("search " + strings.Join(rc.search, " ") + "\n")
	}
	for _, ns := range rc.nameservers {
		b.WriteString("nameserver " + ns + "\n")
	}
	if len(rc.options) > 0 {
		b.WriteString("options " + strings.Join(rc.options, " ") + "\n")
	}
	return b.Bytes()
}

// PathsIn names the files Write puts in dir.
func PathsIn(dir string) Paths {
	return Paths{
		Hostname:   filepath.Join(dir, "hostname"),
		Hosts:      filepath.Join(dir, "hosts"),
		ResolvConf: filepath.Join(dir, "resolv.conf"),
	}
}

// Write writes f into dir (which must exist) and returns the paths.
func (f Files) Write(dir string) (Paths, error) {
	p := PathsIn(dir)
	for _, w := range []struct {
		path string
		data []byte
	}{{p.Hostname, f.Hostname}, {p.Hosts, f.Hosts}, {p.ResolvConf, f.ResolvConf}} {
		// 0644: the container's processes, any user, read these.
		if err := os.WriteFile(w.path, w.data, 0o644); err != nil {
			return Paths{}, fmt.Errorf("write %s: %w", filepath.Base(w.path), err)
		}
	}
	return p, nil
}
