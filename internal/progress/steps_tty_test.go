package progress

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// frameText draws d at t0+at as one string.
func frameText(d *display, t0 time.Time, at time.Duration, width, height int, final, failed bool) string {
	return strings.Join(d.frame(t0.Add(at), width, height, final, failed), "\n")
}

func TestFrameFromEvents(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := newDisplay()
	ev := func(at time.Duration, k EventKind, step int, stage, name, text string, elapsed time.Duration) {
		d.apply(Event{Kind: k, Step: step, Stage: stage, Name: name, Text: text, Time: t0.Add(at), Elapsed: elapsed})
	}
	const w = 50
	ev(0, EventStart, 1, "a", "[a 1/2] FROM busybox", "", 0)
	ev(0, EventDone, 1, "a", "[a 1/2] FROM busybox", "", 0)
	ev(0, EventStart, 2, "b", "[b 1/2] FROM busybox", "", 0)
	ev(0, EventDone, 2, "b", "[b 1/2] FROM busybox", "", 0)
	ev(100*time.Millisecond, EventStart, 3, "a", "[a 2/2] RUN make", "", 0)
	ev(200*time.Millisecond, EventStart, 4, "b", "[b 2/2] COPY x /x", "", 0)
	ev(200*time.Millisecond, EventCached, 4, "b", "[b 2/2] COPY x /x", "", 0)
	for i := 1; i <= 8; i++ {
		ev(300*time.Millisecond, EventLog, 3, "a", "[a 2/2] RUN make", fmt.Sprintf("line %d", i), 0)
	}
	// Both stages' steps are on screen; the running one shows its elapsed
	// time and its last six lines.
	want := `[+] Building 1.5s (3/4)
 => [a 1/2] FROM busybox                DONE 0.0s
 => [b 1/2] FROM busybox                DONE 0.0s
 => [a 2/2] RUN make                         1.4s
 => => # line 3
 => => # line 4
 => => # line 5
 => => # line 6
 => => # line 7
 => => # line 8
 => CACHED [b 2/2] COPY x /x                 0.0s`
	if got := frameText(d, t0, 1500*time.Millisecond, w, 0, false, false); got != want {
		t.Errorf("running frame:\n%s\nwant:\n%s", got, want)
	}

	// A short terminal: finished steps leave the top first.
	want = `[+] Building 1.5s (3/4)
 => [a 2/2] RUN make                         1.4s
 => => # line 3
 => => # line 4
 => => # line 5
 => => # line 6
 => => # line 7
 => => # line 8`
	if got := frameText(d, t0, 1500*time.Millisecond, w, 8, false, false); got != want {
		t.Errorf("8-row frame:\n%s\nwant:\n%s", got, want)
	}

	ev(2*time.Second, EventDone, 3, "a", "[a 2/2] RUN make", "", 1900*time.Millisecond)
	ev(2*time.Second, EventStart, 5, "", "exporting to image", "", 0)
	ev(2*time.Second, EventLog, 5, "", "exporting to image", "writing image sha256:abc done", 0)
	ev(2*time.Second, EventDone, 5, "", "exporting to image", "", 0)
	ev(2*time.Second, EventWarning, 0, "", "", "[Warning] One or more build-args [X] were not consumed", 0)
	// The final frame: everything, no output of finished steps, FINISHED.
	want = `[+] Building 2.1s (5/5) FINISHED
 => [a 1/2] FROM busybox                DONE 0.0s
 => [b 1/2] FROM busybox                DONE 0.0s
 => [a 2/2] RUN make                    DONE 1.9s
 => CACHED [b 2/2] COPY x /x                 0.0s
 => exporting to image                  DONE 0.0s
 => => writing image sha256:abc done
[Warning] One or more build-args [X] were not ...`
	if got := frameText(d, t0, 2100*time.Millisecond, w, 3, true, false); got != want {
		t.Errorf("final frame:\n%s\nwant:\n%s", got, want)
	}
}

