package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// The tty progress view redraws the whole build in place, as BuildKit's
// does: a header, one line per step in the order the steps started (so
// steps of concurrent stages are running side by side), and under each
// running step the last lines it printed. The frame is a pure function of
// the events seen and the clock (frame), so it is tested without a
// terminal; TTYPrinter only moves the cursor and repaints.

// logTailLines is how many output lines a running step shows.
const logTailLines = 6

// display is the state the tty view draws.
type display struct {
	start    time.Time // first event
	steps    []*dispStep
	byNum    map[int]*dispStep
	warnings []string
}

type dispStep struct {
	num     int
	name    string
	global  bool // a build-wide step ("exporting to image"): its lines are statuses
	state   EventKind
	start   time.Time
	elapsed time.Duration
	logs    []string // the last logTailLines lines
	status  []string // a build-wide step's lines, all kept
	err     string
}

func newDisplay() *display { return &display{byNum: map[int]*dispStep{}} }

// apply records one event.
func (d *display) apply(e Event) {
	if d.start.IsZero() || (!e.Time.IsZero() && e.Time.Before(d.start)) {
		d.start = e.Time
	}
	if e.Kind == EventWarning {
		d.warnings = append(d.warnings, e.Text)
		return
	}
	s := d.byNum[e.Step]
	if s == nil {
		s = &dispStep{num: e.Step, name: e.Name, global: e.Stage == "", state: EventStart, start: e.Time}
		d.byNum[e.Step] = s
		d.steps = append(d.steps, s)
	}
	switch e.Kind {
	case EventStart:
		s.start = e.Time
	case EventLog:
		if s.global {
			s.status = append(s.status, e.Text)
			return
		}
		s.logs = append(s.logs, e.Text)
		if len(s.logs) > logTailLines {
			s.logs = s.logs[len(s.logs)-logTailLines:]
		}
	case EventCached:
		s.state = EventCached
	case EventDone:
		s.state, s.elapsed = EventDone, e.Elapsed
	case EventError:
		s.state, s.elapsed, s.err = EventError, e.Elapsed, e.Text
	}
}

func (s *dispStep) running() bool { return s.state == EventStart }

// frame is the text of one redraw: its lines, each at most width-1
// columns (a line that wraps would break the cursor arithmetic). height
// (0 = no limit) bounds a live frame: finished steps leave the top first,
// since lines that scrolled off cannot be redrawn. The final frame has no
// bound, shows no output of steps and marks steps that never finished as
// CANCELED; failed says the build ended in an error.
func (d *display) frame(now time.Time, width, height int, final, failed bool) []string {
	finished := 0
	for _, s := range d.steps {
		if !s.running() {
			finished++
		}
	}
	header := fmt.Sprintf("[+] Building %.1fs (%d/%d)", now.Sub(d.start).Seconds(), finished, len(d.steps))
	if final && !failed {
		header += " FINISHED"
	}
	blocks := make([][]string, len(d.steps))
	for i, s := range d.steps {
		blocks[i] = s.lines(now, width, final)
	}
	var warn []string
	for _, w := range d.warnings {
		warn = append(warn, fit(w, width))
	}
	if !final && height > 0 {
		total := 1 + len(warn)
		for _, b := range blocks {
			total += len(b)
		}
		for i, s := range d.steps {
			if total <= height {
				break
			}
			if !s.running() {
				total -= len(blocks[i])
				blocks[i] = nil
			}
		}
	}
	out := []string{fit(header, width)}
	for _, b := range blocks {
		out = append(out, b...)
	}
	out = append(out, warn...)
	if !final && height > 0 && len(out) > height {
		// Still too tall with only running steps: keep the top.
		out = out[:height]
	}
	return out
}

