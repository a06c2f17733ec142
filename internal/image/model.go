// Package image is strata's image model (config, chainIDs, history), the
// one applier of config-changing instructions, and the image store: which
// configs exist and which names point at them.
package image

import (
	_ "crypto/sha256" // go-digest needs sha256 registered
	"encoding/json"
	"fmt"
	"path"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ChainIDs returns the chainID of every prefix of the layer stack diffIDs:
// chainID(L1) = diffID(L1), chainID(L1..Ln) = sha256(chainID(L1..Ln-1) + " " + diffID(Ln)).
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = ChildChainID(out[i-1], d)
	}
	return out
}

// ChainID is the identity of the whole stack diffIDs ("" for no layers).
func ChainID(diffIDs []digest.Digest) digest.Digest {
	if len(diffIDs) == 0 {
		return ""
	}
	ids := ChainIDs(diffIDs)
	return ids[len(ids)-1]
}

// ChildChainID is the chainID of the stack parent + diffID ("" parent: a base layer).
func ChildChainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

// ShortID is the 12 hex characters docker shows for an image or layer ID.
func ShortID(d digest.Digest) string {
	h := d.Encoded()
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// MarshalConfig gives the config's canonical bytes; their digest is the image ID.
func MarshalConfig(c Config) ([]byte, digest.Digest, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, "", fmt.Errorf("marshal image config: %w", err)
	}
	return b, digest.FromBytes(b), nil
}

// ParseConfig reads an image config and checks that it can describe a root
// filesystem: rootfs type "layers" and well-formed diffIDs.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("parse image config: %w", err)
	}
	if c.RootFS.Type != "layers" {
		return c, fmt.Errorf("image config: rootfs type %q, want \"layers\"", c.RootFS.Type)
	}
	for _, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return c, fmt.Errorf("image config: diff_id %q: %w", d, err)
		}
	}
	return c, nil
}

// HistoryLayers pairs each non-empty history entry with its layer index, so
// `history` can show a size beside the step that made each layer. Entries
// beyond the recorded layers (malformed configs) get -1.
func HistoryLayers(c Config) []int {
	out := make([]int, len(c.History))
	next := 0
	for i, h := range c.History {
		if h.EmptyLayer || next >= len(c.RootFS.DiffIDs) {
			out[i] = -1
			continue
		}
		out[i] = next
		next++
	}
	return out
}

// Platform fields for images made on this machine.
const (
	DefaultOS   = "linux"
	DefaultArch = "amd64"
)

// ParsePlatform reads "os/arch[/variant]" (docker's --platform).
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
	}
	p := ocispec.Platform{OS: strings.ToLower(parts[0]), Architecture: strings.ToLower(parts[1])}
	if len(parts) == 3 {
		p.Variant = strings.ToLower(parts[2])
	}
	return p, nil
}

// FormatPlatform is ParsePlatform's inverse: "os/arch[/variant]".
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// NormalizeEnv keeps the last value for each variable, in first-seen order,
// the way docker merges ENV instructions and -e flags.
func NormalizeEnv(env []string) []string {
	idx := map[string]int{}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// JoinWorkdir resolves a WORKDIR p against the current working directory,
// as docker does ("" counts as "/").
func JoinWorkdir(cur, p string) string {
	if !path.IsAbs(p) {
		if cur == "" {
			cur = "/"
		}
		p = path.Join(cur, p)
	}
	return path.Clean(p)
}
