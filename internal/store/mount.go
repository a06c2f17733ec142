package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	digest "github.com/opencontainers/go-digest"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/snapshot"
)

// mountKeyPrefix starts the keys of read-only views made by `strata mount`.
const mountKeyPrefix = "mount/"

// MountImage mounts the merged root filesystem of image ref read-only and
// returns where. Mounting a mounted image returns the same place.
func (s *Store) MountImage(ctx context.Context, ref string) (string, error) {
	var target string
	err := s.Shared(ctx, func() error {
		img, err := s.images.Get(ctx, ref)
		if err != nil {
			return err
		}
		target = s.mountPoint(img.ID)
		if ok, _ := mountinfo.Mounted(target); ok {
			return nil
		}
		top := image.ChainID(img.Config.RootFS.DiffIDs)
		if top == "" {
			return fmt.Errorf("image %s has no layers to mount", image.ShortID(img.ID))
		}
		key := mountKeyPrefix + img.ID.Encoded()
		mounts, err := s.snapshots.Mounts(ctx, key)
		if errors.Is(err, metadata.ErrNotFound) {
			mounts, err = s.snapshots.View(ctx, key, string(top))
		}
		if err != nil {
			return fmt.Errorf("view of %s: %w", image.ShortID(img.ID), err)
		}
		if err := os.MkdirAll(target, 0o700); err != nil {
			return err
		}
		return snapshot.MountAll(mounts, target)
	})
	return target, err
}

// UnmountImage undoes MountImage.
func (s *Store) UnmountImage(ctx context.Context, ref string) error {
	img, err := s.images.Get(ctx, ref)
	if err != nil {
		return err
	}
	return s.unmountImage(ctx, img.ID)
}

func (s *Store) unmountImage(ctx context.Context, id digest.Digest) error {
	target := s.mountPoint(id)
	if err := snapshot.UnmountAll(target); err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	if err := s.snapshots.Remove(ctx, mountKeyPrefix+id.Encoded()); err != nil && !errors.Is(err, metadata.ErrNotFound) {
		return err
	}
	if err := os.Remove(target); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// MountedImages lists the IDs of images mounted with MountImage.
func (s *Store) MountedImages(ctx context.Context) ([]digest.Digest, error) {
	var ids []digest.Digest
	err := s.snapshots.Walk(ctx, func(info snapshot.Info) error {
		if hex, ok := strings.CutPrefix(info.Key, mountKeyPrefix); ok {
			ids = append(ids, digest.NewDigestFromEncoded(digest.SHA256, hex))
		}
		return nil
	})
	return ids, err
}

func (s *Store) mountPoint(id digest.Digest) string {
	return filepath.Join(s.root, "mounts", id.Encoded())
}
