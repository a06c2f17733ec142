package oci

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestArgs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"img-cmd"}}
	noEP := ocispec.ImageConfig{Cmd: []string{"sh"}}
	tests := []struct {
		name  string
		img   ocispec.ImageConfig
		ep    []string
		epSet bool
		cmd   []string
		want  []string
		err   error
	}{
		{name: "image entrypoint and cmd", img: img, want: []string{"/entry", "img-cmd"}},
		{name: "cmd replaces image cmd", img: img, cmd: []string{"a", "b"}, want: []string{"/entry", "a", "b"}},
		{name: "entrypoint drops image cmd", img: img, ep: []string{"/other"}, epSet: true, want: []string{"/other"}},
		{name: "entrypoint with cmd", img: img, ep: []string{"/other"}, epSet: true, cmd: []string{"x"}, want: []string{"/other", "x"}},
		{name: "empty entrypoint clears", img: img, ep: []string{""}, epSet: true, cmd: []string{"ls"}, want: []string{"ls"}},
		{name: "nil entrypoint clears", img: img, epSet: true, cmd: []string{"ls"}, want: []string{"ls"}},
		{name: "cleared entrypoint and no cmd", img: img, ep: []string{""}, epSet: true, err: ErrNoCommand},
		{name: "cmd only image", img: noEP, want: []string{"sh"}},
		{name: "nothing at all", err: ErrNoCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Args(tt.img, tt.ep, tt.epSet, tt.cmd)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := Args(ocispec.ImageConfig{}, nil, false, nil); err == nil || err.Error() != "no command specified" {
		t.Errorf("error text = %v, want Docker's %q", err, "no command specified")
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name     string
		image    []string
		env      []string
		hostname string
		terminal bool
		want     []string
	}{
		{
			name: "defaults",
			want: []string{"PATH=" + DefaultPath},
		},
		{
			name:     "hostname and terminal",
			hostname: "box", terminal: true,
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=box", "TERM=xterm"},
		},
		{
			name:  "image path wins over default, options over image, order of first appearance",
			image: []string{"A=1", "PATH=/img/bin", "B=2"},
			env:   []string{"B=3", "C=", "A=4"},
			want:  []string{"PATH=/img/bin", "A=4", "B=3", "C="},
		},
		{
			name:     "caller can override TERM and HOSTNAME",
			hostname: "box", terminal: true,
			env:  []string{"TERM=dumb", "HOSTNAME=other"},
			want: []string{"PATH=" + DefaultPath, "HOSTNAME=other", "TERM=dumb"},
		},
		{
			name:  "value with equals sign",
			image: []string{"X=a=b"},
			want:  []string{"PATH=" + DefaultPath, "X=a=b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Env(tt.image, tt.env, tt.hostname, tt.terminal)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{"BARE", "=x"} {
		if _, err := Env(nil, []string{bad}, "", false); err == nil {
			t.Errorf("Env(%q) succeeded, want error", bad)
		}
	}
}

func TestParseBind(t *testing.T) {
	tests := []struct {
		in   string
		want Bind
		bad  bool
	}{
		{in: "/h:/c", want: Bind{Source: "/h", Destination: "/c"}},
		{in: "/h/:/c/d/../e:ro", want: Bind{Source: "/h", Destination: "/c/e", ReadOnly: true}},
		{in: "/h:/c:rw", want: Bind{Source: "/h", Destination: "/c"}},
		{in: "vol:/c", bad: true},
		{in: "/h:c", bad: true},
		{in: "/h", bad: true},
		{in: "/h:/c:z", bad: true},
		{in: "/h:/c:ro:x", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseBind(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseBind(%q) = %+v, want error", tt.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseBind(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func baseOptions() SpecOptions {
	return SpecOptions{
		Image:  ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"FOO=bar"}, WorkingDir: "/app"},
		Rootfs: "/var/lib/strata/c1/rootfs",
	}
}

func TestSpecDefaults(t *testing.T) {
	s, err := Spec(baseOptions())
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != "1.0.2" {
		t.Errorf("ociVersion = %q, want 1.0.2 (crun 1.8.1 rejects newer)", s.Version)
	}
	if s.Process.Cwd != "/app" {
		t.Errorf("cwd = %q, want the image's /app", s.Process.Cwd)
	}
	if !slices.Contains(s.Process.Env, "FOO=bar") {
		t.Errorf("env %v lacks the image's FOO=bar", s.Process.Env)
	}
	if s.Process.Terminal || s.Root.Readonly || s.Root.Path != "/var/lib/strata/c1/rootfs" {
		t.Errorf("process/root = %+v %+v", s.Process, s.Root)
	}
	caps := s.Process.Capabilities
	if len(caps.Bounding) != 14 || !slices.Equal(caps.Bounding, caps.Effective) || !slices.Equal(caps.Bounding, caps.Permitted) {
		t.Errorf("capabilities = %+v, want Docker's 14 in bounding/effective/permitted", caps)
	}
	if slices.Contains(caps.Bounding, "CAP_SYS_ADMIN") {
		t.Error("CAP_SYS_ADMIN granted")
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	nofile := min(rl.Max, 1048576)
	if want := (specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: nofile, Soft: nofile}); !slices.Contains(s.Process.Rlimits, want) {
		t.Errorf("rlimits = %+v, want %+v", s.Process.Rlimits, want)
	}
	var nsTypes []specs.LinuxNamespaceType
	for _, ns := range s.Linux.Namespaces {
		nsTypes = append(nsTypes, ns.Type)
	}
	if slices.Contains(nsTypes, specs.NetworkNamespace) {
		t.Errorf("default network is host, but namespaces = %v", nsTypes)
	}
	for _, want := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace, specs.CgroupNamespace} {
		if !slices.Contains(nsTypes, want) {
			t.Errorf("namespaces %v lack %s", nsTypes, want)
		}
	}
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
	}
	if diff := cmp.Diff([]string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"}, dests); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	rules := s.Linux.Resources.Devices
	if len(rules) == 0 || rules[0].Allow || rules[0].Access != "rwm" {
		t.Errorf("device rules must start with deny-all, got %+v", rules)
	}
}

func TestSpecOptions(t *testing.T) {
	o := baseOptions()
	o.Network = NetworkNone
	o.ReadOnly = true
	o.Terminal = true
	o.Hostname = "box"
	o.WorkingDir = "/work/"
	o.UID, o.GID, o.AdditionalGids = 1000, 1000, []uint32{2000}
	o.HostsPath, o.ResolvConfPath, o.HostnamePath = "/c/hosts", "/c/resolv.conf", "/c/hostname"
	o.Binds = []Bind{
		{Source: "/h/sub", Destination: "/data/sub"},
		{Source: "/h", Destination: "/data", ReadOnly: true},
		{Source: "/h/shm", Destination: "/dev/shm"},
		{Source: "/h/hosts", Destination: "/etc/hosts"},
	}
	s, err := Spec(o)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Root.Readonly || !s.Process.Terminal || s.Hostname != "box" || s.Process.Cwd != "/work" {
		t.Errorf("root %+v terminal %v hostname %q cwd %q", s.Root, s.Process.Terminal, s.Hostname, s.Process.Cwd)
	}
	if diff := cmp.Diff(specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 2000}}, s.Process.User); diff != "" {
		t.Errorf("user (-want +got):\n%s", diff)
	}
	if !slices.Contains(s.Process.Env, "TERM=xterm") || !slices.Contains(s.Process.Env, "HOSTNAME=box") {
		t.Errorf("env %v lacks TERM/HOSTNAME", s.Process.Env)
	}
	hasNet := false
	for _, ns := range s.Linux.Namespaces {
		hasNet = hasNet || ns.Type == specs.NetworkNamespace
	}
	if !hasNet {
		t.Error("network none must create a network namespace")
	}
	var got []string
	for _, m := range s.Mounts {
		got = append(got, m.Destination+" "+m.Source+" "+strings.Join(m.Options, ","))
	}
	want := []string{
		"/proc proc nosuid,noexec,nodev",
		"/dev tmpfs nosuid,strictatime,mode=755,size=65536k",
		"/dev/pts devpts nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5",
		"/sys sysfs nosuid,noexec,nodev,ro",
		"/sys/fs/cgroup cgroup nosuid,noexec,nodev,relatime,ro",
		"/dev/mqueue mqueue nosuid,noexec,nodev",
		// /dev/shm and /etc/hosts are replaced by the binds.
		"/etc/resolv.conf /c/resolv.conf rbind,rprivate,ro",
		"/etc/hostname /c/hostname rbind,rprivate,ro",
		// Parents before children, otherwise stable.
		"/data /h rbind,rprivate,ro",
		"/data/sub /h/sub rbind,rprivate",
		"/dev/shm /h/shm rbind,rprivate",
		"/etc/hosts /h/hosts rbind,rprivate",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}
}

func TestSpecErrors(t *testing.T) {
	for name, mutate := range map[string]func(*SpecOptions){
		"relative rootfs":  func(o *SpecOptions) { o.Rootfs = "rootfs" },
		"relative workdir": func(o *SpecOptions) { o.WorkingDir = "app" },
		"unknown network":  func(o *SpecOptions) { o.Network = "bridge" },
		"no command":       func(o *SpecOptions) { o.Image.Cmd = nil },
		"bare env":         func(o *SpecOptions) { o.Env = []string{"HOME"} },
	} {
		o := baseOptions()
		mutate(&o)
		if _, err := Spec(o); err == nil {
			t.Errorf("%s: Spec succeeded, want error", name)
		}
	}
}

func TestEffectiveUser(t *testing.T) {
	o := SpecOptions{Image: ocispec.ImageConfig{User: "app"}}
	if got := o.EffectiveUser(); got != "app" {
		t.Errorf("EffectiveUser = %q, want the image's app", got)
	}
	o.User = "0:0"
	if got := o.EffectiveUser(); got != "0:0" {
		t.Errorf("EffectiveUser = %q, want -u value", got)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{"SIGTERM": 15, "term": 15, "KILL": 9, "9": 9, "sigusr1": 10, "SIGRTMIN+3": 37, "RTMIN": 34, "SIGRTMAX-2": 62} {
		got, err := ParseSignal(in)
		if err != nil || int(got) != want {
			t.Errorf("ParseSignal(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "NOPE", "0", "99", "-1", "SIGFOO", "SIGRTMIN+31", "SIGRTMIN-1", "SIGRTMAX+1", "RTMINX"} {
		if _, err := ParseSignal(bad); err == nil {
			t.Errorf("ParseSignal(%q) succeeded", bad)
		}
	}
	if s, err := StopSignal(""); err != nil || s != 15 {
		t.Errorf("StopSignal(\"\") = %d, %v", s, err)
	}
}

func TestSpecJoinsANetworkNamespaceByPath(t *testing.T) {
	o := baseOptions()
	o.Network = NetworkNone // ignored: the path wins
	o.NetworkNamespace = "/store/run/netns/abc"
	s, err := Spec(o)
	if err != nil {
		t.Fatal(err)
	}
	var got []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			got = append(got, ns)
		}
	}
	if len(got) != 1 || got[0].Path != o.NetworkNamespace {
		t.Fatalf("network namespaces %+v, want one joined at %s", got, o.NetworkNamespace)
	}
}
