package rootfs

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"sort"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Dirent is a name read from a directory, with the type the directory
// records for it (unix.DT_*; DT_UNKNOWN where the filesystem keeps none).
// The type is a hint for skipping work: the entry may have been replaced
// since, so what is opened is checked again on its descriptor.
type Dirent struct {
	Name string
	Type uint8
}

// DirBufSize is a ReadDir buffer that holds a few hundred names per call.
const DirBufSize = 32 << 10

// ReadDir returns the entries of the directory open as fd (not O_PATH),
// sorted by name, without "." and "..". buf is scratch space for getdents.
// Walks below a root read each directory this way from a descriptor
// opened relative to its parent, never by a path.
func ReadDir(fd int, buf []byte) ([]Dirent, error) {
	var ents []Dirent
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
		for off := 0; off < n; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			name := buf[off+19 : off+reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			typ := buf[off+18]
			off += reclen
			if s := string(name); s != "." && s != ".." {
				ents = append(ents, Dirent{Name: s, Type: typ})
			}
		}
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
	return ents, nil
}

// FileInfo describes an entry stat'ed through a descriptor (fstat,
// fstatat) as os.Lstat would: Sys is a *syscall.Stat_t.
func FileInfo(name string, st *unix.Stat_t) fs.FileInfo {
	fi := &statInfo{name: name}
	// x/sys and syscall both mirror the kernel's struct stat for the
	// architecture: the same memory.
	fi.st = *(*syscall.Stat_t)(unsafe.Pointer(st))
	return fi
}

type statInfo struct {
	name string
	st   syscall.Stat_t
}

func (fi *statInfo) Name() string       { return fi.name }
func (fi *statInfo) Size() int64        { return fi.st.Size }
func (fi *statInfo) ModTime() time.Time { return time.Unix(fi.st.Mtim.Unix()) }
func (fi *statInfo) IsDir() bool        { return fi.Mode().IsDir() }
func (fi *statInfo) Sys() any           { return &fi.st }

// Mode converts the kernel's mode bits as package os does.
func (fi *statInfo) Mode() fs.FileMode {
	m := fs.FileMode(fi.st.Mode & 0o777)
	switch fi.st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if fi.st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if fi.st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if fi.st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
