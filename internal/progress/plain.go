package progress

import (
	"fmt"
	"io"
)

// PlainTransfers prints one line per noted or finished layer status, for
// pipes and logs.
type PlainTransfers struct{ w io.Writer }

// NewPlainTransfers prints to w.
func NewPlainTransfers(w io.Writer) *PlainTransfers { return &PlainTransfers{w: w} }

func (p *PlainTransfers) Print(text string)          { fmt.Fprint(p.w, text) }
func (p *PlainTransfers) Step(string, string)        {}
func (p *PlainTransfers) Note(id, status string)     { fmt.Fprintf(p.w, "%s: %s\n", id, status) }
func (p *PlainTransfers) Done(id, status string)     { fmt.Fprintf(p.w, "%s: %s\n", id, status) }
func (p *PlainTransfers) Bytes(string, int64, int64) {}
func (p *PlainTransfers) Close()                     {}
