package builder

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-project/strata/internal/archive"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/snapshot"
	"github.com/strata-project/strata/internal/store"
)

// stageState is where a stage's build has got to.
type stageState struct {
	cfg   image.Config
	id    digest.Digest // image of the last step ("" before the first)
	key   digest.Digest // cache key of the last step
	size  int64
	miss  bool          // a step missed the cache: later steps run
	args  []string      // ARGs in scope, NAME=VALUE, in declaration order
	apply image.Applier // config-only instructions; knows whether CMD was set in this stage
	lex   *shell.Lex
	base  baseState // where FROM left the stage, for --squash
	// For explaining cache misses: the steps run so far (ARG aside), the
	// base image, and the first step of the stage that missed.
	stepNo    int
	baseRef   string
	firstMiss string
	// The steps after the current one, and the hashing of their sources
	// that starts at the first miss (prehash.go).
	rest    []instructions.Command
	prehash *prehash
}

// baseState is the image a stage starts from.
type baseState struct {
	id      digest.Digest
	size    int64
	layers  int // diffIDs
	history int // history entries
}

func (st *stageState) chainID() digest.Digest { return image.ChainID(st.cfg.RootFS.DiffIDs) }

// env is what words are expanded against: ARGs, overridden by ENV.
func (st *stageState) env() shell.EnvGetter {
	return shell.EnvsFromSlice(append(append([]string{}, st.args...), st.cfg.Config.Env...))
}

func (st *stageState) setArg(name, value string) {
	for i, kv := range st.args {
		if k, _, _ := strings.Cut(kv, "="); k == name {
			st.args[i] = name + "=" + value
			return
		}
	}
	st.args = append(st.args, name+"="+value)
}

// runStage runs every instruction of one stage.
func (b *builder) runStage(ctx context.Context, sp *stagePlan, deps map[int]*stageState) (*stageState, error) {
	st := &stageState{lex: shell.NewLex(b.df.escape)}
	st.apply.Words = func(w string) ([]string, error) { return st.lex.ProcessWords(w, st.env()) }
	cmds := sp.stage.Commands
	total := len(cmds) + 1
	fromRef := b.begin(sp.name, b.stageLabel(sp, 1, total)+" FROM "+sp.base)
	if err := b.from(ctx, sp, st, deps); err != nil {
		return nil, b.fail(fromRef, err)
	}
	st.baseRef = string(st.id)
	if st.baseRef == "" {
		st.baseRef = string(st.key) // scratch, or a context directory
	}
	b.done(fromRef)
	if len(st.cfg.Config.OnBuild) > 0 {
		triggers, err := b.onbuildTriggers(sp, st)
		if err != nil {
			return nil, err
		}
		cmds = append(triggers, cmds...)
		total = len(cmds) + 1
		st.cfg.Config.OnBuild = nil
	}
	defer func() { st.prehash.stop() }()
	for i, c := range cmds {
		st.rest = cmds[i+1:]
		label := b.stageLabel(sp, i+2, total) + " " + displayCode(c)
		if err := b.step(ctx, sp, st, c, label, deps); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// displayCode is the instruction as written, on one line.
func displayCode(c instructions.Command) string {
	s, ok := c.(fmt.Stringer)
	if !ok {
		return strings.ToUpper(c.Name())
	}
	code := s.String()
	if i := strings.IndexByte(code, '\n'); i >= 0 {
		code = code[:i] + " ..."
	}
	return code
}

// from starts the stage on its base: scratch, an earlier stage or a stored image.
func (b *builder) from(ctx context.Context, sp *stagePlan, st *stageState, deps map[int]*stageState) error {
	plat := sp.platform
	if plat.OS == "" {
		plat = hostPlatform()
	}
	// A foreign platform is in the keys of the bases that do not name it
	// by image ID, so that an emulated build never reuses a native one's
	// steps (the host's keys are as they were).
	platKey := ""
	if !samePlatform(plat, hostPlatform()) {
		platKey = " " + image.FormatPlatform(plat)
	}
	switch {
	case sp.baseStage >= 0:
		base := deps[sp.baseStage]
		st.cfg, st.id, st.size = image.CloneConfig(base.cfg), base.id, base.size
		st.key = digest.FromString("FROM stage " + string(base.key) + " " + string(base.id))
	case strings.EqualFold(sp.base, "scratch"):
		st.cfg = image.Config{}
		st.cfg.Platform = plat
		st.cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}}
		st.key = digest.FromString("FROM scratch" + platKey)
	default:
		name := sp.base
		if bc, ok := b.buildContext(sp.base); ok {
			if !bc.isImage {
				if err := b.fromDir(ctx, st, sp.base, bc.dir, plat, platKey); err != nil {
					return b.df.at(sp.stage.Location, "FROM %s: %v", sp.base, err)
				}
				break
			}
			name = bc.image
		}
		img, err := b.imageFor(ctx, name, plat)
		if err != nil {
			return b.df.at(sp.stage.Location, "FROM %s: %v", sp.base, err)
		}
		cfg, err := loadConfig(ctx, b.s, img.ID)
		if err != nil {
			return err
		}
		st.cfg, st.id, st.size = cfg, img.ID, img.Size
		st.key = digest.FromString("FROM " + string(img.ID))
	}
	if st.cfg.RootFS.DiffIDs == nil {
		st.cfg.RootFS.DiffIDs = []digest.Digest{}
	}
	st.base = baseState{id: st.id, size: st.size, layers: len(st.cfg.RootFS.DiffIDs), history: len(st.cfg.History)}
	if !hasEnv(st.cfg.Config.Env, "PATH") {
		st.cfg.Config.Env = append([]string{"PATH=" + oci.DefaultPath}, st.cfg.Config.Env...)
	}
	return nil
}

