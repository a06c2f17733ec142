// Package build turns a Dockerfile and a build context into an image.
//
// The Dockerfile is parsed with BuildKit's parser into stages. The stages
// the target needs form a small DAG (FROM another stage, COPY --from); each
// runs in its own goroutine as soon as the stages it needs are done, so
// independent stages run at the same time.
//
// Inside a stage every instruction is one step, and every step ends in an
// image: docker's classic builder model. Config-only instructions (ENV,
// CMD, ...) add a history entry with empty_layer; RUN runs the command with
// the OCI runtime in an active snapshot over the previous step's layers;
// COPY, ADD and WORKDIR write into such a snapshot mounted. The snapshot is
// then committed as it is (no re-extraction). The step images are recorded
// with their parent, so `images -a` shows them as intermediates and they
// keep their layers from being collected.
//
// The cache maps a step key to the image the step made. A key is the
// previous step's key plus the instruction after variable expansion, plus,
// for COPY/ADD, a digest of the selected files (names, content, mode, link
// targets; not mtimes) and, for RUN, the build args in scope and each
// --mount's fields with the digest of what a bind mount shows (never a
// secret's value: see mounts.go). A miss executes the step and every later
// step of the stage. COPY/ADD --link steps also have a key without the
// parent, under which their layer is reused on any parent (link.go). The
// cache lives in the store's metadata file, so every build on the store
// shares it.
//
// --squash (squash.go) replays the final stage's new layers into one.
package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/netconf"
	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/progress"
	"github.com/strata-project/strata/internal/registry"
	"github.com/strata-project/strata/internal/store"
)

// Options are the inputs of one build.
type Options struct {
	ContextDir string // the build context directory
	Dockerfile string // path of the Dockerfile; "" = ContextDir/Dockerfile
	// DockerfileName is how errors name the Dockerfile ("Dockerfile").
	DockerfileName string

	Tags      []reference.Named
	BuildArgs map[string]string
	Target    string
	NoCache   bool
	Labels    map[string]string
	// SourceDateEpoch, when set, is the time of every history entry and of
	// the image, and clamps file mtimes in the layers made.
	SourceDateEpoch *time.Time
	// Network is the RUN network: oci.NetworkHost (default) or
	// oci.NetworkNone.
	Network string
	// ExtraHosts are added to every RUN's /etc/hosts (--add-host).
	ExtraHosts []netconf.Host
	Runtime    string // OCI runtime name; "" = runc

	// Secrets are the values RUN --mount=type=secret,id=ID reads, by ID.
	// They are in no layer, history entry or cache key.
	Secrets map[string][]byte
	// SSH are the agent sockets RUN --mount=type=ssh forwards, by ID
	// (--ssh default=$SSH_AUTH_SOCK).
	SSH map[string]string
	// BuildContexts are the named contexts (--build-context NAME=VALUE)
	// that COPY --from=NAME, RUN --mount=from=NAME and FROM NAME can use:
	// VALUE is a directory, or docker-image://REF for an image in the
	// store. A stage of the same name wins over a named context.
	BuildContexts map[string]string
	// CacheFrom names images in the store whose steps this build may reuse
	// (--cache-from), matched by step key and parent layers.
	CacheFrom []string
	// Output, when set, also exports the final stage's files (--output).
	Output *Output
	// Registry is how base images are pulled (TLS, insecure-registries).
	Registry registry.Access
	// Squash merges the layers the final stage adds to its base into one.
	Squash bool
	// Platform is what the build is for (--platform, from
	// ResolvePlatform); the zero Platform is the host's. Another
	// architecture runs its RUN steps through binfmt_misc emulation.
	Platform ocispec.Platform
	// Pull fetches every named base image from its registry before use,
	// even when the store has it. Without it, only missing images are
	// pulled.
	Pull bool

	// Events receives the progress of the build; nil discards it. Calls
	// are serialized.
	Events func(progress.Event)
}

// Result is what a build made.
type Result struct {
	ID    digest.Digest
	Names []string // familiar names tagged
	// BaseLayers is how many of the image's layers its final stage's base
	// image brought: the layers above are the build's own.
	BaseLayers int
}

// Build runs the build and tags the final image.
func Build(ctx context.Context, s Store, opts Options) (Result, error) {
	b, err := newBuilder(s, opts)
	if err != nil {
		return Result{}, err
	}
	// The build holds no store lock while it runs: a lease keeps the
	// images it uses and makes from removals, and its layers carry its
	// owner ID until an image names them.
	b.lease, err = s.NewLease(ctx, "build")
	if err != nil {
		return Result{}, err
	}
	defer b.lease.Release()
	return b.build(ctx)
}

