package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/strata-project/strata/internal/builder"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/netconf"
	"github.com/strata-project/strata/internal/network"
	"github.com/strata-project/strata/internal/progress"
)

type buildFlags struct {
	tags, buildArgs, labels []string
	file, target, iidfile   string
	progress, network       string
	noCache, quiet          bool
	pull, squash            bool
	secrets, buildContexts  []string
	explainCache            bool
	wasteThreshold          string
	addHosts                []string
	outputs, ssh, cacheFrom []string
	platform                string
}

func newBuildCmd(g *globals) *cobra.Command {
	var f buildFlags
	c := &cobra.Command{
		Use:   "build [OPTIONS] PATH | -",
		Short: "Build an image from a Dockerfile",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts, cleanup, err := f.options(c, args[0])
			if err != nil {
				return err
			}
			defer cleanup()
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			waste, err := parseWasteLimit(f.wasteThreshold)
			if err != nil || !waste.set {
				return usageError{cmd: c.CommandPath(), err: fmt.Errorf("invalid --waste-threshold %q: want a size like 10MB or a percentage like 5%%", f.wasteThreshold)}
			}
			finish := f.progressPrinter(c, &opts)
			misses := collectMisses(&opts)
			res, err := builder.Build(c.Context(), s, opts)
			finish(err != nil)
			if f.explainCache && !f.quiet {
				writeMisses(c.ErrOrStderr(), *misses)
			}
			if err != nil {
				return err
			}
			// Advice is about what this build made: a fully cached
			// rebuild made nothing new and gave its advice before.
			if !f.quiet && len(*misses) > 0 {
				buildAdvice(c, s, res, waste)
			}
			if f.iidfile != "" {
				if err := os.WriteFile(f.iidfile, []byte(res.ID.String()), 0o644); err != nil {
					return fmt.Errorf("write iidfile: %w", err)
				}
			}
			if f.quiet {
				fmt.Fprintln(c.OutOrStdout(), res.ID)
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringArrayVarP(&f.tags, "tag", "t", nil, "name and optionally a tag (name:tag); may be repeated")
	fl.StringVarP(&f.file, "file", "f", "", "name of the Dockerfile (default: PATH/Dockerfile)")
	fl.StringArrayVar(&f.buildArgs, "build-arg", nil, "set a build-time variable (KEY=VALUE, or KEY to take it from the environment)")
	fl.StringVar(&f.target, "target", "", "set the target build stage to build")
	fl.BoolVar(&f.noCache, "no-cache", false, "do not use cache when building the image")
	fl.StringArrayVar(&f.labels, "label", nil, "set metadata for the image (KEY=VALUE)")
	fl.StringVar(&f.iidfile, "iidfile", "", "write the image ID to the file")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "suppress the build output and print the image ID on success")
	fl.StringVar(&f.progress, "progress", "auto", "type of progress output: auto, plain or tty")
	fl.StringVar(&f.network, "network", "", "networking mode for RUN instructions: host (default) or none")
	fl.BoolVar(&f.squash, "squash", false, "squash the layers the final stage adds to its base into a single new layer")
	fl.StringArrayVar(&f.secrets, "secret", nil, "secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR")
	fl.StringArrayVar(&f.buildContexts, "build-context", nil, "additional named build context: NAME=DIR or NAME=docker-image://REF")
	fl.BoolVar(&f.pull, "pull", false, "always attempt to pull a newer version of the base images")
	fl.BoolVar(&f.explainCache, "explain-cache", false, "after the build, say for each step that missed the cache what changed since its last build")
	fl.StringVar(&f.wasteThreshold, "waste-threshold", "10MB", "advise on the build's own wasted bytes above SIZE or PCT of the image (see image analyze)")
	fl.StringArrayVar(&f.addHosts, "add-host", nil, "add a custom host-to-IP mapping to RUN's /etc/hosts (host:ip, or host:host-gateway for the host)")
	fl.StringArrayVarP(&f.outputs, "output", "o", nil, "also export the result's files: type=local,dest=DIR | type=tar,dest=FILE | DIR | - (a tar on stdout)")
	fl.StringArrayVar(&f.cacheFrom, "cache-from", nil, "images to consider as cache sources (local or pulled; their steps are reused where the step and its parent layers match)")
	fl.StringArrayVar(&f.ssh, "ssh", nil, "SSH agent socket for RUN --mount=type=ssh: default|ID[=SOCKET] (default: $SSH_AUTH_SOCK)")
	fl.StringVar(&f.platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "platform to build for (os/arch[/variant]); another architecture than the host's builds through binfmt_misc emulation")
	return c
}

// progressPrinter sets opts.Events to print the progress --progress and
// -q ask for. finish ends the output (the tty view's final frame).
func (f *buildFlags) progressPrinter(c *cobra.Command, opts *builder.Options) (finish func(failed bool)) {
	w := c.ErrOrStderr()
	switch {
	case f.quiet:
		return func(bool) {}
	case f.progress == "tty":
		size := func() (int, int) { return 0, 0 }
		if fd, ok := w.(*os.File); ok {
			size = func() (int, int) {
				cols, rows, err := term.GetSize(int(fd.Fd()))
				if err != nil {
					return 0, 0
				}
				return cols, rows
			}
		}
		p := progress.NewTTYPrinter(w, size)
		opts.Events = p.Event
		return p.Close
	}
	opts.Events = progress.NewPlainPrinter(w).Event
	return func(bool) {}
}

// options turns the flags into build options, rejecting what strata does
// not implement. cleanup removes what reading stdin made.
func (f *buildFlags) options(c *cobra.Command, contextPath string) (opts builder.Options, cleanup func(), err error) {
	usage := func(format string, args ...any) error {
		return usageError{cmd: c.CommandPath(), err: fmt.Errorf(format, args...)}
	}
	cleanup = func() {}
	switch {
	case contextPath == "-" && f.file == "-":
		return opts, cleanup, usage("the context and the Dockerfile cannot both come from stdin")
	}
	opts, err = f.buildOptions(usage, contextPath)
	if err != nil {
		return opts, cleanup, err
	}
	if opts.Output != nil && opts.Output.Dest == "-" {
		if fd, ok := c.OutOrStdout().(*os.File); ok && term.IsTerminal(int(fd.Fd())) {
			return opts, cleanup, usage("refusing to write a tar to the terminal: redirect stdout or give --output dest=FILE")
		}
		opts.Output.Stdout = c.OutOrStdout()
	}
	for k, v := range clientProxies(c.ErrOrStderr()) {
		if _, set := opts.BuildArgs[k]; !set && !f.namesArg(k) {
			opts.BuildArgs[k] = v
		}
	}
	if f.progress == "auto" {
		f.progress = "plain"
		if fd, ok := c.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(fd.Fd())) {
			f.progress = "tty"
		}
	}
	if contextPath != "-" && f.file != "-" {
		return opts, cleanup, nil
	}
	tmp, err := os.MkdirTemp("", "strata-build-stdin-")
	if err != nil {
		return opts, cleanup, err
	}
	cleanup = func() { os.RemoveAll(tmp) }
	if f.file == "-" {
		opts.Dockerfile, err = builder.StdinDockerfile(c.InOrStdin(), tmp)
		opts.DockerfileName = "Dockerfile"
		return opts, cleanup, err
	}
	ctxDir, dockerfile, err := builder.StdinContext(c.Context(), c.InOrStdin(), tmp)
	if err != nil {
		return opts, cleanup, err
	}
	opts.ContextDir = ctxDir
	switch {
	case dockerfile != "":
		if f.file != "" {
			return opts, cleanup, usage("-f cannot name a file when the Dockerfile comes from stdin")
		}
		opts.Dockerfile, opts.DockerfileName = dockerfile, "Dockerfile"
	case f.file != "":
		// With a context from stdin, -f names a file inside it.
		opts.Dockerfile = filepath.Join(ctxDir, filepath.Clean("/"+f.file))
		opts.DockerfileName = filepath.Base(f.file)
	}
	return opts, cleanup, nil
}

