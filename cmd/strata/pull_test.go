package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strata-project/strata/internal/testutil/requires"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/strata-project/strata/internal/image"
	rt "github.com/strata-project/strata/internal/registry/registrytest"
)

// pushBusybox pushes the demo busybox rootfs (gzip) plus a layer that
// whites out /etc/group and adds /hello.txt (gzip) and a zstd layer, under
// test/bb:v1, and returns the image.
func pushBusybox(t *testing.T, reg *rt.Registry, base v1.Layer) v1.Image {
	t.Helper()
	wh := rt.Layer(t, rt.Tar(t, rt.File{Name: "etc/"}, rt.File{Name: "etc/.wh.group"}, rt.File{Name: "hello.txt", Body: "hello from the registry\n"}), rt.Gzip)
	z := rt.Layer(t, rt.Tar(t, rt.File{Name: "zstd.txt", Body: "zstd layer\n"}), rt.Zstd)
	img := rt.Image(t, "amd64", true, []string{"/bin/sh"}, base, wh, z)
	reg.Push(t, "test/bb:v1", img)
	return img
}

func shortLayer(t *testing.T, l v1.Layer) string {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.Hex[:12]
}

func (c *cli) layerCount() string {
	c.t.Helper()
	return strings.TrimSpace(c.ok("info", "--format", "{{.Layers}}"))
}

func TestPullRunsAndSharesLayers(t *testing.T) {
	c := newCLI(t)
	reg := rt.Start(t)
	base := rt.LayerFromFile(t, busyboxTar(t))
	img := pushBusybox(t, reg, base)
	mdigest, _ := img.Digest()
	ref := reg.Ref("test/bb:v1")
	layers, _ := img.Layers()

	out := c.ok("pull", ref)
	want := "v1: Pulling from test/bb\n"
	for _, l := range layers {
		want += shortLayer(t, l) + ": Pull complete\n"
	}
	want += fmt.Sprintf("Digest: %s\nStatus: Downloaded newer image for %s\n%s\n", mdigest, ref, ref)
	if out != want {
		t.Fatalf("pull printed:\n%s\nwant:\n%s", out, want)
	}

	rows := strings.Split(strings.TrimSpace(c.ok("images", "--format", "{{.Repository}} {{.Tag}}")), "\n")
	if !slices.Equal(rows, []string{reg.Ref("test/bb") + " v1"}) {
		t.Errorf("images: %q", rows)
	}
	if out := c.ok("images", "--digests"); !strings.Contains(out, mdigest.String()) {
		t.Errorf("images --digests lacks %s:\n%s", mdigest, out)
	}
	var insp []inspectImage
	if err := json.Unmarshal([]byte(c.ok("inspect", ref)), &insp); err != nil || len(insp) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	if !slices.Equal(insp[0].RootFS.Layers, rt.DiffIDs(t, img)) {
		t.Errorf("RootFS.Layers %v, want the pushed diffIDs %v", insp[0].RootFS.Layers, rt.DiffIDs(t, img))
	}
	if want := []string{reg.Ref("test/bb") + "@" + mdigest.String()}; !slices.Equal(insp[0].RepoDigests, want) {
		t.Errorf("RepoDigests %v, want %v", insp[0].RepoDigests, want)
	}
	cfgName, _ := img.ConfigName()
	if insp[0].ID != cfgName.String() {
		t.Errorf("image ID %s, want the config digest %s", insp[0].ID, cfgName)
	}

	got := c.ok("run", "--rm", ref, "sh", "-c", "cat /hello.txt /zstd.txt; test -e /etc/group && echo group present || echo group absent; test -e /etc/passwd && echo passwd present")
	if got != "hello from the registry\nzstd layer\ngroup absent\npasswd present\n" {
		t.Errorf("run in the pulled image printed:\n%s", got)
	}

	// Again: nothing to do, nothing new.
	layersBefore := c.layerCount()
	out = c.ok("pull", ref)
	want = "v1: Pulling from test/bb\n"
	for _, l := range layers {
		want += shortLayer(t, l) + ": Already exists\n"
	}
	want += fmt.Sprintf("Digest: %s\nStatus: Image is up to date for %s\n%s\n", mdigest, ref, ref)
	if out != want {
		t.Errorf("second pull printed:\n%s\nwant:\n%s", out, want)
	}
	if n := c.layerCount(); n != layersBefore || n != "3" {
		t.Errorf("layers after the second pull: %s, before %s, want 3", n, layersBefore)
	}

	// A second image on the same base: the base is not fetched again and is
	// stored once.
	app := rt.Layer(t, rt.Tar(t, rt.File{Name: "app", Body: "app\n"}), rt.None)
	reg.Push(t, "test/app:1", rt.Image(t, "amd64", true, nil, base, app))
	out = c.ok("image", "pull", reg.Ref("test/app:1"))
	if !strings.Contains(out, shortLayer(t, base)+": Already exists\n") || !strings.Contains(out, shortLayer(t, app)+": Pull complete\n") {
		t.Errorf("pull of an image sharing the base printed:\n%s", out)
	}
	if n := c.layerCount(); n != "4" {
		t.Errorf("%s layers, want 4 (the base once)", n)
	}
	if got := c.ok("run", "--rm", reg.Ref("test/app:1"), "cat", "/app"); got != "app\n" {
		t.Errorf("run in the second image: %q", got)
	}

	// -q prints the name only.
	if out := c.ok("pull", "-q", ref); out != ref+"\n" {
		t.Errorf("pull -q printed %q", out)
	}
}