func TestFrameErrorAndCanceled(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := newDisplay()
	d.apply(Event{Kind: EventStart, Step: 1, Stage: "a", Name: "[a 2/2] RUN false", Time: t0})
	d.apply(Event{Kind: EventLog, Step: 1, Stage: "a", Name: "[a 2/2] RUN false", Text: "about to fail", Time: t0})
	d.apply(Event{Kind: EventError, Step: 1, Stage: "a", Name: "[a 2/2] RUN false", Text: "exit code: 1", Time: t0, Elapsed: 300 * time.Millisecond})
	d.apply(Event{Kind: EventStart, Step: 2, Stage: "b", Name: "[b 2/2] RUN sleep 9", Time: t0})
	d.apply(Event{Kind: EventLog, Step: 2, Stage: "b", Name: "[b 2/2] RUN sleep 9", Text: "sleeping", Time: t0})
	want := `[+] Building 0.5s (1/2)
 => ERROR [a 2/2] RUN false                  0.3s
 => => # about to fail
 => CANCELED [b 2/2] RUN sleep 9             0.5s`
	if got := frameText(d, t0, 500*time.Millisecond, 50, 0, true, true); got != want {
		t.Errorf("failed final frame:\n%s\nwant:\n%s", got, want)
	}
}

// Output cannot move the cursor or wrap the line.
func TestFrameCleansAndCuts(t *testing.T) {
	t0 := time.Now()
	d := newDisplay()
	d.apply(Event{Kind: EventStart, Step: 1, Stage: "s", Name: "[1/1] RUN " + strings.Repeat("x", 100), Time: t0})
	d.apply(Event{Kind: EventLog, Step: 1, Stage: "s", Name: "n", Text: "a\x1b[2Ab\rc\td" + strings.Repeat("é", 100), Time: t0})
	lines := d.frame(t0, 40, 0, false, false)
	for _, l := range lines {
		if strings.ContainsAny(l, "\x1b\r\t") || len([]rune(l)) > 39 {
			t.Errorf("line %q: control characters or wider than 39 columns", l)
		}
	}
	if !strings.HasPrefix(lines[2], " => => # a [2Ab c    d") || !strings.HasSuffix(lines[1], "... 0.0s") {
		t.Errorf("frame:\n%s", strings.Join(lines, "\n"))
	}
}

// syncBuffer is a bytes.Buffer the printer's ticker and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The printer repaints over the previous frame: the final frame starts
// with the cursor moved up over every line drawn before it.
func TestTTYPrinterRedrawsInPlace(t *testing.T) {
	var out syncBuffer
	p := NewTTYPrinter(&out, func() (int, int) { return 60, 20 })
	p.Event(Event{Kind: EventStart, Step: 1, Stage: "s", Name: "[1/1] RUN make"})
	p.Event(Event{Kind: EventLog, Step: 1, Stage: "s", Name: "[1/1] RUN make", Text: "compiling"})
	// Draw the live frame directly rather than waiting for the ticker.
	p.mu.Lock()
	p.draw(time.Now(), false, false)
	p.mu.Unlock()
	p.Event(Event{Kind: EventDone, Step: 1, Stage: "s", Name: "[1/1] RUN make", Elapsed: time.Second})
	p.Close(false)
	p.Close(false)
	s := out.String()
	i := strings.LastIndex(s, "\r\x1b[3A")
	if i < 0 {
		t.Fatalf("no cursor-up over the 3-line live frame:\n%q", s)
	}
	final := s[i:]
	for _, want := range []string{"(1/1) FINISHED", "[1/1] RUN make", "DONE 1.0s"} {
		if !strings.Contains(final, want) {
			t.Errorf("final frame lacks %q:\n%q", want, final)
		}
	}
	if strings.Contains(final, "compiling") || !strings.HasSuffix(s, "\x1b[J") {
		t.Errorf("final frame shows output or does not clear below:\n%q", final)
	}
}
