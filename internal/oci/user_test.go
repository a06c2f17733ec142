package oci

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment
broken line
bad:x:notanumber:0::/:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:app:/home/app:/bin/sh
1234:x:5000:5000::/:/bin/sh
`

const testGroup = `root:x:0:root
bin:x:1:root,daemon
app:x:1000:
extra:x:2000:daemon, app
other:x:3000:someone
1234:x:6000:
`

func TestResolveUserRules(t *testing.T) {
	tests := []struct {
		spec       string
		noFiles    bool
		uid, gid   uint32
		additional []uint32
		err        error
	}{
		{spec: "", uid: 0, gid: 0, additional: []uint32{0, 1}},
		{spec: "root", uid: 0, gid: 0, additional: []uint32{0, 1}},
		{spec: "app", uid: 1000, gid: 1000, additional: []uint32{2000}},
		{spec: "1000", uid: 1000, gid: 1000, additional: []uint32{2000}},
		{spec: "daemon", uid: 1, gid: 1, additional: []uint32{1, 2000}},
		{spec: "4242", uid: 4242, gid: 0},
		{spec: "1234", uid: 5000, gid: 5000}, // a name that looks numeric matches by name first in file order
		{spec: "app:extra", uid: 1000, gid: 2000},
		{spec: "app:3000", uid: 1000, gid: 3000},
		{spec: "app:7777", uid: 1000, gid: 7777},
		{spec: "1000:2000", uid: 1000, gid: 2000},
		{spec: "4242:4343", uid: 4242, gid: 4343},
		{spec: "4242:other", uid: 4242, gid: 3000},
		{spec: "nobody", err: ErrNoPasswdEntries},
		{spec: "app:nogroup", err: ErrNoGroupEntries},
		{spec: "", noFiles: true, uid: 0, gid: 0},
		{spec: "1000:1000", noFiles: true, uid: 1000, gid: 1000},
		{spec: "77", noFiles: true, uid: 77, gid: 0},
		{spec: "app", noFiles: true, err: ErrNoPasswdEntries},
		{spec: "0:wheel", noFiles: true, err: ErrNoGroupEntries},
	}
	for _, tt := range tests {
		name := tt.spec
		if tt.noFiles {
			name += "/nofiles"
		}
		t.Run(name, func(t *testing.T) {
			var uid, gid uint32
			var add []uint32
			var err error
			if tt.noFiles {
				uid, gid, add, err = resolveUser(tt.spec, nil, nil)
			} else {
				uid, gid, add, err = resolveUser(tt.spec, strings.NewReader(testPasswd), strings.NewReader(testGroup))
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if uid != tt.uid || gid != tt.gid {
				t.Errorf("uid:gid = %d:%d, want %d:%d", uid, gid, tt.uid, tt.gid)
			}
			if diff := cmp.Diff(tt.additional, add); diff != "" {
				t.Errorf("additional gids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveUserErrorText(t *testing.T) {
	_, _, _, err := resolveUser("foo", strings.NewReader(testPasswd), nil)
	if err == nil || err.Error() != "unable to find user foo: no matching entries in passwd file" {
		t.Errorf("err = %v", err)
	}
	for _, bad := range []string{":", "app:", ":app"} {
		if _, _, _, err := resolveUser(bad, nil, nil); err == nil {
			t.Errorf("resolveUser(%q) succeeded", bad)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestResolveUserReadsImageFiles(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc/passwd"), testPasswd)
	writeFile(t, filepath.Join(root, "etc/group"), testGroup)
	uid, gid, add, err := ResolveUser(root, "app")
	if err != nil || uid != 1000 || gid != 1000 || !cmp.Equal(add, []uint32{2000}) {
		t.Fatalf("ResolveUser(app) = %d %d %v %v", uid, gid, add, err)
	}
}

func TestResolveUserMissingFiles(t *testing.T) {
	root := t.TempDir()
	if uid, gid, _, err := ResolveUser(root, "1000:1000"); err != nil || uid != 1000 || gid != 1000 {
		t.Errorf("numeric user without passwd: %d %d %v", uid, gid, err)
	}
	if _, _, _, err := ResolveUser(root, "app"); !errors.Is(err, ErrNoPasswdEntries) {
		t.Errorf("named user without passwd: err = %v", err)
	}
}

// The image's files are resolved inside the rootfs: an absolute symlink
// and a climbing relative one must both land on the rootfs's own files,
// never the host's /etc/passwd (where "root" would be found).
func TestResolveUserStaysInRoot(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "real/passwd"), "evil:x:4321:4321::/:/bin/sh\n")
	writeFile(t, filepath.Join(root, "real/group"), "")
	if err := os.Symlink("../../../../../../../real", filepath.Join(root, "etc")); err != nil {
		t.Fatal(err)
	}
	uid, _, _, err := ResolveUser(root, "evil")
	if err != nil || uid != 4321 {
		t.Fatalf("ResolveUser via climbing symlink = %d, %v; want the rootfs's evil 4321", uid, err)
	}
	if _, _, _, err := ResolveUser(root, "root"); !errors.Is(err, ErrNoPasswdEntries) {
		t.Errorf("root was found: the host's /etc/passwd leaked in (err = %v)", err)
	}

	root2 := t.TempDir()
	writeFile(t, filepath.Join(root2, "mine"), "abs:x:99:99::/:/bin/sh\n")
	if err := os.MkdirAll(filepath.Join(root2, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/mine", filepath.Join(root2, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if uid, _, _, err := ResolveUser(root2, "abs"); err != nil || uid != 99 {
		t.Errorf("ResolveUser via absolute symlink = %d, %v; want 99", uid, err)
	}
}

// A FIFO planted as /etc/passwd would block a plain open forever.
func TestResolveUserRejectsFIFO(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "etc/passwd"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := ResolveUser(root, "app")
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("err = %v, want not a regular file", err)
	}
}
