package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-project/strata/internal/analysis"
)

// wasteImage builds an image whose waste is known to the byte: 20 MB added
// then deleted, a 3 MB file chmodded in a later step and copied again to a
// second path, and 1 MB of apt lists left behind.
func wasteImage(t *testing.T) *cli {
	t.Helper()
	c := newBusyboxCLI(t)
	ctx := t.TempDir()
	blob := make([]byte, 3_000_000)
	for i := range blob {
		blob[i] = byte(i*7 + i/251)
	}
	os.WriteFile(filepath.Join(ctx, "f3m"), blob, 0o644)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM busybox
RUN head -c 20000000 /dev/urandom > /big && mkdir -p /var/lib/apt/lists && head -c 1000000 /dev/urandom > /var/lib/apt/lists/pkgs
RUN rm /big
COPY f3m /f
RUN chmod 600 /f
COPY f3m /copy/f
`), 0o644)
	c.ok("build", "-q", "-t", "waste", ctx)
	return c
}

func TestImageAnalyzeKnownWaste(t *testing.T) {
	c := wasteImage(t)
	var r analysis.Report
	if err := json.Unmarshal([]byte(c.ok("image", "analyze", "--format", "json", "waste")), &r); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{analysis.Deleted: 20_000_000, analysis.MetadataOnly: 3_000_000, analysis.Duplicate: 3_000_000, analysis.Cache: 1_000_000}
	got := map[string]int64{}
	for _, f := range r.Findings {
		got[f.Kind] += f.Bytes
		if f.Fix == "" {
			t.Errorf("finding without a fix: %+v", f)
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d bytes, want %d (all: %+v)", k, got[k], v, r.Findings)
		}
	}
	if r.Wasted != 27_000_000 || len(r.Layers) != 6 {
		t.Errorf("wasted %d in %d layers, want 27000000 in 6", r.Wasted, len(r.Layers))
	}
	if r.Shipped-r.Visible != 23_000_000 {
		t.Errorf("shipped %d - visible %d != 23000000 hidden bytes", r.Shipped, r.Visible)
	}

	out := c.ok("image", "analyze", "waste")
	for _, s := range []string{"do both in one RUN", "COPY --chmod", "rm -rf /var/lib/apt/lists/*", "RUN rm /big"} {
		if !strings.Contains(out, s) {
			t.Errorf("text report lacks %q:\n%s", s, out)
		}
	}
	// --fail-on-waste is a CI gate: over the limit exits 1 with one line.
	_, errs, code := c.run(nil, "image", "analyze", "--fail-on-waste", "10MB", "waste")
	if code != 1 || !strings.Contains(errs, "over the --fail-on-waste limit of 10MB") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Errorf("fail-on-waste 10MB: exit %d, stderr %q", code, errs)
	}
	c.ok("image", "analyze", "--fail-on-waste", "90%", "waste")
	if _, errs, code := c.run(nil, "image", "analyze", "--fail-on-waste", "lots", "waste"); code != 125 || !strings.Contains(errs, "invalid --fail-on-waste") {
		t.Errorf("bad limit: exit %d, %q", code, errs)
	}
	if _, errs, code := c.run(nil, "image", "analyze", "nosuch"); code != 1 || !strings.Contains(errs, "No such image") {
		t.Errorf("missing image: exit %d, %q", code, errs)
	}
}

func TestImageDiffAndTree(t *testing.T) {
	c := wasteImage(t)
	out := c.ok("image", "diff", "busybox", "waste")
	want := []string{"A /copy", "A /copy/f", "A /f", "A /var/lib/apt/lists/pkgs"}
	for _, w := range want {
		if !strings.Contains(out, w+"\n") {
			t.Errorf("image diff lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "/big") || !strings.Contains(out, "share 1 layer") {
		t.Errorf("image diff:\n%s", out)
	}
	// Reversed, additions become deletions.
	if out := c.ok("image", "diff", "waste", "busybox"); !strings.Contains(out, "D /f\n") {
		t.Errorf("reversed diff:\n%s", out)
	}

	var sh analysis.Sharing
	if err := json.Unmarshal([]byte(c.ok("image", "tree", "--format", "json")), &sh); err != nil {
		t.Fatal(err)
	}
	if len(sh.Images) != 2 || len(sh.Roots) != 1 || sh.Roots[0].Users != 2 {
		t.Fatalf("tree: %+v", sh)
	}
	base := sh.Roots[0].Size
	if sh.OnDisk >= sh.Separate || sh.Separate-sh.OnDisk != base {
		t.Errorf("on disk %d, separate %d: the base (%d) should be stored once", sh.OnDisk, sh.Separate, base)
	}
	for _, u := range sh.Images {
		if u.Shared != base || u.Shared+u.Unique != u.Size {
			t.Errorf("usage %+v with a %d byte base", u, base)
		}
	}
	if out := c.ok("image", "tree"); !strings.Contains(out, "[busybox:latest]") || !strings.Contains(out, "[waste:latest]") {
		t.Errorf("tree text:\n%s", out)
	}
	// system df -v splits each image the same way.
	df := c.ok("system", "df", "-v")
	for _, u := range sh.Images {
		for _, line := range strings.Split(df, "\n") {
			if f := strings.Fields(line); len(f) >= 7 && len(u.Names) > 0 && f[0]+":"+f[1] == u.Names[0] {
				// ... SIZE SHARED UNIQUE CONTAINERS end the row.
				shared, unique := f[len(f)-3], f[len(f)-2]
				if shared != humanSize(u.Shared) || unique != humanSize(u.Unique) {
					t.Errorf("df -v %s: shared %s unique %s, image tree says %s %s", u.Names[0], shared, unique, humanSize(u.Shared), humanSize(u.Unique))
				}
			}
		}
	}
}

// The build says why each step missed: the changed context file, the
// changed build arg, the changed base image.
func TestBuildExplainsCacheMisses(t *testing.T) {
	c := newBusyboxCLI(t)
	ctx := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(ctx, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Dockerfile", "FROM base\nARG FLAVOUR\nRUN echo $FLAVOUR > /flavour\nCOPY . /src\n")
	write("a.txt", "one")
	write("b.txt", "two")
	c.ok("tag", "busybox", "base")
	build := func(args ...string) string {
		t.Helper()
		_, errs, code := c.run(nil, append(append([]string{"build", "--progress", "plain", "--explain-cache"}, args...), ctx)...)
		if code != 0 {
			t.Fatalf("build: exit %d\n%s", code, errs)
		}
		return errs
	}
	if out := build("--build-arg", "FLAVOUR=plain"); !strings.Contains(out, "CACHE MISS: not built before") {
		t.Errorf("first build:\n%s", out)
	}
	if out := build("--build-arg", "FLAVOUR=plain"); !strings.Contains(out, "explain-cache: every step was cached") {
		t.Errorf("second build:\n%s", out)
	}
	write("b.txt", "changed")
	out := build("--build-arg", "FLAVOUR=plain")
	if !strings.Contains(out, "CACHE MISS: source files changed b.txt") || strings.Contains(out, "a.txt") {
		t.Errorf("changed file not named alone:\n%s", out)
	}
	out = build("--build-arg", "FLAVOUR=s3cret-value")
	if !strings.Contains(out, "CACHE MISS: build arg FLAVOUR changed") || strings.Contains(out, "CACHE MISS: source files") {
		t.Errorf("changed build arg not named:\n%s", out)
	}
	if strings.Contains(out, "s3cret-value") {
		t.Errorf("the arg's value is shown:\n%s", out)
	}
	// A new image under the base's name: the base changed, old and new IDs.
	old := strings.TrimSpace(c.ok("inspect", "-f", "{{.Id}}", "base"))
	c.ok("commit", strings.TrimSpace(c.ok("create", "busybox", "true")), "base")
	now := strings.TrimSpace(c.ok("inspect", "-f", "{{.Id}}", "base"))
	out = build("--build-arg", "FLAVOUR=s3cret-value")
	short := func(id string) string { return strings.TrimPrefix(id, "sha256:")[:12] }
	if !strings.Contains(out, "base image changed: was "+short(old)+", now "+short(now)) {
		t.Errorf("changed base not named (%s -> %s):\n%s", short(old), short(now), out)
	}
	if out := build("--no-cache", "--build-arg", "FLAVOUR=s3cret-value"); !strings.Contains(out, "CACHE MISS: --no-cache") {
		t.Errorf("--no-cache:\n%s", out)
	}
}

// A build whose own steps waste more than the threshold ends with advice;
// -q and a higher threshold keep it quiet.
func TestBuildWasteAdvice(t *testing.T) {
	c := wasteImage(t)
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM waste\nRUN head -c 12000000 /dev/urandom > /tmp/scratch.bin\n"), 0o644)
	_, errs, code := c.run(nil, "build", "--progress", "plain", "-t", "more", ctx)
	if code != 0 || !strings.Contains(errs, "This build's own layers waste 12MB") || !strings.Contains(errs, "/tmp") {
		t.Errorf("advice: exit %d\n%s", code, errs)
	}
	if strings.Contains(errs, "/big") {
		t.Errorf("advice blames the base image's waste:\n%s", errs)
	}
	// A fully cached rebuild made nothing and stays quiet (and fast).
	if _, errs, _ := c.run(nil, "build", "--progress", "plain", ctx); strings.Contains(errs, "own layers waste") {
		t.Errorf("advice on a cached rebuild:\n%s", errs)
	}
	if _, errs, _ := c.run(nil, "build", "--no-cache", "--progress", "plain", "--waste-threshold", "20MB", ctx); strings.Contains(errs, "own layers waste") {
		t.Errorf("advice under the threshold:\n%s", errs)
	}
	if out, errs, _ := c.run(nil, "build", "--no-cache", "-q", ctx); strings.Contains(out+errs, "own layers waste") {
		t.Errorf("advice with -q:\n%s%s", out, errs)
	}
}
