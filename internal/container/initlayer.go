package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/rootfs"
	"github.com/strata-project/strata/internal/snapshot"
)

// The init layer sits between the image and the container's writable layer,
// as docker's does. It holds the mount points the runtime needs and the
// image may lack (/etc/hosts, /proc, ...), so that they never show up in
// `diff` or end up in a `commit`.

// InitPrefix starts the name of each container's committed init snapshot.
const InitPrefix = "init/"

// mountPoints are created in the init layer when the image lacks them:
// directories end in "/", the rest are files for bind mounts.
var mountPoints = []string{
	"proc/", "sys/", "dev/", "dev/pts/", "dev/shm/", "dev/mqueue/",
	"etc/", "etc/hosts", "etc/hostname", "etc/resolv.conf",
}

func initName(id string) string { return InitPrefix + id }

// prepareInit commits the init snapshot of container id on parent and
// returns its name.
func (m *Manager) prepareInit(ctx context.Context, id, parent string) (string, error) {
	sn := m.store.Snapshots()
	key := initName(id) + "-active"
	if _, err := sn.Prepare(ctx, key, parent); err != nil {
		return "", fmt.Errorf("create init layer: %w", err)
	}
	err := func() error {
		dir, err := sn.Dir(ctx, key)
		if err != nil {
			return err
		}
		lowers := []string{dir}
		if sn.Whiteouts() == snapshot.WhiteoutsOverlay {
			if lowers, err = sn.LowerDirs(ctx, key); err != nil {
				return err
			}
		}
		if err := writeInitLayer(dir, lowers); err != nil {
			return err
		}
		return sn.Commit(ctx, initName(id), key)
	}()
	if err != nil {
		sn.Remove(context.WithoutCancel(ctx), key)
		return "", fmt.Errorf("create init layer: %w", err)
	}
	return initName(id), nil
}

// writeInitLayer creates in dir each mount point that the merged lower
// directories (topmost first) lack. Mount points are resolved in the merged
// view the way the runtime resolves mount targets, inside the root: an image
// whose /etc is a symlink to /somewhere gets /somewhere/hosts, inside the
// root. Every write goes through a rootfs.Root, so nothing outside dir is
// ever touched. A missing parent the lowers do have is created with their
// owner and mode, so the merged view keeps its attributes.
func writeInitLayer(dir string, lowers []string) error {
	root, err := rootfs.Open(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	// What the init layer creates counts for the mount points after it:
	// the merged view is dir over the lowers (dir is the whole tree on the
	// native driver).
	merged := lowers
	if len(lowers) == 0 || lowers[0] != dir {
		merged = append([]string{dir}, lowers...)
	}
	for _, mp := range mountPoints {
		isDir := strings.HasSuffix(mp, "/")
		if mp == "dev/" {
			if err := realDev(root, merged); err != nil {
				return err
			}
		}
		rel, le, err := rootfs.ResolveLower(merged, strings.TrimSuffix(mp, "/"))
		if err != nil {
			return fmt.Errorf("mount point /%s: %w", mp, err)
		}
		if le != nil || rel == "" {
			continue // the image has it (as whatever it is): leave it
		}
		target := rel
		if !isDir {
			target = path.Dir(rel)
		}
		if target != "." {
			fd, err := root.MkdirAll(target, likeLower(lowers))
			if err != nil {
				return fmt.Errorf("mount point /%s: %w", mp, err)
			}
			unix.Close(fd)
		}
		if isDir {
			continue
		}
		f, err := root.OpenFile(rel, os.O_CREATE|os.O_WRONLY|unix.O_NOFOLLOW, 0o644)
		if err != nil {
			return fmt.Errorf("mount point /%s: %w", mp, err)
		}
		f.Close()
	}
	return nil
}

// realDev makes /dev a directory when the image has a symlink there. The
// runtime mounts a tmpfs on /dev (resolved inside the root) but then
// creates /dev/fd, /dev/stdin, /dev/ptmx... by host path, which would
// follow the image's symlink out of the root. /dev is the runtime's, as
// /proc and /sys are (runc refuses a symlink for those).
func realDev(root *rootfs.Root, lowers []string) error {
	le, err := rootfs.LookupLower(lowers, "dev")
	if err != nil || le == nil || le.Stat.Mode&unix.S_IFMT != unix.S_IFLNK {
		return err
	}
	// Native: the symlink is in dir itself. Overlay: dir is the upper and
	// has nothing there; a directory in it hides the lower symlink.
	if err := root.Remove("dev"); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("mount point /dev: %w", err)
	}
	if err := root.Mkdir("dev", 0o755); err != nil {
		return fmt.Errorf("mount point /dev: %w", err)
	}
	return nil
}

// likeLower gives a directory the init layer creates the owner and mode of
// the lowers' copy, if they have one.
func likeLower(lowers []string) rootfs.MkdirHook {
	return func(rel string, fd int) error {
		le, err := rootfs.LookupLower(lowers, rel)
		if err != nil || le == nil || !rootfs.IsDir(&le.Stat) {
			return err
		}
		return rootfs.SetOwnerMode(fd, int(le.Stat.Uid), int(le.Stat.Gid), le.Stat.Mode&0o7777)
	}
}
