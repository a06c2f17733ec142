package builder

import (
	"context"
	"crypto/sha256"
	"fmt"
	"github.com/strata-project/strata/internal/rootfs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-project/strata/internal/progress"
	"github.com/strata-project/strata/internal/testutil/requires"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/snapshot"
	"github.com/strata-project/strata/internal/store"
)

func parseOne(t *testing.T, line string) instructions.Command {
	t.Helper()
	res, err := parser.Parse(strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	c, err := instructions.ParseCommand(res.AST.Children[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStepKeyIsCanonical(t *testing.T) {
	parent := digest.FromString("parent")
	key := func(line string) digest.Digest { return stepKey(parent, canonical(parseOne(t, line)), nil) }
	if key("ENV A=b   C=d") != key("ENV A=b C=d") {
		t.Error("spacing changed the key")
	}
	if key("ENV A=b") == key("ENV A=c") {
		t.Error("a different value gave the same key")
	}
	if key("COPY --chown=1:1 a /b") == key("COPY a /b") {
		t.Error("--chown is not in the key")
	}
	if key("RUN echo hi") == key(`RUN ["echo", "hi"]`) {
		t.Error("shell and exec form share a key")
	}
	if stepKey(parent, "X", []string{"args", "A=1"}) == stepKey(parent, "X", []string{"args", "A=2"}) {
		t.Error("build args are not in the key")
	}
	if stepKey(parent, "X", nil) == stepKey(digest.FromString("other"), "X", nil) {
		t.Error("the parent is not in the key")
	}
}

func TestSourceDigest(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "d", "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "d", "f"), []byte("one"), 0o644)
	os.WriteFile(filepath.Join(dir, "d", "sub", "g.log"), []byte("log"), 0o644)
	os.Symlink("f", filepath.Join(dir, "d", "link"))
	sum := func(ig *ignore) string {
		m, err := walkSource(testRoot(t, dir), "d", ig)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		if err := digestMatch(h, m, false); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%x", h.Sum(nil))
	}
	base := sum(nil)
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(dir, "d", "f"), later, later)
	if sum(nil) != base {
		t.Error("an mtime change changed the digest")
	}
	os.Chmod(filepath.Join(dir, "d", "f"), 0o600)
	if sum(nil) == base {
		t.Error("a mode change did not change the digest")
	}
	os.Chmod(filepath.Join(dir, "d", "f"), 0o644)
	os.WriteFile(filepath.Join(dir, "d", "f"), []byte("two"), 0o644)
	changed := sum(nil)
	if changed == base {
		t.Error("a content change did not change the digest")
	}
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("**/*.log\n"), 0o644)
	ig, err := loadIgnore(dir)
	if err != nil {
		t.Fatal(err)
	}
	withIgnore := sum(ig)
	os.WriteFile(filepath.Join(dir, "d", "sub", "g.log"), []byte("changed"), 0o644)
	if sum(ig) != withIgnore {
		t.Error("an ignored file changed the digest")
	}
	if sum(nil) == changed {
		t.Error("without the ignore file the log file is not part of the digest")
	}
}

func TestGlobAndIgnore(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.txt", "b.txt", "c.log", "keep.log", "sub/d.txt"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	os.Symlink("/etc", filepath.Join(dir, "escape"))
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("*.log\n!keep.log\n"), 0o644)
	ig, err := loadIgnore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for pattern, want := range map[string]string{
		"*.txt":        "a.txt b.txt",
		"*.log":        "keep.log",
		"s*/*.txt":     "sub/d.txt",
		"/sub/../a.*":  "a.txt",
		"escape/pass*": "", // /etc is resolved inside the context: nothing there
	} {
		got, err := globInRoot(testRoot(t, dir), pattern, ig)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("glob %q = %v, want %q", pattern, got, want)
		}
	}
}