func TestPullPicksPlatform(t *testing.T) {
	c := newCLI(t)
	reg := rt.Start(t)
	base := rt.LayerFromFile(t, busyboxTar(t))
	mk := func(arch string) v1.Image {
		return rt.Image(t, arch, false, nil, base, rt.Layer(t, rt.Tar(t, rt.File{Name: "arch", Body: arch + "\n"}), rt.Gzip))
	}
	idx := reg.PushIndex(t, "test/multi:1", rt.Index(t, map[string]v1.Image{"amd64": mk("amd64"), "arm64": mk("arm64")}))
	ref := reg.Ref("test/multi:1")
	out := c.ok("pull", ref)
	if !strings.Contains(out, "Digest: "+idx.String()+"\n") {
		t.Errorf("pull of an index printed:\n%s\nwant the index digest %s", out, idx)
	}
	if got := c.ok("run", "--rm", ref, "cat", "/arch"); got != "amd64\n" {
		t.Errorf("pulled image has arch file %q, want amd64", got)
	}
	if got := strings.TrimSpace(c.ok("images", "--digests", "--format", "{{.Digest}}")); got != idx.String() {
		t.Errorf("images --digests shows %q, want the index digest %s", got, idx)
	}
	_, errs, code := c.run(nil, "pull", "--platform", "linux/s390x", ref)
	if code != 1 || !strings.Contains(errs, "no matching manifest for linux/s390x") {
		t.Errorf("pull for a platform the index lacks: exit %d, %s", code, errs)
	}
}

func TestPullCorruptBlobChangesNothing(t *testing.T) {
	c := newCLI(t)
	reg := rt.Start(t)
	base := rt.LayerFromFile(t, busyboxTar(t))
	img := pushBusybox(t, reg, base)
	layers, _ := img.Layers()
	d, _ := layers[1].Digest()
	reg.Corrupt(t, d)

	imagesBefore := c.ok("images", "-a", "--digests")
	out, errs, code := c.run(nil, "pull", reg.Ref("test/bb:v1"))
	if code != 1 || !strings.Contains(errs, "digest mismatch") || !strings.Contains(errs, d.String()) {
		t.Fatalf("pull of a corrupted blob: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if strings.Contains(out, "Status:") {
		t.Errorf("a failed pull printed a status:\n%s", out)
	}
	if got := c.ok("images", "-a", "--digests"); got != imagesBefore {
		t.Errorf("images changed after a failed pull:\n%s", got)
	}
	if _, _, code := c.run(nil, "inspect", reg.Ref("test/bb:v1")); code == 0 {
		t.Error("the tag exists after a failed pull")
	}
}

func TestPullUnknownTag(t *testing.T) {
	c := newCLI(t)
	reg := rt.Start(t)
	reg.Push(t, "test/x:v1", rt.Image(t, "amd64", false, nil))
	ref := reg.Ref("test/x:nope")
	out, errs, code := c.run(nil, "pull", ref)
	want := "Error: manifest for " + ref + " not found: manifest unknown\n"
	if code != 1 || errs != want {
		t.Errorf("pull of an unknown tag: exit %d, stderr %q, want %q", code, errs, want)
	}
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
	if _, errs, code := c.run(nil, "pull", "Not A Ref"); code != 1 || !strings.Contains(errs, "invalid reference format") {
		t.Errorf("pull of a malformed name: exit %d, %s", code, errs)
	}
}

// The name in the last line is the full normalized one, as docker prints it.
func TestPullNameNormalization(t *testing.T) {
	n, err := image.ParseNamed("busybox")
	if err != nil || n.String() != "docker.io/library/busybox:latest" || pullingFrom(n) != "latest: Pulling from library/busybox" {
		t.Errorf("busybox → %v %q", err, pullingFrom(n))
	}
}

// On a terminal the layers are drawn as live bars; the summary follows them.
func TestPullOnTerminal(t *testing.T) {
	requires.Command(t, "script")
	c := newCLI(t)
	reg := rt.Start(t)
	img := pushBusybox(t, reg, rt.LayerFromFile(t, busyboxTar(t)))
	mdigest, _ := img.Digest()
	cmdline := "stty rows 40 cols 120; " + strataBin + " --root " + c.root + " pull " + reg.Ref("test/bb:v1")
	out, err := exec.Command("script", "-qec", cmdline, "/dev/null").CombinedOutput()
	if err != nil {
		t.Fatalf("pull on a terminal: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"v1: Pulling from test/bb", "Pull complete", "Digest: " + mdigest.String(), "Status: Downloaded newer image for " + reg.Ref("test/bb:v1")} {
		if !strings.Contains(s, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, s)
		}
	}
	if strings.Index(s, "Pull complete") > strings.Index(s, "Digest:") {
		t.Errorf("the summary came before the bars finished:\n%q", s)
	}

	// A failing pull stops the bars and reports the error.
	bad := rt.Layer(t, rt.Tar(t, rt.File{Name: "bad", Body: strings.Repeat("corrupt me ", 1000)}), rt.Gzip)
	reg.Push(t, "test/bad:1", rt.Image(t, "amd64", false, nil, bad))
	d, _ := bad.Digest()
	reg.Corrupt(t, d)
	cmdline = "stty rows 40 cols 120; " + strataBin + " --root " + c.root + " pull " + reg.Ref("test/bad:1")
	out, err = exec.Command("script", "-qec", cmdline, "/dev/null").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "digest mismatch") {
		t.Errorf("failing pull on a terminal: %v\n%q", err, out)
	}
}