// buildOptions reads the flags that do not involve stdin.
func (f *buildFlags) buildOptions(usage func(string, ...any) error, contextPath string) (builder.Options, error) {
	switch f.progress {
	case "auto", "plain", "tty":
	default:
		return builder.Options{}, usage("invalid --progress %q: want auto, plain or tty", f.progress)
	}
	switch f.network {
	case "", "default", "host", "none":
	default:
		return builder.Options{}, usage("network mode %q not supported (use host or none)", f.network)
	}
	opts := builder.Options{
		ContextDir: contextPath,
		Target:     f.target,
		NoCache:    f.noCache,
		Network:    f.network,
		Squash:     f.squash,
		Pull:       f.pull,
		BuildArgs:  map[string]string{},
		Labels:     map[string]string{},
	}
	access, err := registryAccess(true)
	if err != nil {
		return opts, err
	}
	opts.Registry = access
	for _, s := range f.secrets {
		id, data, err := readSecret(s)
		if err != nil {
			return opts, usage("invalid --secret %q: %v", s, err)
		}
		if opts.Secrets == nil {
			opts.Secrets = map[string][]byte{}
		}
		opts.Secrets[id] = data
	}
	for _, bc := range f.buildContexts {
		name, v, ok := strings.Cut(bc, "=")
		if !ok || name == "" || v == "" {
			return opts, usage("invalid --build-context %q: want NAME=DIR or NAME=docker-image://REF", bc)
		}
		if opts.BuildContexts == nil {
			opts.BuildContexts = map[string]string{}
		}
		opts.BuildContexts[name] = v
	}
	if f.file != "" && f.file != "-" {
		abs, err := filepath.Abs(f.file)
		if err != nil {
			return opts, err
		}
		opts.Dockerfile = abs
		opts.DockerfileName = filepath.Base(f.file)
	}
	for _, t := range f.tags {
		ref, err := image.ParseTagged(t)
		if err != nil {
			return opts, usage("invalid tag %q: %v", t, err)
		}
		opts.Tags = append(opts.Tags, reference.Named(ref))
	}
	for _, o := range f.outputs {
		out, ok, err := builder.ParseOutput(o)
		if err != nil {
			return opts, usage("%v", err)
		}
		if !ok {
			continue
		}
		if opts.Output != nil {
			return opts, usage("only one --output of type local or tar is supported")
		}
		opts.Output = &out
	}
	if f.platform != "" {
		p, err := builder.ResolvePlatform(f.platform)
		if err != nil {
			return opts, err
		}
		opts.Platform = p
	}
	for _, v := range f.cacheFrom {
		ref := v
		if strings.Contains(v, "=") {
			// buildx's form; only an image reference is a source strata has.
			typ, r := "", ""
			for _, field := range strings.Split(v, ",") {
				k, val, _ := strings.Cut(field, "=")
				switch k {
				case "type":
					typ = val
				case "ref":
					r = val
				}
			}
			if typ != "registry" || r == "" {
				return opts, usage("invalid --cache-from %q: want an image reference (or type=registry,ref=IMAGE)", v)
			}
			ref = r
		}
		opts.CacheFrom = append(opts.CacheFrom, ref)
	}
	for _, v := range f.ssh {
		id, sock, _ := strings.Cut(v, "=")
		if sock == "" {
			sock = os.Getenv("SSH_AUTH_SOCK")
		}
		if id == "" || sock == "" {
			return opts, usage("invalid --ssh %q: no agent socket (set SSH_AUTH_SOCK or give ID=SOCKET)", v)
		}
		if err := builder.CheckSSHAgent(sock); err != nil {
			return opts, usage("invalid --ssh %q: %v", v, err)
		}
		if opts.SSH == nil {
			opts.SSH = map[string]string{}
		}
		opts.SSH[id] = sock
	}
	for _, h := range f.addHosts {
		// RUN shares the host's network (the build default), where the
		// host itself is its loopback address.
		if name, ip, ok := strings.Cut(h, ":"); ok && ip == network.HostGateway && name != "" {
			h = name + ":127.0.0.1"
		}
		host, err := netconf.ParseHost(h)
		if err != nil {
			return opts, usage("%v", err)
		}
		opts.ExtraHosts = append(opts.ExtraHosts, host)
	}
	for _, a := range f.buildArgs {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			v, ok = os.LookupEnv(k)
			if !ok {
				continue // docker drops a bare KEY that is not set
			}
		}
		opts.BuildArgs[k] = v
	}
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return opts, usage("invalid label %q", l)
		}
		opts.Labels[k] = v
	}
	// BuildKit takes SOURCE_DATE_EPOCH as a build arg; buildx also from the
	// environment.
	epoch, ok := opts.BuildArgs["SOURCE_DATE_EPOCH"]
	if !ok {
		epoch, ok = os.LookupEnv("SOURCE_DATE_EPOCH")
	}
	if ok {
		t, err := sourceDateEpoch(epoch)
		if err != nil {
			return opts, usage("%v", err)
		}
		opts.SourceDateEpoch = t
	}
	return opts, nil
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH (seconds since 1970); "" is nil.
func sourceDateEpoch(v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	sec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("invalid SOURCE_DATE_EPOCH %q: want seconds since 1970", v)
	}
	t := time.Unix(sec, 0).UTC()
	return &t, nil
}

