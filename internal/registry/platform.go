package registry

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/strata-project/strata/internal/image"
)

// parsePlatform reads "os/arch[/variant]".
func parsePlatform(s string) (v1.Platform, error) {
	p, err := image.ParsePlatform(s)
	if err != nil {
		return v1.Platform{}, err
	}
	return v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}, nil
}

// matchPlatform picks want's entry from an index: os and architecture must
// match, and the variant when want names one. Entries without a platform
// (or attestations, "unknown/unknown") never match.
func matchPlatform(entries []v1.Descriptor, want v1.Platform) (v1.Descriptor, error) {
	var seen []string
	for _, e := range entries {
		if e.Platform == nil {
			continue
		}
		p := e.Platform
		seen = append(seen, platformString(*p))
		if p.OS == want.OS && p.Architecture == want.Architecture && (want.Variant == "" || p.Variant == want.Variant) {
			return e, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("no matching manifest for %s in the manifest list entries (the index has: %s)", platformString(want), strings.Join(seen, ", "))
}

// checkConfigPlatform refuses an image whose config names another platform
// than the one asked for, as docker does when --platform is given.
func checkConfigPlatform(cfg ocispec.Image, want v1.Platform) error {
	if cfg.OS == want.OS && cfg.Architecture == want.Architecture && (want.Variant == "" || cfg.Variant == "" || cfg.Variant == want.Variant) {
		return nil
	}
	got := v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	return fmt.Errorf("image is for %s, which does not match the requested platform %s", platformString(got), platformString(want))
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
