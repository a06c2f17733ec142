package analysis

import (
	"archive/tar"
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	units "github.com/docker/go-units"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
)

// Finding kinds.
const (
	Deleted      = "deleted"       // shipped in one layer, deleted by a later one
	Overwritten  = "overwritten"   // shipped in one layer, replaced by a later one
	MetadataOnly = "metadata-only" // copied again by a later layer only to change mode, owner or time
	Duplicate    = "duplicate"     // the same content at two paths or in two layers
	Cache        = "cache"         // a package manager's cache or temp files left in a layer
)

// Source streams the headers of a layer; the layer store is one.
type Source interface {
	Entries(ctx context.Context, chainID digest.Digest, fn func(layer.Entry) error) error
}

// Layer is one layer of the image to analyze, bottom first.
type Layer struct {
	ChainID   digest.Digest
	CreatedBy string // the history line that made it
	Size      int64  // the layer's content bytes as the store counts them
}

// LayerReport is what one layer does to the tree below it.
type LayerReport struct {
	Index     int    `json:"Index"` // 1-based, bottom first
	ChainID   string `json:"ChainID"`
	CreatedBy string `json:"CreatedBy"`
	Size      int64  `json:"Size"`
	Files     int    `json:"Files"` // non-directory entries
	Added     int    `json:"Added"`
	Changed   int    `json:"Changed"`
	Deleted   int    `json:"Deleted"`
}

// PathSize is one path a finding names, with its bytes.
type PathSize struct {
	Path  string `json:"Path"`
	Layer int    `json:"Layer"`
	Size  int64  `json:"Size"`
}

// Finding is one source of wasted bytes and the fix for it.
type Finding struct {
	Kind   string     `json:"Kind"`
	Bytes  int64      `json:"Bytes"`
	Files  int        `json:"Files"`
	Layers []int      `json:"Layers"` // the layers involved, in order: who added, who hid
	Where  string     `json:"Where,omitempty"`
	Paths  []PathSize `json:"Paths"` // the largest few
	Fix    string     `json:"Fix"`
}

// DirSize is a directory of the final tree with the bytes below it.
type DirSize struct {
	Path string `json:"Path"`
	Size int64  `json:"Size"`
}

// Report is the analysis of one image.
type Report struct {
	Layers []LayerReport `json:"Layers"`
	// Shipped is the bytes of every regular file in every layer; Visible
	// the bytes of the regular files of the final tree.
	Shipped       int64     `json:"Shipped"`
	Visible       int64     `json:"Visible"`
	Wasted        int64     `json:"Wasted"`
	WastedPercent float64   `json:"WastedPercent"`
	Efficiency    float64   `json:"Efficiency"` // Visible / Shipped
	Findings      []Finding `json:"Findings"`
	LargestDirs   []DirSize `json:"LargestDirs"`
}

// maxPaths bounds the paths a finding lists, so memory stays bounded by
// the tree, not by the findings.
const maxPaths = 5