// namesArg tells whether --build-arg names key, with or without a value:
// a bare KEY the environment lacks still keeps the client's proxy out.
func (f *buildFlags) namesArg(key string) bool {
	for _, a := range f.buildArgs {
		if k, _, _ := strings.Cut(a, "="); k == key {
			return true
		}
	}
	return false
}

// readSecret reads one --secret: id=ID with src=FILE (or source=) or
// env=VAR; with neither, the environment variable named ID.
func readSecret(spec string) (string, []byte, error) {
	var id, src, env, typ string
	for _, field := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return "", nil, fmt.Errorf("%q is not KEY=VALUE", field)
		}
		switch strings.ToLower(k) {
		case "id":
			id = v
		case "src", "source":
			src = v
		case "env":
			env = v
		case "type":
			typ = v
		default:
			return "", nil, fmt.Errorf("unknown key %q", k)
		}
	}
	if id == "" {
		return "", nil, fmt.Errorf("no id=")
	}
	switch {
	case typ != "" && typ != "file" && typ != "env":
		return "", nil, fmt.Errorf("type %q: want file or env", typ)
	case src != "" && env != "":
		return "", nil, fmt.Errorf("give src= or env=, not both")
	case src != "" || typ == "file":
		if src == "" {
			src = id
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return "", nil, err
		}
		return id, data, nil
	}
	if env == "" {
		env = id
	}
	v, ok := os.LookupEnv(env)
	if !ok {
		return "", nil, fmt.Errorf("environment variable %s is not set (give src=FILE for a file)", env)
	}
	return id, []byte(v), nil
}

