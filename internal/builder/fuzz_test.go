package builder

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Dockerfiles are user input: parsing and planning (stages, ARG
// expansion, --target, COPY --from) never panic, whatever the text.
func FuzzDockerfilePlan(f *testing.F) {
	for _, s := range []string{
		"FROM busybox\nRUN true\n",
		"ARG B=busybox\nFROM $B AS one\nCOPY --from=one / /\nFROM one\n",
		"# syntax=x\n# escape=`\nFROM a\nRUN a `\n b\n",
		"FROM a AS b\nFROM b AS a\n",
		"FROM scratch\nCOPY <<EOF /x\nhi\nEOF\n",
		"FROM a\nONBUILD ONBUILD RUN x\n",
		"FROM ${X:-y}\nARG X\nENV A=$X B=${A:+z}\n",
	} {
		f.Add(s, "")
	}
	f.Add("FROM a AS x\nFROM b\n", "x")
	f.Fuzz(func(t *testing.T, df, target string) {
		d, err := parseDockerfile("Dockerfile", strings.NewReader(df))
		if err != nil {
			return
		}
		makePlan(d, map[string]string{"X": "v"}, target, hostPlatform())
	})
}

// .dockerignore patterns are user input: reading and matching never panic,
// and a matcher never excludes the context root.
func FuzzDockerignore(f *testing.F) {
	for _, s := range []string{"*\n!keep\n", "**/*.go\n", "a/[b-\n", "!\n", "../x\n", "/abs\n#c\n", "a/**/b\n!a/c/b\n", "\\\\\n"} {
		f.Add(s, "a/b/keep")
	}
	f.Fuzz(func(t *testing.T, pats, path string) {
		ps, err := ignorefile.ReadAll(strings.NewReader(pats))
		if err != nil || len(ps) == 0 {
			return
		}
		pm, err := patternmatcher.New(ps)
		if err != nil {
			return
		}
		ig := &ignore{pm: pm}
		if ig.excluded(".") || ig.excluded("") {
			t.Fatal("the context root is excluded")
		}
		ig.excluded(filepath.ToSlash(filepath.Clean("/" + path))[1:])
		ig.mayInclude()
	})
}
