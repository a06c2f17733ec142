package layer

// bgRecorder runs a splitRecorder on a goroutine of its own for a tar that
// is being extracted: the extractor's goroutine, which also makes every
// file (the unpack's longest chain of work), only copies the bytes it reads
// into chunks and marks where each header ends; the crc64 of every
// payload, the tar-split entries (JSON, gzip) and the diffID's hash run on
// the other core, in the stream's order.
type bgRecorder struct {
	sr   *splitRecorder
	cur  *recChunk
	full chan *recChunk
	free chan *recChunk
	done chan struct{}
	err  error // the recorder's first error; read after done
}

// recChunk is a run of the stream and the entries whose headers end in it.
type recChunk struct {
	b     []byte
	marks []recMark
}

// recMark is a header ending off bytes into its chunk.
type recMark struct {
	off  int
	name string
	size int64
}

const (
	recChunkSize = 256 << 10
	recChunks    = 8 // in flight: bounds memory to 2 MiB
)

func newBgRecorder(sr *splitRecorder) *bgRecorder {
	r := &bgRecorder{sr: sr, full: make(chan *recChunk, recChunks), free: make(chan *recChunk, recChunks), done: make(chan struct{})}
	for range recChunks {
		r.free <- &recChunk{b: make([]byte, 0, recChunkSize)}
	}
	r.cur = <-r.free
	go r.run()
	return r
}

func (r *bgRecorder) run() {
	defer close(r.done)
	for c := range r.full {
		if r.err == nil {
			r.err = r.record(c)
		}
		c.b, c.marks = c.b[:0], c.marks[:0]
		r.free <- c
	}
}

func (r *bgRecorder) record(c *recChunk) error {
	off := 0
	for _, m := range c.marks {
		if _, err := r.sr.Write(c.b[off:m.off]); err != nil {
			return err
		}
		if err := r.sr.entry(m.name, m.size); err != nil {
			return err
		}
		off = m.off
	}
	_, err := r.sr.Write(c.b[off:])
	return err
}

// Write copies p into the stream; it never fails (the recorder's errors
// are wait's).
func (r *bgRecorder) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := copy(r.cur.b[len(r.cur.b):cap(r.cur.b)], p)
		r.cur.b = r.cur.b[:len(r.cur.b)+k]
		p = p[k:]
		if len(r.cur.b) == cap(r.cur.b) {
			r.full <- r.cur
			r.cur = <-r.free
		}
	}
	return n, nil
}

// entry is splitRecorder.entry, at this point of the stream.
func (r *bgRecorder) entry(name string, size int64) {
	r.cur.marks = append(r.cur.marks, recMark{off: len(r.cur.b), name: name, size: size})
}

// wait hands over what is left and returns once the recorder has taken
// the whole stream, with its first error. Nothing is written after it.
func (r *bgRecorder) wait() error {
	r.full <- r.cur
	r.cur = nil
	close(r.full)
	<-r.done
	return r.err
}
