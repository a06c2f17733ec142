package registry

import (
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]v1.Platform{
		"linux/amd64":    {OS: "linux", Architecture: "amd64"},
		"Linux/ARM64/v8": {OS: "linux", Architecture: "arm64", Variant: "v8"},
	} {
		got, err := parsePlatform(in)
		if err != nil || got.OS != want.OS || got.Architecture != want.Architecture || got.Variant != want.Variant {
			t.Errorf("parsePlatform(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "linux", "linux/", "/amd64", "a/b/c/d"} {
		if _, err := parsePlatform(bad); err == nil {
			t.Errorf("parsePlatform(%q) accepted", bad)
		}
	}
}

func TestMatchPlatform(t *testing.T) {
	entry := func(hex byte, os, arch, variant string) v1.Descriptor {
		return v1.Descriptor{
			Digest:   v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(string(hex), 64)},
			Platform: &v1.Platform{OS: os, Architecture: arch, Variant: variant},
		}
	}
	entries := []v1.Descriptor{
		entry('a', "unknown", "unknown", ""), // an attestation
		entry('b', "linux", "arm", "v6"),
		entry('c', "linux", "arm", "v7"),
		entry('d', "linux", "amd64", ""),
		{Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("e", 64)}}, // no platform
	}
	cases := []struct {
		want v1.Platform
		hex  byte // 0: no match
	}{
		{v1.Platform{OS: "linux", Architecture: "amd64"}, 'd'},
		{v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, 'c'},
		{v1.Platform{OS: "linux", Architecture: "arm"}, 'b'}, // first of the architecture
		{v1.Platform{OS: "linux", Architecture: "arm64"}, 0},
		{v1.Platform{OS: "windows", Architecture: "amd64"}, 0},
	}
	for _, c := range cases {
		got, err := matchPlatform(entries, c.want)
		switch {
		case c.hex == 0 && err == nil:
			t.Errorf("%s matched %s", platformString(c.want), got.Digest)
		case c.hex == 0:
			if !strings.Contains(err.Error(), "linux/arm/v7") {
				t.Errorf("error %q does not list what the index has", err)
			}
		case err != nil:
			t.Errorf("%s: %v", platformString(c.want), err)
		case got.Digest.Hex[0] != c.hex:
			t.Errorf("%s picked %s", platformString(c.want), got.Digest)
		}
	}
}

func TestCheckConfigPlatform(t *testing.T) {
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "arm64"}}
	if err := checkConfigPlatform(cfg, v1.Platform{OS: "linux", Architecture: "arm64"}); err != nil {
		t.Error(err)
	}
	if err := checkConfigPlatform(cfg, v1.Platform{OS: "linux", Architecture: "amd64"}); err == nil {
		t.Error("an arm64 config passed as amd64")
	}
}

func TestCheckManifest(t *testing.T) {
	layer := func(mt types.MediaType) v1.Descriptor {
		return v1.Descriptor{MediaType: mt, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}}
	}
	ok := []types.MediaType{types.DockerLayer, types.DockerUncompressedLayer, types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer}
	for _, mt := range ok {
		m := &v1.Manifest{Config: v1.Descriptor{MediaType: types.OCIConfigJSON}, Layers: []v1.Descriptor{layer(mt)}}
		if err := checkManifest(m); err != nil {
			t.Errorf("%s: %v", mt, err)
		}
	}
	bad := map[types.MediaType]string{
		types.DockerForeignLayer:                 "foreign",
		types.OCIRestrictedLayer:                 "foreign",
		types.OCIUncompressedRestrictedLayer:     "foreign",
		"application/vnd.example.unknown.v1+tar": "media type",
	}
	for mt, word := range bad {
		m := &v1.Manifest{Config: v1.Descriptor{MediaType: types.DockerConfigJSON}, Layers: []v1.Descriptor{layer(mt)}}
		err := checkManifest(m)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), word) {
			t.Errorf("%s: %v, want an unsupported error mentioning %q", mt, err, word)
		}
	}
	helm := &v1.Manifest{Config: v1.Descriptor{MediaType: "application/vnd.cncf.helm.config.v1+json"}}
	if err := checkManifest(helm); !errors.Is(err, ErrUnsupported) {
		t.Errorf("a helm chart config: %v", err)
	}
}
