package archive

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// readXattrs first asks with small buffers; lists and values larger than
// those must still come back whole, sorted by name.
func TestReadXattrsBeyondFirstBuffer(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if xs, err := readXattrs(p); err != nil || len(xs) != 0 {
		t.Fatalf("plain file: %v, %v", xs, err)
	}
	want := map[string][]byte{}
	for i := range 12 { // names alone are over 256 bytes
		name := fmt.Sprintf("user.attribute-with-a-long-name-%02d", 11-i)
		want[name] = bytes.Repeat([]byte{byte('a' + i)}, 1+i*25) // up to 276 bytes
		if err := unix.Lsetxattr(p, name, want[name], 0); err != nil {
			t.Fatal(err)
		}
	}
	xs, err := readXattrs(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(xs) != len(want) {
		t.Fatalf("read %d xattrs, set %d", len(xs), len(want))
	}
	for i, x := range xs {
		if i > 0 && xs[i-1].name >= x.name {
			t.Errorf("%s listed after %s", x.name, xs[i-1].name)
		}
		if !bytes.Equal(x.value, want[x.name]) {
			t.Errorf("%s = %d bytes, want %d", x.name, len(x.value), len(want[x.name]))
		}
	}
}
