// Package compression recognises and undoes the compressions a layer or a
// rootfs tarball arrives in, and makes the compressed forms strata writes.
package compression

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/ulikunitz/xz"
)

// Format is a compression format.
type Format int

const (
	Uncompressed Format = iota
	Gzip
	Zstd
	Xz
	Bzip2
)

func (f Format) String() string {
	switch f {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case Xz:
		return "xz"
	case Bzip2:
		return "bzip2"
	}
	return "uncompressed"
}

var magics = []struct {
	f     Format
	magic []byte
}{
	{Gzip, []byte{0x1f, 0x8b, 0x08}},
	{Zstd, []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{Xz, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	{Bzip2, []byte{'B', 'Z', 'h'}},
}

// Detect names the format whose magic bytes start head.
func Detect(head []byte) Format {
	for _, m := range magics {
		if bytes.HasPrefix(head, m.magic) {
			return m.f
		}
	}
	return Uncompressed
}

// Decompress returns the uncompressed stream of r, recognising the format by
// its magic bytes, and the format found. Closing the result releases the
// decoder; it does not close r.
func Decompress(r io.Reader) (io.ReadCloser, Format, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(6)
	if err != nil && err != io.EOF {
		return nil, Uncompressed, fmt.Errorf("read header: %w", err)
	}
	f := Detect(head)
	switch f {
	case Gzip:
		// pgzip inflates in a goroutine of its own, blocks ahead of the
		// reader (and checks the CRC in another): a layer's inflate and
		// its apply run on two cores instead of taking turns on one.
		zr, err := pgzip.NewReader(br)
		if err != nil {
			return nil, f, fmt.Errorf("gzip: %w", err)
		}
		return zr, f, nil
	case Zstd:
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, f, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), f, nil
	case Xz:
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, f, fmt.Errorf("xz: %w", err)
		}
		return io.NopCloser(zr), f, nil
	case Bzip2:
		return io.NopCloser(bzip2.NewReader(br)), f, nil
	}
	return io.NopCloser(br), Uncompressed, nil
}

// NewWriter compresses what is written to it into w as name says: "gzip"
// (parallel gzip on every core), "zstd" (every core) or "none". Close
// flushes the stream; it does not close w.
func NewWriter(w io.Writer, name string) (io.WriteCloser, error) {
	switch name {
	case "gzip":
		return pgzip.NewWriter(w), nil
	case "zstd":
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	case "none", "":
		return nopCloser{w}, nil
	}
	return nil, fmt.Errorf("invalid compression %q: want gzip, zstd or none", name)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
