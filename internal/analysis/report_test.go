package analysis

import (
	"archive/tar"
	"context"
	"fmt"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/layer"
)

// fakeLayers serves crafted headers by chainID: the analysis is pure logic
// over header streams, so its arithmetic is checked here to the byte.
type fakeLayers map[digest.Digest][]layer.Entry

func (f fakeLayers) Entries(_ context.Context, id digest.Digest, fn func(layer.Entry) error) error {
	es, ok := f[id]
	if !ok {
		return fmt.Errorf("no layer %s", id)
	}
	for _, e := range es {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

const mb = 1 << 20

func reg(name string, size int64, content string) layer.Entry {
	return layer.Entry{Header: &tar.Header{Name: name, Typeflag: tar.TypeReg, Size: size, Mode: 0o644, ModTime: time.Unix(1, 0)}, CRC: []byte(content)}
}
func dirE(name string) layer.Entry {
	return layer.Entry{Header: &tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
}
func wh(name string) layer.Entry {
	return layer.Entry{Header: &tar.Header{Name: name, Typeflag: tar.TypeReg}}
}

func analyze(t *testing.T, layers ...[]layer.Entry) *Report {
	t.Helper()
	src := fakeLayers{}
	var ls []Layer
	for i, es := range layers {
		id := digest.FromString(fmt.Sprint(i))
		src[id] = es
		ls = append(ls, Layer{ChainID: id, CreatedBy: fmt.Sprintf("RUN /bin/sh -c step%d # buildkit", i+1)})
	}
	r, err := Analyze(context.Background(), src, ls)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func findings(r *Report, kind string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

func TestWasteToTheByte(t *testing.T) {
	chmodded := reg("etc/x", 10*mb, "B")
	chmodded.Header.Mode = 0o600
	r := analyze(t,
		[]layer.Entry{dirE("etc/"), reg("big", 20*mb, "A"), reg("etc/x", 10*mb, "B"), reg("a/dup", mb, "C"), reg("keep", 5, "K")},
		[]layer.Entry{wh(".wh.big"), chmodded, dirE("var/lib/apt/lists/"), reg("var/lib/apt/lists/pkgs", 3*mb, "L"), reg("b/dup", mb, "C")},
		[]layer.Entry{reg("keep", 7, "K2"), reg("usr/lib/__pycache__/m.pyc", 100, "P")},
	)
	if want := int64(20*mb + 10*mb + mb + 5 + 10*mb + 3*mb + mb + 7 + 100); r.Shipped != want {
		t.Errorf("shipped %d, want %d", r.Shipped, want)
	}
	if want := int64(10*mb + mb + mb + 3*mb + 7 + 100); r.Visible != want {
		t.Errorf("visible %d, want %d", r.Visible, want)
	}
	check := func(kind string, bytes int64, layers ...int) {
		t.Helper()
		fs := findings(r, kind)
		if len(fs) != 1 {
			t.Fatalf("%s: %d findings, want 1: %+v", kind, len(fs), r.Findings)
		}
		if fs[0].Bytes != bytes || fmt.Sprint(fs[0].Layers) != fmt.Sprint(layers) {
			t.Errorf("%s: %d bytes in layers %v, want %d in %v", kind, fs[0].Bytes, fs[0].Layers, bytes, layers)
		}
		if fs[0].Fix == "" {
			t.Errorf("%s: no fix", kind)
		}
	}
	check(Deleted, 20*mb, 1, 2)
	check(MetadataOnly, 10*mb, 1, 2)
	check(Overwritten, 5, 1, 3)
	check(Duplicate, mb, 1, 2)
	if cs := findings(r, Cache); len(cs) != 2 || cs[0].Bytes != 3*mb || cs[0].Where != "/var/lib/apt/lists" || cs[1].Where != "__pycache__" {
		t.Errorf("cache findings %+v", cs)
	}
	if want := int64(20*mb + 10*mb + 5 + mb + 3*mb + 100); r.Wasted != want {
		t.Errorf("wasted %d, want %d", r.Wasted, want)
	}
	// Everything shipped but not visible is accounted for by exactly one finding.
	var hidden int64
	for _, f := range r.Findings {
		if f.Kind == Deleted || f.Kind == Overwritten || f.Kind == MetadataOnly {
			hidden += f.Bytes
		}
	}
	if hidden != r.Shipped-r.Visible {
		t.Errorf("hidden findings %d, shipped-visible %d", hidden, r.Shipped-r.Visible)
	}
	l2 := r.Layers[1]
	if l2.Added != 2 || l2.Files != 3 || l2.Changed != 1 || l2.Deleted != 1 || l2.CreatedBy != "RUN step2" {
		t.Errorf("layer 2 report %+v", l2)
	}
	if own, n := r.OwnWaste(2); len(own) != 2 || n != 5+100 {
		t.Errorf("waste above layer 2: %d bytes in %+v", n, own)
	}
}

func TestOpaqueAndReplacedDirectories(t *testing.T) {
	r := analyze(t,
		[]layer.Entry{dirE("d/"), reg("d/a", 100, "a"), reg("d/sub/b", 50, "b"), reg("e/c", 30, "c")},
		[]layer.Entry{dirE("d/"), wh("d/.wh..wh..opq"), reg("d/new", 10, "n"), reg("e", 1, "file-now")},
	)
	del := findings(r, Deleted)
	var total int64
	for _, f := range del {
		total += f.Bytes
	}
	if total != 180 {
		t.Errorf("deleted %d bytes, want 180 (d/a, d/sub/b hidden by the opaque dir, e/c by the file e): %+v", total, del)
	}
	if r.Visible != 11 {
		t.Errorf("visible %d, want 11", r.Visible)
	}
}

func TestInstruction(t *testing.T) {
	for in, want := range map[string]string{
		"RUN /bin/sh -c apt-get update # buildkit":  "RUN apt-get update",
		"RUN |2 A=1 B=2 /bin/sh -c make # buildkit": "RUN make",
		"/bin/sh -c #(nop) COPY file:abc in /app ":  "COPY file:abc in /app",
		"/bin/sh -c echo hi":                        "RUN echo hi",
		"COPY . /src # buildkit":                    "COPY . /src",
		"ADD file:4b03b5 in / ":                     "ADD file:4b03b5 in /",
	} {
		if got := Instruction(in); got != want {
			t.Errorf("Instruction(%q) = %q, want %q", in, got, want)
		}
	}
}
