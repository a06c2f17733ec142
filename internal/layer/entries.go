package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/tar/storage"
)

// Entry is one tar header of a layer with the crc64 (tar-split's checksum)
// of its payload: enough to tell what a layer adds, changes and deletes, and
// whether two files hold the same bytes, without reading any file content.
type Entry struct {
	Header *tar.Header
	CRC    []byte // crc64 of the payload; nil for entries without one
}

// Entries calls fn for every header of layer chainID in tar order. It reads
// only the tar-split metadata, never the snapshot's files, so its cost
// follows the number of entries, not the layer's bytes.
func (s *Store) Entries(ctx context.Context, chainID digest.Digest, fn func(Entry) error) error {
	f, err := os.Open(s.tarSplitPath(chainID))
	if err != nil {
		return fmt.Errorf("layer %s tar-split: %w", short(chainID), err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("layer %s tar-split: %w", short(chainID), err)
	}
	defer zr.Close()
	hr := &headerStream{u: newSplitUnpacker(zr)}
	tr := tar.NewReader(hr)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("layer %s tar-split: %w", short(chainID), err)
		}
		var crc []byte
		if len(hr.files) > 0 {
			crc = hr.files[0].Payload
			hr.files = hr.files[1:]
		}
		if err := fn(Entry{Header: hdr, CRC: crc}); err != nil {
			return err
		}
	}
}

// headerStream replays a layer's tar from tar-split entries with every
// payload as zeros, which tar.Reader skips by seeking, so only the headers
// are ever materialised. After a segment (padding and the next header) it
// reads ahead to the file entry that follows it, so by the time tar.Reader
// returns a header, that header's file entry (its crc64) is queued in files.
type headerStream struct {
	u     storage.Unpacker
	seg   []byte // rest of the current segment
	zeros int64  // rest of the current payload
	files []storage.Entry
	pos   int64 // bytes of the stream passed so far
	err   error
}

func (h *headerStream) Read(p []byte) (int, error) {
	for len(h.seg) == 0 && h.zeros == 0 {
		if h.err != nil {
			return 0, h.err
		}
		h.advance()
	}
	if len(h.seg) > 0 {
		n := copy(p, h.seg)
		h.seg = h.seg[n:]
		h.pos += int64(n)
		if len(h.seg) == 0 && h.zeros == 0 && h.err == nil {
			h.advance() // queue the file entry of the header just read
		}
		return n, nil
	}
	n := int(min(int64(len(p)), h.zeros))
	clear(p[:n])
	h.zeros -= int64(n)
	h.pos += int64(n)
	return n, nil
}

// Seek skips forward within a payload: tar.Reader seeks over file data it
// is not asked for. Any other move is refused.
func (h *headerStream) Seek(offset int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || offset < 0 || offset > h.zeros {
		return 0, errors.New("tar-split header stream seeks only forward within a payload")
	}
	h.zeros -= offset
	h.pos += offset
	return h.pos, nil
}

// advance loads the next tar-split entry: a segment's bytes, or a file
// entry's payload length (as zeros) with the entry queued for its header.
func (h *headerStream) advance() {
	e, err := h.u.Next()
	if err != nil {
		h.err = err
		return
	}
	switch e.Type {
	case storage.SegmentType:
		h.seg = e.Payload
	case storage.FileType:
		h.files = append(h.files, *e)
		h.zeros = e.Size
	}
}
