package image

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
)

// ParseNamed parses a docker-style image reference ("busybox",
// "me/app:1", "localhost:5000/x@sha256:...") into its normalized form
// (docker.io/library/busybox:latest). A name without tag or digest gets ":latest".
func ParseNamed(s string) (reference.Named, error) {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format %q: %w", s, err)
	}
	return reference.TagNameOnly(n), nil
}

// ParseTagged is ParseNamed for places that need a tag, not a digest (tag, import, commit).
func ParseTagged(s string) (reference.NamedTagged, error) {
	n, err := ParseNamed(s)
	if err != nil {
		return nil, err
	}
	t, ok := n.(reference.NamedTagged)
	if !ok {
		return nil, fmt.Errorf("invalid reference format %q: a tag is needed, not a digest", s)
	}
	if _, isDigest := n.(reference.Digested); isDigest {
		return nil, fmt.Errorf("invalid reference format %q: cannot tag with a digest", s)
	}
	return t, nil
}

// Familiar is how docker shows a normalized name: "busybox:latest", "me/app:1".
func Familiar(full string) string {
	n, err := reference.ParseNormalizedNamed(full)
	if err != nil {
		return full
	}
	return reference.FamiliarString(n)
}

// SplitFamiliar gives the REPOSITORY and TAG columns for a stored name;
// for a digest reference the tag is "<none>" and the digest is returned.
func SplitFamiliar(full string) (repo, tag string, dgst digest.Digest) {
	n, err := reference.ParseNormalizedNamed(full)
	if err != nil {
		return full, "<none>", ""
	}
	repo = reference.FamiliarName(n)
	tag = "<none>"
	if t, ok := n.(reference.Tagged); ok {
		tag = t.Tag()
	}
	if d, ok := n.(reference.Digested); ok {
		dgst = d.Digest()
	}
	return repo, tag, dgst
}

// looksLikeID tells whether s can be an image ID or a prefix of one.
func looksLikeID(s string) (prefix string, ok bool) {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) == 0 || len(s) > 64 {
		return "", false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	return s, true
}
