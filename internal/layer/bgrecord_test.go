package layer

import (
	"errors"
	"testing"

	"github.com/vbatts/tar-split/tar/storage"
)

// failPacker fails every entry after the first n.
type failPacker struct {
	n   int
	err error
}

func (p *failPacker) AddEntry(storage.Entry) (int, error) {
	if p.n == 0 {
		return 0, p.err
	}
	p.n--
	return 0, nil
}

// The recorder's error (a tar-split file that cannot be written) comes out
// of wait, and the writer, who cannot see it, is never blocked by it:
// it writes far more than the chunks in flight hold.
func TestBgRecorderErrorDoesNotBlockTheWriter(t *testing.T) {
	full := errors.New("no space left on device")
	sr := newSplitRecorder(&failPacker{n: 3, err: full})
	defer sr.sha.stop()
	bg := newBgRecorder(sr)
	header, payload := make([]byte, 512), make([]byte, recChunkSize/2)
	for range 10 * recChunks * 2 {
		bg.Write(header)
		bg.entry("f", int64(len(payload)))
		bg.Write(payload)
	}
	if err := bg.wait(); !errors.Is(err, full) {
		t.Fatalf("wait: %v, want the packer's error", err)
	}
}
