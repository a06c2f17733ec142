package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/errdefs"
	"github.com/strata-project/strata/internal/image"
)

// RemoveResult is what `rmi` reports, in docker's words.
type RemoveResult struct {
	Untagged []string        // familiar references
	Deleted  []digest.Digest // image IDs, then layer chainIDs
}

// RemoveImage is `rmi`: a name removes that name (and the image with its
// last name); an ID removes the image, which must have at most one
// repository unless force. With prune, as in docker, the image's untagged
// parents go too, up to the first one that has a name, another child or a
// user. Layers no image uses any more are removed last.
func (s *Store) RemoveImage(ctx context.Context, ref string, force, prune bool) (RemoveResult, error) {
	var res RemoveResult
	err := s.Exclusive(ctx, func() error {
		img, err := s.images.Get(ctx, ref)
		if err != nil {
			return err
		}
		roots, err := s.roots(ctx)
		if err != nil {
			return err
		}
		root, isRoot := roots[img.ID]
		byName := refIsName(ref, img)
		if byName != nil && len(img.Names) > 1 {
			// Removing one of several names leaves the image.
			if _, err := s.images.Untag(ctx, byName); err != nil {
				return err
			}
			res.Untagged = append(res.Untagged, reference.FamiliarString(byName))
			if !onlyDigestNamesLeft(img, byName) {
				return nil
			}
		}
		if !force && byName == nil && len(img.RepoTags()) > 1 {
			return fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", image.ShortID(img.ID))
		}
		switch {
		case !isRoot:
		case root.Kind == RootMounted && force:
			if err := s.unmountImage(ctx, img.ID); err != nil {
				return err
			}
			delete(roots, img.ID)
		case root.Kind == RootContainer && force:
			// docker removes the image from under a stopped container on -f.
		case root.Kind == RootLease && (force || byName != nil) && len(img.Names) > 0:
			// The names go; the record stays for the operation using it
			// and a later prune collects it.
		default:
			return root.conflict(ref, img.ID)
		}
		kids, err := s.images.Children(ctx, img.ID)
		if err != nil {
			return err
		}
		if len(kids) > 0 || (isRoot && root.Kind == RootLease) {
			// A hard conflict, as in docker: -f or a name only take the
			// image's names; the image stays for its children.
			if (!force && byName == nil) || len(img.Names) == 0 {
				return fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image has dependent child images", image.ShortID(img.ID))
			}
			for _, n := range img.Names {
				if byName != nil && len(img.Names) > 1 && n == byName.String() {
					continue // untagged above
				}
				named, err := image.ParseNamed(n)
				if err != nil {
					return err
				}
				if _, err := s.images.Untag(ctx, named); err != nil {
					return err
				}
				res.Untagged = append(res.Untagged, image.Familiar(n))
			}
			return nil
		}
		for _, n := range img.Names {
			if byName != nil && n == byName.String() {
				continue
			}
			res.Untagged = append(res.Untagged, image.Familiar(n))
		}
		if byName != nil && len(img.Names) == 1 {
			res.Untagged = append(res.Untagged, reference.FamiliarString(byName))
		}
		if err := s.images.Delete(ctx, img.ID); err != nil {
			return err
		}
		res.Deleted = append(res.Deleted, img.ID)
		if prune {
			gone, err := s.pruneParents(ctx, img.Parent, roots)
			res.Deleted = append(res.Deleted, gone...)
			if err != nil {
				return err
			}
		}
		var rep PruneReport
		err = s.collectLayers(ctx, &rep)
		res.Deleted = append(res.Deleted, rep.Layers...)
		return err
	})
	return res, err
}

// pruneParents deletes id and its ancestors while each is an untagged
// image nothing else needs, and returns what it deleted.
func (s *Store) pruneParents(ctx context.Context, id digest.Digest, roots map[digest.Digest]Root) ([]digest.Digest, error) {
	var deleted []digest.Digest
	for id != "" {
		img, err := s.images.Get(ctx, id.String())
		if IsNoSuchImage(err) {
			return deleted, nil
		}
		if err != nil {
			return deleted, err
		}
		if _, kept := roots[id]; kept || len(img.Names) > 0 {
			return deleted, nil
		}
		kids, err := s.images.Children(ctx, id)
		if err != nil || len(kids) > 0 {
			return deleted, err
		}
		if err := s.images.Delete(ctx, id); err != nil {
			return deleted, err
		}
		deleted = append(deleted, id)
		id = img.Parent
	}
	return deleted, nil
}

// refIsName returns the normalized name when ref named img by a name rather
// than by ID.
func refIsName(ref string, img image.Image) reference.Named {
	n, err := image.ParseNamed(ref)
	if err != nil {
		return nil
	}
	for _, have := range img.Names {
		if have == n.String() {
			return n
		}
	}
	return nil
}

// onlyDigestNamesLeft tells whether, after removing gone, the image keeps no
// tag: docker then deletes it along with its digest references.
func onlyDigestNamesLeft(img image.Image, gone reference.Named) bool {
	for _, n := range img.Names {
		if n == gone.String() {
			continue
		}
		if !strings.Contains(n, "@") {
			return false
		}
	}
	return true
}

// IsNoSuchImage tells whether err means an image lookup found nothing.
func IsNoSuchImage(err error) bool { return errdefs.IsMissing(err, "image") }