type builder struct {
	s     Store
	lease *store.Lease
	opts  Options
	df    *dockerfile
	plan  *plan
	rt    *oci.Runtime
	ig    *ignore
	ctxs  map[string]namedContext

	steps  atomic.Int64
	evMu   sync.Mutex
	usedMu sync.Mutex

	pullMu sync.Mutex
	pulls  map[string]*pulled

	cacheFrom []cacheSource // read once, before the stages run

	hashMu     sync.Mutex
	hashCaches map[string]*hashCache // by context directory (hashcache.go)
}

func newBuilder(s Store, opts Options) (*builder, error) {
	if opts.ContextDir == "" {
		return nil, errors.New("build: no context directory")
	}
	ctxDir, err := filepath.Abs(opts.ContextDir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(ctxDir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("build context %s: not a directory", opts.ContextDir)
	}
	opts.ContextDir = ctxDir
	if opts.Dockerfile == "" {
		opts.Dockerfile = filepath.Join(ctxDir, "Dockerfile")
	}
	if opts.DockerfileName == "" {
		opts.DockerfileName = filepath.Base(opts.Dockerfile)
	}
	switch opts.Network {
	case "", "default":
		opts.Network = oci.NetworkHost
	case oci.NetworkHost, oci.NetworkNone:
	default:
		return nil, fmt.Errorf("network mode %q not supported (use host or none)", opts.Network)
	}
	f, err := os.Open(opts.Dockerfile)
	if err != nil {
		return nil, fmt.Errorf("read Dockerfile: %w", err)
	}
	defer f.Close()
	df, err := parseDockerfile(opts.DockerfileName, f)
	if err != nil {
		return nil, err
	}
	p, err := makePlan(df, opts.BuildArgs, opts.Target, opts.Platform)
	if err != nil {
		return nil, err
	}
	ig, err := loadIgnore(ctxDir)
	if err != nil {
		return nil, err
	}
	ctxs, err := loadBuildContexts(opts.BuildContexts)
	if err != nil {
		return nil, err
	}
	return &builder{s: s, opts: opts, df: df, plan: p, ig: ig, ctxs: ctxs}, nil
}

// namedContext is one --build-context.
type namedContext struct {
	dir     string
	ig      *ignore
	isImage bool
	image   string
}

func loadBuildContexts(in map[string]string) (map[string]namedContext, error) {
	out := map[string]namedContext{}
	for name, v := range in {
		if name == "" {
			return nil, fmt.Errorf("build context %q: empty name", v)
		}
		if ref, ok := strings.CutPrefix(v, "docker-image://"); ok {
			out[strings.ToLower(name)] = namedContext{isImage: true, image: ref}
			continue
		}
		if strings.Contains(v, "://") {
			return nil, fmt.Errorf("build context %s=%s: only a directory or docker-image://REF is supported", name, v)
		}
		dir, err := filepath.Abs(v)
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("build context %s=%s: not a directory", name, v)
		}
		ig, err := loadIgnore(dir)
		if err != nil {
			return nil, fmt.Errorf("build context %s: %w", name, err)
		}
		out[strings.ToLower(name)] = namedContext{dir: dir, ig: ig}
	}
	return out, nil
}

// buildContext finds the --build-context called name.
func (b *builder) buildContext(name string) (namedContext, bool) {
	c, ok := b.ctxs[strings.ToLower(name)]
	return c, ok
}

// stageResult is a finished stage, or why it failed.
type stageResult struct {
	done chan struct{}
	st   *stageState
	err  error
}

