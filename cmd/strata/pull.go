package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/registry"
)

func newPullCmd(g *globals) *cobra.Command {
	var quiet, tlsVerify bool
	var platform string
	c := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			named, err := image.ParseNamed(args[0])
			if err != nil {
				return err
			}
			access, err := registryAccess(tlsVerify)
			if err != nil {
				return err
			}
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			var pr pullPrinter = quietPrinter{}
			if !quiet {
				pr = newPullPrinter(out)
			}
			_, err = registry.Pull(c.Context(), s, args[0], registry.Options{Platform: platform, Progress: pr.Event, Access: access})
			pr.Close(err)
			if err != nil {
				return err
			}
			fmt.Fprintln(out, named.String())
			return nil
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	c.Flags().StringVar(&platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "set platform if server is multi-platform capable")
	c.Flags().BoolVar(&tlsVerify, "tls-verify", true, "require HTTPS with a verified certificate (plain HTTP only for loopback registries)")
	return c
}

// pullPrinter turns pull events into docker's output.
type pullPrinter interface {
	Event(registry.Event)
	Close(err error)
}

func newPullPrinter(w io.Writer) pullPrinter {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		// A terminal without a size (a bare pty) has no room for bars.
		if cols, rows, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 && rows > 0 {
			return newTTYPullPrinter(w)
		}
	}
	return &plainPullPrinter{w: w}
}

type quietPrinter struct{}

func (quietPrinter) Event(registry.Event) {}
func (quietPrinter) Close(error)          {}

// plainPullPrinter writes one line per finished layer, for pipes and logs.
type plainPullPrinter struct {
	w       io.Writer
	pushing bool
}

func (p *plainPullPrinter) Event(e registry.Event) {
	switch e.Kind {
	case registry.Resolved:
		fmt.Fprintln(p.w, pullingFrom(e.Ref))
	case registry.LayerExists:
		fmt.Fprintf(p.w, "%s: Already exists\n", image.ShortID(e.Layer))
	case registry.LayerDone:
		fmt.Fprintf(p.w, "%s: Pull complete\n", image.ShortID(e.Layer))
	case registry.Stored:
		fmt.Fprint(p.w, pullStatus(e))
	case registry.PushStarted:
		if !p.pushing {
			fmt.Fprintln(p.w, pushRefersTo(e.Ref))
			p.pushing = true
		}
	case registry.PushPreparing, registry.PushExists, registry.PushMounted, registry.PushPushed:
		fmt.Fprintf(p.w, "%s: %s\n", image.ShortID(e.Layer), pushStatus(e))
	case registry.PushDone:
		fmt.Fprint(p.w, pushDigest(e))
	}
}

func (p *plainPullPrinter) Close(error) {}

// pullingFrom is docker's first line: "latest: Pulling from library/busybox".
func pullingFrom(n reference.Named) string {
	what := "latest"
	if d, ok := n.(reference.Digested); ok {
		what = d.Digest().String()
	} else if t, ok := n.(reference.Tagged); ok {
		what = t.Tag()
	}
	return what + ": Pulling from " + reference.Path(n)
}

// pullStatus is docker's summary after the layers.
func pullStatus(e registry.Event) string {
	verdict := "Downloaded newer image for "
	if e.UpToDate {
		verdict = "Image is up to date for "
	}
	return fmt.Sprintf("Digest: %s\nStatus: %s%s\n", e.Digest, verdict, reference.FamiliarString(e.Ref))
}

// ttyPullPrinter draws a live bar per layer.
type ttyPullPrinter struct {
	w      io.Writer
	p      *mpb.Progress
	mu     sync.Mutex
	bars   map[string]*mpb.Bar
	status map[string]string
	order  []string
	tail   string // printed after the bars stop

	pushing bool // the push's first line is printed

	refresh chan any      // render requests
	stop    chan struct{} // ends the ticker
}

