package main

import (
	"fmt"
	"io"
	"os"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/imagearchive"
	"github.com/strata-project/strata/internal/progress"
)

func newSaveCmd(g *globals) *cobra.Command {
	var output, format, comp string
	c := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			f, err := imagearchive.ParseFormat(format)
			if err != nil {
				return usageError{cmd: c.CommandPath(), err: err}
			}
			if f == imagearchive.OCIDir && output == "" {
				return usageError{cmd: c.CommandPath(), err: fmt.Errorf("--format oci-dir needs -o DIRECTORY")}
			}
			if output == "" && isTerminal(os.Stdout) {
				return fmt.Errorf("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			if f == imagearchive.OCIDir {
				return imagearchive.Save(c.Context(), s, args, f, comp, nil, output)
			}
			return writeOutput(output, c.OutOrStdout(), func(w io.Writer) error {
				return imagearchive.Save(c.Context(), s, args, f, comp, w, "")
			})
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "write to a file (a directory for oci-dir), instead of STDOUT")
	c.Flags().StringVar(&comp, "compression", "none", "compress the layers in the archive: none (docker's choice), gzip or zstd")
	c.Flags().StringVar(&format, "format", "docker-archive", "archive format: docker-archive (docker 25+'s, also an OCI layout), oci-archive or oci-dir")
	return c
}

// writeOutput runs write on stdout, or on a temp file beside output that is
// renamed to it on success, so a failure never leaves a truncated file
// under the name asked for.
func writeOutput(output string, stdout io.Writer, write func(io.Writer) error) error {
	if output == "" {
		return write(stdout)
	}
	f, err := os.CreateTemp(dirOf(output), ".strata-output-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), output)
	}
	return err
}

func newLoadCmd(g *globals) *cobra.Command {
	var input string
	var quiet bool
	c := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive, an OCI archive or layout, or STDIN",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			in := c.InOrStdin()
			if input == "" && isTerminal(os.Stdin) {
				return fmt.Errorf("requested load from stdin, but stdin is empty")
			}
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			// As docker: bars on a terminal unless -q, nothing else on a pipe.
			out := c.OutOrStdout()
			var events func(imagearchive.LoadEvent)
			var bars progress.Transfers = progress.Quiet{}
			if !quiet && progress.IsTerminal(out) {
				bars = progress.NewTTYTransfers(out)
				events = func(e imagearchive.LoadEvent) { loadEvent(bars, e) }
			}
			loaded, err := imagearchive.Load(c.Context(), s, in, input, events)
			bars.Close()
			if err != nil {
				return err
			}
			// The names loaded, or the ID of an image without one.
			for _, l := range loaded {
				for _, t := range l.Tags {
					if old, ok := l.Moved[t.String()]; ok {
						fmt.Fprintf(out, "The image %s already exists, renaming the old one with ID %s to empty string\n", reference.FamiliarString(t), old)
					}
					fmt.Fprintf(out, "Loaded image: %s\n", reference.FamiliarString(t))
				}
				if len(l.Tags) == 0 {
					fmt.Fprintf(out, "Loaded image ID: %s\n", l.ID)
				}
			}
			return nil
		},
	}
	c.Flags().StringVarP(&input, "input", "i", "", "read from a tar archive file (or an OCI layout directory), instead of STDIN")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress the load output")
	return c
}

// loadEvent draws docker's "Loading layer" bar for a layer.
func loadEvent(t progress.Transfers, e imagearchive.LoadEvent) {
	id := image.ShortID(e.DiffID)
	t.Step(id, "Loading layer")
	t.Bytes(id, e.Current, e.Total)
	if e.Done {
		t.Done(id, "Loading layer")
	}
}
