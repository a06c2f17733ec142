package builder

import (
	"bytes"
	"strings"
	"sync"
	"time"

	"github.com/strata-project/strata/internal/progress"
)

func (b *builder) emit(e progress.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if b.opts.Events == nil {
		return
	}
	b.evMu.Lock()
	defer b.evMu.Unlock()
	b.opts.Events(e)
}

// stepRef identifies a started step for the events that follow.
type stepRef struct {
	n     int
	stage string
	name  string
	start time.Time
}

func (b *builder) begin(stage, name string) stepRef {
	r := stepRef{n: int(b.steps.Add(1)), stage: stage, name: name, start: time.Now()}
	b.emit(progress.Event{Kind: progress.EventStart, Step: r.n, Stage: stage, Name: name, Time: r.start})
	return r
}

func (b *builder) log(r stepRef, line string) {
	b.emit(progress.Event{Kind: progress.EventLog, Step: r.n, Stage: r.stage, Name: r.name, Text: line})
}

func (b *builder) cached(r stepRef) {
	b.emit(progress.Event{Kind: progress.EventCached, Step: r.n, Stage: r.stage, Name: r.name})
}

func (b *builder) missed(r stepRef, why MissReason) {
	b.emit(progress.Event{Kind: progress.EventMiss, Step: r.n, Stage: r.stage, Name: r.name, Text: why.Short, Detail: why.Long})
}

func (b *builder) done(r stepRef) {
	b.emit(progress.Event{Kind: progress.EventDone, Step: r.n, Stage: r.stage, Name: r.name, Elapsed: time.Since(r.start)})
}

func (b *builder) fail(r stepRef, err error) error {
	b.emit(progress.Event{Kind: progress.EventError, Step: r.n, Stage: r.stage, Name: r.name, Text: err.Error(), Elapsed: time.Since(r.start)})
	return err
}

// lineWriter turns a process's output into log events and keeps the last
// lines for the error message of a failed step.
type lineWriter struct {
	mu   sync.Mutex
	emit func(string)
	buf  bytes.Buffer
	tail []string
}

const tailLines = 10

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(w.buf.Next(i+1)), "\r\n")
		w.line(line)
	}
	return len(p), nil
}

func (w *lineWriter) line(s string) {
	w.emit(s)
	w.tail = append(w.tail, s)
	if len(w.tail) > tailLines {
		w.tail = w.tail[1:]
	}
}

// flush emits a last line that had no newline.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.line(w.buf.String())
		w.buf.Reset()
	}
}

func (w *lineWriter) lastLines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.tail...)
}
