// Package progress shows the progress of strata's long jobs on a terminal,
// redrawn in place, or as plain lines for pipes and logs. A job reports
// what happens and never knows whether a terminal is attached; the view
// chosen for the output decides how it looks. There are two kinds of job:
// layer transfers (pull, push, load: the Transfers API, drawn as mpb bars
// or docker's plain lines) and build steps (the Event stream, drawn as
// BuildKit's plain progress or redrawn in place by TTYPrinter).
package progress

import (
	"io"
	"os"

	"golang.org/x/term"
)

// Transfers shows a set of layer transfers: one line per layer with its
// status, and a byte bar while its bytes move. Layers appear in the order
// they are first named. Calls may come from one goroutine at a time.
type Transfers interface {
	// Print writes text as it is (docker's "latest: Pulling from ..." or
	// "Digest: ..." lines), after the layers shown so far.
	Print(text string)
	// Step sets a passing status ("Waiting", "Downloading"); only a
	// terminal shows it.
	Step(id, status string)
	// Note sets a status that plain output prints too ("Preparing").
	Note(id, status string)
	// Done sets a layer's last status ("Pull complete", "Pushed").
	Done(id, status string)
	// Bytes shows how far a layer's bytes have got.
	Bytes(id string, current, total int64)
	// Close draws the layers a last time and ends the view; a Print
	// after it starts a new set (push -a, one set per tag).
	Close()
}

// NewTransfers is the view for w: bars on a terminal that has a size,
// plain lines anywhere else (a pipe, a file, a bare pty).
func NewTransfers(w io.Writer) Transfers {
	if IsTerminal(w) {
		return NewTTYTransfers(w)
	}
	return NewPlainTransfers(w)
}

// IsTerminal tells whether w is a terminal with room to draw on.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	cols, rows, err := term.GetSize(int(f.Fd()))
	return err == nil && cols > 0 && rows > 0
}

// Quiet is the view that shows nothing (-q).
type Quiet struct{}

func (Quiet) Print(string)               {}
func (Quiet) Step(string, string)        {}
func (Quiet) Note(string, string)        {}
func (Quiet) Done(string, string)        {}
func (Quiet) Bytes(string, int64, int64) {}
func (Quiet) Close()                     {}