// newBuilderCmd is `strata builder prune`: forget the build cache.
func newBuilderCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "builder", Short: "Manage the build cache"}
	var all, force bool
	var filters []string
	var keep string
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove build cache",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			var o builder.PruneOptions
			for _, f := range filters {
				k, v, ok := strings.Cut(f, "=")
				if !ok {
					return usageError{cmd: c.CommandPath(), err: errFilterFormat}
				}
				if strings.ToLower(strings.TrimSpace(k)) != "until" {
					return fmt.Errorf("invalid filter '%s' (builder prune takes until=)", k)
				}
				t, err := parseUntil(v)
				if err != nil {
					return err
				}
				o.Until = t
			}
			if keep != "" {
				n, err := units.RAMInBytes(keep)
				if err != nil || n < 0 {
					return fmt.Errorf("invalid --keep-storage %q: want a size like 512MB", keep)
				}
				o.KeepStorage = n
			}
			warning := "WARNING! This will remove all dangling build cache."
			if all {
				warning = "WARNING! This will remove all build cache."
			}
			if !confirm(c, force, warning) {
				return nil
			}
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			res, err := builder.PruneCache(c.Context(), s, o)
			w := c.OutOrStdout()
			if len(res.Images) > 0 {
				fmt.Fprintln(w, "Deleted build cache objects:")
				for _, id := range res.Images {
					fmt.Fprintln(w, id)
				}
				fmt.Fprintln(w)
			}
			if err != nil {
				return err
			}
			printReclaimed(w, res.Reclaimed)
			return nil
		},
	}
	prune.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	// docker's -a widens prune from dangling to all cache; every strata
	// cache record is a step image no name points at, so both remove the
	// same records.
	prune.Flags().BoolVarP(&all, "all", "a", false, "remove all unused build cache")
	prune.Flags().StringArrayVar(&filters, "filter", nil, `provide filter values (e.g. "until=24h")`)
	prune.Flags().StringVar(&keep, "keep-storage", "", "amount of disk space to keep for cache (e.g. 1GB)")
	c.AddCommand(prune)
	return c
}
