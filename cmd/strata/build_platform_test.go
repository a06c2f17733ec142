package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	rt "github.com/strata-project/strata/internal/registry/registrytest"
	"github.com/strata-project/strata/internal/testutil/requires"
)

// archProg is a static program that writes the architecture it was built
// for, and the TARGETARCH its environment names, to the file it is given.
const archProg = `package main

import (
	"os"
	"runtime"
)

func main() {
	if err := os.WriteFile(os.Args[1], []byte(runtime.GOARCH+" "+os.Getenv("TARGETARCH")+"\n"), 0o644); err != nil {
		panic(err)
	}
}
`

// --platform linux/arm64 on an amd64 host builds through the kernel's
// binfmt_misc emulation: the RUN step's arm64 binary really runs, and the
// image says arm64. There is no arm64 base image here, so the base is
// scratch and the binary is cross-compiled.
func TestBuildEmulatedPlatform(t *testing.T) {
	t.Parallel()
	requires.Runc(t)
	requires.Binfmt(t, "aarch64")
	if runtime.GOARCH == "arm64" {
		t.Skip("the host is arm64: nothing to emulate")
	}
	c := newCLI(t)
	ctx := t.TempDir()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(archProg), 0o644); err != nil {
		t.Fatal(err)
	}
	gobuild := exec.Command("go", "build", "-o", filepath.Join(ctx, "prog"), "main.go")
	gobuild.Dir = src
	gobuild.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "GO111MODULE=off")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("cross-compile: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM scratch
COPY prog /prog
ARG TARGETARCH
RUN ["/prog", "/arch"]
`), 0o644)
	c.build("--platform", "linux/arm64", "-t", "arm", ctx)
	if got := strings.TrimSpace(c.ok("inspect", "-f", "{{.Architecture}} {{.Os}}", "arm")); got != "arm64 linux" {
		t.Errorf("inspect: %q, want arm64 linux", got)
	}
	if got := readFile(t, filepath.Join(c.mountImage("arm"), "arch")); got != "arm64 arm64\n" {
		t.Errorf("RUN wrote %q, want the arm64 binary to have run with TARGETARCH=arm64", got)
	}
	// FROM --platform alone makes that stage arm64; TARGETARCH stays the
	// build's (the host's), as in docker.
	fromCtx := t.TempDir()
	os.Link(filepath.Join(ctx, "prog"), filepath.Join(fromCtx, "prog"))
	os.WriteFile(filepath.Join(fromCtx, "Dockerfile"), []byte(`FROM --platform=linux/arm64 scratch
COPY prog /prog
ARG TARGETARCH
RUN ["/prog", "/arch"]
`), 0o644)
	c.build("-t", "fromplat", fromCtx)
	if got := strings.TrimSpace(c.ok("inspect", "-f", "{{.Architecture}}", "fromplat")); got != "arm64" {
		t.Errorf("FROM --platform: Architecture %q", got)
	}
	if got := readFile(t, filepath.Join(c.mountImage("fromplat"), "arch")); got != "arm64 "+runtime.GOARCH+"\n" {
		t.Errorf("FROM --platform: RUN wrote %q", got)
	}
	// The same Dockerfile for the host is its own build, not the
	// emulated one's cache.
	out := c.build("-t", "native", ctx)
	if strings.Contains(out, "CACHED") {
		t.Errorf("the host build reused the arm64 build's RUN:\n%s", out)
	}
	if got := strings.TrimSpace(c.ok("inspect", "-f", "{{.Architecture}}", "native")); got != runtime.GOARCH {
		t.Errorf("native build: Architecture %q", got)
	}
}

// An emulated build takes its base for the target platform: a stored
// image of the host's platform is pulled again for arm64 from a
// multi-platform index, and one that cannot be pulled is refused.
func TestBuildEmulatedPlatformBase(t *testing.T) {
	t.Parallel()
	requires.Runc(t)
	requires.Binfmt(t, "aarch64")
	if runtime.GOARCH == "arm64" {
		t.Skip("the host is arm64: nothing to emulate")
	}
	c := newCLI(t)
	reg := rt.Start(t)
	base := rt.LayerFromFile(t, busyboxTar(t))
	mk := func(arch string) v1.Image {
		return rt.Image(t, arch, false, nil, base, rt.Layer(t, rt.Tar(t, rt.File{Name: "arch", Body: arch + "\n"}), rt.Gzip))
	}
	reg.PushIndex(t, "test/multi:1", rt.Index(t, map[string]v1.Image{"amd64": mk("amd64"), "arm64": mk("arm64")}))
	ref := reg.Ref("test/multi:1")
	c.ok("pull", ref) // the host's entry
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+ref+"\nLABEL built=yes\n"), 0o644)
	c.build("--platform", "linux/arm64", "-t", "armbase", ctx)
	if got := strings.TrimSpace(c.ok("inspect", "-f", "{{.Architecture}}", "armbase")); got != "arm64" {
		t.Errorf("Architecture %q, want arm64", got)
	}
	if got := readFile(t, filepath.Join(c.mountImage("armbase"), "arch")); got != "arm64\n" {
		t.Errorf("base's /arch is %q: the build used the host's image", got)
	}

	// A stored linux/amd64 image the registry does not have.
	c.importBusybox()
	local := reg.Ref("test/local:1")
	c.ok("tag", "busybox", local)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+local+"\nLABEL built=yes\n"), 0o644)
	_, errs, code := c.run(nil, "build", "--platform", "linux/arm64", ctx)
	if code == 0 || !strings.Contains(errs, "Dockerfile:1: FROM "+local+": image "+local+" is linux/amd64, not the linux/arm64 the build is for, and pull ") {
		t.Errorf("stored base of the host's platform: exit %d, %q", code, errs)
	}
}
