package analysis

import (
	"archive/tar"
	"context"
	"fmt"
	"sort"

	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/layer"
)

// FileChange is one path that differs between two images' final trees.
type FileChange struct {
	Path string `json:"Path"`
	// Kind is "A" (only in the second image), "D" (only in the first) or
	// "C" (in both, different), as `docker diff` spells them.
	Kind string `json:"Kind"`
	// What differs for a "C": content, type, mode, owner, link.
	What  []string `json:"What,omitempty"`
	SizeA int64    `json:"SizeA"`
	SizeB int64    `json:"SizeB"`
}

// ImageDiff is what separates image A from image B.
type ImageDiff struct {
	// SharedLayers is how many bottom layers the two have in common, and
	// SharedBytes their bytes: the base stored once for both.
	SharedLayers int          `json:"SharedLayers"`
	SharedBytes  int64        `json:"SharedBytes"`
	Changes      []FileChange `json:"Changes"`
}

// Diff compares the final trees of images a and b (their layers, bottom
// first). The layers they share are read once, and the comparison only
// visits what a layer above the shared base touched.
func Diff(ctx context.Context, src Source, a, b []Layer) (*ImageDiff, error) {
	d := &ImageDiff{}
	for d.SharedLayers < len(a) && d.SharedLayers < len(b) && a[d.SharedLayers].ChainID == b[d.SharedLayers].ChainID {
		d.SharedBytes += a[d.SharedLayers].Size
		d.SharedLayers++
	}
	base := newTree(func(removal) {})
	if err := applyLayers(ctx, src, base, a[:d.SharedLayers], 0); err != nil {
		return nil, err
	}
	touched := map[string]bool{}
	final := func(ls []Layer) (*tree, error) {
		t := &tree{root: clone(base.root, nil), hidden: func(removal) {}}
		err := applyLayers(ctx, src, t, ls, d.SharedLayers)
		return t, err
	}
	ta, err := final(a[d.SharedLayers:])
	if err != nil {
		return nil, err
	}
	tb, err := final(b[d.SharedLayers:])
	if err != nil {
		return nil, err
	}
	// Only nodes the upper layers wrote can differ, and only where a node
	// above the base layer exists on one side: collect those paths.
	for _, t := range []*tree{ta, tb} {
		walk(t.root, func(n *node) {
			if n.layer > d.SharedLayers {
				touched[n.path()] = true
			}
		})
	}
	walk(base.root, func(n *node) {
		p := n.path()
		if !touched[p] && (lookupPath(ta, p) == nil || lookupPath(tb, p) == nil) {
			touched[p] = true // deleted above the base on one side
		}
	})
	paths := make([]string, 0, len(touched))
	for p := range touched {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		na, nb := lookupPath(ta, p), lookupPath(tb, p)
		switch {
		case na == nil && nb == nil:
		case na == nil:
			d.Changes = append(d.Changes, FileChange{Path: p, Kind: "A", SizeB: nb.size})
		case nb == nil:
			d.Changes = append(d.Changes, FileChange{Path: p, Kind: "D", SizeA: na.size})
		default:
			if what := differences(na, nb); len(what) > 0 {
				d.Changes = append(d.Changes, FileChange{Path: p, Kind: "C", What: what, SizeA: na.size, SizeB: nb.size})
			}
		}
	}
	return d, nil
}

func applyLayers(ctx context.Context, src Source, t *tree, ls []Layer, below int) error {
	for i, l := range ls {
		idx := below + i + 1
		err := src.Entries(ctx, l.ChainID, func(e layer.Entry) error {
			t.apply(e.Header, e.CRC, idx)
			return nil
		})
		if err != nil {
			return fmt.Errorf("layer %d: %w", idx, err)
		}
	}
	return nil
}

func clone(n, parent *node) *node {
	c := *n
	c.parent = parent
	if n.children != nil {
		c.children = make(map[string]*node, len(n.children))
		for k, ch := range n.children {
			c.children[k] = clone(ch, &c)
		}
	}
	return &c
}

