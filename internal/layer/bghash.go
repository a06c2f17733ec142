package layer

import (
	"crypto/sha256"
	"hash"
)

// bgHash is a sha256 computed on its own goroutine: a layer's diffID is
// the hash of the whole tar, strictly in order, and at ~400-600 MB/s a
// core it is the largest single cost of a commit or unpack; the writer of
// the tar (reading files, crc64 and tar-split, or extracting) keeps the
// other core. Bytes are copied into chunks that the hasher takes in order.
type bgHash struct {
	h    hash.Hash
	cur  []byte
	full chan []byte
	free chan []byte
	done chan struct{}
}

const (
	bgChunk  = 256 << 10
	bgChunks = 8 // in flight: bounds memory to 2 MiB
)

func newBgHash() *bgHash {
	b := &bgHash{h: sha256.New(), full: make(chan []byte, bgChunks), free: make(chan []byte, bgChunks), done: make(chan struct{})}
	for range bgChunks {
		b.free <- make([]byte, 0, bgChunk)
	}
	b.cur = <-b.free
	go func() {
		defer close(b.done)
		for c := range b.full {
			b.h.Write(c)
			b.free <- c[:0]
		}
	}()
	return b
}

func (b *bgHash) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := copy(b.cur[len(b.cur):cap(b.cur)], p)
		b.cur = b.cur[:len(b.cur)+k]
		p = p[k:]
		if len(b.cur) == cap(b.cur) {
			b.full <- b.cur
			b.cur = <-b.free
		}
	}
	return n, nil
}

// sum hashes what is left and returns the digest; the hash takes no more
// writes after it.
func (b *bgHash) sum() []byte {
	if len(b.cur) > 0 {
		b.full <- b.cur
	}
	b.cur = nil
	close(b.full)
	<-b.done
	return b.h.Sum(nil)
}

// stop ends the goroutine of a hash whose sum is not wanted.
func (b *bgHash) stop() {
	if b.cur != nil {
		b.cur = nil
		close(b.full)
	}
}
