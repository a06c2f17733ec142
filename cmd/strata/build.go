package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/strata-project/strata/internal/build"
	"github.com/strata-project/strata/internal/image"
)

type buildFlags struct {
	tags, buildArgs, labels []string
	file, target, iidfile   string
	progress, network       string
	noCache, quiet          bool
	pull, squash            bool
	secrets, buildContexts  []string
}

func newBuildCmd(g *globals) *cobra.Command {
	var f buildFlags
	c := &cobra.Command{
		Use:   "build [OPTIONS] PATH",
		Short: "Build an image from a Dockerfile",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts, err := f.options(c, args[0])
			if err != nil {
				return err
			}
			if !f.quiet {
				p := build.NewPlainPrinter(c.ErrOrStderr())
				p.Headers = f.progress == "tty"
				opts.Events = p.Event
			}
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			res, err := build.Build(c.Context(), s, opts)
			if err != nil {
				return err
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
	// Flags docker has that strata cannot honour yet: accepted by name so
	// that using them gives a clear error instead of "unknown flag".
	fl.BoolVar(&f.pull, "pull", false, "always attempt to pull a newer version of the image (not supported: strata has no registry client yet)")
	fl.BoolVar(&f.squash, "squash", false, "squash newly built layers into a single new layer (not supported)")
	fl.StringArrayVar(&f.secrets, "secret", nil, "secret to expose to the build (not supported)")
	fl.StringArrayVar(&f.buildContexts, "build-context", nil, "additional build contexts (not supported)")
	return c
}

// options turns the flags into build options, rejecting what strata does
// not implement.
func (f *buildFlags) options(c *cobra.Command, contextPath string) (build.Options, error) {
	usage := func(format string, args ...any) error {
		return usageError{cmd: c.CommandPath(), err: fmt.Errorf(format, args...)}
	}
	switch {
	case f.pull:
		return build.Options{}, usage("--pull is not supported: strata has no registry client yet")
	case f.squash:
		return build.Options{}, usage("--squash is not supported")
	case len(f.secrets) > 0:
		return build.Options{}, usage("--secret is not supported (no RUN --mount=type=secret yet)")
	case len(f.buildContexts) > 0:
		return build.Options{}, usage("--build-context is not supported")
	case contextPath == "-":
		return build.Options{}, usage("a build context from stdin is not supported: give a directory")
	case f.file == "-":
		return build.Options{}, usage("a Dockerfile from stdin is not supported: give a file")
	}
	switch f.progress {
	case "auto", "plain", "tty":
	default:
		return build.Options{}, usage("invalid --progress %q: want auto, plain or tty", f.progress)
	}
	if f.progress == "auto" {
		f.progress = "plain"
		if fd, ok := c.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(fd.Fd())) {
			f.progress = "tty"
		}
	}
	opts := build.Options{
		ContextDir: contextPath,
		Target:     f.target,
		NoCache:    f.noCache,
		Network:    f.network,
		BuildArgs:  map[string]string{},
		Labels:     map[string]string{},
	}
	if f.file != "" {
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
	if ok && epoch != "" {
		sec, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return opts, usage("invalid SOURCE_DATE_EPOCH %q: want seconds since 1970", epoch)
		}
		t := time.Unix(sec, 0).UTC()
		opts.SourceDateEpoch = &t
	}
	return opts, nil
}

// newBuilderCmd is `strata builder prune`: forget the build cache.
func newBuilderCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "builder", Short: "Manage the build cache"}
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove the build cache",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			res, err := build.PruneCache(c.Context(), s)
			if err != nil {
				return err
			}
			for _, id := range res.Images {
				fmt.Fprintln(c.OutOrStdout(), "Deleted:", id)
			}
			fmt.Fprintf(c.OutOrStdout(), "Total: %d cache records, %d step images, %d layers removed\n", res.Entries, len(res.Images), len(res.Layers))
			return nil
		},
	}
	prune.Flags().BoolP("force", "f", false, "do not prompt for confirmation (strata never prompts)")
	c.AddCommand(prune)
	return c
}