// Analyze reads every layer's headers, bottom first, and reports where the
// bytes go.
func Analyze(ctx context.Context, src Source, layers []Layer) (*Report, error) {
	r := &Report{Layers: make([]LayerReport, len(layers))}
	groups := map[string]*Finding{}
	add := func(key string, f Finding, p PathSize) {
		g := groups[key]
		if g == nil {
			g = &f
			groups[key] = g
		}
		g.Bytes += p.Size
		g.Files++
		g.Paths = keepLargest(g.Paths, p)
	}
	t := newTree(func(rm removal) {
		key := fmt.Sprintf("%s %d %d", rm.kind, rm.n.layer, rm.by)
		add(key, Finding{Kind: rm.kind, Layers: []int{rm.n.layer, rm.by}}, PathSize{Path: rm.n.path(), Layer: rm.n.layer, Size: rm.n.size})
	})
	for i, l := range layers {
		idx := i + 1
		lr := &r.Layers[i]
		*lr = LayerReport{Index: idx, ChainID: string(l.ChainID), CreatedBy: Instruction(l.CreatedBy), Size: l.Size}
		err := src.Entries(ctx, l.ChainID, func(e layer.Entry) error {
			h := e.Header
			if h.Typeflag == tar.TypeReg { // tar.Reader reports legacy TypeRegA as TypeReg
				r.Shipped += h.Size
			}
			switch t.apply(h, e.CRC, idx) {
			case added:
				lr.Added++
			case changed:
				lr.Changed++
			case deleted:
				lr.Deleted++
			}
			if h.Typeflag != tar.TypeDir && !strings.HasPrefix(path.Base(h.Name), ".wh.") {
				lr.Files++
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", idx, err)
		}
	}

	// The final tree: visible bytes, caches, duplicates, directory sizes.
	type content struct {
		size int64
		crc  string
	}
	same := map[content][]*node{}
	walk(t.root, func(n *node) {
		if n.typ != tar.TypeReg {
			return
		}
		r.Visible += n.size
		p := n.path()
		if where := cacheDir(p); where != "" {
			add(fmt.Sprintf("%s %d %s", Cache, n.layer, where), Finding{Kind: Cache, Layers: []int{n.layer}, Where: where},
				PathSize{Path: p, Layer: n.layer, Size: n.size})
			return
		}
		if n.size > 0 && len(n.crc) > 0 {
			k := content{n.size, string(n.crc)}
			same[k] = append(same[k], n)
		}
	})
	for _, ns := range same {
		if len(ns) < 2 {
			continue
		}
		f := &Finding{Kind: Duplicate, Bytes: int64(len(ns)-1) * ns[0].size, Files: len(ns)}
		seen := map[int]bool{}
		for _, n := range ns {
			f.Paths = keepLargest(f.Paths, PathSize{Path: n.path(), Layer: n.layer, Size: n.size})
			if !seen[n.layer] {
				seen[n.layer] = true
				f.Layers = append(f.Layers, n.layer)
			}
		}
		sort.Ints(f.Layers)
		groups[fmt.Sprintf("%s %x", Duplicate, ns[0].crc)] = f
	}

	for _, f := range groups {
		f.Fix = fix(f, r.Layers)
		r.Findings = append(r.Findings, *f)
		r.Wasted += f.Bytes
	}
	sort.Slice(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if a.Bytes != b.Bytes {
			return a.Bytes > b.Bytes
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Paths[0].Path < b.Paths[0].Path
	})
	r.Efficiency = 1
	if r.Shipped > 0 {
		r.Efficiency = float64(r.Visible) / float64(r.Shipped)
		r.WastedPercent = 100 * float64(r.Wasted) / float64(r.Shipped)
	}
	r.LargestDirs = largestDirs(t.root, 10, 3)
	return r, nil
}

// keepLargest adds p to the few largest paths of a finding.
func keepLargest(ps []PathSize, p PathSize) []PathSize {
	ps = append(ps, p)
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Size != ps[j].Size {
			return ps[i].Size > ps[j].Size
		}
		return ps[i].Path < ps[j].Path
	})
	if len(ps) > maxPaths {
		ps = ps[:maxPaths]
	}
	return ps
}

// OwnWaste is the waste findings that involve a layer above base (the
// layers a build made on its base image), and their bytes.
func (r *Report) OwnWaste(base int) ([]Finding, int64) {
	var out []Finding
	var n int64
	for _, f := range r.Findings {
		if len(f.Layers) > 0 && f.Layers[len(f.Layers)-1] > base {
			out = append(out, f)
			n += f.Bytes
		}
	}
	return out, n
}

// cacheDirs are the directories package managers and builds leave behind,
// as absolute path patterns ("*" is one path component).
var cacheDirs = []string{
	"/var/lib/apt/lists", "/var/cache/apt", "/var/cache/apk", "/var/cache/dnf", "/var/cache/yum",
	"/root/.cache/pip", "/home/*/.cache/pip", "/root/.npm", "/home/*/.npm",
	"/root/.cache/go-build", "/home/*/.cache/go-build", "/root/.cache/yarn", "/usr/local/share/.cache/yarn",
	"/tmp", "/var/tmp",
}

// cacheDir is the cache directory p lies in, or "".
func cacheDir(p string) string {
	parts := strings.Split(p[1:], "/")
	for _, c := range cacheDirs {
		cp := strings.Split(c[1:], "/")
		if len(parts) <= len(cp) {
			continue
		}
		ok := true
		for i, x := range cp {
			if x != "*" && x != parts[i] {
				ok = false
				break
			}
		}
		if ok {
			return "/" + strings.Join(parts[:len(cp)], "/")
		}
	}
	for _, x := range parts[:len(parts)-1] {
		if x == "__pycache__" {
			return "__pycache__"
		}
	}
	return ""
}

// largestDirs is the n largest directories no deeper than depth.
func largestDirs(root *node, n, depth int) []DirSize {
	var all []DirSize
	var sum func(d *node, level int) int64
	sum = func(d *node, level int) int64 {
		var total int64
		for _, c := range d.children {
			if c.isDir() {
				total += sum(c, level+1)
			} else {
				total += c.size
			}
		}
		if level > 0 && level <= depth && total > 0 {
			all = append(all, DirSize{Path: d.path(), Size: total})
		}
		return total
	}
	sum(root, 0)
	sort.Slice(all, func(i, j int) bool {
		if all[i].Size != all[j].Size {
			return all[i].Size > all[j].Size
		}
		return all[i].Path < all[j].Path
	})
	if len(all) > n {
		all = all[:n]
	}
	return all
}

