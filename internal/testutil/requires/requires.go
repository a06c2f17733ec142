// Package requires is the one way a test states what the machine must have:
// root, a command on PATH, a mountable overlay. Locally a missing requirement
// skips the test; under CI=true it fails it, so CI can never go green by
// skipping what it was meant to prove.
package requires

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where every
// requirement must be met.
func InCI() bool { return os.Getenv("CI") == "true" }

// missing skips the test, or fails it under CI.
func missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true but the machine lacks %s (the Makefile's deps target installs it)", what)
	}
	t.Skipf("needs %s", what)
}

// Root requires running as root (mounts, chown, mknod, runc).
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "root")
	}
}

// Command requires each named program on PATH and returns the first one's path.
func Command(t testing.TB, names ...string) string {
	t.Helper()
	first := ""
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			missing(t, n+" on PATH")
			return ""
		}
		if first == "" {
			first = p
		}
	}
	return first
}

// Runc requires root and runc: what every test that starts a container needs.
func Runc(t testing.TB) {
	t.Helper()
	Root(t)
	Command(t, "runc")
}

// Binfmt requires an enabled binfmt_misc handler for qemu's architecture
// arch ("aarch64"): what an emulated --platform build needs (the Makefile's
// deps registers it with hack/binfmt.sh).
func Binfmt(t testing.TB, arch string) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/fs/binfmt_misc/qemu-" + arch)
	if err != nil || len(b) < 7 || string(b[:7]) != "enabled" {
		missing(t, "binfmt_misc emulation for "+arch+" (hack/binfmt.sh "+arch+")")
	}
}
