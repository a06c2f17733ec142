package layer

import (
	"io"
	"testing"
)

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// A stack's reads start syncs of the layer's filesystem as they pass each
// writebackBytes, and never wait for one: the unpack goes on while the
// disk writes.
func TestWritebackSyncsWithoutBlockingTheReader(t *testing.T) {
	t.Parallel()
	started := make(chan string, 8)
	release := make(chan struct{})
	wb := newWriteback(func(dir string) error {
		started <- dir
		<-release
		return nil
	})
	// Below the first threshold nothing is synced.
	n, err := io.Copy(io.Discard, wb.reader(io.LimitReader(zeros{}, writebackBytes-1), "/small"))
	if err != nil || n != writebackBytes-1 {
		t.Fatalf("copied %d, %v", n, err)
	}
	select {
	case dir := <-started:
		t.Fatalf("synced %s before %d bytes", dir, writebackBytes)
	default:
	}
	// Three more thresholds pass while the first sync is held: the reads
	// go on, and the syncs asked for meanwhile fold into one.
	n, err = io.Copy(io.Discard, wb.reader(io.LimitReader(zeros{}, 3*writebackBytes), "/big"))
	if err != nil || n != 3*writebackBytes {
		t.Fatalf("copied %d, %v", n, err)
	}
	if dir := <-started; dir != "/big" {
		t.Fatalf("synced %s, want /big", dir)
	}
	close(release)
	wb.stop()
	close(started)
	var more int
	for range started {
		more++
	}
	if more > 1 {
		t.Fatalf("%d syncs queued behind a running one, want at most 1", more)
	}
}
