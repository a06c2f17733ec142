package progress

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// TTYTransfers draws a live bar per layer (mpb), as docker does on a
// terminal.
type TTYTransfers struct {
	w      io.Writer
	p      *mpb.Progress
	mu     sync.Mutex
	bars   map[string]*mpb.Bar
	status map[string]string
	order  []string

	refresh chan any      // render requests
	stop    chan struct{} // ends the ticker
}

// NewTTYTransfers draws on w.
func NewTTYTransfers(w io.Writer) *TTYTransfers {
	return &TTYTransfers{w: w, bars: map[string]*mpb.Bar{}, status: map[string]string{}}
}

func (p *TTYTransfers) Print(text string) {
	p.Close()
	fmt.Fprint(p.w, text)
}

func (p *TTYTransfers) Step(id, status string) {
	p.set(id, status)
	p.bar(id)
}

func (p *TTYTransfers) Note(id, status string) { p.Step(id, status) }

func (p *TTYTransfers) Done(id, status string) {
	p.set(id, status)
	p.bar(id).SetTotal(-1, true)
}

func (p *TTYTransfers) Bytes(id string, current, total int64) {
	b := p.bar(id)
	b.SetTotal(total, false)
	b.SetCurrent(current)
}

// start begins a set of bars, rendered on our own ticker and once more at
// the end: mpb's own refresh skips bars that start and finish between two
// ticks.
func (p *TTYTransfers) start() {
	p.refresh, p.stop = make(chan any), make(chan struct{})
	p.p = mpb.New(mpb.WithOutput(p.w), mpb.WithWidth(40), mpb.WithManualRefresh(p.refresh))
	p.bars, p.order = map[string]*mpb.Bar{}, nil
	go p.tick()
}

// Close draws the bars a last time and stops them.
func (p *TTYTransfers) Close() {
	if p.p == nil {
		return
	}
	close(p.stop)
	p.refresh <- time.Now()
	for _, id := range p.order {
		if b := p.bars[id]; !b.Completed() {
			b.Abort(false)
		}
	}
	p.p.Wait()
	p.p = nil
}

func (p *TTYTransfers) bar(id string) *mpb.Bar {
	if p.p == nil {
		p.start()
	}
	if b, ok := p.bars[id]; ok {
		return b
	}
	b := p.p.AddBar(0,
		mpb.PrependDecorators(
			decor.Name(id+": "),
			decor.Any(func(decor.Statistics) string { return p.get(id) }, decor.WC{W: 15, C: decor.DindentRight}),
		),
		mpb.AppendDecorators(decor.OnComplete(decor.CountersKiloByte("% .1f / % .1f"), "")),
		mpb.BarFillerClearOnComplete(),
	)
	p.bars[id] = b
	p.order = append(p.order, id)
	return b
}

func (p *TTYTransfers) set(id, s string) {
	p.mu.Lock()
	p.status[id] = s
	p.mu.Unlock()
}

func (p *TTYTransfers) get(id string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status[id]
}

func (p *TTYTransfers) tick() {
	t := time.NewTicker(150 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			p.refresh <- now
		case <-p.stop:
			return
		}
	}
}
