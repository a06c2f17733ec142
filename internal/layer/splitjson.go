package layer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
	"github.com/vbatts/tar-split/tar/storage"
)

// tar-split's metadata is a stream of JSON entries, one per tar segment and
// file. Its own packer and unpacker use encoding/json, whose decoding was
// most of the time of reading a 10k-file layer's headers back (image
// analyze, build advice) and a large share of reproducing its tar (save,
// push). These do the same on a faster decoder and encoder that reads and
// writes the same documents; the rules (names, duplicates, positions) are
// tar-split's.

// splitUnpacker is storage.NewJSONUnpacker's reader. tar-split's packer
// ends every entry with a newline and JSON strings never hold a raw one,
// so entries are read a line at a time and each is decoded whole, which is
// several times faster than a streaming decoder.
type splitUnpacker struct {
	r    *bufio.Reader
	line []byte
	seen map[string]struct{}
}

func newSplitUnpacker(r io.Reader) storage.Unpacker {
	return &splitUnpacker{r: bufio.NewReaderSize(r, 64<<10), seen: map[string]struct{}{}}
}

func (u *splitUnpacker) Next() (*storage.Entry, error) {
	line, err := u.readLine()
	if err != nil {
		return nil, err
	}
	var e storage.Entry
	if err := gojson.Unmarshal(line, &e); err != nil {
		return nil, fmt.Errorf("tar-split entry: %w", err)
	}
	if e.Type == storage.FileType {
		name := filepath.Clean(e.GetName())
		if _, ok := u.seen[name]; ok {
			return nil, storage.ErrDuplicatePath
		}
		u.seen[name] = struct{}{}
	}
	return &e, nil
}

// readLine returns the next non-empty line (without its newline), or
// io.EOF at the end; a last line without a newline still counts.
func (u *splitUnpacker) readLine() ([]byte, error) {
	for {
		line, err := u.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A long entry (a segment with big PAX records): gather it.
			u.line = append(u.line[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = u.r.ReadSlice('\n')
				u.line = append(u.line, line...)
			}
			line = u.line
		}
		if err != nil && (err != io.EOF || len(line) == 0) {
			if err == io.EOF {
				return nil, io.EOF
			}
			return nil, err
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			return t, nil
		}
		if err == io.EOF {
			return nil, io.EOF
		}
	}
}

// splitPacker is storage.NewJSONPacker's writer.
type splitPacker struct {
	enc  *gojson.Encoder
	pos  int
	seen map[string]struct{}
}

func newSplitPacker(w io.Writer) storage.Packer {
	return &splitPacker{enc: gojson.NewEncoder(w), seen: map[string]struct{}{}}
}

func (p *splitPacker) AddEntry(e storage.Entry) (int, error) {
	if e.Name != "" && !utf8.ValidString(e.Name) {
		e.NameRaw, e.Name = []byte(e.Name), ""
	}
	if e.Type == storage.FileType {
		name := filepath.Clean(e.GetName())
		if _, ok := p.seen[name]; ok {
			return -1, storage.ErrDuplicatePath
		}
		p.seen[name] = struct{}{}
	}
	e.Position = p.pos
	if err := p.enc.Encode(e); err != nil {
		return -1, err
	}
	p.pos++
	return e.Position, nil
}
