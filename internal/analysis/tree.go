// Package analysis explains where an image's bytes go: what each layer
// adds, changes and deletes, which shipped bytes no one can see in the final
// tree (deleted or overwritten later, copied only to change metadata), the
// same content shipped twice, and package-manager caches left behind; and,
// between two images, which files differ and which layers they share.
//
// It works on layer headers alone (tar-split metadata with each payload's
// crc64), so its cost follows the number of files, not the image's bytes.
// Everything here is pure logic over header streams; the layer store feeds
// it.
package analysis

import (
	"archive/tar"
	"bytes"
	"path"
	"sort"
	"strings"
	"time"
)

// node is one path of the merged tree as the layers so far build it.
type node struct {
	name     string
	parent   *node
	children map[string]*node // directories only
	typ      byte
	size     int64 // payload bytes (regular files)
	mode     int64
	uid, gid int
	mtime    time.Time
	link     string
	crc      []byte
	layer    int // 1-based index of the layer that last wrote this path
}

func (n *node) isDir() bool { return n.typ == tar.TypeDir }

// path is the node's absolute path.
func (n *node) path() string {
	if n.parent == nil {
		return "/"
	}
	var parts []string
	for c := n; c.parent != nil; c = c.parent {
		parts = append(parts, c.name)
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(parts[i])
	}
	return b.String()
}

// sameContent reports whether two regular files hold the same bytes, as far
// as size and crc64 tell.
func sameContent(a, b *node) bool {
	return a.typ == tar.TypeReg && b.typ == tar.TypeReg && a.size == b.size && len(a.crc) > 0 && bytes.Equal(a.crc, b.crc)
}

// removal is one regular file version that a later layer hid.
type removal struct {
	n    *node
	kind string // Deleted, Overwritten or MetadataOnly
	by   int    // the layer that hid it
}

// tree is the merged view of the layers applied so far.
type tree struct {
	root *node
	// hidden is told of every regular file version a later layer hides.
	hidden func(removal)
}

func newTree(hidden func(removal)) *tree {
	return &tree{root: &node{typ: tar.TypeDir, children: map[string]*node{}}, hidden: hidden}
}

// cleanName turns a tar entry name into path components ("" for the root).
func cleanName(name string) []string {
	p := path.Clean("/" + name)
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// lookup finds the node at parts, or nil.
func (t *tree) lookup(parts []string) *node {
	n := t.root
	for _, p := range parts {
		if n.children == nil {
			return nil
		}
		if n = n.children[p]; n == nil {
			return nil
		}
	}
	return n
}

// dir returns the directory at parts, creating missing directories (and
// replacing non-directories in the way) for layer l.
func (t *tree) dir(parts []string, l int) *node {
	n := t.root
	for _, p := range parts {
		c := n.children[p]
		if c == nil || !c.isDir() {
			if c != nil {
				t.drop(c, l, Deleted)
			}
			c = &node{name: p, parent: n, typ: tar.TypeDir, mode: 0o755, children: map[string]*node{}, layer: l}
			n.children[p] = c
		}
		n = c
	}
	return n
}

// drop removes n and everything below it from the tree, reporting each
// regular file version it hides as hidden by layer l.
func (t *tree) drop(n *node, l int, kind string) {
	t.hideAll(n, l, kind)
	delete(n.parent.children, n.name)
}

func (t *tree) hideAll(n *node, l int, kind string) {
	if n.typ == tar.TypeReg {
		t.hidden(removal{n: n, kind: kind, by: l})
	}
	for _, c := range n.children {
		t.hideAll(c, l, kind)
	}
}

// dropLower removes what layers below l put under dir n (an opaque
// directory), keeping what layer l itself wrote there. It reports whether
// anything of layer l remains below n.
func (t *tree) dropLower(n *node, l int) bool {
	kept := false
	for name, c := range n.children {
		if c.layer == l {
			kept = true
			if c.isDir() {
				t.dropLower(c, l)
			}
			continue
		}
		if c.isDir() && t.dropLower(c, l) {
			c.layer = l
			kept = true
			continue
		}
		t.hideAll(c, l, Deleted)
		delete(n.children, name)
	}
	return kept
}

// change is what one entry did to the tree, for the layer's counts.
type change int

const (
	none change = iota
	added
	changed
	deleted
)

// apply applies one header of layer l (1-based) and tells what it did to a
// non-directory path.
func (t *tree) apply(h *tar.Header, crc []byte, l int) change {
	parts := cleanName(h.Name)
	if len(parts) == 0 {
		return none
	}
	base := parts[len(parts)-1]
	parent := parts[:len(parts)-1]
	switch {
	case base == ".wh..wh..opq":
		if d := t.lookup(parent); d != nil && d.isDir() {
			t.dropLower(d, l)
		}
		return none
	case strings.HasPrefix(base, ".wh..wh."):
		return none // AUFS metadata, not a path
	case strings.HasPrefix(base, ".wh."):
		target := t.lookup(append(parent[:len(parent):len(parent)], base[len(".wh."):]))
		if target == nil || target.layer >= l {
			return none
		}
		t.drop(target, l, Deleted)
		if target.isDir() {
			return none
		}
		return deleted
	}
	d := t.dir(parent, l)
	n := &node{name: base, parent: d, typ: h.Typeflag, mode: h.Mode, uid: h.Uid, gid: h.Gid, mtime: h.ModTime, link: h.Linkname, layer: l}
	if n.typ == tar.TypeReg {
		n.size, n.crc = h.Size, crc
	}
	old := d.children[base]
	if n.isDir() {
		n.children = map[string]*node{}
		if old != nil && old.isDir() {
			old.mode, old.uid, old.gid, old.mtime, old.layer = n.mode, n.uid, n.gid, n.mtime, l
			return none
		}
	}
	res := added
	if old != nil {
		res = changed
		switch {
		case old.isDir():
			t.drop(old, l, Deleted)
		case sameContent(old, n): // a chmod, chown or touch copied the whole file
			t.hidden(removal{n: old, kind: MetadataOnly, by: l})
		case old.typ == tar.TypeReg:
			t.hidden(removal{n: old, kind: Overwritten, by: l})
		}
	}
	d.children[base] = n
	if n.isDir() {
		return none
	}
	return res
}

// walk calls fn for every node below n in path order.
func walk(n *node, fn func(*node)) {
	names := make([]string, 0, len(n.children))
	for k := range n.children {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		c := n.children[k]
		fn(c)
		if c.isDir() {
			walk(c, fn)
		}
	}
}
