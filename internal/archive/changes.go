package archive

import (
	"context"
	"fmt"
	"sort"

	"github.com/strata-project/strata/internal/rootfs"
)

// ChangeKind is the kind of a change, as `docker diff` prints it.
type ChangeKind int

const (
	ChangeAdd ChangeKind = iota
	ChangeModify
	ChangeDelete
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeAdd:
		return "A"
	case ChangeModify:
		return "C"
	case ChangeDelete:
		return "D"
	}
	return "?"
}

// Change is one changed path. Path is absolute inside the image: "/etc/passwd".
type Change struct {
	Kind ChangeKind
	Path string
}

func (c Change) String() string { return c.Kind.String() + " " + c.Path }

// OverlayChanges lists the changes recorded in an overlay upper dir, sorted
// by path (depth first, parents before children). lowers (topmost first)
// decide A vs C: a path visible in the merged lower view is C, else A.
// Deleted (0/0 char dev) is D, and so is every lower entry hidden by an
// opaque dir and not re-created in the upper. Dirs that merely contain
// changes are C, like docker reports them.
func OverlayChanges(ctx context.Context, upper string, lowers []string, fn func(Change) error) error {
	var changes []Change
	err := walkOverlay(ctx, upper, func(ev event) error {
		switch ev.kind {
		case evDelete:
			changes = append(changes, Change{Kind: ChangeDelete, Path: "/" + ev.rel})
		case evAdd:
			le, err := rootfs.LookupLower(lowers, ev.rel)
			if err != nil {
				return err
			}
			kind := ChangeAdd
			if le != nil {
				kind = ChangeModify
			}
			changes = append(changes, Change{Kind: kind, Path: "/" + ev.rel})
		case evOpaque:
			hidden, err := hiddenByOpaque(lowers, ev.rel, ev.names)
			if err != nil {
				return err
			}
			for _, rel := range hidden {
				changes = append(changes, Change{Kind: ChangeDelete, Path: "/" + rel})
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list changes of overlay upper %s: %w", upper, err)
	}
	// Deletions under opaque dirs are found out of walk order.
	sort.SliceStable(changes, func(i, j int) bool { return pathLess(changes[i].Path, changes[j].Path) })
	for _, c := range changes {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// hiddenByOpaque lists the lower entries directly inside dir that an opaque
// upper dir (holding upperNames) hides and the upper does not have.
func hiddenByOpaque(lowers []string, dir string, upperNames []string) ([]string, error) {
	le, err := rootfs.LookupLower(lowers, dir)
	if err != nil || le == nil || !rootfs.IsDir(&le.Stat) {
		return nil, err
	}
	lowerNames, err := rootfs.MergedNames(le.Dirs)
	if err != nil {
		return nil, err
	}
	inUpper := make(map[string]bool, len(upperNames))
	for _, n := range upperNames {
		inUpper[n] = true
	}
	var out []string
	for _, n := range lowerNames {
		if !inUpper[n] {
			out = append(out, joinRel(dir, n))
		}
	}
	return out, nil
}

// TreeChanges lists the changes that turn tree lower into tree upper, with
// the conventions of OverlayChanges (and WriteTreeDiff's notion of a change).
func TreeChanges(ctx context.Context, lower, upper string, fn func(Change) error) error {
	kinds := map[eventKind]ChangeKind{evAdd: ChangeAdd, evModify: ChangeModify, evDelete: ChangeDelete}
	tw := &treeWalker{ctx: ctx, lower: lower, upper: upper, emit: func(ev event) error {
		return fn(Change{Kind: kinds[ev.kind], Path: "/" + ev.rel})
	}}
	if err := tw.walk(); err != nil {
		return fmt.Errorf("list changes of %s against %q: %w", upper, lower, err)
	}
	return nil
}

// pathLess orders paths the way the walkers visit them: component by
// component, so "/a/b" comes before "/a-b".
func pathLess(a, b string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return true
		}
		if cb == '/' {
			return false
		}
		return ca < cb
	}
	return len(a) < len(b)
}
