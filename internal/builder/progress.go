package builder

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// EventKind says what happened to a step.
type EventKind int

const (
	EventStart   EventKind = iota + 1 // a step began
	EventLog                          // a line of output
	EventCached                       // the step was found in the cache
	EventDone                         // the step finished
	EventError                        // the step failed (Text says why)
	EventWarning                      // a build-wide warning (Text)
	EventMiss                         // the step missed the cache (Text: why, Detail: in full)
)

func (k EventKind) String() string {
	return [...]string{"?", "start", "log", "cached", "done", "error", "warning", "miss"}[k]
}

// Event is one entry of the build's event log. Events of steps in
// independent stages interleave: that is how concurrency shows.
type Event struct {
	Kind    EventKind
	Step    int    // #N; 0 for build-wide events
	Stage   string // stage name ("" for build-wide steps)
	Name    string // "[stage 2/5] RUN make"
	Text    string
	Detail  string // EventMiss: the full explanation
	Time    time.Time
	Elapsed time.Duration // for EventDone and EventError
}

func (b *builder) emit(e Event) {
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
	b.emit(Event{Kind: EventStart, Step: r.n, Stage: stage, Name: name, Time: r.start})
	return r
}

func (b *builder) log(r stepRef, line string) {
	b.emit(Event{Kind: EventLog, Step: r.n, Stage: r.stage, Name: r.name, Text: line})
}

func (b *builder) cached(r stepRef) {
	b.emit(Event{Kind: EventCached, Step: r.n, Stage: r.stage, Name: r.name})
}

func (b *builder) missed(r stepRef, why MissReason) {
	b.emit(Event{Kind: EventMiss, Step: r.n, Stage: r.stage, Name: r.name, Text: why.Short, Detail: why.Long})
}

func (b *builder) done(r stepRef) {
	b.emit(Event{Kind: EventDone, Step: r.n, Stage: r.stage, Name: r.name, Elapsed: time.Since(r.start)})
}

func (b *builder) fail(r stepRef, err error) error {
	b.emit(Event{Kind: EventError, Step: r.n, Stage: r.stage, Name: r.name, Text: err.Error(), Elapsed: time.Since(r.start)})
	return err
}

// PlainPrinter writes events the way BuildKit's plain progress does:
//
//	#3 [2/4] RUN make
//	#3 0.412 cc -o app main.c
//	#3 DONE 1.2s
type PlainPrinter struct {
	mu     sync.Mutex
	w      io.Writer
	starts map[int]time.Time
}

// NewPlainPrinter prints to w.
func NewPlainPrinter(w io.Writer) *PlainPrinter {
	return &PlainPrinter{w: w, starts: map[int]time.Time{}}
}

// Event prints one event.
func (p *PlainPrinter) Event(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Kind {
	case EventStart:
		p.starts[e.Step] = e.Time
		fmt.Fprintf(p.w, "#%d %s\n", e.Step, e.Name)
	case EventLog:
		if e.Stage == "" {
			fmt.Fprintf(p.w, "#%d %s\n", e.Step, e.Text)
			return
		}
		fmt.Fprintf(p.w, "#%d %.3f %s\n", e.Step, e.Time.Sub(p.starts[e.Step]).Seconds(), e.Text)
	case EventCached:
		fmt.Fprintf(p.w, "#%d CACHED\n", e.Step)
	case EventMiss:
		fmt.Fprintf(p.w, "#%d CACHE MISS: %s\n", e.Step, e.Text)
	case EventDone:
		fmt.Fprintf(p.w, "#%d DONE %.1fs\n", e.Step, e.Elapsed.Seconds())
	case EventError:
		fmt.Fprintf(p.w, "#%d ERROR: %s\n", e.Step, e.Text)
	case EventWarning:
		fmt.Fprintln(p.w, e.Text)
	}
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
