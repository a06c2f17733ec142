package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/strata-project/strata/internal/image"
)

// ResolvePlatform normalizes docker's spellings, accepts the host and an
// architecture with an enabled binfmt_misc handler, refuses the rest.
func TestResolvePlatform(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "qemu-aarch64"), []byte("enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "qemu-riscv64"), []byte("disabled\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "qemu-ppc64le"), []byte("enabled\ninterpreter /usr/bin/qemu-ppc64le\nflags: OC\n"), 0o644)
	old := binfmtDir
	binfmtDir = dir
	defer func() { binfmtDir = old }()
	host := image.DefaultOS + "/" + image.DefaultArch
	for _, tc := range []struct{ in, want, err string }{
		{host, host, ""},
		{image.DefaultArch, host, ""},
		{"linux/arm64/v8", "linux/arm64", ""},
		{"linux/aarch64", "linux/arm64", ""},
		{"LINUX/ARM64", "linux/arm64", ""},
		{"linux/riscv64", "", "no binfmt_misc emulation registered for linux/riscv64; to build through emulation, install qemu-user-static and register it (hack/binfmt.sh riscv64, or update-binfmts --enable qemu-riscv64)"},
		{"linux/s390x", "", "no binfmt_misc emulation registered for linux/s390x"},
		{"linux/ppc64le", "", "handler qemu-ppc64le lacks the F (fix-binary) flag"},
		{"windows/amd64", "", "strata builds linux images only"},
		{"linux/", "", "invalid platform"},
		{"a/b/c/d", "", "invalid platform"},
	} {
		p, err := ResolvePlatform(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || image.FormatPlatform(p) != tc.want {
			t.Errorf("%s: %v %v, want %s", tc.in, image.FormatPlatform(p), err, tc.want)
		}
	}
	args := platformArgs(mustPlatform(t, "linux/arm64"))
	if args["TARGETPLATFORM"] != "linux/arm64" || args["TARGETARCH"] != "arm64" || args["BUILDPLATFORM"] != host {
		t.Errorf("platformArgs: %v", args)
	}
}

func mustPlatform(t *testing.T, s string) ocispec.Platform {
	t.Helper()
	p, err := image.ParsePlatform(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