func newTTYPullPrinter(w io.Writer) *ttyPullPrinter {
	return &ttyPullPrinter{w: w, bars: map[string]*mpb.Bar{}, status: map[string]string{}}
}

func (p *ttyPullPrinter) Event(e registry.Event) {
	switch e.Kind {
	case registry.Resolved:
		fmt.Fprintln(p.w, pullingFrom(e.Ref))
		p.start()
		for _, b := range e.Blobs {
			id := image.ShortID(b)
			p.set(id, "Waiting")
			p.bar(id)
		}
		return
	case registry.Stored:
		p.tail = pullStatus(e)
		return
	case registry.PushStarted:
		if !p.pushing {
			fmt.Fprintln(p.w, pushRefersTo(e.Ref))
			p.pushing = true
		}
		p.start()
		return
	case registry.PushDone:
		// -a pushes tag after tag: each gets its own bars and digest line.
		p.finish()
		fmt.Fprint(p.w, pushDigest(e))
		return
	}
	if p.p == nil {
		return
	}
	id := image.ShortID(e.Layer)
	b := p.bar(id)
	switch e.Kind {
	case registry.LayerExists:
		p.set(id, "Already exists")
		b.SetTotal(-1, true)
	case registry.LayerDownloading:
		if p.get(id) == "Waiting" {
			p.set(id, "Downloading")
		}
		b.SetTotal(e.Total, false)
		b.SetCurrent(e.Current)
	case registry.LayerVerified:
		if p.get(id) == "Downloading" {
			p.set(id, "Download complete")
		}
	case registry.LayerExtracting:
		p.set(id, "Extracting")
	case registry.LayerDone:
		p.set(id, "Pull complete")
		b.SetTotal(-1, true)
	case registry.PushPreparing:
		p.set(id, "Preparing")
	case registry.PushPushing:
		p.set(id, "Pushing")
		b.SetTotal(e.Total, false)
		b.SetCurrent(e.Current)
	case registry.PushExists, registry.PushMounted, registry.PushPushed:
		p.set(id, pushStatus(e))
		b.SetTotal(-1, true)
	}
}

// start begins a set of bars, rendered on our own ticker and once more at
// the end: mpb's own refresh skips bars that start and finish between two
// ticks.
func (p *ttyPullPrinter) start() {
	p.refresh, p.stop = make(chan any), make(chan struct{})
	p.p = mpb.New(mpb.WithOutput(p.w), mpb.WithWidth(40), mpb.WithManualRefresh(p.refresh))
	p.bars, p.order = map[string]*mpb.Bar{}, nil
	go p.tick()
}

// finish draws the bars a last time and stops them.
func (p *ttyPullPrinter) finish() {
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

// pushRefersTo is docker's first line of a push.
func pushRefersTo(n reference.Named) string {
	return "The push refers to repository [" + n.Name() + "]"
}

// pushStatus is docker's word for a layer's state in a push.
func pushStatus(e registry.Event) string {
	switch e.Kind {
	case registry.PushPreparing:
		return "Preparing"
	case registry.PushExists:
		return "Layer already exists"
	case registry.PushMounted:
		return "Mounted from " + e.From
	case registry.PushPushed:
		return "Pushed"
	}
	return ""
}

// pushDigest is docker's last line for each tag pushed.
func pushDigest(e registry.Event) string {
	tag := "latest"
	if t, ok := e.Ref.(reference.Tagged); ok {
		tag = t.Tag()
	}
	return fmt.Sprintf("%s: digest: %s size: %d\n", tag, e.Digest, e.Total)
}

func (p *ttyPullPrinter) bar(id string) *mpb.Bar {
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

func (p *ttyPullPrinter) set(id, s string) {
	p.mu.Lock()
	p.status[id] = s
	p.mu.Unlock()
}

func (p *ttyPullPrinter) get(id string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status[id]
}

func (p *ttyPullPrinter) tick() {
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

func (p *ttyPullPrinter) Close(err error) {
	p.finish()
	if err == nil {
		fmt.Fprint(p.w, p.tail)
	}
}
