package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// MountAll mounts each of mounts on target in turn, each over the last.
// If one fails, the ones already made are undone.
func MountAll(mounts []Mount, target string) error {
	for i, m := range mounts {
		if err := mountOne(m, target); err != nil {
			for range i {
				_ = unix.Unmount(target, unix.MNT_DETACH)
			}
			return fmt.Errorf("mount %s %s on %s: %w", m.Type, m.Source, target, err)
		}
	}
	return nil
}

func mountOne(m Mount, target string) error {
	switch m.Type {
	case "bind":
		return mountBind(m, target)
	case "overlay":
		o, err := parseOverlayOptions(m.Options)
		if err != nil {
			return err
		}
		return mountOverlay(o, target)
	}
	return fmt.Errorf("unsupported mount type %q", m.Type)
}

func mountBind(m Mount, target string) error {
	flags := uintptr(unix.MS_BIND)
	readonly := false
	for _, o := range m.Options {
		switch o {
		case "rbind":
			flags |= unix.MS_REC
		case "bind", "rw":
		case "ro":
			readonly = true
		default:
			return fmt.Errorf("unsupported bind option %q", o)
		}
	}
	if err := unix.Mount(m.Source, target, "", flags, ""); err != nil {
		return err
	}
	if !readonly {
		return nil
	}
	// MS_RDONLY is ignored on the initial bind; it takes a remount.
	if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		_ = unix.Unmount(target, unix.MNT_DETACH)
		return fmt.Errorf("remount read-only: %w", err)
	}
	return nil
}

// overlayOptions is an overlay Mount's options taken apart: the lower dirs
// must be handed to the kernel one by one when the list is long.
type overlayOptions struct {
	lowers      []string // topmost first
	upper, work string
	readonly    bool
	other       []string // passed through: "key=value" or "flag"
}

func parseOverlayOptions(opts []string) (overlayOptions, error) {
	var o overlayOptions
	for _, opt := range opts {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "lowerdir":
			// Snapshot paths never contain ':' (the overlay driver refuses
			// such roots), so no unescaping is needed.
			o.lowers = strings.Split(v, ":")
		case "upperdir":
			o.upper = v
		case "workdir":
			o.work = v
		case "ro":
			o.readonly = true
		case "rw":
		default:
			o.other = append(o.other, opt)
		}
	}
	if len(o.lowers) == 0 || slices.Contains(o.lowers, "") {
		return o, fmt.Errorf("overlay needs lowerdir: %q", opts)
	}
	if (o.upper == "") != (o.work == "") {
		return o, fmt.Errorf("overlay needs both upperdir and workdir or neither: %q", opts)
	}
	return o, nil
}

// errNoLowerdirAppend means the kernel lacks the new mount API or its
// overlay lacks "lowerdir+" (before Linux 6.8).
var errNoLowerdirAppend = errors.New("kernel cannot append overlay lower dirs one by one")

// mountOverlay prefers the new mount API, which takes each lower dir as its
// own parameter and so has no limit on the chain but the kernel's 500
// layers; older kernels get mount(2).
func mountOverlay(o overlayOptions, target string) error {
	err := mountOverlayFsconfig(o, target)
	if errors.Is(err, errNoLowerdirAppend) {
		return mountOverlayLegacy(o, target)
	}
	return err
}

func mountOverlayFsconfig(o overlayOptions, target string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			return fmt.Errorf("%w: fsopen: %v", errNoLowerdirAppend, err)
		}
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fd)
	fail := func(what string, err error) error {
		return fmt.Errorf("%s: %w%s", what, err, fsLog(fd))
	}
	for i, l := range o.lowers {
		if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
			if i == 0 && errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("%w: %v%s", errNoLowerdirAppend, err, fsLog(fd))
			}
			return fail("lowerdir+ "+l, err)
		}
	}
	if o.upper != "" {
		if err := unix.FsconfigSetString(fd, "upperdir", o.upper); err != nil {
			return fail("upperdir "+o.upper, err)
		}
		if err := unix.FsconfigSetString(fd, "workdir", o.work); err != nil {
			return fail("workdir "+o.work, err)
		}
	}
	for _, opt := range o.other {
		k, v, isKV := strings.Cut(opt, "=")
		if isKV {
			err = unix.FsconfigSetString(fd, k, v)
		} else {
			err = unix.FsconfigSetFlag(fd, k)
		}
		if err != nil {
			return fail("option "+opt, err)
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fail("create overlay", err)
	}
	attrs := 0
	if o.readonly {
		attrs |= unix.MOUNT_ATTR_RDONLY
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fail("fsmount", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount to %s: %w", target, err)
	}
	return nil
}

// fsLog drains the messages the kernel left on an fs context: they say
// which parameter it rejected and why, where errno alone does not.
func fsLog(fd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}

// maxMountData is what mount(2) copies of the option string: one page,
// NUL included.
const maxMountData = 4096 - 1

// mountOverlayLegacy uses mount(2). When the option string would exceed a
// page it names each lower dir by a short /proc/self/fd/N link to an O_PATH
// descriptor instead: the kernel resolves lower dirs when mounting, so the
// descriptors can be closed afterwards. That fits about 230 layers.
func mountOverlayLegacy(o overlayOptions, target string) error {
	data := overlayData(o, o.lowers)
	if len(data) > maxMountData {
		short := make([]string, len(o.lowers))
		for i, l := range o.lowers {
			fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open lower dir %s: %w", l, err)
			}
			defer unix.Close(fd)
			short[i] = "/proc/self/fd/" + strconv.Itoa(fd)
		}
		data = overlayData(o, short)
		if len(data) > maxMountData {
			return fmt.Errorf("overlay options are %d bytes even with short lower dir names, over the %d byte limit of mount(2) on this kernel", len(data), maxMountData)
		}
	}
	var flags uintptr
	if o.readonly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("overlay", target, "overlay", flags, data); err != nil {
		return fmt.Errorf("mount(2) overlay: %w", err)
	}
	return nil
}

