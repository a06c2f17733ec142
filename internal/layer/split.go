package layer

import (
	"fmt"
	"hash"
	"hash/crc64"

	"github.com/vbatts/tar-split/tar/storage"
)

// splitRecorder is the io.Writer a tar is written to when strata writes the
// tar itself (a diff). Told by the writer where each entry's header ends
// (entry), it hashes the stream and records the same tar-split entries that
// tar-split's disassembler would, without parsing the tar again: everything
// between two payloads (padding, PAX records, the header) is one segment,
// each entry is a file entry with the crc64 of its payload, and whatever
// follows the last payload is the closing segment.
type splitRecorder struct {
	p    storage.Packer
	sha  *bgHash
	crc  hash.Hash64
	n    int64 // bytes written
	size int64 // payload bytes of all entries

	seg  []byte // raw bytes since the last payload
	name string // entry whose payload is being written
	want int64  // its declared payload size
	left int64  // payload bytes still to come
	err  error

	sums  PayloadSums
	known []byte // the checksum sums knew of the current payload
}

// NewPayloadHash returns the hash whose sum is a payload's tar-split
// checksum, as PayloadSums passes them.
func NewPayloadHash() hash.Hash64 { return crc64.New(storage.CRCTable) }

// maxSegment bounds the bytes held for one segment; a longer run of header
// bytes is recorded as consecutive segments, which reproduce the same stream.
const maxSegment = 1 << 20

func newSplitRecorder(p storage.Packer) *splitRecorder {
	return &splitRecorder{p: p, sha: newBgHash(), crc: NewPayloadHash()}
}

func (r *splitRecorder) Write(b []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	written := len(b)
	r.sha.Write(b)
	r.n += int64(written)
	for len(b) > 0 {
		if r.left == 0 {
			r.seg = append(r.seg, b...)
			if len(r.seg) >= maxSegment {
				r.err = r.flushSegment()
			}
			break
		}
		k := min(int64(len(b)), r.left)
		if r.known == nil {
			r.crc.Write(b[:k])
		}
		r.left -= k
		b = b[k:]
		if r.left == 0 {
			crc := r.known
			if crc == nil {
				crc = r.crc.Sum(nil)
			}
			if r.sums.Report != nil {
				r.sums.Report(r.name, crc)
			}
			r.err = r.addFile(crc)
		}
	}
	if r.err != nil {
		return 0, r.err
	}
	return written, nil
}

// entry is archive.DiffOptions.EntryWritten: the header of name has just
// been written and size payload bytes follow.
func (r *splitRecorder) entry(name string, size int64) error {
	if r.err != nil {
		return r.err
	}
	if r.left != 0 {
		return fmt.Errorf("tar entry %s began %d bytes before the end of %s", name, r.left, r.name)
	}
	if r.err = r.flushSegment(); r.err != nil {
		return r.err
	}
	r.name, r.want, r.left = name, size, size
	if size == 0 {
		r.err = r.addFile(nil)
		return r.err
	}
	r.known = nil
	if r.sums.Known != nil {
		if crc, ok := r.sums.Known(name, size); ok {
			r.known = crc
			return nil
		}
	}
	r.crc.Reset()
	return nil
}

// finish records the end of the stream.
func (r *splitRecorder) finish() error {
	if r.err != nil {
		return r.err
	}
	if r.left != 0 {
		return fmt.Errorf("tar ended %d bytes into the payload of %s", r.want-r.left, r.name)
	}
	return r.flushSegment()
}

func (r *splitRecorder) flushSegment() error {
	if len(r.seg) == 0 {
		return nil
	}
	_, err := r.p.AddEntry(storage.Entry{Type: storage.SegmentType, Payload: r.seg})
	r.seg = r.seg[:0]
	return err
}

func (r *splitRecorder) addFile(csum []byte) error {
	e := storage.Entry{Type: storage.FileType, Size: r.want, Payload: csum}
	e.SetName(r.name)
	r.size += r.want
	_, err := r.p.AddEntry(e)
	return err
}
