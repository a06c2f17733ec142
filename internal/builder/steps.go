package builder

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/oci"
)

// checkSupported rejects flags and forms the builder does not implement,
// naming the Dockerfile line, rather than silently ignoring them.
func (b *builder) checkSupported(c instructions.Command) error {
	bad := func(what string) error {
		return b.df.at(c.Location(), "%s is not supported", what)
	}
	switch c := c.(type) {
	case *instructions.RunCommand:
		for _, f := range c.FlagsUsed {
			switch f {
			case "network":
				switch instructions.GetNetwork(c) {
				case "default", "host", "none":
				default:
					return bad("RUN --network=" + instructions.GetNetwork(c))
				}
			case "mount":
				for _, m := range instructions.GetMounts(c) {
					switch {
					case m.Type == instructions.MountTypeCache && m.From != "":
						return bad("RUN --mount=type=cache,from=")
					}
				}
			default:
				return bad("RUN --" + f)
			}
		}
		if len(c.Files) > 0 && !heredocRunnable(c) {
			return bad("RUN with this heredoc form")
		}
	case *instructions.CopyCommand:
		// --link, --parents and --exclude are implemented; --link gives
		// the same files as a plain COPY (see copy).
		if _, err := parseChmod(c.Chmod); err != nil {
			return b.df.at(c.Location(), "COPY --chmod=%s: %v", c.Chmod, err)
		}
		if c.Link && !numericChown(c.Chown) {
			return b.df.at(c.Location(), "COPY --link --chown=%s: names cannot be resolved in the empty filesystem a --link copy writes to: use numeric IDs", c.Chown)
		}
	case *instructions.StopSignalCommand:
		// Refused at build time, as docker does, not at the first stop.
		if _, err := oci.ParseSignal(c.Signal); err != nil {
			return b.df.at(c.Location(), "STOPSIGNAL: %v", err)
		}
	case *instructions.AddCommand:
		if c.Link && !numericChown(c.Chown) {
			return b.df.at(c.Location(), "ADD --link --chown=%s: names cannot be resolved in the empty filesystem a --link copy writes to: use numeric IDs", c.Chown)
		}
		switch {
		case c.KeepGitDir != nil:
			return bad("ADD --keep-git-dir")
		case c.Unpack != nil:
			return bad("ADD --unpack")
		}
		for _, src := range c.SourcePaths {
			if isRemote(src) && !isHTTP(src) {
				return bad("ADD of a git source (" + src + ")")
			}
			if c.Checksum != "" && !isHTTP(src) {
				return b.df.at(c.Location(), "ADD --checksum needs an http(s) source, not %s", src)
			}
		}
		if c.Checksum != "" {
			if _, err := parseChecksum(c.Checksum); err != nil {
				return b.df.at(c.Location(), "ADD --checksum: %v", err)
			}
		}
		if _, err := parseChmod(c.Chmod); err != nil {
			return b.df.at(c.Location(), "ADD --chmod=%s: %v", c.Chmod, err)
		}
	}
	return nil
}

func isRemote(src string) bool {
	for _, p := range []string{"http://", "https://", "git://", "git@", "ssh://"} {
		if strings.HasPrefix(src, p) {
			return true
		}
	}
	return false
}

// parseChmod reads --chmod's octal mode; "" means keep the source's.
func parseChmod(s string) (*uint32, error) {
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		return nil, fmt.Errorf("invalid mode: want octal digits such as 0755")
	}
	m := uint32(v)
	return &m, nil
}

// inputs are what a step's key needs beyond its instruction text: the
// content of COPY/ADD sources and the ARGs a RUN sees.
func (b *builder) inputs(ctx context.Context, sp *stagePlan, st *stageState, c instructions.Command, deps map[int]*stageState) ([]string, *sources, error) {
	switch c := c.(type) {
	case *instructions.RunCommand:
		plans, err := b.mountPlans(ctx, sp, st, c, deps)
		if err != nil {
			return nil, nil, err
		}
		extra := append([]string{"args"}, runArgs(st)...)
		for _, p := range plans {
			extra = append(extra, p.key)
		}
		return extra, &sources{mounts: plans}, nil
	case *instructions.CopyCommand:
		st.prehash.wait(c)
		src, err := b.selectSourcesPass(ctx, sp, c, c.SourcesAndDest, c.From, deps, hashPass{crc: recordsCopy(c)})
		if err != nil {
			return nil, nil, err
		}
		return []string{"content " + string(src.digest)}, src, nil
	case *instructions.AddCommand:
		st.prehash.wait(c)
		src, err := b.selectSourcesPass(ctx, sp, c, c.SourcesAndDest, "", deps, hashPass{crc: recordsCopy(c)})
		if err != nil {
			return nil, nil, err
		}
		return []string{"content " + string(src.digest)}, src, nil
	}
	return nil, nil, nil
}

// execute runs a step that missed the cache and returns the new config and
// the layer it made (nil for config-only steps).
func (b *builder) execute(ctx context.Context, ref stepRef, sp *stagePlan, st *stageState, c instructions.Command, src *sources) (image.Config, *layer.Layer, error) {
	cfg := image.CloneConfig(st.cfg)
	configOnly, err := st.apply.Apply(&cfg, c)
	if err != nil {
		return cfg, nil, b.df.at(c.Location(), "%v", err)
	}
	switch c := c.(type) {
	case *instructions.WorkdirCommand:
		// The applier set the working directory; a build also creates it.
		l, err := b.workdir(ctx, st, cfg.Config.WorkingDir)
		return cfg, l, err
	case *instructions.RunCommand:
		l, err := b.run(ctx, ref, st, c, src)
		return cfg, l, err
	case *instructions.CopyCommand:
		l, err := b.copy(ctx, st, c.Location(), c.SourcesAndDest, c.Chown, c.Chmod, src, copyMode{parents: c.Parents, link: c.Link})
		return cfg, l, err
	case *instructions.AddCommand:
		l, err := b.copy(ctx, st, c.Location(), c.SourcesAndDest, c.Chown, c.Chmod, src, copyMode{add: true, link: c.Link})
		return cfg, l, err
	}
	if !configOnly {
		return cfg, nil, b.df.at(c.Location(), "%s is not supported", strings.ToUpper(c.Name()))
	}
	return cfg, nil, nil
}

// heredocRunnable tells whether a RUN with heredocs has a form the
// builder runs: the shell form (see heredocScript).
func heredocRunnable(c *instructions.RunCommand) bool { return c.PrependShell }
