package oci

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/rootfs"
)

// Errors of user resolution, wrapped with the name that was not found
// ("unable to find user foo: no matching entries in passwd file").
var (
	ErrNoPasswdEntries = errors.New("no matching entries in passwd file")
	ErrNoGroupEntries  = errors.New("no matching entries in group file")
)

// maxIDFileSize bounds how much of an image's passwd/group file is read; real
// ones are a few KiB, and the image is not trusted.
const maxIDFileSize = 16 << 20

// ResolveUser resolves a Docker user spec ("", "name", "uid", "name:group",
// "uid:gid", "uid:groupname", ...) against the image's /etc/passwd and
// /etc/group inside rootfs, never the host's. Both files are opened with
// in-root path resolution because the rootfs is untrusted: a symlink
// /etc/passwd -> /etc/shadow resolves to the rootfs's own /etc/shadow.
// Missing files are fine as long as only numeric ids are used.
//
// Supplementary groups are the groups that list the user as a member, and
// only when no group is given explicitly (Docker's rule).
func ResolveUser(rootfs, user string) (uid, gid uint32, additional []uint32, err error) {
	passwd, err := openInRoot(rootfs, "/etc/passwd")
	if err != nil {
		return 0, 0, nil, err
	}
	if passwd != nil {
		defer passwd.Close()
	}
	group, err := openInRoot(rootfs, "/etc/group")
	if err != nil {
		return 0, 0, nil, err
	}
	if group != nil {
		defer group.Close()
	}
	var pr, gr io.Reader
	if passwd != nil {
		pr = io.LimitReader(passwd, maxIDFileSize)
	}
	if group != nil {
		gr = io.LimitReader(group, maxIDFileSize)
	}
	return resolveUser(user, pr, gr)
}

// openInRoot opens a regular file for reading with every path component
// resolved inside root. A missing file returns (nil, nil).
func openInRoot(root, name string) (*os.File, error) {
	r, err := rootfs.Open(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	fd, err := r.OpenPath(name, true)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("open %s in %s: %w", name, root, err)
	}
	defer unix.Close(fd)
	// Check the type on the O_PATH fd first: opening a FIFO planted by the
	// image for reading would block forever.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat %s in %s: %w", name, root, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s in %s is not a regular file", name, root)
	}
	// Reopening through /proc opens the inode the O_PATH fd holds.
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(fd), os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s in %s: %w", name, root, err)
	}
	return f, nil
}

// PasswdEntry is one line of /etc/passwd (only the fields we use).
type PasswdEntry struct {
	Name     string
	UID, GID uint32
	Home     string
}

// GroupEntry is one line of /etc/group.
type GroupEntry struct {
	Name    string
	GID     uint32
	Members []string
}

// ParsePasswd reads passwd(5) lines. Malformed lines (too few fields,
// non-numeric ids) are skipped like libc does, so one bad line in an image
// does not make every user unresolvable.
func ParsePasswd(r io.Reader) ([]PasswdEntry, error) {
	var out []PasswdEntry
	err := scanColonFile(r, func(f []string) {
		if len(f) < 4 {
			return
		}
		uid, ok1 := parseID(f[2])
		gid, ok2 := parseID(f[3])
		if !ok1 || !ok2 {
			return
		}
		e := PasswdEntry{Name: f[0], UID: uid, GID: gid}
		if len(f) > 5 {
			e.Home = f[5]
		}
		out = append(out, e)
	})
	if err != nil {
		return nil, fmt.Errorf("parse passwd: %w", err)
	}
	return out, nil
}

// ParseGroup reads group(5) lines, skipping malformed ones.
func ParseGroup(r io.Reader) ([]GroupEntry, error) {
	var out []GroupEntry
	err := scanColonFile(r, func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, ok := parseID(f[2])
		if !ok {
			return
		}
		e := GroupEntry{Name: f[0], GID: gid}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					e.Members = append(e.Members, m)
				}
			}
		}
		out = append(out, e)
	})
	if err != nil {
		return nil, fmt.Errorf("parse group: %w", err)
	}
	return out, nil
}

func scanColonFile(r io.Reader, line func([]string)) error {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 4096), 1<<20)
	for s.Scan() {
		l := strings.TrimSpace(s.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		line(strings.Split(l, ":"))
	}
	return s.Err()
}

// parseID accepts the ids Docker accepts: decimal, 0..MaxInt32.
func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > math.MaxInt32 {
		return 0, false
	}
	return uint32(n), true
}

// resolveUser is ResolveUser on already opened files; nil readers mean the
// file does not exist.
func resolveUser(spec string, passwd, group io.Reader) (uid, gid uint32, additional []uint32, err error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if hasGroup && groupPart == "" {
		return 0, 0, nil, fmt.Errorf("invalid user %q: empty group", spec)
	}
	if userPart == "" && hasGroup {
		return 0, 0, nil, fmt.Errorf("invalid user %q: empty user", spec)
	}

	var users []PasswdEntry
	if passwd != nil {
		if users, err = ParsePasswd(passwd); err != nil {
			return 0, 0, nil, err
		}
	}
	var groups []GroupEntry
	if group != nil {
		if groups, err = ParseGroup(group); err != nil {
			return 0, 0, nil, err
		}
	}

	// An empty spec means root, and root's passwd entry (if any) still
	// supplies the name used for supplementary groups.
	numUID, uidIsNum := parseID(userPart)
	if userPart == "" {
		numUID, uidIsNum = 0, true
	}
	var matched *PasswdEntry
	for i := range users {
		u := &users[i]
		if (userPart != "" && u.Name == userPart) || (uidIsNum && u.UID == numUID) {
			matched = u
			break
		}
	}
	switch {
	case matched != nil:
		uid, gid = matched.UID, matched.GID
	case uidIsNum:
		uid, gid = numUID, 0
	default:
		return 0, 0, nil, fmt.Errorf("unable to find user %s: %w", userPart, ErrNoPasswdEntries)
	}

	if hasGroup {
		numGID, gidIsNum := parseID(groupPart)
		found := false
		for _, g := range groups {
			if g.Name == groupPart || (gidIsNum && g.GID == numGID) {
				gid, found = g.GID, true
				break
			}
		}
		if !found {
			if !gidIsNum {
				return 0, 0, nil, fmt.Errorf("unable to find group %s: %w", groupPart, ErrNoGroupEntries)
			}
			gid = numGID
		}
		return uid, gid, nil, nil
	}

	if matched != nil {
		seen := map[uint32]bool{}
		for _, g := range groups {
			for _, m := range g.Members {
				if m == matched.Name && !seen[g.GID] {
					seen[g.GID] = true
					additional = append(additional, g.GID)
					break
				}
			}
		}
	}
	return uid, gid, additional, nil
}
