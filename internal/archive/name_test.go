package archive

import (
	"errors"
	"testing"
)

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string
		breakout bool
	}{
		{in: "a/b", want: "a/b"},
		{in: "./a/b/", want: "a/b"},
		{in: "/etc/passwd", want: "etc/passwd"},
		{in: "//etc//passwd", want: "etc/passwd"},
		{in: "a/../b", want: "b"},
		{in: "./", want: ""},
		{in: "/", want: ""},
		{in: "..", breakout: true},
		{in: "../x", breakout: true},
		{in: "a/../../x", breakout: true},
		{in: "/../x", want: "x"}, // absolute: ".." stops at "/", as in a chroot
		{in: "a\x00b", breakout: true},
	}
	for _, tt := range tests {
		got, err := cleanName(tt.in)
		if tt.breakout {
			if !errors.Is(err, ErrBreakout) {
				t.Errorf("cleanName(%q) = %q, %v; want ErrBreakout", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		base   string
		kind   entryKind
		target string
		err    bool
	}{
		{base: "passwd", kind: entryPlain},
		{base: ".whx", kind: entryPlain},
		{base: ".wh.passwd", kind: entryWhiteout, target: "passwd"},
		{base: ".wh..hidden", kind: entryWhiteout, target: ".hidden"},
		{base: ".wh..wh..opq", kind: entryOpaque},
		{base: ".wh..wh.plnk", kind: entryMeta},
		{base: ".wh..wh.aufs", kind: entryMeta},
		{base: ".wh.", err: true},
		{base: ".wh..", err: true},
		{base: ".wh...", err: true},
	}
	for _, tt := range tests {
		kind, target, err := classify(tt.base)
		if tt.err {
			if err == nil {
				t.Errorf("classify(%q): want error", tt.base)
			}
			continue
		}
		if err != nil || kind != tt.kind || target != tt.target {
			t.Errorf("classify(%q) = %v, %q, %v; want %v, %q", tt.base, kind, target, err, tt.kind, tt.target)
		}
	}
}

func TestPathLessMatchesWalkOrder(t *testing.T) {
	ordered := []string{"/a", "/a/b", "/a/b/c", "/a-b", "/a.b", "/ab", "/b"}
	for i := range ordered {
		for j := range ordered {
			if got := pathLess(ordered[i], ordered[j]); got != (i < j) {
				t.Errorf("pathLess(%q, %q) = %v", ordered[i], ordered[j], got)
			}
		}
	}
}

func TestChangeKindString(t *testing.T) {
	for k, want := range map[ChangeKind]string{ChangeAdd: "A", ChangeModify: "C", ChangeDelete: "D"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q, want %q", k, k.String(), want)
		}
	}
}