func TestPlan(t *testing.T) {
	df, err := parseDockerfile("Dockerfile", strings.NewReader(`ARG BASE=busybox
ARG TAG
FROM ${BASE}:${TAG:-1} AS one
FROM scratch AS two
FROM one AS three
COPY --from=two / /
FROM three
COPY --from=0 / /
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := makePlan(df, map[string]string{"TAG": "2"}, "three", hostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	if p.stages[0].base != "busybox:2" || p.target != 2 {
		t.Errorf("base %q target %d", p.stages[0].base, p.target)
	}
	if fmt.Sprint(p.needed) != "[true true true false]" {
		t.Errorf("needed %v", p.needed)
	}
	p, _ = makePlan(df, nil, "", hostPlatform())
	if p.stages[0].base != "busybox:1" || p.target != 3 || fmt.Sprint(p.stages[3].deps) != "[2 0]" {
		t.Errorf("default target: base %q target %d deps %v", p.stages[0].base, p.target, p.stages[3].deps)
	}
	if _, err := makePlan(df, nil, "nope", hostPlatform()); err == nil {
		t.Error("unknown target accepted")
	}
	bad, _ := parseDockerfile("Dockerfile", strings.NewReader("FROM scratch\nCOPY --from=1 / /\nFROM scratch\n"))
	if _, err := makePlan(bad, nil, "", hostPlatform()); err == nil || !strings.Contains(err.Error(), "Dockerfile:2:") {
		t.Errorf("COPY --from a later stage: %v", err)
	}
}

func TestHeredocScript(t *testing.T) {
	res, _ := parser.Parse(strings.NewReader("RUN <<EOF\necho a\necho b\nEOF\n"))
	c, _ := instructions.ParseCommand(res.AST.Children[0])
	if got := heredocScript(c.(*instructions.RunCommand)); got != "echo a\necho b\n" {
		t.Errorf("bare heredoc script %q", got)
	}
	res, _ = parser.Parse(strings.NewReader("RUN cat <<EOF > /x\nhi\nEOF\n"))
	c, _ = instructions.ParseCommand(res.AST.Children[0])
	if got := heredocScript(c.(*instructions.RunCommand)); got != "cat <<EOF > /x\nhi\nEOF" {
		t.Errorf("heredoc script %q", got)
	}
}

// openStore makes a store with a busybox image, for builds with real runc.
func openStore(t *testing.T) *store.Store {
	t.Helper()
	requires.Runc(t)
	s, err := store.Open(context.Background(), store.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(t.TempDir(), "bb.tar")
	if out, err := exec.Command("../../hack/busybox-rootfs.sh", tarPath).CombinedOutput(); err != nil {
		t.Fatalf("busybox-rootfs.sh: %v %s", err, out)
	}
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ref, _ := image.ParseTagged("busybox")
	if _, err := s.Import(context.Background(), f, store.ImportOptions{Source: tarPath, Ref: ref}); err != nil {
		t.Fatal(err)
	}
	return s
}

// Two independent stages run at the same time. The proof does not depend
// on timing: stage a waits for a TCP connection that only stage b makes,
// so a sequential builder would never finish (the context ends the test).
func TestIndependentStagesRunConcurrently(t *testing.T) {
	s := openStore(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(fmt.Sprintf(`FROM busybox AS a
RUN nc -l -p %[1]d > /got
FROM busybox AS b
RUN until echo from-b | nc 127.0.0.1 %[1]d; do :; done; echo sent > /sent
FROM busybox
COPY --from=a /got /a
COPY --from=b /sent /b
`, port)), 0o644)
	var mu sync.Mutex
	var events []progress.Event
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Build(ctx, s, Options{ContextDir: dir, Events: func(e progress.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	started, finished := map[string]int{}, map[string]int{}
	for i, e := range events {
		if !strings.Contains(e.Name, "RUN") {
			continue
		}
		switch e.Kind {
		case progress.EventStart:
			started[e.Stage] = i
		case progress.EventDone:
			finished[e.Stage] = i
		}
	}
	sa, oka := started["a"]
	sb, okb := started["b"]
	if !oka || !okb {
		t.Fatalf("RUN steps not both started: %v", events)
	}
	firstDone := min(finished["a"], finished["b"])
	if sa > firstDone || sb > firstDone {
		t.Errorf("stages did not overlap: starts a=%d b=%d, first done at %d", sa, sb, firstDone)
	}
	if res.ID == "" {
		t.Error("no image")
	}
	// runc deleted each step's container when its run ended (the build
	// does not ask it to again): no container state is left.
	if ents, err := os.ReadDir(filepath.Join(s.Root(), "build", "runtime")); err != nil || len(ents) != 0 {
		t.Errorf("runtime state left after the build: %v %v", ents, err)
	}
}

// PruneCache forgets the steps: the next build runs them again, and the
// untagged step images are gone.
func TestPruneCache(t *testing.T) {
	s := openStore(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nRUN echo hi > /hi\nENV X=1\n"), 0o644)
	count := func() (cached int) {
		_, err := Build(context.Background(), s, Options{ContextDir: dir, Events: func(e progress.Event) {
			if e.Kind == progress.EventCached {
				cached++
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		return cached
	}
	if n := count(); n != 0 {
		t.Fatalf("first build: %d cached", n)
	}
	if n := count(); n != 2 {
		t.Fatalf("second build: %d cached, want 2", n)
	}
	// Context digests as a build with a COPY keeps them.
	os.MkdirAll(filepath.Join(s.Root(), hashCacheDir), 0o700)
	os.WriteFile(filepath.Join(s.Root(), hashCacheDir, "x"), nil, 0o600)
	res, err := PruneCache(context.Background(), s, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries != 2 || len(res.Images) != 2 || len(res.Layers) != 1 {
		t.Errorf("prune: %d entries, images %v, layers %v", res.Entries, res.Images, res.Layers)
	}
	imgs, _ := s.Images().List(context.Background())
	if len(imgs) != 1 {
		t.Errorf("%d images after prune, want busybox only", len(imgs))
	}
	if _, err := os.Stat(filepath.Join(s.Root(), hashCacheDir)); !os.IsNotExist(err) {
		t.Errorf("context digests survived the prune: %v", err)
	}
	if n := count(); n != 0 {
		t.Fatalf("after prune: %d cached", n)
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	for df, want := range map[string]string{
		"FROM busybox\nBOGUS x\n":                    "Dockerfile:2: unknown instruction: BOGUS",
		"FROM busybox\nRUN --network=bridge true\n":  `Dockerfile:2: invalid network mode "bridge"`,
		"# escape=`\nFROM busybox\nENV A=1 \\\n B\n": `Dockerfile:3: Syntax error - can't find = in "\\"`,
		"FROM busybox\n\nENV A=1 `\n B=2\n":          "Dockerfile:3: Syntax error - can't find = in \"`\"",
	} {
		_, err := parseDockerfile("Dockerfile", strings.NewReader(df))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want %s", df, err, want)
		}
	}
}