func (b *builder) build(ctx context.Context) (Result, error) {
	rt, err := oci.New(b.opts.Runtime, filepath.Join(b.s.Root(), "build", "runtime"))
	if err != nil {
		return Result{}, err
	}
	b.rt = rt
	if err := sweepDeadSteps(ctx, rt, b.s); err != nil {
		return Result{}, err
	}
	sweepHashCacheTemps(b.s.Root(), b.s.Alive)
	if !b.opts.NoCache {
		b.loadCacheSources(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	results := make([]*stageResult, len(b.plan.stages))
	for i := range results {
		results[i] = &stageResult{done: make(chan struct{})}
	}
	for _, sp := range b.plan.stages {
		if !b.plan.needed[sp.index] {
			continue
		}
		go func() {
			r := results[sp.index]
			defer close(r.done)
			for _, d := range sp.deps {
				select {
				case <-results[d].done:
				case <-ctx.Done():
					r.err = ctx.Err()
					return
				}
				if results[d].err != nil {
					r.err = errDependency
					return
				}
			}
			deps := map[int]*stageState{}
			for _, d := range sp.deps {
				deps[d] = results[d].st
			}
			r.st, r.err = b.runStage(ctx, sp, deps)
			if r.err != nil {
				cancel() // the build has failed: stop the other stages
			}
		}()
	}
	final := results[b.plan.target]
	<-final.done
	// Wait for every stage so that no step is still writing when we return.
	var firstErr error
	for i, r := range results {
		if !b.plan.needed[i] {
			continue
		}
		<-r.done
		if r.err != nil && !errors.Is(r.err, errDependency) && !(errors.Is(r.err, context.Canceled) && firstErr != nil) {
			if firstErr == nil || errors.Is(firstErr, context.Canceled) {
				firstErr = r.err
			}
		}
	}
	// Every stage has stopped: no digest is being recorded any more.
	b.saveContextHashes(firstErr == nil)
	if firstErr != nil {
		return Result{}, firstErr
	}
	b.warnUnusedArgs()
	st := final.st
	if b.opts.Squash {
		if st, err = b.squash(ctx, st); err != nil {
			return Result{}, err
		}
	}
	if b.opts.Output != nil {
		if err := b.output(ctx, st); err != nil {
			return Result{}, err
		}
	}
	return b.export(ctx, st)
}

var errDependency = errors.New("a stage this one needs failed")

// export applies --label, records the final image and moves the tags.
func (b *builder) export(ctx context.Context, st *stageState) (Result, error) {
	n := b.begin("", "exporting to image")
	id := st.id
	if len(b.opts.Labels) > 0 {
		cfg := image.CloneConfig(st.cfg)
		if cfg.Config.Labels == nil {
			cfg.Config.Labels = map[string]string{}
		}
		for k, v := range b.opts.Labels {
			cfg.Config.Labels[k] = v
		}
		var err error
		if id, err = b.putImage(ctx, cfg, st.id, st.size); err != nil {
			return Result{}, b.fail(n, err)
		}
	}
	if id == "" {
		// FROM scratch with no instructions still names an (empty) image.
		var err error
		if id, err = b.putImage(ctx, st.cfg, "", 0); err != nil {
			return Result{}, b.fail(n, err)
		}
	}
	b.log(n, "writing image "+id.String()+" done")
	res := Result{ID: id, BaseLayers: st.base.layers}
	for _, t := range b.opts.Tags {
		if err := b.s.Images().Tag(ctx, id, t); err != nil {
			return Result{}, b.fail(n, fmt.Errorf("tag %s: %w", reference.FamiliarString(t), err))
		}
		b.log(n, "naming to "+t.String()+" done")
		res.Names = append(res.Names, reference.FamiliarString(t))
	}
	b.done(n)
	return res, nil
}

// warnUnusedArgs reports --build-arg values no ARG declared, like docker.
func (b *builder) warnUnusedArgs() {
	var unused []string
	b.usedMu.Lock()
	for k := range b.opts.BuildArgs {
		if !b.plan.used[k] && k != "SOURCE_DATE_EPOCH" && !isProxyArg(k) {
			unused = append(unused, k)
		}
	}
	b.usedMu.Unlock()
	if len(unused) == 0 {
		return
	}
	sort.Strings(unused)
	b.emit(progress.Event{Kind: progress.EventWarning, Text: "[Warning] One or more build-args [" + strings.Join(unused, " ") + "] were not consumed"})
}

func (b *builder) markUsed(name string) {
	b.usedMu.Lock()
	b.plan.used[name] = true
	b.usedMu.Unlock()
}

// now is the time recorded for a new history entry.
func (b *builder) now() time.Time {
	if b.opts.SourceDateEpoch != nil {
		return b.opts.SourceDateEpoch.UTC()
	}
	return time.Now().UTC()
}

// stageLabel is what the progress shows for step k of n of a stage.
func (b *builder) stageLabel(sp *stagePlan, k, n int) string {
	if len(b.plan.stages) == 1 {
		return fmt.Sprintf("[%d/%d]", k, n)
	}
	return fmt.Sprintf("[%s %d/%d]", sp.name, k, n)
}

func shortID(d digest.Digest) string { return image.ShortID(d) }
