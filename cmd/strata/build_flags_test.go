package main

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --output exports the target stage's files as BuildKit's local and tar
// exporters do; --platform takes the host's platform and refuses one the kernel cannot
// emulate.
func TestBuildOutputAndPlatform(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.importBusybox()
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM busybox AS build
RUN mkdir -p /out/sub && echo artifact > /out/sub/a.txt && chmod 640 /out/sub/a.txt
FROM scratch
COPY --from=build /out/ /
`), 0o644)
	dest := filepath.Join(t.TempDir(), "dist")
	c.build("--platform", "linux/amd64", "-o", dest, ctx)
	fi, err := os.Stat(filepath.Join(dest, "sub", "a.txt"))
	if err != nil || fi.Mode().Perm() != 0o640 || readFile(t, filepath.Join(dest, "sub", "a.txt")) != "artifact\n" {
		t.Errorf("-o DIR: %v %v", fi, err)
	}
	tarFile := filepath.Join(t.TempDir(), "out.tar")
	c.build("--output", "type=tar,dest="+tarFile, ctx)
	want := map[string]bool{"sub/": true, "sub/a.txt": true}
	if names := tarNames(t, tarFile); !maps.Equal(names, want) {
		t.Errorf("type=tar: %v", names)
	}
	out, _, code := c.run(nil, "build", "--progress", "plain", "-o", "-", ctx)
	if names := tarNamesFrom(t, strings.NewReader(out)); code != 0 || !maps.Equal(names, want) {
		t.Errorf("-o -: exit %d, %v", code, names)
	}
	for _, tc := range []struct{ args, want string }{
		{"--platform linux/s390x", "no binfmt_misc emulation registered for linux/s390x; to build through emulation, install qemu-user-static"},
		{"--platform windows/amd64", "this host is linux/amd64"},
		{"--output type=oci,dest=x", `type "oci" is not supported`},
		{"--output type=local", "type=local needs dest="},
		{"--ssh default=/etc/passwd", "/etc/passwd is not a socket: strata forwards SSH agent sockets"},
	} {
		_, errs, code := c.run(nil, append(append([]string{"build"}, strings.Fields(tc.args)...), ctx)...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: exit %d %q, want %q", tc.args, code, errs, tc.want)
		}
	}
}