func lookupPath(t *tree, p string) *node {
	return t.lookup(cleanName(p))
}

// differences lists what differs between two versions of a path.
func differences(a, b *node) []string {
	var what []string
	if a.typ != b.typ {
		return []string{"type"}
	}
	if a.typ == tar.TypeReg && (a.size != b.size || string(a.crc) != string(b.crc)) {
		what = append(what, "content")
	}
	if a.mode != b.mode {
		what = append(what, "mode")
	}
	if a.uid != b.uid || a.gid != b.gid {
		what = append(what, "owner")
	}
	if a.link != b.link {
		what = append(what, "link")
	}
	return what
}

// ImageLayers is one image's layer stack for the sharing view.
type ImageLayers struct {
	ID     digest.Digest
	Names  []string
	Layers []Layer // bottom first
}

// SharedNode is one layer in the store's tree of shared layers: every image
// built on it sits below it.
type SharedNode struct {
	ChainID  digest.Digest `json:"ChainID"`
	Size     int64         `json:"Size"`
	Users    int           `json:"Users"`  // images using this layer
	Images   []string      `json:"Images"` // images whose top layer this is (names, or short IDs)
	Children []*SharedNode `json:"Children,omitempty"`
}

// Usage is one image's bytes split like `docker system df -v`: shared with
// another image, or its own.
type Usage struct {
	ID     digest.Digest `json:"ID"`
	Names  []string      `json:"Names"`
	Size   int64         `json:"Size"`
	Shared int64         `json:"SharedSize"`
	Unique int64         `json:"UniqueSize"`
}

// Sharing is the store's images as a tree of shared layers.
type Sharing struct {
	Roots []*SharedNode `json:"Roots"`
	// NoLayers are images without a layer.
	NoLayers []string `json:"NoLayers,omitempty"`
	Images   []Usage  `json:"Images"`
	// Separate is the bytes the images would take each on its own; OnDisk
	// what their layers take stored once.
	Separate int64 `json:"Separate"`
	OnDisk   int64 `json:"OnDisk"`
}

// Share builds the sharing view of images.
func Share(images []ImageLayers) *Sharing {
	s := &Sharing{}
	users := map[digest.Digest]int{}
	nodes := map[digest.Digest]*SharedNode{}
	for _, img := range images {
		for _, l := range img.Layers {
			users[l.ChainID]++
		}
	}
	for _, img := range images {
		label := img.ID.Encoded()[:12]
		if len(img.Names) > 0 {
			label = img.Names[0]
		}
		if len(img.Layers) == 0 {
			s.NoLayers = append(s.NoLayers, label)
		}
		u := Usage{ID: img.ID, Names: img.Names}
		var parent *SharedNode
		for i, l := range img.Layers {
			u.Size += l.Size
			if users[l.ChainID] > 1 {
				u.Shared += l.Size
			} else {
				u.Unique += l.Size
			}
			n := nodes[l.ChainID]
			if n == nil {
				n = &SharedNode{ChainID: l.ChainID, Size: l.Size, Users: users[l.ChainID]}
				nodes[l.ChainID] = n
				s.OnDisk += l.Size
				if parent == nil {
					s.Roots = append(s.Roots, n)
				} else {
					parent.Children = append(parent.Children, n)
				}
			}
			if i == len(img.Layers)-1 {
				n.Images = append(n.Images, label)
			}
			parent = n
		}
		s.Separate += u.Size
		s.Images = append(s.Images, u)
	}
	var order func([]*SharedNode)
	order = func(ns []*SharedNode) {
		sort.Slice(ns, func(i, j int) bool {
			if ns[i].Users != ns[j].Users {
				return ns[i].Users > ns[j].Users
			}
			return ns[i].ChainID < ns[j].ChainID
		})
		for _, n := range ns {
			sort.Strings(n.Images)
			order(n.Children)
		}
	}
	order(s.Roots)
	sort.Slice(s.Images, func(i, j int) bool { return s.Images[i].ID < s.Images[j].ID })
	return s
}
