package registry

import (
	"context"
	"errors"
	"io"
	"testing"
)

func TestSpoolReaderFollowsWriter(t *testing.T) {
	sp, err := newSpool(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	got := make(chan []byte)
	go func() {
		b, err := io.ReadAll(sp.Reader())
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
	// A second reader sees the same bytes from the start.
	b, err := io.ReadAll(sp.Reader())
	if err != nil || string(b) != want {
		t.Fatalf("second reader: %q, %v", b, err)
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
	b, err := io.ReadAll(sp.Reader())
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
		_, err := io.ReadAll(sp.Reader())
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("reader after cancel: %v", err)
	}
}
