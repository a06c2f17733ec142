package image

import (
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestChainIDs(t *testing.T) {
	a := digest.FromString("a")
	b := digest.FromString("b")
	c := digest.FromString("c")
	got := ChainIDs([]digest.Digest{a, b, c})
	ab := digest.FromString(a.String() + " " + b.String())
	abc := digest.FromString(ab.String() + " " + c.String())
	want := []digest.Digest{a, ab, abc}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("chainID[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	if ChainID(nil) != "" || ChainID([]digest.Digest{a, b, c}) != abc {
		t.Fatal("ChainID disagrees with ChainIDs")
	}
}

func TestHistoryLayers(t *testing.T) {
	var c Config
	c.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString("1"), digest.FromString("2")}}
	c.History = []ocispec.History{
		{CreatedBy: "ADD rootfs"},
		{CreatedBy: "ENV A=b", EmptyLayer: true},
		{CreatedBy: "RUN x"},
		{CreatedBy: "broken extra"},
	}
	got := HistoryLayers(c)
	want := []int{0, -1, 1, -1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("HistoryLayers = %v, want %v", got, want)
		}
	}
}

func TestParseConfigRejectsBadRootFS(t *testing.T) {
	for _, in := range []string{
		`{"rootfs":{"type":"foo","diff_ids":[]}}`,
		`{"rootfs":{"type":"layers","diff_ids":["sha256:zz"]}}`,
		`not json`,
	} {
		if _, err := ParseConfig([]byte(in)); err == nil {
			t.Errorf("ParseConfig(%s) accepted", in)
		}
	}
	if _, err := ParseConfig([]byte(`{"rootfs":{"type":"layers","diff_ids":[]}}`)); err != nil {
		t.Fatal(err)
	}
}

func TestReferences(t *testing.T) {
	cases := map[string]string{
		"busybox":                    "docker.io/library/busybox:latest",
		"busybox:1.36":               "docker.io/library/busybox:1.36",
		"me/app":                     "docker.io/me/app:latest",
		"localhost:5000/x/y:t":       "localhost:5000/x/y:t",
		"quay.io/a/b":                "quay.io/a/b:latest",
		"docker.io/library/busybox":  "docker.io/library/busybox:latest",
		"index.docker.io/library/bb": "docker.io/library/bb:latest",
	}
	for in, want := range cases {
		n, err := ParseNamed(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if n.String() != want {
			t.Errorf("%s -> %s, want %s", in, n, want)
		}
	}
	for _, bad := range []string{"UPPER", "a b", "", ":tag", "x@sha256:123"} {
		if _, err := ParseNamed(bad); err == nil {
			t.Errorf("ParseNamed(%q) accepted", bad)
		}
	}
	if Familiar("docker.io/library/busybox:latest") != "busybox:latest" {
		t.Fatal("Familiar")
	}
	repo, tag, d := SplitFamiliar("docker.io/me/app@sha256:" + digest.FromString("x").Encoded())
	if repo != "me/app" || tag != "<none>" || d == "" {
		t.Fatalf("SplitFamiliar: %s %s %s", repo, tag, d)
	}
	if _, err := ParseTagged("busybox@" + digest.FromString("x").String()); err == nil {
		t.Fatal("ParseTagged accepted a digest")
	}
}

func TestNormalizeEnv(t *testing.T) {
	got := NormalizeEnv([]string{"A=1", "B=2", "A=3", "C"})
	want := []string{"A=3", "B=2", "C"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