// Parse errors carry strata's file:line and docker's "dockerfile parse
// error on line N" wording.
func TestParseErrorsCarryDockerWording(t *testing.T) {
	_, err := parseDockerfile("Dockerfile", strings.NewReader("FROM busybox\nRUN true\nFROBNICATE x\n"))
	want := "Dockerfile:3: unknown instruction: FROBNICATE (dockerfile parse error on line 3: unknown instruction: FROBNICATE)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

// Hostile-input checks docker has: each refused with the line.
func TestRefusedWithTheLine(t *testing.T) {
	t.Parallel()
	_, err := parseDockerfile("Dockerfile", strings.NewReader("FROM busybox AS a\nRUN true\nFROM busybox AS A\n"))
	if want := `Dockerfile:3: duplicate stage name "a": a stage name already used on line 1`; err == nil || err.Error() != want {
		t.Errorf("duplicate stage: %v, want %s", err, want)
	}
	s := openStore(t)
	for df, want := range map[string]string{
		"FROM busybox\nENV A=1\nEXPOSE notaport\n":    "Dockerfile:3: invalid containerPort: notaport",
		"FROM busybox\nSTOPSIGNAL SIGFOO\n":           `Dockerfile:2: STOPSIGNAL: invalid signal "SIGFOO"`,
		"FROM busybox\nARG S=SIGBAR\nSTOPSIGNAL $S\n": `Dockerfile:3: STOPSIGNAL: invalid signal "SIGBAR"`,
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644)
		if _, err := Build(context.Background(), s, Options{ContextDir: dir}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %s", df, err, want)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox\nSTOPSIGNAL SIGRTMIN+3\n"), 0o644)
	if _, err := Build(context.Background(), s, Options{ContextDir: dir}); err != nil {
		t.Errorf("STOPSIGNAL SIGRTMIN+3: %v", err)
	}
}

// A step that would stack more layers than overlayfs can run is refused
// before it runs, naming the line and the kernel's limit.
func TestOverlayDepthLimit(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	if s.Snapshots().Whiteouts() != snapshot.WhiteoutsOverlay {
		t.Skip("no limit on the copy snapshotter")
	}
	df, err := parseDockerfile("Dockerfile", strings.NewReader("FROM busybox\nENV A=1\nRUN true\n"))
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{s: s, df: df}
	cmds := df.stages[0].Commands
	st := &stageState{}
	for i := 0; i < snapshot.MaxOverlayLowers-2; i++ {
		st.cfg.RootFS.DiffIDs = append(st.cfg.RootFS.DiffIDs, digest.FromString(fmt.Sprint(i)))
	}
	if err := b.checkDepth(st, cmds[1]); err != nil {
		t.Errorf("498 layers + 1: %v", err)
	}
	st.cfg.RootFS.DiffIDs = append(st.cfg.RootFS.DiffIDs, digest.FromString("last"))
	want := "Dockerfile:3: RUN: the image already has 499 layers, the most overlayfs can run (the kernel stacks at most 500 lower dirs"
	if err := b.checkDepth(st, cmds[1]); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("499 layers + 1: %v", err)
	}
	if err := b.checkDepth(st, cmds[0]); err != nil {
		t.Errorf("ENV makes no layer: %v", err)
	}
}

// testRoot holds dir open as a source root for the test's duration.
func testRoot(t *testing.T, dir string) *rootfs.Root {
	t.Helper()
	r, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// A .dockerignore that is a symlink to a host file is resolved inside the
// context, like every other context file: the host file is never read.
func TestDockerignoreSymlinkStaysInside(t *testing.T) {
	dir, host := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(host, "ign"), []byte("a.txt\n"), 0o644)
	os.Symlink(filepath.Join(host, "ign"), filepath.Join(dir, ".dockerignore"))
	ig, err := loadIgnore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ig.excluded("a.txt") {
		t.Fatal("patterns were read from the host file the .dockerignore symlink names")
	}
	inRoot := filepath.Join(dir, host)
	os.MkdirAll(inRoot, 0o755)
	os.WriteFile(filepath.Join(inRoot, "ign"), []byte("b.txt\n"), 0o644)
	if ig, err = loadIgnore(dir); err != nil || !ig.excluded("b.txt") || ig.excluded("a.txt") {
		t.Fatalf("the context's own copy of the link's target was not used: %v", err)
	}
}
