package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSpoolReaderFollowsWriter(t *testing.T) {
	sp, err := newSpool(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	got := make(chan []byte)
	go func() {
		b, err := io.ReadAll(sp.Reader(context.Background()))
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	want := ""
	for _, chunk := range []string{"one ", "two ", "three"} {
		if _, err := sp.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
		want += chunk
	}
	sp.finish(nil)
	if b := <-got; string(b) != want {
		t.Fatalf("read %q, want %q", b, want)
	}
}

// What the reader consumed leaves the disk: the spool holds only what the
// download is ahead by, so the layer commit's syncfs does not write the
// blob out a second time.
func TestSpoolFreesWhatWasRead(t *testing.T) {
	sp, err := newSpool(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	chunk := bytes.Repeat([]byte{0xa5}, 1<<20)
	const chunks = 3 * punchEvery / (1 << 20)
	for range chunks {
		if _, err := sp.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	sp.finish(nil)
	allocated := func() int64 {
		var st unix.Stat_t
		if err := unix.Fstat(int(sp.f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	if a := allocated(); a < chunks<<20 {
		t.Skipf("the filesystem under %s keeps %d of %d written bytes unallocated", os.TempDir(), a, chunks<<20)
	}
	n, err := io.Copy(io.Discard, sp.Reader(context.Background()))
	if err != nil || n != chunks<<20 {
		t.Fatalf("read %d bytes, %v; want %d", n, err, chunks<<20)
	}
	if a := allocated(); a >= punchEvery {
		t.Fatalf("%d bytes still allocated after the reader consumed %d; want under %d", a, n, punchEvery)
	}
}

func TestSpoolReaderGetsDownloadError(t *testing.T) {
	sp, err := newSpool(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	sp.Write([]byte("partial"))
	sp.finish(ErrDigestMismatch)
	b, err := io.ReadAll(sp.Reader(context.Background()))
	if string(b) != "partial" || !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("read %q, %v; want the bytes then the download's error", b, err)
	}
	if err := sp.wait(context.Background()); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("wait: %v", err)
	}
}

func TestSpoolCancelWakesReader(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sp, err := newSpool(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	done := make(chan error)
	go func() {
		_, err := io.ReadAll(sp.Reader(context.Background()))
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("reader after cancel: %v", err)
	}
}
