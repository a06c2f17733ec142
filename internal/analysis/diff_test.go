package analysis

import (
	"context"
	"fmt"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/layer"
)

func TestDiffSharedBase(t *testing.T) {
	src := fakeLayers{
		"sha256:base": {dirE("etc/"), reg("etc/os", 10, "os"), reg("bin/sh", 100, "sh"), reg("gone", 5, "g")},
		"sha256:a1":   {reg("app/a", 3, "a"), reg("etc/os", 10, "os")},
		"sha256:b1":   {reg("app/b", 4, "b"), wh(".wh.gone")},
	}
	chmod := reg("etc/os", 10, "os")
	chmod.Header.Mode = 0o600
	src["sha256:b2"] = []layer.Entry{chmod, reg("bin/sh", 101, "sh2")}
	base := Layer{ChainID: "sha256:base", Size: 115}
	a := []Layer{base, {ChainID: "sha256:a1"}}
	b := []Layer{base, {ChainID: "sha256:b1"}, {ChainID: "sha256:b2"}}
	d, err := Diff(context.Background(), src, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if d.SharedLayers != 1 || d.SharedBytes != 115 {
		t.Errorf("shared %d layers, %d bytes", d.SharedLayers, d.SharedBytes)
	}
	var got []string
	for _, c := range d.Changes {
		got = append(got, fmt.Sprintf("%s %s %v", c.Kind, c.Path, c.What))
	}
	want := []string{"D /app/a []", "A /app/b []", "C /bin/sh [content]", "C /etc/os [mode]", "D /gone []"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changes\n got %v\nwant %v", got, want)
	}
	// The same image against itself differs in nothing.
	if d, _ := Diff(context.Background(), src, b, b); len(d.Changes) != 0 || d.SharedLayers != 3 {
		t.Errorf("self diff: %+v", d)
	}
}

func TestShare(t *testing.T) {
	base := Layer{ChainID: "sha256:base", Size: 1000}
	s := Share([]ImageLayers{
		{ID: digest.FromString("1"), Names: []string{"busybox:latest"}, Layers: []Layer{base}},
		{ID: digest.FromString("2"), Names: []string{"app:1"}, Layers: []Layer{base, {ChainID: "sha256:x", Size: 10}}},
		{ID: digest.FromString("3"), Names: []string{"app:2"}, Layers: []Layer{base, {ChainID: "sha256:y", Size: 20}}},
		{ID: digest.FromString("4"), Names: []string{"scratch-thing:1"}},
	})
	if s.OnDisk != 1030 || s.Separate != 3030 {
		t.Errorf("on disk %d, separate %d", s.OnDisk, s.Separate)
	}
	if len(s.Roots) != 1 || len(s.Roots[0].Children) != 2 || s.Roots[0].Users != 3 || fmt.Sprint(s.Roots[0].Images) != "[busybox:latest]" {
		t.Errorf("tree %+v", s.Roots)
	}
	for _, u := range s.Images {
		if u.Names != nil && u.Names[0] == "app:2" && (u.Shared != 1000 || u.Unique != 20 || u.Size != 1020) {
			t.Errorf("app:2 usage %+v", u)
		}
	}
	if fmt.Sprint(s.NoLayers) != "[scratch-thing:1]" {
		t.Errorf("no-layer images %v", s.NoLayers)
	}
}
