package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"hash/crc64"
	"io"
	"strings"
	"testing"

	"github.com/vbatts/tar-split/tar/storage"
)

// Entries gives back every header of the original tar, long names and all,
// with the crc64 of each payload, reading only the tar-split metadata.
func TestEntriesReplayHeaders(t *testing.T) {
	forEachDriver(t, func(t *testing.T, s *Store) {
		big := strings.Repeat("x", 3<<20+17)
		long := "d/" + strings.Repeat("n", 150) + ".txt"
		tb := makeTar(t, dir("d/"), file("d/a", "hello"), file(long, big), file("d/empty", ""),
			symlink("d/s", "/etc/passwd"), hardlink("d/h", "d/a"), whiteout("d/.wh.gone"))
		l := unpackAll(t, s, tb)[0]

		var want []*tar.Header
		bodies := map[string]string{}
		tr := tar.NewReader(bytes.NewReader(tb))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			bodies[h.Name] = string(b)
			want = append(want, h)
		}
		var got []Entry
		if err := s.Entries(context.Background(), l.ChainID, func(e Entry) error {
			got = append(got, e)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d entries, want %d", len(got), len(want))
		}
		for i, e := range got {
			w := want[i]
			if e.Header.Name != w.Name || e.Header.Size != w.Size || e.Header.Typeflag != w.Typeflag || e.Header.Linkname != w.Linkname {
				t.Errorf("entry %d: %s %d %c %q, want %s %d %c %q", i, e.Header.Name, e.Header.Size, e.Header.Typeflag, e.Header.Linkname, w.Name, w.Size, w.Typeflag, w.Linkname)
			}
			if w.Typeflag == tar.TypeReg && w.Size > 0 {
				h := crc64.New(storage.CRCTable)
				h.Write([]byte(bodies[w.Name]))
				if !bytes.Equal(e.CRC, h.Sum(nil)) {
					t.Errorf("%s: crc %x, want %x", w.Name, e.CRC, h.Sum(nil))
				}
			}
		}
	})
}
