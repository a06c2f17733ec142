package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerDefaultCaps is CapEff of a root process in a default docker
// container, as the reference dockerd on this machine shows it
// (`docker run --rm busybox grep CapEff /proc/self/status`).
const dockerDefaultCaps = "00000000a80425fb"

// statusField is one field of /proc/self/status as the container printed it.
func statusField(t *testing.T, status, field string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\S+)`).FindStringSubmatch(status)
	if m == nil {
		t.Fatalf("no %s in:\n%s", field, status)
	}
	return m[1]
}

func TestConfinementDefaults(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	status := c.ok("run", "--rm", "--network", "none", "busybox", "cat", "/proc/self/status")
	for field, want := range map[string]string{
		"CapEff": dockerDefaultCaps, "CapBnd": dockerDefaultCaps, "Seccomp": "2", "NoNewPrivs": "0",
	} {
		if got := statusField(t, status, field); got != want {
			t.Errorf("%s = %s, want %s", field, got, want)
		}
	}
	// The default profile refuses unshare to a process without
	// CAP_SYS_ADMIN with EPERM, as docker's does.
	_, errs, code := c.run(nil, "run", "--rm", "busybox", "unshare", "-U", "true")
	if code == 0 || !strings.Contains(errs, "Operation not permitted") {
		t.Errorf("unshare under the default profile: exit %d, %q", code, errs)
	}
	// Masked and read-only paths.
	if out := c.ok("run", "--rm", "busybox", "sh", "-c", "cat /proc/kcore | wc -c; echo 1 2>&1 >/proc/sys/kernel/shmmni; mount | grep ' /sys '"); !strings.HasPrefix(out, "0\n") || !strings.Contains(out, "Read-only") || !strings.Contains(out, "(ro,") {
		t.Errorf("masked /proc/kcore, read-only /proc/sys and /sys: %q", out)
	}
	// A user that is not root has no effective capabilities, and its
	// group list holds its primary group and those naming it.
	out := c.ok("run", "--rm", "-u", "nobody", "--group-add", "20", "--group-add", "root", "busybox", "sh", "-c", "grep CapEff /proc/self/status; id")
	if !strings.Contains(out, "CapEff:\t0000000000000000") || !strings.Contains(out, "groups=0(root),20,65534(nogroup)") {
		t.Errorf("-u nobody --group-add: %q", out)
	}
	if out := c.ok("run", "--rm", "busybox", "id"); out != "uid=0(root) gid=0(root) groups=0(root)\n" {
		t.Errorf("id: %q", out)
	}
}

func TestConfinementFlags(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	// NET_ADMIN is bit 12 and KILL bit 5; CHOWN alone is bit 0.
	status := c.ok("run", "--rm", "--cap-add", "net_admin", "--cap-drop", "CAP_KILL", "busybox", "cat", "/proc/self/status")
	if got := statusField(t, status, "CapEff"); got != "00000000a80435db" {
		t.Errorf("--cap-add net_admin --cap-drop CAP_KILL: CapEff %s", got)
	}
	status = c.ok("run", "--rm", "--cap-drop", "ALL", "--cap-add", "chown", "--security-opt", "no-new-privileges", "busybox", "cat", "/proc/self/status")
	if got := statusField(t, status, "CapEff"); got != "0000000000000001" {
		t.Errorf("--cap-drop ALL --cap-add chown: CapEff %s", got)
	}
	if got := statusField(t, status, "NoNewPrivs"); got != "1" {
		t.Errorf("no-new-privileges: NoNewPrivs %s", got)
	}
	if out := c.ok("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "grep", "Seccomp:", "/proc/self/status"); !strings.Contains(out, "0") {
		t.Errorf("seccomp=unconfined: %q", out)
	}
	profile := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := c.run(nil, "run", "--rm", "--security-opt", "seccomp="+profile, "busybox", "mkdir", "/x"); code == 0 || !strings.Contains(errs, "Permission denied") {
		t.Errorf("seccomp=PROFILE denying mkdir with EACCES: exit %d, %q", code, errs)
	}
	if out := c.ok("run", "--rm", "--network", "none", "--sysctl", "kernel.shmmax=4096", "--sysctl", "net.ipv4.ip_forward=1", "busybox", "cat", "/proc/sys/kernel/shmmax", "/proc/sys/net/ipv4/ip_forward"); out != "4096\n1\n" {
		t.Errorf("--sysctl: %q", out)
	}
	if out := c.ok("run", "--rm", "--device", "/dev/null:/dev/other-null", "busybox", "ls", "-l", "/dev/other-null"); !strings.HasPrefix(out, "c") || !strings.Contains(out, "1,   3") {
		t.Errorf("--device: %q", out)
	}
	for _, bad := range [][]string{
		{"--cap-add", "NOPE"},
		{"--security-opt", "bogus=1"},
		{"--security-opt", "apparmor=docker-default"}, // this host has no AppArmor
		{"--security-opt", "seccomp=" + filepath.Join(t.TempDir(), "missing.json")},
		{"--sysctl", "vm.swappiness=1"},
		{"--network", "host", "--sysctl", "net.ipv4.ip_forward=1"},
		{"--device", "/etc/passwd"},
		{"--group-add", "nosuch"},
	} {
		if _, ok := os.Stat("/sys/module/apparmor/parameters/enabled"); ok == nil && strings.HasPrefix(bad[1], "apparmor") {
			continue
		}
		args := append(append([]string{"run", "--rm"}, bad...), "busybox", "true")
		if _, errs, code := c.run(nil, args...); code != 125 || !strings.HasPrefix(errs, "Error") {
			t.Errorf("%v: exit %d, %q; want 125 and an error", bad, code, errs)
		}
	}
}

func TestPrivileged(t *testing.T) {
	t.Parallel()
	c := newBusyboxCLI(t)
	own, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	out, errs, code := c.run(nil, "run", "--rm", "--privileged", "busybox", "sh", "-c", "cat /proc/self/status; mount | grep ' /sys '; test -c /dev/kmsg -o -c /dev/loop-control && echo devices")
	if code != 0 {
		t.Fatalf("--privileged: exit %d: %s", code, errs)
	}
	// Every capability strata holds, whatever this host withholds from it.
	if got, want := statusField(t, out, "CapEff"), statusField(t, string(own), "CapBnd"); got != want {
		t.Errorf("--privileged CapEff %s, want strata's bounding set %s", got, want)
	}
	if got := statusField(t, out, "Seccomp"); got != "0" {
		t.Errorf("--privileged runs under seccomp mode %s", got)
	}
	if !strings.Contains(out, "(rw,") || !strings.Contains(out, "devices") {
		t.Errorf("--privileged: /sys not writable or host devices missing:\n%s", out)
	}
	if statusField(t, string(own), "CapBnd") != "000001ffffffffff" && !strings.Contains(errs, "WARNING: --privileged") {
		t.Errorf("no warning about the capabilities strata lacks: %q", errs)
	}
}
