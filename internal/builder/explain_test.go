package builder

import (
	"strings"
	"testing"
)

func TestExplainMiss(t *testing.T) {
	base := stepInputs{Key: "sha256:k1", Parent: "sha256:p", Base: "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Instruction: "COPY . /src", Text: "COPY . /src",
		Content: "sha256:c1", Args: map[string]string{"A": fingerprint("1")}}
	files := map[string]string{"main.go": "x", "go.mod": "y", "old.txt": "z"}
	for _, tc := range []struct {
		name     string
		change   func(*stepInputs)
		noCache  bool
		upstream string
		want     string
	}{
		{"no-cache", func(*stepInputs) {}, true, "", "--no-cache"},
		{"base", func(s *stepInputs) {
			s.Base = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
		}, false, "", "was aaaaaaaaaaaa, now bbbbbbbbbbbb"},
		{"file", func(s *stepInputs) {
			s.Content = "sha256:c2"
			s.Files = map[string]string{"main.go": "CHANGED", "go.mod": "y", "new.txt": "n"}
		}, false, "", "source files changed main.go, added new.txt, removed old.txt"},
		{"arg", func(s *stepInputs) { s.Args = map[string]string{"A": fingerprint("2"), "B": fingerprint("")} }, false, "", "build arg A, B changed"},
		{"instruction", func(s *stepInputs) { s.Instruction, s.Text = "COPY . /app", "COPY . /app" }, false, "", "was `COPY . /src`"},
		{"upstream", func(s *stepInputs) { s.Parent = "sha256:p2" }, false, "[2/4] RUN make", "an earlier step rebuilt: [2/4] RUN make"},
		{"gone", func(*stepInputs) {}, false, "", "cached result is gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := base
			cur.Files = files
			tc.change(&cur)
			prev := base
			why := explainMiss(&prev, &cur, tc.noCache, tc.upstream, func() map[string]string { return files })
			if !strings.Contains(why.Long, tc.want) {
				t.Errorf("explanation %q lacks %q", why.Long, tc.want)
			}
			if why.Short == "" || len(why.Short) > 100 {
				t.Errorf("short reason %q", why.Short)
			}
		})
	}
	if why := explainMiss(nil, &base, false, "", nil); !strings.Contains(why.Short, "not built before") {
		t.Errorf("first build: %q", why.Short)
	}
	// Build arg values never appear, only their names.
	cur := base
	cur.Args = map[string]string{"A": fingerprint("s3cret")}
	if why := explainMiss(&base, &cur, false, "", nil); strings.Contains(why.Long, "s3cret") {
		t.Errorf("explanation leaks a value: %q", why.Long)
	}
}
