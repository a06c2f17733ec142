package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/container"
	"github.com/strata-project/strata/internal/network"
	"github.com/strata-project/strata/internal/store"
)

// errFilterFormat is a --filter value without "=": a command-line mistake,
// which docker reports with exit status 125.
var errFilterFormat = errors.New("bad format of filter (expected name=value)")

// psFilter is `ps --filter`: values of one key are alternatives, different
// keys must all hold, as in docker.
type psFilter map[string][]string

// parsePsFilter checks KEY=VALUE arguments against the keys strata knows.
func parsePsFilter(args []string) (psFilter, error) {
	f := psFilter{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, errFilterFormat
		}
		k = strings.ToLower(strings.TrimSpace(k))
		switch k {
		case "id", "name", "ancestor", "label", "network", "volume":
		case "health":
			switch v {
			case container.HealthStarting, container.HealthHealthy, container.HealthUnhealthy, "none":
			default:
				return nil, fmt.Errorf("invalid filter 'health=%s'", v)
			}
		case "publish", "expose":
			if _, err := network.ParseExpose(v); err != nil {
				return nil, fmt.Errorf("invalid filter '%s=%s': %w", k, v, err)
			}
		case "status":
			switch container.Status(v) {
			case container.StatusCreated, container.StatusRunning, container.StatusExited,
				"restarting", "removing", "paused", "dead":
			default:
				return nil, fmt.Errorf("invalid filter 'status=%s'", v)
			}
		case "exited":
			if _, err := strconv.Atoi(v); err != nil {
				return nil, fmt.Errorf("invalid filter 'exited=%s'", v)
			}
		default:
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
		if k == "id" || k == "name" {
			if _, err := regexp.Compile(v); err != nil {
				return nil, fmt.Errorf("invalid filter '%s=%s': %w", k, v, err)
			}
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// showsAll tells whether the filter lists stopped containers without -a:
// docker does so for any status filter.
func (f psFilter) showsAll() bool { return len(f["status"]) > 0 }

// match tells whether ctr passes; ancestors lists ctr's image and the
// images it was built on.
func (f psFilter) match(ctr container.Container, ancestors []digest.Digest, imageIDs map[string]digest.Digest) bool {
	anyOf := func(key string, ok func(v string) bool) bool {
		vs := f[key]
		return len(vs) == 0 || slices.ContainsFunc(vs, ok)
	}
	matches := func(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
	return anyOf("id", func(v string) bool { return matches(v, ctr.ID) }) &&
		anyOf("name", func(v string) bool { return matches(v, ctr.Name) || matches(v, "/"+ctr.Name) }) &&
		anyOf("status", func(v string) bool { return v == ctr.StateName() }) &&
		anyOf("exited", func(v string) bool {
			code, _ := strconv.Atoi(v)
			return ctr.State.Status == container.StatusExited && ctr.State.ExitCode == code
		}) &&
		anyOf("ancestor", func(v string) bool {
			id, ok := imageIDs[v]
			return v == ctr.ImageRef || ok && slices.Contains(ancestors, id)
		}) &&
		anyOf("health", func(v string) bool {
			if ctr.State.Health == nil || ctr.State.Status != container.StatusRunning {
				return v == "none"
			}
			return v == ctr.State.Health.Status
		}) &&
		anyOf("label", func(v string) bool {
			k, want, hasValue := strings.Cut(v, "=")
			got, ok := ctr.RunConfig().Labels[k]
			return ok && (!hasValue || got == want)
		}) &&
		anyOf("volume", func(v string) bool {
			// docker: a volume's name or a mount's destination (binds too)
			return slices.ContainsFunc(ctr.Config.Mounts, func(m container.Mount) bool {
				return (m.Type == container.MountVolume && m.Source == v) || m.Target == path.Clean(v)
			})
		}) &&
		anyOf("publish", func(v string) bool { return network.MatchPorts(v, ctr.PublishedPorts()) }) &&
		anyOf("expose", func(v string) bool { return network.MatchPorts(v, ctr.ExposedPorts()) }) &&
		anyOf("network", func(v string) bool {
			name := ctr.NetworkName()
			if v == name {
				return true
			}
			for _, n := range network.Builtins() {
				if n.Name == name && len(v) >= 12 && strings.HasPrefix(n.ID, v) {
					return true
				}
			}
			return false
		})
}

// psImages resolves the ancestor filter's images and, per image, the chain
// of images it was built on, which ancestor= also matches.
func psImages(ctx context.Context, s *store.Store, f psFilter) (ids map[string]digest.Digest, chain func(digest.Digest) []digest.Digest, err error) {
	ids = map[string]digest.Digest{}
	if len(f["ancestor"]) == 0 {
		return ids, func(digest.Digest) []digest.Digest { return nil }, nil
	}
	for _, v := range f["ancestor"] {
		// An unknown image matches nothing, as in docker.
		if img, err := s.Images().Get(ctx, v); err == nil {
			ids[v] = img.ID
		}
	}
	imgs, err := s.Images().List(ctx)
	if err != nil {
		return nil, nil, err
	}
	parent := map[digest.Digest]digest.Digest{}
	for _, img := range imgs {
		parent[img.ID] = img.Parent
	}
	return ids, func(id digest.Digest) []digest.Digest {
		var out []digest.Digest
		for ; id != "" && !slices.Contains(out, id); id = parent[id] {
			out = append(out, id)
		}
		return out
	}, nil
}