// lines draws one step: its status line and what shows under it.
func (s *dispStep) lines(now time.Time, width int, final bool) []string {
	var prefix, right string
	switch {
	case s.state == EventCached:
		prefix, right = "CACHED ", "0.0s"
	case s.state == EventDone:
		right = fmt.Sprintf("DONE %.1fs", s.elapsed.Seconds())
	case s.state == EventError:
		prefix, right = "ERROR ", fmt.Sprintf("%.1fs", s.elapsed.Seconds())
	case final:
		prefix, right = "CANCELED ", fmt.Sprintf("%.1fs", now.Sub(s.start).Seconds())
	default:
		right = fmt.Sprintf("%.1fs", now.Sub(s.start).Seconds())
	}
	out := []string{stepLine(" => "+prefix+s.name, right, width)}
	for _, st := range s.status {
		out = append(out, fit(" => => "+st, width))
	}
	if s.running() && !final || s.state == EventError {
		for _, l := range s.logs {
			out = append(out, fit(" => => # "+l, width))
		}
	}
	return out
}

// stepLine puts right at the right edge of the line, cutting left to
// make room.
func stepLine(left, right string, width int) string {
	left = clean(left)
	if width <= 0 {
		return left + " " + right
	}
	room := width - 1 - utf8.RuneCountInString(right) - 1
	if room < 1 {
		return fit(left+" "+right, width)
	}
	left = truncate(left, room)
	return left + strings.Repeat(" ", room-utf8.RuneCountInString(left)+1) + right
}

// fit cleans s and cuts it to the frame's width.
func fit(s string, width int) string {
	s = clean(s)
	if width <= 0 {
		return s
	}
	return truncate(s, width-1)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	if n <= 3 {
		return string(r[:n])
	}
	return string(r[:n-3]) + "..."
}

// clean makes a line of process output safe to draw: a tab becomes
// spaces, other control characters (escape sequences, carriage returns)
// become spaces so they cannot move the cursor.
func clean(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteString("    ")
		case unicode.IsControl(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TTYPrinter draws the build's progress on a terminal, redrawing in
// place about ten times a second. Close draws the final frame, which
// stays on the screen.
type TTYPrinter struct {
	mu     sync.Mutex
	w      io.Writer
	size   func() (width, height int)
	d      *display
	drawn  int  // lines of the frame on the screen
	dirty  bool // events since the last draw
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

// ttyRefresh is the redraw interval.
const ttyRefresh = 100 * time.Millisecond

// NewTTYPrinter draws on w, a terminal whose size (columns, rows) size
// tells; it is asked on every redraw so the view follows a resize. A
// size of 0 means unknown: no width or height limit.
func NewTTYPrinter(w io.Writer, size func() (width, height int)) *TTYPrinter {
	p := &TTYPrinter{w: w, size: size, d: newDisplay(), stop: make(chan struct{})}
	p.wg.Add(1)
	go p.loop()
	return p
}

func (p *TTYPrinter) loop() {
	defer p.wg.Done()
	t := time.NewTicker(ttyRefresh)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.mu.Lock()
			if p.dirty || p.anyRunning() {
				p.draw(now, false, false)
			}
			p.mu.Unlock()
		}
	}
}

func (p *TTYPrinter) anyRunning() bool {
	for _, s := range p.d.steps {
		if s.running() {
			return true
		}
	}
	return false
}

// Event records one event; the next tick shows it.
func (p *TTYPrinter) Event(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	p.d.apply(e)
	p.dirty = true
}

// Close stops the redraws and draws the final frame; failed says the
// build ended in an error. It is safe to call more than once.
func (p *TTYPrinter) Close(failed bool) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.stop)
	p.mu.Unlock()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.d.steps) > 0 || len(p.d.warnings) > 0 {
		p.draw(time.Now(), true, failed)
	}
}

// draw repaints: up to the first line of the frame on the screen, each
// new line over an old one (clearing its rest), and the screen below
// cleared when the new frame is shorter.
func (p *TTYPrinter) draw(now time.Time, final, failed bool) {
	width, height := 0, 0
	if p.size != nil {
		width, height = p.size()
	}
	// One line is left free: the cursor rests below the frame.
	if height > 1 {
		height--
	}
	lines := p.d.frame(now, width, height, final, failed)
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\r\x1b[%dA", p.drawn)
	}
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\x1b[K\n")
	}
	b.WriteString("\x1b[J")
	io.WriteString(p.w, b.String())
	p.drawn = len(lines)
	p.dirty = false
}