// fromDir starts a stage on a directory build context, as docker does for
// FROM naming a local context: the directory's files, owners and modes as
// they are (its .dockerignore does not apply), become the one layer of an
// image with an empty config. The later steps' keys follow the layer's
// diffID, so an unchanged directory keeps them cached.
func (b *builder) fromDir(ctx context.Context, st *stageState, name, dir string, plat ocispec.Platform, platKey string) error {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(archive.WriteTreeDiff(ctx, pw, "", dir, archive.DiffOptions{SourceDateEpoch: b.opts.SourceDateEpoch}))
	}()
	l, err := b.s.Layers().Unpack(ctx, "", pr)
	pr.CloseWithError(io.ErrClosedPipe) // unblocks the writer if Unpack stopped early
	<-done
	if err != nil {
		return fmt.Errorf("import build context: %w", err)
	}
	t := b.now()
	st.cfg = image.Config{}
	st.cfg.Created = &t
	st.cfg.Platform = plat
	st.cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l.DiffID}}
	st.cfg.History = []ocispec.History{{Created: &t, CreatedBy: "FROM " + name + " (build context)", Comment: "strata build"}}
	id, err := b.putImage(ctx, st.cfg, "", l.Size)
	if err != nil {
		return err
	}
	st.id, st.size = id, l.Size
	st.key = digest.FromString("FROM context " + string(l.DiffID) + platKey)
	return nil
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