func overlayData(o overlayOptions, lowers []string) string {
	opts := []string{"lowerdir=" + strings.Join(lowers, ":")}
	if o.upper != "" {
		opts = append(opts, "upperdir="+o.upper, "workdir="+o.work)
	}
	opts = append(opts, o.other...)
	return strings.Join(opts, ",")
}

// UnmountAll unmounts everything mounted at target or beneath it, detaching
// lazily what is busy, until the mount table shows nothing there. A target
// that does not exist has nothing mounted.
func UnmountAll(target string) error {
	abs, err := filepath.Abs(target)
	if err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	} else if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	// Each round removes at least the topmost mount at each mount point, so
	// the bound is only a guard against a kernel that keeps refusing.
	for range 1000 {
		mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(abs))
		if err != nil {
			return fmt.Errorf("unmount %s: %w", abs, err)
		}
		if len(mounts) == 0 {
			return nil
		}
		// Deepest first, so a submount never pins its parent.
		slices.SortFunc(mounts, func(a, b *mountinfo.Info) int {
			return len(b.Mountpoint) - len(a.Mountpoint)
		})
		for _, m := range mounts {
			if err := unmount(m.Mountpoint); err != nil {
				return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
			}
		}
	}
	return fmt.Errorf("unmount %s: still mounted after repeated unmounts", abs)
}

func unmount(path string) error {
	err := unix.Unmount(path, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(path, unix.MNT_DETACH)
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		// Already gone: another mount in this round covered it.
		return nil
	}
	return err
}

// Detect names the snapshot driver to use for a store whose snapshots live
// under root: "overlay" if an overlay mount works there, else "native".
func Detect(root string) string {
	if CheckOverlay(root) != nil {
		return "native"
	}
	return "overlay"
}

// CheckOverlay mounts a tiny two-layer overlay in a temporary directory
// under root, reads a file through it and unmounts it. Overlay fails on top
// of some filesystems (overlay itself, tmpfs on older kernels, some network
// filesystems) and in some user namespaces; this is the reliable test.
func CheckOverlay(root string) (err error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("check overlay: %w", err)
	}
	dir, err := os.MkdirTemp(root, "check-overlay-")
	if err != nil {
		return fmt.Errorf("check overlay: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(dir); err == nil && rerr != nil {
			err = fmt.Errorf("check overlay: %w", rerr)
		}
	}()
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, d := range []string{"l1", "l2", "upper", "work", "merged"} {
		if err := os.Mkdir(p(d), 0o700); err != nil {
			return fmt.Errorf("check overlay: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(p("l1"), "probe"), []byte("ok"), 0o600); err != nil {
		return fmt.Errorf("check overlay: %w", err)
	}
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + p("l2") + ":" + p("l1"), "upperdir=" + p("upper"), "workdir=" + p("work"),
	}}
	if err := MountAll([]Mount{m}, p("merged")); err != nil {
		return fmt.Errorf("check overlay: %w", err)
	}
	defer func() {
		if uerr := UnmountAll(p("merged")); err == nil && uerr != nil {
			err = fmt.Errorf("check overlay: %w", uerr)
		}
	}()
	b, err := os.ReadFile(filepath.Join(p("merged"), "probe"))
	if err != nil {
		return fmt.Errorf("check overlay: %w", err)
	}
	if string(b) != "ok" {
		return fmt.Errorf("check overlay: read %q through the mount, want %q", b, "ok")
	}
	return nil
}
