package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/metadata"
)

// stepsBucket maps a step's place (Dockerfile, stage, position) to the
// inputs its last build was keyed on, so the next build of the same step
// can say why it missed the cache. It holds fingerprints, never data: build
// arg values and file contents are hashed.
const stepsBucket = "buildsteps"

// stepInputs is what made one step's cache key.
type stepInputs struct {
	Key         digest.Digest     `json:"key"`
	Parent      digest.Digest     `json:"parent"`            // the key of the step before
	Base        string            `json:"base,omitempty"`    // the stage's base image ID (or stage/scratch)
	Instruction string            `json:"instruction"`       // canonical, as keyed
	Text        string            `json:"text"`              // as written, for people
	Args        map[string]string `json:"args,omitempty"`    // name -> fingerprint of the value
	Content     digest.Digest     `json:"content,omitempty"` // COPY/ADD sources
	// Files fingerprints each source path's type, mode, owner and content.
	// It is stored apart from the rest and read only to explain a miss, so
	// a cached rebuild of a large COPY does not decode it.
	Files map[string]string `json:"-"`
}

// filesKey is where a step's file fingerprints are kept.
func filesKey(place []byte) []byte { return append(append([]byte{}, place...), "\x00files"...) }

// fingerprint is a short, one-way digest: enough to see a change, useless to
// recover a value.
func fingerprint(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// stepPlace names a step independently of its inputs.
func (b *builder) stepPlace(sp *stagePlan, n int) []byte {
	return []byte(fmt.Sprintf("%s\x00%s\x00%d", b.opts.Dockerfile, sp.name, n))
}

func (b *builder) loadInputs(place []byte) *stepInputs {
	var in stepInputs
	if !b.loadStepRecord(place, &in) {
		return nil
	}
	return &in
}

// loadFiles reads the file fingerprints of a step's last build.
func (b *builder) loadFiles(place []byte) map[string]string {
	var files map[string]string
	b.loadStepRecord(filesKey(place), &files)
	return files
}

// loadStepRecord decodes the record key of stepsBucket into v and says
// whether there was one to decode.
func (b *builder) loadStepRecord(key []byte, v any) bool {
	ok := false
	records(b.s).View(func(tx *metadata.Tx) error {
		if bk := tx.Bucket(stepsBucket); bk != nil {
			if raw := bk.Get(key); raw != nil {
				ok = json.Unmarshal(raw, v) == nil
			}
		}
		return nil
	})
	return ok
}

// inputsPut records a step's inputs, in the transaction that records the
// rest of the step.
func inputsPut(place []byte, in *stepInputs) func(tx *metadata.Tx) error {
	return func(tx *metadata.Tx) error {
		v, err := json.Marshal(in)
		if err != nil {
			return err
		}
		files, err := json.Marshal(in.Files)
		if err != nil {
			return err
		}
		bk, err := tx.CreateBucket(stepsBucket)
		if err != nil {
			return err
		}
		if err := bk.Put(place, v); err != nil {
			return err
		}
		if len(in.Files) == 0 {
			return bk.Delete(filesKey(place))
		}
		return bk.Put(filesKey(place), files)
	}
}

// forgetGoneDockerfiles drops the step records of Dockerfiles that no
// longer exist (a stdin build's temporary copy, a deleted project).
func forgetGoneDockerfiles(tx *metadata.Tx) error {
	bk, _ := tx.CreateBucket(stepsBucket)
	if bk == nil {
		return nil
	}
	var gone [][]byte
	err := bk.ForEach(func(k, _ []byte) error {
		df, _, _ := strings.Cut(string(k), "\x00")
		if _, err := os.Stat(df); errors.Is(err, os.ErrNotExist) {
			gone = append(gone, append([]byte{}, k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range gone {
		if err := bk.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// argFingerprints fingerprints NAME=VALUE pairs by name.
func argFingerprints(kvs []string) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = fingerprint(v)
	}
	return out
}

// MissReason says why a step missed the cache: Short for the step's line
// in the progress output, Long for --explain-cache.
type MissReason struct {
	Short, Long string
}

// explainMiss compares a step's inputs with those of its last build on
// this store. upstream names the earlier step of the stage that rebuilt,
// if one did.
func explainMiss(prev, cur *stepInputs, noCache bool, upstream string, prevFiles func() map[string]string) MissReason {
	switch {
	case noCache:
		return MissReason{"--no-cache", "--no-cache: every step runs"}
	case prev == nil:
		return MissReason{"not built before on this store", "no earlier build of this step (Dockerfile, stage and position) on this store"}
	case prev.Base != cur.Base:
		return MissReason{"base image changed",
			fmt.Sprintf("the stage's base image changed: was %s, now %s", shortRef(prev.Base), shortRef(cur.Base))}
	}
	var why []string
	if prev.Instruction != cur.Instruction {
		why = append(why, fmt.Sprintf("the instruction changed: was `%s`", ellipsize(prev.Text, 80)))
	}
	if a := changedNames(prev.Args, cur.Args); len(a) > 0 {
		why = append(why, "build arg "+listFew(a, 5)+" changed")
	}
	if prev.Content != cur.Content {
		why = append(why, filesChanged(prevFiles(), cur.Files))
	}
	if len(why) == 0 && prev.Parent != cur.Parent {
		if upstream != "" {
			why = append(why, "an earlier step rebuilt: "+upstream)
		} else {
			why = append(why, "the step before it changed")
		}
	}
	if len(why) == 0 {
		return MissReason{"cache entry gone", "same inputs as the last build, but its cached result is gone (builder prune, or the step image was removed)"}
	}
	long := strings.Join(why, "; ")
	short := why[0]
	if len(short) > 100 {
		short = short[:97] + "..."
	}
	return MissReason{short, long}
}

// changedNames lists the names whose value differs, or that one side lacks.
func changedNames(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// filesChanged names the source files whose content, mode or owner changed.
func filesChanged(prev, cur map[string]string) string {
	var changed, added, removed []string
	for p, fp := range cur {
		if old, ok := prev[p]; !ok {
			added = append(added, p)
		} else if old != fp {
			changed = append(changed, p)
		}
	}
	for p := range prev {
		if _, ok := cur[p]; !ok {
			removed = append(removed, p)
		}
	}
	var parts []string
	for _, g := range []struct {
		what  string
		paths []string
	}{{"changed", changed}, {"added", added}, {"removed", removed}} {
		if len(g.paths) > 0 {
			sort.Strings(g.paths)
			parts = append(parts, fmt.Sprintf("%s %s", g.what, listFew(g.paths, 5)))
		}
	}
	if len(parts) == 0 {
		return "the source files changed"
	}
	return "source files " + strings.Join(parts, ", ")
}

func listFew(xs []string, n int) string {
	if len(xs) <= n {
		return strings.Join(xs, ", ")
	}
	return fmt.Sprintf("%s (+%d more)", strings.Join(xs[:n], ", "), len(xs)-n)
}

func ellipsize(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func shortRef(s string) string {
	if d, err := digest.Parse(s); err == nil {
		return d.Encoded()[:12]
	}
	if s == "" {
		return "(none)"
	}
	return s
}
