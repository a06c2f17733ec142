package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// ptyOutput collects what a process writes to its terminal and tells
// waiters when more arrived.
type ptyOutput struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{} // closed and replaced on every write
	done chan struct{} // closed at EOF
}

func readPTY(master *os.File) *ptyOutput {
	o := &ptyOutput{more: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(o.done)
		b := make([]byte, 32<<10)
		for {
			n, err := master.Read(b)
			o.mu.Lock()
			o.buf.Write(b[:n])
			close(o.more)
			o.more = make(chan struct{})
			o.mu.Unlock()
			if err != nil { // EIO once the process and its children are gone
				return
			}
		}
	}()
	return o
}

// waitFor waits until cond holds for the output so far.
func (o *ptyOutput) waitFor(t *testing.T, what string, cond func(string) bool) {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		o.mu.Lock()
		s, more := o.buf.String(), o.more
		o.mu.Unlock()
		if cond(s) {
			return
		}
		select {
		case <-more:
		case <-o.done:
			o.mu.Lock()
			s := o.buf.String()
			o.mu.Unlock()
			if !cond(s) {
				t.Fatalf("output ended before %s:\n%q", what, s)
			}
			return
		case <-timeout:
			t.Fatalf("no %s in the output:\n%q", what, s)
		}
	}
}

var cursorUp = regexp.MustCompile(`\x1b\[\d+A`)

// frames splits tty output at its cursor-up moves: each piece is one
// redraw.
func frames(s string) []string { return cursorUp.Split(s, -1) }

// On a terminal, build draws BuildKit's live view: concurrent stages'
// running steps on screen together with their last lines of output,
// redrawn in place, and a final frame that stays. The RUN steps block on
// connections to the test, so the live frame is caught without timing.
func TestBuildProgressTTY(t *testing.T) {
	c := newCLI(t)
	c.importBusybox()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(fmt.Sprintf(`FROM busybox AS a
RUN for i in 1 2 3 4 5 6 7 8; do echo a-line-$i; done; nc 127.0.0.1 %[1]d
FROM busybox AS b
RUN for i in 1 2 3 4 5 6 7 8; do echo b-line-$i; done; nc 127.0.0.1 %[1]d
FROM busybox
COPY --from=a /etc/passwd /a
COPY --from=b /etc/passwd /b
`, port)), 0o644)

	// No --progress: auto picks the tty view on a terminal.
	cmd := exec.Command(strataBin, "--root", c.root, "build", "-t", "tty", ctx)
	master, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	out := readPTY(master)

	var conns []net.Conn
	for range 2 {
		conn, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	// Both RUN steps are blocked now, their output printed: a redraw shows
	// them running side by side, each with its last six lines.
	live := func(f string) bool {
		for _, want := range []string{"[a 2/2] RUN", "[b 2/2] RUN", "a-line-8", "b-line-8", "a-line-3", "b-line-3"} {
			if !strings.Contains(f, want) {
				return false
			}
		}
		return !strings.Contains(f, "a-line-2") && !strings.Contains(f, "b-line-2")
	}
	out.waitFor(t, "a frame with both RUN steps running", func(s string) bool {
		for _, f := range frames(s) {
			if live(f) {
				return true
			}
		}
		return false
	})
	for _, conn := range conns {
		conn.Close()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("build: %v\n%q", err, out.buf.String())
	}
	<-out.done
	s := out.buf.String()
	fs := frames(s)
	// One cursor-up (two frames) already proves a redraw in place; whether
	// a frame came before the live one depends on when the first tick fell.
	if len(fs) < 2 {
		t.Fatalf("output was not redrawn in place (%d frames):\n%q", len(fs), s)
	}
	final := strings.ReplaceAll(fs[len(fs)-1], "\r\n", "\n") // the pty's onlcr
	for _, want := range []string{"[+] Building", "FINISHED", "[a 2/2] RUN", "[b 2/2] RUN", "[stage-2 3/3] COPY --from=b", "exporting to image", "naming to docker.io/library/tty:latest done"} {
		if !strings.Contains(final, want) {
			t.Errorf("final frame lacks %q:\n%s", want, final)
		}
	}
	if !regexp.MustCompile(`\[a 2/2\] RUN .* DONE \d+\.\ds`).MatchString(final) {
		t.Errorf("final frame does not show the RUN done with its time:\n%s", final)
	}
	if strings.Contains(final, "# a-line") {
		t.Errorf("final frame shows a finished step's output:\n%s", final)
	}
	if !strings.HasSuffix(strings.TrimRight(final, "\x1b[J"), "\x1b[K\n") {
		t.Errorf("output does not end with the final frame:\n%q", final)
	}

	// --progress tty without a terminal still draws frames; auto without
	// one stays plain.
	_, errs, code := c.run(nil, "build", "--progress", "tty", ctx)
	if code != 0 || !strings.HasPrefix(errs, "[+] Building") || !strings.Contains(errs, "FINISHED") || !strings.Contains(errs, "CACHED [a 2/2] RUN") {
		t.Errorf("--progress tty: exit %d\n%q", code, errs)
	}
	_, errs, code = c.run(nil, "build", ctx)
	if code != 0 || strings.Contains(errs, "\x1b") || !regexp.MustCompile(`(?m)^#\d+ CACHED$`).MatchString(errs) {
		t.Errorf("auto without a terminal: exit %d\n%q", code, errs)
	}
}

// A failing step ends the view with the step marked ERROR and its last
// lines, and the error after it.
func TestBuildProgressTTYError(t *testing.T) {
	c := newCLI(t)
	c.importBusybox()
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox\nRUN echo about to fail; exit 3\n"), 0o644)
	cmd := exec.Command(strataBin, "--root", c.root, "build", "--progress", "tty", ctx)
	master, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	out := readPTY(master)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("failing build: %v", err)
	}
	<-out.done
	s := strings.ReplaceAll(out.buf.String(), "\r\n", "\n")
	fs := frames(s)
	final := fs[len(fs)-1]
	if !strings.Contains(final, "ERROR [2/2] RUN echo about to fail") || !strings.Contains(final, "=> => # about to fail") || strings.Contains(final, "FINISHED") {
		t.Errorf("final frame:\n%s", final)
	}
	if i := strings.Index(final, "Error: "); i < 0 || !strings.Contains(final[i:], "exit code: 3") {
		t.Errorf("no error after the final frame:\n%s", final)
	}
}

// String is the output so far.
func (o *ptyOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