// pushVersion pushes base plus a layer holding /version = v as repo:tag.
func pushVersion(t *testing.T, reg *rt.Registry, ref string, base v1.Layer, v string) {
	t.Helper()
	version := rt.Layer(t, rt.Tar(t, rt.File{Name: "version", Body: v + "\n"}), rt.Gzip)
	reg.Push(t, ref, rt.Image(t, "amd64", true, []string{"/bin/sh"}, base, version))
}

// A build pulls a FROM image the store lacks, keeps using the stored one
// afterwards, and with --pull fetches the registry's newer image.
func TestBuildPullsBaseImages(t *testing.T) {
	c := newCLI(t)
	reg := rt.Start(t)
	base := rt.LayerFromFile(t, busyboxTar(t))
	pushVersion(t, reg, "base/bb:latest", base, "one")
	ref := reg.Ref("base/bb:latest")

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+ref+"\nRUN cp /version /seen\nCMD [\"cat\", \"/seen\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := c.run(nil, "build", "--progress", "plain", "-t", "app", dir)
	if code != 0 || !strings.Contains(out+errs, "[internal] pull "+ref) {
		t.Fatalf("the missing base was not pulled (exit %d):\n%s%s", code, out, errs)
	}
	if got := c.ok("run", "--rm", "app"); got != "one\n" {
		t.Fatalf("app sees %q", got)
	}

	pushVersion(t, reg, "base/bb:latest", base, "two")
	c.ok("build", "--progress", "plain", "-t", "app", dir)
	if got := c.ok("run", "--rm", "app"); got != "one\n" {
		t.Fatalf("without --pull the stored base must be used; app sees %q", got)
	}
	c.ok("build", "--pull", "--progress", "plain", "-t", "app", dir)
	if got := c.ok("run", "--rm", "app"); got != "two\n" {
		t.Fatalf("--pull did not fetch the newer base; app sees %q", got)
	}
	// A base no registry has fails the FROM line clearly.
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+reg.Ref("base/none:x")+"\n"), 0o644)
	if _, errs, code := c.run(nil, "build", dir); code == 0 || !strings.Contains(errs, "Dockerfile:1: FROM") || !strings.Contains(errs, "not found") {
		t.Fatalf("missing base: exit %d, %q", code, errs)
	}
}

// run pulls an image the store lacks, as docker does; --pull never and
// --pull always change that.
func TestRunPullsMissingImage(t *testing.T) {
	c := newCLI(t)
	reg := rt.Start(t)
	base := rt.LayerFromFile(t, busyboxTar(t))
	pushVersion(t, reg, "app/bb:latest", base, "one")
	ref := reg.Ref("app/bb:latest")

	if _, errs, code := c.run(nil, "run", "--rm", "--pull", "never", ref, "true"); code != 125 || !strings.Contains(errs, "No such image") {
		t.Fatalf("--pull never with a missing image: exit %d %q", code, errs)
	}
	out, errs, code := c.run(nil, "run", "--rm", ref, "cat", "/version")
	if code != 0 || out != "one\n" {
		t.Fatalf("run of a missing image: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if !strings.Contains(errs, "Unable to find image '"+ref+"' locally") || !strings.Contains(errs, "Pull complete") {
		t.Fatalf("run did not report its pull: %q", errs)
	}
	pushVersion(t, reg, "app/bb:latest", base, "two")
	if out := c.ok("run", "--rm", ref, "cat", "/version"); out != "one\n" {
		t.Fatalf("a stored image must be used as it is by default: %q", out)
	}
	if out := c.ok("run", "--rm", "--pull", "always", ref, "cat", "/version"); out != "two\n" {
		t.Fatalf("--pull always did not fetch the new image: %q", out)
	}
	if _, errs, code := c.run(nil, "create", "--pull", "sometimes", ref); code != 125 || !strings.Contains(errs, "invalid pull option") {
		t.Fatalf("bad --pull: exit %d %q", code, errs)
	}
}
