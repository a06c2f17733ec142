package layer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"

	"github.com/vbatts/tar-split/tar/storage"
)

// splitFixture is tar-split metadata as strata writes it: segments and
// files, including a name that is not UTF-8 (kept as name_raw).
func splitFixture() []storage.Entry {
	var es []storage.Entry
	for i := range 200 {
		es = append(es, storage.Entry{Type: storage.SegmentType, Payload: bytes.Repeat([]byte{byte(i), 0, 0xff}, 171)})
		es = append(es, storage.Entry{Type: storage.FileType, Name: fmt.Sprintf("app/d%d/f\"é%d", i/10, i), Size: int64(i * 1000), Payload: []byte{1, 2, 3, 4, 5, 6, 7, byte(i)}})
	}
	es = append(es, storage.Entry{Type: storage.FileType, Name: "bad\xffname", Size: 1, Payload: []byte{9}})
	es = append(es, storage.Entry{Type: storage.SegmentType, Payload: make([]byte, 1024)})
	return es
}

func readAll(t *testing.T, u storage.Unpacker) []storage.Entry {
	t.Helper()
	var out []storage.Entry
	for {
		e, err := u.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *e)
	}
}

// The packer and unpacker read and write tar-split's own documents: each
// side interoperates with tar-split's encoding/json implementation.
func TestSplitJSONMatchesTarSplit(t *testing.T) {
	var ours, theirs bytes.Buffer
	po, pt := newSplitPacker(&ours), storage.NewJSONPacker(&theirs)
	for _, e := range splitFixture() {
		a, err := po.AddEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		b, err := pt.AddEntry(e)
		if err != nil || a != b {
			t.Fatalf("positions %d/%d: %v", a, b, err)
		}
	}
	want := readAll(t, storage.NewJSONUnpacker(bytes.NewReader(theirs.Bytes())))
	for name, u := range map[string]storage.Unpacker{
		"ours from ours":   newSplitUnpacker(bytes.NewReader(ours.Bytes())),
		"ours from theirs": newSplitUnpacker(bytes.NewReader(theirs.Bytes())),
		"theirs from ours": storage.NewJSONUnpacker(bytes.NewReader(ours.Bytes())),
	} {
		if got := readAll(t, u); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: entries differ from tar-split's", name)
		}
	}
}

func TestSplitJSONRefusesDuplicates(t *testing.T) {
	p := newSplitPacker(io.Discard)
	p.AddEntry(storage.Entry{Type: storage.FileType, Name: "a/b"})
	if _, err := p.AddEntry(storage.Entry{Type: storage.FileType, Name: "a/./b"}); !errors.Is(err, storage.ErrDuplicatePath) {
		t.Errorf("packer: %v", err)
	}
	var buf bytes.Buffer
	pt := storage.NewJSONPacker(&buf)
	pt.AddEntry(storage.Entry{Type: storage.FileType, Name: "a/b"})
	buf.WriteString(`{"type":1,"name":"a/b/","payload":null,"position":1}` + "\n")
	u := newSplitUnpacker(&buf)
	u.Next()
	if _, err := u.Next(); !errors.Is(err, storage.ErrDuplicatePath) {
		t.Errorf("unpacker: %v", err)
	}
}
