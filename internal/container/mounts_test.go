package container

import (
	"errors"
	"testing"

	"github.com/strata-project/strata/internal/errdefs"
)

func TestParseMountFlags(t *testing.T) {
	good := []struct {
		parse func(string) (Mount, error)
		in    string
		want  Mount
	}{
		{ParseVolumeFlag, "/data", Mount{Type: MountVolume, Target: "/data", Anonymous: true}},
		{ParseVolumeFlag, "vol:/data/../d:ro", Mount{Type: MountVolume, Source: "vol", Target: "/d", ReadOnly: true, Mode: "ro"}},
		{ParseVolumeFlag, "vol:/d:nocopy", Mount{Type: MountVolume, Source: "vol", Target: "/d", NoCopy: true, Mode: "nocopy"}},
		{ParseVolumeFlag, "/host/:/d:rw,rshared", Mount{Type: MountBind, Source: "/host", Target: "/d", Mode: "rw,rshared", Propagation: "rshared"}},
		{ParseMountFlag, "type=volume,src=vv,dst=/d,readonly,volume-nocopy", Mount{Type: MountVolume, Source: "vv", Target: "/d", ReadOnly: true, NoCopy: true, FromMountFlag: true}},
		{ParseMountFlag, "target=/d", Mount{Type: MountVolume, Target: "/d", Anonymous: true, FromMountFlag: true}},
		{ParseMountFlag, "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770", Mount{Type: MountTmpfs, Target: "/t", TmpfsOptions: []string{"size=1048576", "mode=1770"}, FromMountFlag: true}},
		{ParseTmpfsFlag, "/t:size=64k,noexec", Mount{Type: MountTmpfs, Target: "/t", TmpfsOptions: []string{"size=65536", "noexec"}}},
	}
	for _, tc := range good {
		got, err := tc.parse(tc.in)
		if err != nil || got.Type != tc.want.Type || got.Source != tc.want.Source || got.Target != tc.want.Target ||
			got.ReadOnly != tc.want.ReadOnly || got.NoCopy != tc.want.NoCopy || got.Anonymous != tc.want.Anonymous ||
			got.Propagation != tc.want.Propagation || got.Mode != tc.want.Mode || got.FromMountFlag != tc.want.FromMountFlag ||
			len(got.TmpfsOptions) != len(tc.want.TmpfsOptions) {
			t.Errorf("%q: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
		for i := range got.TmpfsOptions {
			if got.TmpfsOptions[i] != tc.want.TmpfsOptions[i] {
				t.Errorf("%q: tmpfs options %q", tc.in, got.TmpfsOptions)
			}
		}
	}
	bad := []struct {
		parse func(string) (Mount, error)
		in    string
	}{
		{ParseVolumeFlag, "rel"}, {ParseVolumeFlag, "v:rel"}, {ParseVolumeFlag, "v:/"}, {ParseVolumeFlag, "a/b:/d"},
		{ParseVolumeFlag, "../x:/d"}, {ParseVolumeFlag, "v:/d:bogus"}, {ParseVolumeFlag, "/h:/d:nocopy"},
		{ParseVolumeFlag, "a:b:c:d"}, {ParseMountFlag, "type=bind,src=rel,dst=/d"}, {ParseMountFlag, "type=nfs,dst=/d"},
		{ParseMountFlag, "src=v"}, {ParseMountFlag, "type=tmpfs,src=x,dst=/t"}, {ParseMountFlag, "dst=/d,bogus=1"},
		{ParseMountFlag, "type=volume,src=..,dst=/d"}, {ParseTmpfsFlag, "/t:size=lots"}, {ParseTmpfsFlag, "rel"},
	}
	for _, tc := range bad {
		if m, err := tc.parse(tc.in); err == nil || !errdefsIsInvalid(err) {
			t.Errorf("%q accepted: %+v %v", tc.in, m, err)
		}
	}
}

func errdefsIsInvalid(err error) bool { return errors.Is(err, errdefs.ErrInvalidArgument) }
