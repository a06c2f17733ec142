package main

import (
	"fmt"
	"io"
	"os"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/progress"
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
			pr := newPullPrinter(out, quiet)
			_, err = registry.Pull(c.Context(), s, args[0], registry.Options{Platform: platform, Progress: pr.Event, Access: access})
			pr.Close()
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

// pullPrinter turns registry events (pull and push) into docker's words,
// shown through a progress view: bars on a terminal, lines elsewhere.
type pullPrinter struct {
	t       progress.Transfers
	status  map[string]string
	pushing bool // the push's first line is printed
}

func newPullPrinter(w io.Writer, quiet bool) *pullPrinter {
	var t progress.Transfers = progress.Quiet{}
	if !quiet {
		t = progress.NewTransfers(w)
	}
	return &pullPrinter{t: t, status: map[string]string{}}
}

func (p *pullPrinter) step(id, s string) {
	p.status[id] = s
	p.t.Step(id, s)
}

func (p *pullPrinter) Event(e registry.Event) {
	var id string
	if e.Layer != "" {
		id = image.ShortID(e.Layer)
	}
	switch e.Kind {
	case registry.Resolved:
		p.t.Print(pullingFrom(e.Ref) + "\n")
		for _, b := range e.Blobs {
			p.step(image.ShortID(b), "Waiting")
		}
	case registry.Stored:
		p.t.Print(pullStatus(e))
	case registry.PushStarted:
		if !p.pushing {
			p.t.Print(pushRefersTo(e.Ref) + "\n")
			p.pushing = true
		}
	case registry.PushDone:
		// -a pushes tag after tag: each gets its own bars and digest line.
		p.t.Print(pushDigest(e))
	case registry.LayerExists:
		p.t.Done(id, "Already exists")
	case registry.LayerDownloading:
		if p.status[id] == "Waiting" {
			p.step(id, "Downloading")
		}
		p.t.Bytes(id, e.Current, e.Total)
	case registry.LayerVerified:
		if p.status[id] == "Downloading" {
			p.step(id, "Download complete")
		}
	case registry.LayerExtracting:
		p.step(id, "Extracting")
	case registry.LayerDone:
		p.t.Done(id, "Pull complete")
	case registry.PushPreparing:
		p.t.Note(id, "Preparing")
	case registry.PushPushing:
		p.step(id, "Pushing")
		p.t.Bytes(id, e.Current, e.Total)
	case registry.PushExists, registry.PushMounted, registry.PushPushed:
		p.t.Done(id, pushStatus(e))
	}
}

// Close ends the view.
func (p *pullPrinter) Close() { p.t.Close() }

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
