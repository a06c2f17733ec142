package progress

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Build steps are the other stream: a job of named steps (a Dockerfile
// build), each started, logging lines, and then cached, done or failed.
// PlainPrinter writes it as BuildKit's plain progress; TTYPrinter redraws
// it in place.

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
