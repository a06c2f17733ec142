package netconf

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolvConf(t *testing.T) {
	t.Parallel()
	const hostRC = "# managed by someone\nnameserver 127.0.0.53\nnameserver 9.9.9.9\nsearch example.org\noptions edns0\n"
	tests := []struct {
		name string
		c    Config
		h    HostFiles
		want string
	}{
		{"host network keeps the host's file as it is",
			Config{HostNetwork: true}, HostFiles{ResolvConf: []byte(hostRC)}, hostRC},
		{"own namespace drops loopback nameservers",
			Config{}, HostFiles{ResolvConf: []byte(hostRC)},
			"search example.org\nnameserver 9.9.9.9\noptions edns0\n"},
		{"only loopback left: docker's fallback",
			Config{}, HostFiles{ResolvConf: []byte("nameserver 127.0.0.1\nnameserver ::1\n")},
			"nameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
		{"systemd-resolved stub: its upstream list instead",
			Config{}, HostFiles{ResolvConf: []byte("nameserver 127.0.0.53\n"), ResolvedConf: []byte("nameserver 1.2.3.4\n")},
			"nameserver 1.2.3.4\n"},
		{"host without resolv.conf: fallback even on the host network",
			Config{HostNetwork: true}, HostFiles{},
			"nameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
		{"overrides replace each part",
			Config{HostNetwork: true, DNS: []string{"1.1.1.1"}, DNSSearch: []string{"a.test", "b.test"}, DNSOptions: []string{"ndots:2"}},
			HostFiles{ResolvConf: []byte(hostRC)},
			"search a.test b.test\nnameserver 1.1.1.1\noptions ndots:2\n"},
		{"--dns-search . clears the search list",
			Config{HostNetwork: true, DNSSearch: []string{"."}}, HostFiles{ResolvConf: []byte(hostRC)},
			"nameserver 127.0.0.53\nnameserver 9.9.9.9\noptions edns0\n"},
		{"domain is a search list of one",
			Config{}, HostFiles{ResolvConf: []byte("domain corp.test\nnameserver 5.6.7.8\n")},
			"search corp.test\nnameserver 5.6.7.8\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Make(Config{Hostname: "box", HostNetwork: tt.c.HostNetwork, DNS: tt.c.DNS, DNSSearch: tt.c.DNSSearch, DNSOptions: tt.c.DNSOptions}, tt.h)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(f.ResolvConf); got != tt.want {
				t.Errorf("resolv.conf:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestHosts(t *testing.T) {
	t.Parallel()
	host := HostFiles{Hosts: []byte("127.0.0.1 localhost\n10.9.9.9 intranet")}
	extra := []Host{{Name: "db", IP: netip.MustParseAddr("192.0.2.7")}}
	tests := []struct {
		name string
		c    Config
		want string
	}{
		{"build step: BuildKit's file on any network",
			Config{Hostname: "sandbox", HostNetwork: true, Build: true},
			"127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n"},
		{"run on the host network: the host's file, then --add-host",
			Config{Hostname: "vm", HostNetwork: true, ExtraHosts: extra},
			"127.0.0.1 localhost\n10.9.9.9 intranet\n192.0.2.7\tdb\n"},
		{"own namespace: docker's loopback file naming the container",
			Config{Hostname: "abc", Domainname: "corp.test"},
			"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.1.1\tabc.corp.test abc\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Make(tt.c, host)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(f.Hosts); got != tt.want {
				t.Errorf("hosts:\n%q\nwant:\n%q", got, tt.want)
			}
			if got := string(f.Hostname); got != tt.c.Hostname+"\n" {
				t.Errorf("hostname %q", got)
			}
		})
	}
}

func TestMakeRefuses(t *testing.T) {
	t.Parallel()
	if _, err := Make(Config{}, HostFiles{}); err == nil {
		t.Error("no hostname accepted")
	}
	if _, err := Make(Config{Hostname: "x", DNS: []string{"dns.example"}}, HostFiles{}); err == nil || !strings.Contains(err.Error(), "dns.example is not an ip address") {
		t.Errorf("bad --dns: %v", err)
	}
}

func TestParseHost(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Host{
		"db:192.0.2.1":     {"db", netip.MustParseAddr("192.0.2.1")},
		"db=192.0.2.1":     {"db", netip.MustParseAddr("192.0.2.1")},
		"v6:2001:db8::1":   {"v6", netip.MustParseAddr("2001:db8::1")},
		"v6=[2001:db8::1]": {"v6", netip.MustParseAddr("2001:db8::1")},
	} {
		got, err := ParseHost(in)
		if err != nil || got != want {
			t.Errorf("ParseHost(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "db", ":1.2.3.4", "db:", "db:notanip"} {
		if _, err := ParseHost(bad); err == nil {
			t.Errorf("ParseHost(%q) accepted", bad)
		}
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := Files{Hostname: []byte("h\n"), Hosts: []byte("hosts\n"), ResolvConf: []byte("nameserver 1.1.1.1\n")}
	p, err := f.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{p.Hostname: "h\n", p.Hosts: "hosts\n", p.ResolvConf: "nameserver 1.1.1.1\n"} {
		if filepath.Dir(path) != dir {
			t.Errorf("%s outside %s", path, dir)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v", path, b, err)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
			t.Errorf("%s mode %v", path, fi.Mode())
		}
	}
}