// onbuildTriggers parses the base image's ONBUILD instructions; they run
// right after FROM, as if written there.
func (b *builder) onbuildTriggers(sp *stagePlan, st *stageState) ([]instructions.Command, error) {
	var out []instructions.Command
	for _, trig := range st.cfg.Config.OnBuild {
		res, err := parser.Parse(strings.NewReader(trig))
		if err != nil {
			return nil, b.df.at(sp.stage.Location, "ONBUILD trigger %q of %s: %v", trig, sp.base, err)
		}
		for _, n := range res.AST.Children {
			c, err := instructions.ParseCommand(n)
			if err != nil {
				return nil, b.df.at(sp.stage.Location, "ONBUILD trigger %q of %s: %v", trig, sp.base, err)
			}
			switch strings.ToUpper(c.Name()) {
			case "ONBUILD", "FROM", "MAINTAINER":
				return nil, b.df.at(sp.stage.Location, "ONBUILD trigger %q of %s: %s isn't allowed as an ONBUILD trigger", trig, sp.base, strings.ToUpper(c.Name()))
			}
			if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
				return nil, b.df.at(sp.stage.Location, "ONBUILD trigger %q of %s: COPY --from in a trigger is not supported", trig, sp.base)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// step runs one instruction: expand, look up the cache, execute on a miss.
func (b *builder) step(ctx context.Context, sp *stagePlan, st *stageState, c instructions.Command, label string, deps map[int]*stageState) error {
	ref := b.begin(sp.name, label)
	if err := b.expand(st, c); err != nil {
		return b.fail(ref, b.df.at(c.Location(), "%s: %v", strings.ToUpper(c.Name()), err))
	}
	if err := b.checkSupported(c); err != nil {
		return b.fail(ref, err)
	}
	// ARG only changes what later words expand to, which their keys see.
	if a, ok := c.(*instructions.ArgCommand); ok {
		b.arg(st, a)
		if !b.opts.NoCache && !st.miss {
			b.cached(ref)
		} else {
			b.done(ref)
		}
		return nil
	}
	extra, srcs, err := b.inputs(ctx, sp, st, c, deps)
	if err != nil {
		return b.fail(ref, err)
	}
	defer srcs.close()
	key := stepKey(st.key, canonical(c), extra)
	st.stepNo++
	place := b.stepPlace(sp, st.stepNo)
	prev := b.loadInputs(place)
	cur := &stepInputs{Key: key, Parent: st.key, Base: st.baseRef, Instruction: canonical(c), Text: displayCode(c)}
	if _, ok := c.(*instructions.RunCommand); ok {
		cur.Args = argFingerprints(runArgs(st))
	}
	if srcs != nil && srcs.digest != "" {
		cur.Content = srcs.digest
	}
	if srcs != nil {
		srcs.place = place
	}
	// The per-file fingerprints are made only when they are kept or used.
	withFiles := func() {
		if srcs != nil && srcs.digest != "" && cur.Files == nil {
			cur.Files = srcs.files()
		}
	}
	// What the step's record says of its inputs, when it changed: written
	// with the cache entry when the step records one, else on its own
	// (best effort: only explanations depend on it).
	inputs := func() func(*metadata.Tx) error {
		if prev != nil && prev.Key == key {
			return nil
		}
		withFiles()
		return inputsPut(place, cur)
	}
	remember := func() {
		if put := inputs(); put != nil {
			records(b.s).Update(put)
		}
	}
	if !b.opts.NoCache && !st.miss {
		if img, ok := b.cacheGet(ctx, key); ok {
			cfg, err := loadConfig(ctx, b.s, img.ID)
			if err == nil {
				st.cfg, st.id, st.size, st.key = cfg, img.ID, img.Size, key
				b.applyScope(st, c)
				remember()
				b.cached(ref)
				return nil
			}
		}
	}
	lkey, link := linkKey(st, c, extra)
	if link && !b.opts.NoCache {
		hit, err := b.linkHit(ctx, st, c, key, lkey)
		if err != nil {
			return b.fail(ref, err)
		}
		if hit {
			b.cached(ref)
			return nil
		}
	}
	if !b.opts.NoCache && !st.miss {
		if next, l, h, ok := b.fromCacheSource(ctx, st, c, key); ok {
			if err := b.record(ctx, st, c, key, lkey, link, next, l, *h, inputs()); err != nil {
				return b.fail(ref, err)
			}
			b.cached(ref)
			return nil
		}
	}
	withFiles()
	b.missed(ref, explainMiss(prev, cur, b.opts.NoCache, st.firstMiss, func() map[string]string { return b.loadFiles(place) }))
	if st.firstMiss == "" {
		st.firstMiss = ref.name
	}
	if !st.miss {
		st.prehash = b.startPrehash(ctx, sp, st.rest)
	}
	st.miss = true
	if err := b.checkDepth(st, c); err != nil {
		return b.fail(ref, err)
	}
	next, l, err := b.execute(ctx, ref, sp, st, c, srcs)
	if err != nil {
		return b.fail(ref, err)
	}
	t := b.now()
	h := ocispec.History{Created: &t, CreatedBy: createdBy(st, c), EmptyLayer: l == nil, Comment: historyComment(key)}
	if err := b.record(ctx, st, c, key, lkey, link, next, l, h, inputs()); err != nil {
		return b.fail(ref, err)
	}
	b.done(ref)
	return nil
}

// record makes the image of a step from its new config, layer (nil for
// none) and history entry, caches it under the step's keys (writing
// inputs, when not nil, with them) and moves the stage on to it.
func (b *builder) record(ctx context.Context, st *stageState, c instructions.Command, key, lkey digest.Digest, link bool, next image.Config, l *layer.Layer, h ocispec.History, inputs func(*metadata.Tx) error) error {
	next.Created = h.Created
	size := st.size
	if l != nil {
		next.RootFS.DiffIDs = append(next.RootFS.DiffIDs, l.DiffID)
		size += l.Size
	}
	next.History = append(next.History, h)
	id, err := b.putImage(ctx, next, st.id, size)
	if err != nil {
		return err
	}
	keys := []digest.Digest{key}
	if link {
		keys = append(keys, lkey)
	}
	if err := b.cachePutWith(id, inputs, keys...); err != nil {
		return fmt.Errorf("record build cache: %w", err)
	}
	st.cfg, st.id, st.size, st.key = next, id, size, key
	b.applyScope(st, c)
	return nil
}

// checkDepth refuses, before it runs, a step that would stack more layers
// than overlayfs can mount under a container (the kernel stops at
// snapshot.MaxOverlayLowers lower dirs, and a container adds its init
// layer), rather than failing at the mount or making an image nothing can
// run. Only layer-making instructions count; a cached step never gets here.
func (b *builder) checkDepth(st *stageState, c instructions.Command) error {
	if b.s.Snapshots().Whiteouts() != snapshot.WhiteoutsOverlay {
		return nil
	}
	switch c.(type) {
	case *instructions.RunCommand, *instructions.CopyCommand, *instructions.AddCommand, *instructions.WorkdirCommand:
	default:
		return nil
	}
	max := snapshot.MaxOverlayLowers - 1
	if n := len(st.cfg.RootFS.DiffIDs); n >= max {
		return b.df.at(c.Location(), "%s: the image already has %d layers, the most overlayfs can run (the kernel stacks at most %d lower dirs, one is the container's init layer): merge steps, or use --squash", strings.ToUpper(c.Name()), n, snapshot.MaxOverlayLowers)
	}
	return nil
}

// applyScope updates what a step changes besides the image.
func (b *builder) applyScope(st *stageState, c instructions.Command) {
	if _, ok := c.(*instructions.CmdCommand); ok {
		st.apply.CmdSet = true
	}
}

// expand substitutes variables in the instruction's words.
func (b *builder) expand(st *stageState, c instructions.Command) error {
	env := st.env()
	expander := func(word string) (string, error) {
		out, _, err := st.lex.ProcessWord(word, env)
		return out, err
	}
	if e, ok := c.(instructions.SupportsSingleWordExpansionRaw); ok {
		if err := e.ExpandRaw(expander); err != nil {
			return err
		}
	}
	if e, ok := c.(instructions.SupportsSingleWordExpansion); ok {
		return e.Expand(expander)
	}
	return nil
}

// arg declares build arguments in the stage's scope.
func (b *builder) arg(st *stageState, a *instructions.ArgCommand) {
	for _, kv := range a.Args {
		v, given := b.opts.BuildArgs[kv.Key]
		switch {
		case given:
			b.markUsed(kv.Key)
		case kv.Value != nil:
			v = *kv.Value
		default:
			mv, ok := b.plan.metaEnv[kv.Key]
			if !ok {
				continue // declared without a value: unset, as in docker
			}
			v = mv
		}
		st.setArg(kv.Key, v)
	}
}

// canonical is an instruction's identity after expansion: its name and its
// parsed fields (flags included), independent of spacing and comments.
func canonical(c instructions.Command) string {
	b, err := json.Marshal(c)
	if err != nil {
		return strings.ToUpper(c.Name()) + " " + fmt.Sprint(c)
	}
	return strings.ToUpper(c.Name()) + " " + string(b)
}

// stepKey is the cache key of a step.
func stepKey(parent digest.Digest, canonical string, extra []string) digest.Digest {
	var sb strings.Builder
	sb.WriteString("strata-build-v1\n")
	sb.WriteString(string(parent))
	sb.WriteByte('\n')
	sb.WriteString(canonical)
	for _, e := range extra {
		sb.WriteByte('\n')
		sb.WriteString(e)
	}
	return digest.FromString(sb.String())
}

// runArgs are the ARGs a RUN sees in its environment: those in scope that
// no ENV overrides, sorted for the cache key.
func runArgs(st *stageState) []string {
	var out []string
	for _, kv := range st.args {
		k, _, _ := strings.Cut(kv, "=")
		if !hasEnv(st.cfg.Config.Env, k) {
			out = append(out, kv)
		}
	}
	sort.Strings(out)
	return out
}

// createdBy is the history line of a step.
func createdBy(st *stageState, c instructions.Command) string {
	switch c := c.(type) {
	case *instructions.RunCommand:
		args := runArgs(st)
		prefix := ""
		if len(args) > 0 {
			prefix = fmt.Sprintf("|%d %s ", len(args), strings.Join(args, " "))
		}
		return "RUN " + prefix + strings.Join(runCommandLine(st, c), " ") + " # buildkit"
	}
	return strings.TrimSpace(displayCode(c)) + " # buildkit"
}

func runCommandLine(st *stageState, c *instructions.RunCommand) []string {
	if c.PrependShell {
		return append(append([]string{}, image.Shell(st.cfg.Config)...), strings.Join(c.CmdLine, " "))
	}
	return c.CmdLine
}

func isNotFound(err error) bool { return store.IsNoSuchImage(err) }
