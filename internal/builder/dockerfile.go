package builder

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-project/strata/internal/image"
)

// dockerfile is a parsed Dockerfile: its stages and the ARGs before the
// first FROM.
type dockerfile struct {
	name     string // shown in errors: "Dockerfile:7: ..."
	escape   rune
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
}

func parseDockerfile(name string, r io.Reader) (*dockerfile, error) {
	res, err := parser.Parse(r)
	if err != nil {
		return nil, parseError(name, err)
	}
	stages, meta, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, parseError(name, err)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("%s: file with no instructions", name)
	}
	// docker's classic builder refuses a second stage of one name (BuildKit
	// only warns, and FROM/COPY --from would silently take the last one).
	first := map[string]int{}
	for _, st := range stages {
		if st.Name == "" {
			continue
		}
		line := 0
		if len(st.Location) > 0 {
			line = st.Location[0].Start.Line
		}
		if prev, ok := first[st.Name]; ok {
			return nil, fmt.Errorf("%s:%d: duplicate stage name %q: a stage name already used on line %d", name, line, st.Name, prev)
		}
		first[st.Name] = line
	}
	return &dockerfile{name: name, escape: res.EscapeToken, stages: stages, metaArgs: meta}, nil
}

// parseError names the line of a parser error the way every other error
// does ("Dockerfile:2: ..."), and also in docker's words ("dockerfile parse
// error on line 2: ..."), which is what users and CI logs grep for.
func parseError(name string, err error) error {
	var le *parser.LocationError
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		err = le.Unwrap()
		line := le.Locations[0][0].Start.Line
		return fmt.Errorf("%s:%d: %w (dockerfile parse error on line %d: %s)", name, line, err, line, err)
	}
	if line := errLine(err); line > 0 {
		return fmt.Errorf("%s:%d: %w (dockerfile parse error on line %d: %s)", name, line, err, line, err)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// errLine digs the line out of a parser error that carries a location.
func errLine(err error) int {
	type located interface{ Location() []parser.Range }
	for e := err; e != nil; {
		if l, ok := e.(located); ok && len(l.Location()) > 0 {
			return l.Location()[0].Start.Line
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return 0
}

// at prefixes an error with the Dockerfile position of cmd.
func (df *dockerfile) at(loc []parser.Range, format string, args ...any) error {
	line := 0
	if len(loc) > 0 {
		line = loc[0].Start.Line
	}
	return fmt.Errorf("%s:%d: %s", df.name, line, fmt.Sprintf(format, args...))
}

// platformArgs are the predefined platform arguments: the build's
// target (the zero Platform is the host's) and the host it builds on.
func platformArgs(target ocispec.Platform) map[string]string {
	if target.OS == "" {
		target = hostPlatform()
	}
	host := image.DefaultOS + "/" + image.DefaultArch
	return map[string]string{
		"TARGETPLATFORM": image.FormatPlatform(target), "TARGETOS": target.OS, "TARGETARCH": target.Architecture, "TARGETVARIANT": target.Variant,
		"BUILDPLATFORM": host, "BUILDOS": image.DefaultOS, "BUILDARCH": image.DefaultArch, "BUILDVARIANT": "",
	}
}

func hostPlatform() ocispec.Platform {
	return ocispec.Platform{OS: image.DefaultOS, Architecture: image.DefaultArch}
}

// ResolvePlatform reads a --platform or FROM --platform value
// (OS/ARCH[/VARIANT], or a bare ARCH as BuildKit takes). The host's
// platform is built natively. Another architecture is built when the
// kernel has an enabled binfmt_misc handler for it: qemu-user-static
// registered with the F flag runs its binaries, also inside the build's
// containers. Without one it is refused, naming how to enable emulation.
func ResolvePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) == 1 { // BuildKit also takes a bare architecture
		parts = []string{image.DefaultOS, parts[0]}
	}
	if len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("--platform %s: invalid platform: want os/arch[/variant]", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
	}
	// The default variants are dropped, as containerd normalizes them.
	if (p.Architecture == "amd64" && p.Variant == "v1") || (p.Architecture == "arm64" && p.Variant == "v8") {
		p.Variant = ""
	}
	host := image.DefaultOS + "/" + image.DefaultArch
	if p.OS != image.DefaultOS {
		return p, fmt.Errorf("--platform %s: this host is %s; strata builds %s images only", s, host, image.DefaultOS)
	}
	if p.Architecture == image.DefaultArch && p.Variant == "" {
		return p, nil
	}
	q := qemuArch(p.Architecture)
	if p.Architecture != image.DefaultArch {
		enabled, fix := emulation(q)
		if enabled && fix {
			return p, nil
		}
		if enabled {
			return p, fmt.Errorf("--platform %s: the kernel's binfmt_misc handler qemu-%s lacks the F (fix-binary) flag, so it cannot run inside build containers; register it again with F (hack/binfmt.sh %s)", s, q, q)
		}
	}
	if q == "" {
		q = p.Architecture
	}
	return p, fmt.Errorf("--platform %s: this host is %s and the kernel has no binfmt_misc emulation registered for %s; to build through emulation, install qemu-user-static and register it (hack/binfmt.sh %s, or update-binfmts --enable qemu-%s)", s, host, image.FormatPlatform(p), q, q)
}

// qemuArch is the kernel's (and qemu's) name of a Go/OCI architecture.
func qemuArch(arch string) string {
	return map[string]string{"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64", "386": "i386", "mips64le": "mips64el", "loong64": "loongarch64"}[arch]
}

// binfmtDir is where the kernel lists its binfmt_misc handlers.
var binfmtDir = "/proc/sys/fs/binfmt_misc"

// emulation reads the binfmt_misc handler registered for qemu's
// architecture q, under the name Debian's qemu-user-static (and
// tonistiigi/binfmt) gives it: whether it is enabled, and whether it has
// the F (fix-binary) flag, without which the interpreter would be looked
// up inside the container's root, where there is none.
func emulation(q string) (enabled, fixBinary bool) {
	if q == "" {
		return false, false
	}
	b, err := os.ReadFile(filepath.Join(binfmtDir, "qemu-"+q))
	if err != nil || !strings.HasPrefix(string(b), "enabled") {
		return false, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if flags, ok := strings.CutPrefix(line, "flags:"); ok {
			return true, strings.Contains(flags, "F")
		}
	}
	return true, false
}

// stagePlan is one stage with its FROM resolved against the meta ARGs.
type stagePlan struct {
	index     int
	name      string // stage name, or "stage-N"
	stage     *instructions.Stage
	base      string // expanded FROM argument
	baseStage int    // index of the stage FROM names, or -1
	deps      []int  // stages that must finish first (FROM, COPY --from)
	copyFrom  map[*instructions.CopyCommand]int
	mountFrom map[string]int // RUN --mount from= naming a stage
	// platform is what the stage builds for: its FROM --platform, or the
	// build's; the zero Platform is the host's.
	platform ocispec.Platform
}

// plan resolves every stage's FROM and stage references, and returns the
// stages the target needs, in Dockerfile order. metaEnv holds the meta ARGs
// after --build-arg overrides.
type plan struct {
	stages  []*stagePlan
	target  int
	needed  []bool
	metaEnv map[string]string
	used    map[string]bool // build args some instruction consumed
}

func makePlan(df *dockerfile, buildArgs map[string]string, target string, platform ocispec.Platform) (*plan, error) {
	p := &plan{metaEnv: map[string]string{}, used: map[string]bool{}}
	for k, v := range platformArgs(platform) {
		p.metaEnv[k] = v
	}
	lex := shell.NewLex(df.escape)
	for _, a := range df.metaArgs {
		for _, kv := range a.Args {
			v, ok := buildArgs[kv.Key]
			if ok {
				p.used[kv.Key] = true
			} else if kv.Value != nil {
				ex, _, err := lex.ProcessWord(*kv.Value, envGetter(p.metaEnv))
				if err != nil {
					return nil, df.at(a.Location(), "ARG %s: %v", kv.Key, err)
				}
				v = ex
			}
			p.metaEnv[kv.Key] = v
		}
	}
	for i := range df.stages {
		st := &df.stages[i]
		sp := &stagePlan{index: i, stage: st, name: st.Name, baseStage: -1, copyFrom: map[*instructions.CopyCommand]int{}, mountFrom: map[string]int{}}
		if sp.name == "" {
			sp.name = "stage-" + strconv.Itoa(i)
		}
		base, _, err := lex.ProcessWord(st.BaseName, envGetter(p.metaEnv))
		if err != nil {
			return nil, df.at(st.Location, "FROM %s: %v", st.BaseName, err)
		}
		if base == "" {
			return nil, df.at(st.Location, "FROM %q expands to an empty name", st.BaseName)
		}
		sp.base = base
		if j, ok := p.stageIndex(base, i); ok {
			sp.baseStage = j
			sp.deps = append(sp.deps, j)
		}
		if st.Platform != "" {
			plat, _, err := lex.ProcessWord(st.Platform, envGetter(p.metaEnv))
			if err != nil {
				return nil, df.at(st.Location, "FROM --platform: %v", err)
			}
			if sp.platform, err = ResolvePlatform(plat); err != nil {
				return nil, df.at(st.Location, "FROM %v", err)
			}
		} else {
			sp.platform = platform
		}
		for _, c := range st.Commands {
			if rc, ok := c.(*instructions.RunCommand); ok {
				// from= is the one mount field set before expansion: it
				// takes no variables.
				for _, m := range instructions.GetMounts(rc) {
					if m.From == "" {
						continue
					}
					if j, ok := p.stageIndex(m.From, i); ok {
						sp.mountFrom[m.From] = j
						sp.deps = append(sp.deps, j)
					} else if strings.EqualFold(m.From, st.Name) {
						return nil, df.at(rc.Location(), "RUN --mount from=%s: a stage cannot mount itself", m.From)
					}
				}
				continue
			}
			cp, ok := c.(*instructions.CopyCommand)
			if !ok || cp.From == "" {
				continue
			}
			from, _, err := lex.ProcessWord(cp.From, envGetter(p.metaEnv))
			if err != nil {
				return nil, df.at(cp.Location(), "COPY --from: %v", err)
			}
			cp.From = from
			if j, ok := p.stageIndex(from, i); ok {
				sp.copyFrom[cp] = j
				sp.deps = append(sp.deps, j)
			} else if n, err := strconv.Atoi(from); err == nil {
				return nil, df.at(cp.Location(), "COPY --from=%d: stage %d does not come before this one", n, n)
			} else if strings.EqualFold(from, st.Name) {
				return nil, df.at(cp.Location(), "COPY --from=%s: a stage cannot copy from itself", from)
			}
		}
		p.stages = append(p.stages, sp)
	}
	p.target = len(p.stages) - 1
	if target != "" {
		found := false
		for _, sp := range p.stages {
			if strings.EqualFold(sp.stage.Name, target) {
				p.target, found = sp.index, true
			}
		}
		if !found {
			return nil, fmt.Errorf("target stage %q could not be found", target)
		}
	}
	p.needed = make([]bool, len(p.stages))
	var mark func(int)
	mark = func(i int) {
		if p.needed[i] {
			return
		}
		p.needed[i] = true
		for _, d := range p.stages[i].deps {
			mark(d)
		}
	}
	mark(p.target)
	return p, nil
}

// stageIndex finds the earlier stage that ref names: by name
// (case-insensitive) or by number.
func (p *plan) stageIndex(ref string, before int) (int, bool) {
	for _, sp := range p.stages {
		if sp.index < before && sp.stage.Name != "" && strings.EqualFold(sp.stage.Name, ref) {
			return sp.index, true
		}
	}
	if n, err := strconv.Atoi(ref); err == nil && n >= 0 && n < before {
		return n, true
	}
	return 0, false
}

// envGetter adapts a map to the shell lexer.
type envGetter map[string]string

func (e envGetter) Get(k string) (string, bool) { v, ok := e[k]; return v, ok }
func (e envGetter) Keys() []string {
	ks := make([]string, 0, len(e))
	for k := range e {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
