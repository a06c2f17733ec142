package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

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
	sn := m.store.Snapshots
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

// writeInitLayer creates in dir each mount point that no lower directory
// (topmost first) has. A parent directory the lowers do have is recreated
// with their mode and owner, so the merged view keeps its attributes.
func writeInitLayer(dir string, lowers []string) error {
	for _, mp := range mountPoints {
		rel := strings.TrimSuffix(mp, "/")
		isDir := strings.HasSuffix(mp, "/")
		if st, ok := lookupLower(lowers, rel); ok {
			if isDir && st.Mode&unix.S_IFMT == unix.S_IFDIR && !hasChildToCreate(rel, lowers) {
				continue
			}
			if !isDir || st.Mode&unix.S_IFMT != unix.S_IFDIR {
				continue // the image has it (as whatever it is): leave it
			}
			if err := mkdirLike(filepath.Join(dir, rel), st); err != nil {
				return err
			}
			continue
		}
		p := filepath.Join(dir, rel)
		if isDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		f.Close()
	}
	return nil
}

// hasChildToCreate tells whether some mount point under dir rel is missing
// from the lowers, so rel itself must exist in the init layer.
func hasChildToCreate(rel string, lowers []string) bool {
	for _, mp := range mountPoints {
		child := strings.TrimSuffix(mp, "/")
		if strings.HasPrefix(child, rel+"/") {
			if _, ok := lookupLower(lowers, child); !ok {
				return true
			}
		}
	}
	return false
}

// lookupLower finds rel in the first lower that has it; an overlay whiteout
// (char device 0/0) there means it is deleted.
func lookupLower(lowers []string, rel string) (unix.Stat_t, bool) {
	for _, l := range lowers {
		var st unix.Stat_t
		err := unix.Lstat(filepath.Join(l, rel), &st)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				continue
			}
			return st, false
		}
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			return st, false
		}
		return st, true
	}
	return unix.Stat_t{}, false
}

func mkdirLike(p string, st unix.Stat_t) error {
	if err := os.MkdirAll(p, 0o755); err != nil {
		return err
	}
	if err := os.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return os.Chmod(p, os.FileMode(st.Mode&0o777)|modeBits(st.Mode))
}

func modeBits(m uint32) os.FileMode {
	var out os.FileMode
	if m&unix.S_ISUID != 0 {
		out |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		out |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		out |= os.ModeSticky
	}
	return out
}
