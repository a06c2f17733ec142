package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/content"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/snapshot"
)

// CheckOptions choose how deep `system check` looks and whether it repairs.
type CheckOptions struct {
	// Full re-reads every layer's tar against its diffID; otherwise only
	// the newest few are, as a sample.
	Full bool
	// Repair removes what is broken and unreachable. A complete image is
	// never touched.
	Repair bool
	// ExpectedMount tells whether a mount point under the root that the
	// store does not own (a container's rootfs) is in use; nil: none is.
	ExpectedMount func(path string) bool
}

// CheckReport is what a check found, in plain words.
type CheckReport struct {
	Problems []string // still wrong
	Repaired []string // what --repair did
	Checked  struct{ Blobs, Images, Layers, Tars int }
}

// sampleTars is how many of the newest layers a check without Full
// re-reads.
const sampleTars = 3

// Check verifies the store: every blob against its digest, every image's
// config and layers, every name's image, every layer's snapshot and (all
// with Full, else a sample) its tar against the diffID, and the mounts
// under the root. It holds the store lock exclusively while it repairs,
// shared otherwise.
func (s *Store) Check(ctx context.Context, o CheckOptions) (CheckReport, error) {
	var rep CheckReport
	hold := s.Shared
	if o.Repair {
		hold = s.Exclusive
	}
	err := hold(ctx, func() error {
		problem := func(what string, fix func() error) error {
			if !o.Repair || fix == nil {
				rep.Problems = append(rep.Problems, what)
				return nil
			}
			if err := fix(); err != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s (repair failed: %v)", what, err))
				return nil
			}
			rep.Repaired = append(rep.Repaired, what)
			return nil
		}
		// Blobs.
		badBlob := map[digest.Digest]bool{}
		err := s.content.Walk(ctx, func(info content.Info) error {
			rep.Checked.Blobs++
			ok, err := s.blobIntact(ctx, info.Digest)
			if err != nil || ok {
				return err
			}
			badBlob[info.Digest] = true
			return nil
		})
		if err != nil {
			return err
		}
		// Layers.
		layers := map[digest.Digest]layer.Layer{}
		var all []layer.Layer
		if err := s.layers.Walk(ctx, func(l layer.Layer) error { all = append(all, l); return nil }); err != nil {
			return err
		}
		for _, l := range all {
			rep.Checked.Layers++
			if _, err := s.snapshots.Stat(ctx, string(l.ChainID)); err != nil {
				if err := problem(fmt.Sprintf("layer %s: its snapshot is missing", short(l.ChainID)), func() error {
					return s.layers.Remove(ctx, l.ChainID)
				}); err != nil {
					return err
				}
				continue
			}
			layers[l.ChainID] = l
		}
		sort.Slice(all, func(i, j int) bool { return all[i].Created.After(all[j].Created) })
		badTar := map[digest.Digest]bool{}
		for i, l := range all {
			if _, ok := layers[l.ChainID]; !ok || (!o.Full && i >= sampleTars) {
				continue
			}
			rep.Checked.Tars++
			if err := s.verifyTar(ctx, l.ChainID); err != nil {
				badTar[l.ChainID] = true
				rep.Problems = append(rep.Problems, fmt.Sprintf("layer %s: its files no longer reproduce its tar (%v); pull or build the images using it again", short(l.ChainID), err))
			}
		}
		// Images and names.
		imgs, dangling, err := s.images.Records(ctx)
		if err != nil {
			return err
		}
		for _, img := range imgs {
			rep.Checked.Images++
			why := ""
			cfg, err := s.images.ReadConfig(ctx, img.ID)
			switch {
			case badBlob[img.ID]:
				why = "its config does not match its ID"
			case err != nil:
				why = "its config is missing or unreadable"
			default:
				for _, c := range image.ChainIDs(cfg.RootFS.DiffIDs) {
					if _, ok := layers[c]; !ok {
						why = "layer " + short(c) + " is missing"
						break
					}
				}
			}
			if why == "" {
				delete(badBlob, img.ID)
				continue
			}
			name := image.ShortID(img.ID)
			if len(img.Names) > 0 {
				name += " (" + strings.Join(img.RepoTags(), ", ") + ")"
			}
			if err := problem(fmt.Sprintf("image %s: %s", name, why), func() error {
				return s.images.Delete(ctx, img.ID)
			}); err != nil {
				return err
			}
		}
		for _, n := range dangling {
			if err := problem(fmt.Sprintf("name %s points at no image", image.Familiar(n)), func() error {
				return s.images.DeleteName(ctx, n)
			}); err != nil {
				return err
			}
		}
		for d := range badBlob {
			if err := problem(fmt.Sprintf("blob %s: its content does not match its digest", short(d)), func() error {
				err := s.content.Delete(ctx, d)
				if errors.Is(err, metadata.ErrNotFound) {
					return nil
				}
				return err
			}); err != nil {
				return err
			}
		}
		// Mounts.
		mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(s.root))
		if err != nil {
			return fmt.Errorf("read mounts: %w", err)
		}
		sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
		for _, m := range mounts {
			if m.Mountpoint == s.root || s.mountExpected(ctx, m.Mountpoint, o.ExpectedMount) {
				continue
			}
			mp := m.Mountpoint
			if err := problem(fmt.Sprintf("leftover mount %s", mp), func() error {
				return snapshot.UnmountAll(mp)
			}); err != nil {
				return err
			}
		}
		return nil
	})
	return rep, err
}

// blobIntact re-hashes blob d.
func (s *Store) blobIntact(ctx context.Context, d digest.Digest) (bool, error) {
	f, err := s.content.Open(ctx, d)
	if errors.Is(err, metadata.ErrNotFound) {
		return true, nil // removed meanwhile
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	v := d.Verifier()
	if _, err := io.Copy(v, f); err != nil {
		return false, fmt.Errorf("read blob %s: %w", short(d), err)
	}
	return v.Verified(), nil
}

// verifyTar reproduces a layer's tar, which checks it against the diffID.
func (s *Store) verifyTar(ctx context.Context, c digest.Digest) error {
	rc, err := s.layers.Tar(ctx, c)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return err
}

// mountExpected tells whether a mount under the root belongs to something
// alive: a `strata mount` view, a live build's step, or (asked of the
// caller) a running container.
func (s *Store) mountExpected(ctx context.Context, p string, other func(string) bool) bool {
	rel, err := filepath.Rel(s.root, p)
	if err != nil {
		return false
	}
	parts := strings.Split(rel, string(os.PathSeparator))
	switch {
	case len(parts) >= 2 && parts[0] == "mounts":
		_, err := s.snapshots.Stat(ctx, mountKeyPrefix+parts[1])
		return err == nil
	case len(parts) >= 3 && parts[0] == "build" && parts[1] == "steps":
		owner, _, _ := strings.Cut(parts[2], "-")
		return s.Alive(owner)
	}
	return other != nil && other(p)
}

func short(d digest.Digest) string {
	if e := d.Encoded(); len(e) > 12 {
		return e[:12]
	}
	return d.String()
}
