package layer

import (
	"io"
	"sync"
)

// ringPipe is io.Pipe with a buffer: the writer runs up to the buffer's
// size ahead of the reader instead of waiting for each write to be read.
// A layer's tar is reproduced by one goroutine (reading each file and
// checking its crc64) for a reader that hashes it and sends it on: through
// io.Pipe each header and each 32 KiB of a file was a goroutine handoff,
// and the two took turns instead of using two cores.
type ringPipe struct {
	mu   sync.Mutex
	cond sync.Cond
	buf  []byte
	r, n int   // read offset, bytes buffered
	werr error // set when the writer closed: io.EOF or its error
	rerr error // set when the reader closed
}

func newRingPipe(size int) (*ringPipeReader, *ringPipeWriter) {
	p := &ringPipe{buf: make([]byte, size)}
	p.cond.L = &p.mu
	return &ringPipeReader{p}, &ringPipeWriter{p}
}

func (p *ringPipe) write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	total := 0
	for len(b) > 0 {
		for p.n == len(p.buf) && p.rerr == nil && p.werr == nil {
			p.cond.Wait()
		}
		switch {
		case p.rerr != nil:
			return total, p.rerr
		case p.werr != nil:
			return total, io.ErrClosedPipe
		}
		w := (p.r + p.n) % len(p.buf)
		k := copy(p.buf[w:w+min(len(p.buf)-p.n, len(p.buf)-w)], b)
		if p.n == 0 {
			p.cond.Broadcast() // the reader may be waiting for bytes
		}
		p.n += k
		total += k
		b = b[k:]
	}
	return total, nil
}

func (p *ringPipe) read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.n == 0 && p.werr == nil && p.rerr == nil {
		p.cond.Wait()
	}
	switch {
	case p.rerr != nil:
		return 0, io.ErrClosedPipe
	case p.werr != nil && (p.n == 0 || p.werr != io.EOF):
		// The writer's error comes at once; its EOF after the last byte.
		return 0, p.werr
	}
	k := copy(b, p.buf[p.r:p.r+min(p.n, len(p.buf)-p.r)])
	if p.n == len(p.buf) {
		p.cond.Broadcast() // the writer may be waiting for room
	}
	p.r = (p.r + k) % len(p.buf)
	p.n -= k
	return k, nil
}

func (p *ringPipe) closeWith(side *error, err, dflt error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if *side == nil {
		if err == nil {
			err = dflt
		}
		*side = err
	}
	p.cond.Broadcast()
}

type ringPipeReader struct{ p *ringPipe }

func (r *ringPipeReader) Read(b []byte) (int, error) { return r.p.read(b) }

// CloseWithError makes the writer's next write fail with err
// (io.ErrClosedPipe when nil), as io.PipeReader's does.
func (r *ringPipeReader) CloseWithError(err error) {
	r.p.closeWith(&r.p.rerr, err, io.ErrClosedPipe)
}

type ringPipeWriter struct{ p *ringPipe }

func (w *ringPipeWriter) Write(b []byte) (int, error) { return w.p.write(b) }

// CloseWithError ends the stream: the reader gets the buffered bytes and
// then io.EOF when err is nil, or err at once, as io.PipeWriter's does.
func (w *ringPipeWriter) CloseWithError(err error) {
	w.p.closeWith(&w.p.werr, err, io.EOF)
}