// Instruction is a history line as the Dockerfile had it: "RUN apt-get
// update" for BuildKit's and the classic builder's spellings alike.
func Instruction(createdBy string) string {
	s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(createdBy), "# buildkit"))
	if rest, ok := strings.CutPrefix(s, "RUN |"); ok { // RUN |2 A=1 B=2 /bin/sh -c ...
		var n int
		if _, err := fmt.Sscanf(rest, "%d", &n); err == nil {
			f := strings.Fields(rest)
			if len(f) > n {
				s = "RUN " + strings.Join(f[n+1:], " ")
			}
		}
	}
	s = strings.Replace(s, "/bin/sh -c #(nop) ", "", 1)
	if rest, ok := strings.CutPrefix(s, "/bin/sh -c "); ok {
		s = "RUN " + rest
	}
	s = strings.Replace(s, "RUN /bin/sh -c ", "RUN ", 1)
	return strings.TrimSpace(s)
}

// step names layer i for advice: `layer 3 (RUN apt-get update ...)`.
func step(layers []LayerReport, i int) string {
	if i < 1 || i > len(layers) {
		return fmt.Sprintf("layer %d", i)
	}
	ins := layers[i-1].CreatedBy
	if len(ins) > 50 {
		ins = ins[:47] + "..."
	}
	if ins == "" {
		return fmt.Sprintf("layer %d", i)
	}
	return fmt.Sprintf("layer %d (%s)", i, ins)
}

func kindOf(layers []LayerReport, i int) string {
	if i < 1 || i > len(layers) {
		return ""
	}
	k, _, _ := strings.Cut(layers[i-1].CreatedBy, " ")
	return k
}

// fix is the one concrete piece of advice for a finding.
func fix(f *Finding, layers []LayerReport) string {
	size := units.HumanSizeWithPrecision(float64(f.Bytes), 3)
	what := f.Paths[0].Path
	if f.Files > 1 {
		what = fmt.Sprintf("%s and %d more", what, f.Files-1)
	}
	switch f.Kind {
	case Deleted, Overwritten:
		from, by := f.Layers[0], f.Layers[1]
		verb := "deletes"
		if f.Kind == Overwritten {
			verb = "replaces"
		}
		advice := "do both in one RUN"
		if k := kindOf(layers, from); k == "COPY" || k == "ADD" {
			advice = "leave them out of the " + k + " (.dockerignore or a narrower source)"
		}
		return fmt.Sprintf("%s adds %s (%s) that %s %s: %s", step(layers, from), size, what, step(layers, by), verb, advice)
	case MetadataOnly:
		return fmt.Sprintf("%s copies %s (%s) from %s again only to change mode, owner or time: use COPY --chmod/--chown, or change them in the step that creates them",
			step(layers, f.Layers[1]), size, what, step(layers, f.Layers[0]))
	case Duplicate:
		return fmt.Sprintf("the same %s is shipped %d times (%s): keep one copy, or link the others to it",
			units.HumanSizeWithPrecision(float64(f.Paths[0].Size), 3), f.Files, what)
	case Cache:
		return fmt.Sprintf("%s leaves %s in %s: %s", step(layers, f.Layers[0]), size, f.Where, cacheFix(f.Where))
	}
	return ""
}

func cacheFix(where string) string {
	switch {
	case where == "/var/lib/apt/lists":
		return "add `rm -rf /var/lib/apt/lists/*` to the same RUN, or use RUN --mount=type=cache,target=/var/lib/apt/lists"
	case where == "/var/cache/apt":
		return "add `apt-get clean` to the same RUN, or use RUN --mount=type=cache,target=/var/cache/apt"
	case where == "/var/cache/apk":
		return "use `apk add --no-cache`"
	case strings.HasSuffix(where, "/.cache/pip"):
		return "use `pip install --no-cache-dir`, or RUN --mount=type=cache,target=" + where
	case strings.HasSuffix(where, "/.npm"):
		return "add `npm cache clean --force` to the same RUN, or use RUN --mount=type=cache,target=" + where
	case strings.HasSuffix(where, "/.cache/go-build"):
		return "use RUN --mount=type=cache,target=" + where
	case strings.HasSuffix(where, "yarn"):
		return "add `yarn cache clean` to the same RUN, or use RUN --mount=type=cache,target=" + where
	case where == "__pycache__":
		return "set PYTHONDONTWRITEBYTECODE=1, or delete __pycache__ in the same RUN"
	case where == "/tmp" || where == "/var/tmp":
		return "delete them in the same RUN, or use RUN --mount=type=tmpfs,target=" + where
	}
	return "delete it in the same RUN, or use RUN --mount=type=cache,target=" + where
}

// Stack is an image's layers, bottom first, each with the history line
// that made it and its size (from size, the layer store's record).
func Stack(cfg image.Config, size func(chainID digest.Digest) (int64, error)) ([]Layer, error) {
	chain := image.ChainIDs(cfg.RootFS.DiffIDs)
	out := make([]Layer, len(chain))
	for i, id := range chain {
		n, err := size(id)
		if err != nil {
			return nil, err
		}
		out[i] = Layer{ChainID: id, Size: n}
	}
	for i, li := range image.HistoryLayers(cfg) {
		if li >= 0 {
			h := cfg.History[i]
			out[li].CreatedBy = h.CreatedBy
			if h.CreatedBy == "" {
				out[li].CreatedBy = h.Comment // import: "Imported from -"
			}
		}
	}
	return out, nil
}
