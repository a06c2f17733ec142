package oci

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCapabilities(t *testing.T) {
	def := defaultCapabilities()
	for _, tc := range []struct {
		name      string
		add, drop []string
		want      func() []string
		err       bool
	}{
		{name: "none", want: func() []string { return def }},
		{name: "add without prefix, any case", add: []string{"net_admin"}, want: func() []string { return append(slices.Clone(def), "CAP_NET_ADMIN") }},
		{name: "drop with prefix", drop: []string{"CAP_CHOWN"}, want: func() []string { return def[1:] }},
		{name: "drop ALL, add some", drop: []string{"all"}, add: []string{"chown", "CAP_KILL"}, want: func() []string { return []string{"CAP_CHOWN", "CAP_KILL"} }},
		{name: "add ALL, drop some", add: []string{"ALL"}, drop: []string{"SYS_ADMIN"}, want: func() []string {
			return slices.DeleteFunc(knownCapabilities(), func(c string) bool { return c == "CAP_SYS_ADMIN" })
		}},
		{name: "unknown", add: []string{"FLY"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := capabilities(def, tc.add, tc.drop)
			if tc.err {
				if err == nil {
					t.Fatalf("no error, got %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want(), got); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]Device{
		"/dev/fuse":               {Host: "/dev/fuse", Container: "/dev/fuse", Permissions: "rwm"},
		"/dev/fuse:r":             {Host: "/dev/fuse", Container: "/dev/fuse", Permissions: "r"},
		"/dev/sda:/dev/xvda":      {Host: "/dev/sda", Container: "/dev/xvda", Permissions: "rwm"},
		"/dev/sda:/dev/xvda:rw":   {Host: "/dev/sda", Container: "/dev/xvda", Permissions: "rw"},
		"/dev/sda/:/dev/xvda/:mr": {Host: "/dev/sda", Container: "/dev/xvda", Permissions: "mr"},
	} {
		got, err := ParseDevice(in)
		if err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"dev/fuse", "/dev/a:/dev/b:x", "/dev/a:/dev/b:rr", "/a:/b:r:w", "/dev/a:rel"} {
		if d, err := ParseDevice(bad); err == nil {
			t.Errorf("ParseDevice(%q) = %+v, want an error", bad, d)
		}
	}
}

func TestValidateSysctl(t *testing.T) {
	for _, tc := range []struct {
		key     string
		hostNet bool
		ok      bool
	}{
		{"kernel.shmmax", true, true},
		{"fs.mqueue.msg_max", true, true},
		{"net.ipv4.ip_forward", false, true},
		{"net.ipv4.ip_forward", true, false},
		{"kernel.hostname", false, false},
		{"vm.swappiness", false, false},
	} {
		if err := validateSysctl(tc.key, "1", tc.hostNet); (err == nil) != tc.ok {
			t.Errorf("validateSysctl(%q, hostNet %v) = %v", tc.key, tc.hostNet, err)
		}
	}
}

func TestParseSecurityOpts(t *testing.T) {
	p, err := parseSecurityOpts([]string{"no-new-privileges", "seccomp=unconfined", "label=disable", "apparmor=unconfined", "systempaths=unconfined"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.noNewPrivileges || p.seccomp != "unconfined" || !p.unmaskPaths || len(p.labels) != 0 {
		t.Errorf("parsed %+v", p)
	}
	if p, err := parseSecurityOpts([]string{"no-new-privileges:false"}); err != nil || p.noNewPrivileges {
		t.Errorf("no-new-privileges:false = %+v, %v", p, err)
	}
	for _, bad := range []string{"nope", "foo=bar", "no-new-privileges=maybe", "seccomp=", "systempaths=x"} {
		if _, err := parseSecurityOpts([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSupplementaryGroups(t *testing.T) {
	if got := supplementaryGroups(65534, []uint32{20, 65534, 0}); !slices.Equal(got, []uint32{65534, 20, 0}) {
		t.Errorf("got %v", got)
	}
}

func TestSpecSeccompFollowsCapabilities(t *testing.T) {
	base := SpecOptions{Image: ocispec.ImageConfig{Cmd: []string{"true"}}, Rootfs: "/rootfs"}
	s, err := Spec(base)
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != "SCMP_ACT_ERRNO" {
		t.Fatalf("default spec has no default-deny seccomp profile: %+v", s.Linux.Seccomp)
	}
	allowed := func(s *specs.Spec, name string) bool {
		for _, sc := range s.Linux.Seccomp.Syscalls {
			if sc.Action == "SCMP_ACT_ALLOW" && slices.Contains(sc.Names, name) && len(sc.Args) == 0 {
				return true
			}
		}
		return false
	}
	if allowed(s, "unshare") {
		t.Error("unshare allowed without CAP_SYS_ADMIN")
	}
	base.Security.CapAdd = []string{"SYS_ADMIN"}
	if s, err = Spec(base); err != nil {
		t.Fatal(err)
	}
	if !allowed(s, "unshare") {
		t.Error("unshare refused with CAP_SYS_ADMIN")
	}
	base.Security = Security{Privileged: true}
	if s, err = Spec(base); err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp != nil || s.Linux.MaskedPaths != nil || len(s.Linux.Resources.Devices) != 1 {
		t.Errorf("--privileged: seccomp %v, masked %v, device rules %v", s.Linux.Seccomp != nil, s.Linux.MaskedPaths, s.Linux.Resources.Devices)
	}
}
