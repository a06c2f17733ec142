package layer

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

func TestRingPipeCarriesEveryByte(t *testing.T) {
	t.Parallel()
	want := make([]byte, 1<<20+123)
	for i := range want {
		want[i] = byte(rand.IntN(256))
	}
	pr, pw := newRingPipe(4096)
	go func() {
		rest := want
		for len(rest) > 0 {
			k := min(len(rest), 1+rand.IntN(10000)) // writes larger and smaller than the ring
			if _, err := pw.Write(rest[:k]); err != nil {
				t.Error(err)
				return
			}
			rest = rest[k:]
		}
		pw.CloseWithError(nil)
	}()
	var got bytes.Buffer
	b := make([]byte, 7000)
	for {
		n, err := pr.Read(b[:1+rand.IntN(len(b)-1)])
		got.Write(b[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("read %d bytes, not the %d written", got.Len(), len(want))
	}
}

func TestRingPipeErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	// The writer's error reaches the reader at once, buffered bytes or not.
	pr, pw := newRingPipe(16)
	pw.Write([]byte("abc"))
	pw.CloseWithError(boom)
	if _, err := pr.Read(make([]byte, 8)); !errors.Is(err, boom) {
		t.Fatalf("read after the writer failed: %v, want boom", err)
	}
	// A writer blocked on a full ring gets the reader's error.
	pr, pw = newRingPipe(4)
	done := make(chan error)
	go func() {
		_, err := pw.Write([]byte("more than four bytes"))
		done <- err
	}()
	pr.CloseWithError(boom)
	if err := <-done; !errors.Is(err, boom) {
		t.Fatalf("write after the reader closed: %v, want boom", err)
	}
	if _, err := pr.Read(make([]byte, 8)); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("read after closing the reader: %v", err)
	}
}
