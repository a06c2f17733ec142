package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/layer"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the strata version information",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			fmt.Fprintf(c.OutOrStdout(), "Client: strata\n Version:    %s\n Go version: %s\n OS/Arch:    %s/%s\n",
				version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}

// infoData is what `info` shows; --format templates see these names.
type infoData struct {
	Root          string
	Driver        string
	Runtime       string
	RuntimeBinary string
	Images        int
	Layers        int
	Containers    int
	Running       int
	Stopped       int
	Version       string
	OSType        string
	Architecture  string
}

func newInfoCmd(g *globals) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "info",
		Short: "Display system-wide information",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			imgs, err := s.Images.List(c.Context())
			if err != nil {
				return err
			}
			layers := 0
			if err := s.Layers.Walk(c.Context(), func(layer.Layer) error { layers++; return nil }); err != nil {
				return err
			}
			d := infoData{
				Root: s.Root, Driver: s.Driver(), Runtime: defaultRuntime(), Images: len(imgs), Layers: layers,
				Version: version, OSType: runtime.GOOS, Architecture: runtime.GOARCH,
			}
			d.Containers, d.Running, err = containerCount(c.Context(), s)
			if err != nil {
				return err
			}
			d.Stopped = d.Containers - d.Running
			if p, err := exec.LookPath(d.Runtime); err == nil {
				d.RuntimeBinary = p
			} else {
				d.RuntimeBinary = "not found in PATH"
			}
			if format != "" {
				return writeRows(c.OutOrStdout(), format, "", nil, []infoData{d})
			}
			var b strings.Builder
			fmt.Fprintf(&b, "Server:\n")
			fmt.Fprintf(&b, " Containers: %d\n", d.Containers)
			fmt.Fprintf(&b, "  Running: %d\n  Paused: 0\n  Stopped: %d\n", d.Running, d.Stopped)
			fmt.Fprintf(&b, " Images: %d\n", d.Images)
			fmt.Fprintf(&b, " Layers: %d\n", d.Layers)
			fmt.Fprintf(&b, " Server Version: strata %s\n", d.Version)
			fmt.Fprintf(&b, " Storage Driver: %s\n", d.Driver)
			fmt.Fprintf(&b, " Default Runtime: %s (%s)\n", d.Runtime, d.RuntimeBinary)
			fmt.Fprintf(&b, " Operating System: %s\n", d.OSType)
			fmt.Fprintf(&b, " Architecture: %s\n", d.Architecture)
			fmt.Fprintf(&b, " Strata Root Dir: %s\n", d.Root)
			fmt.Fprint(c.OutOrStdout(), b.String())
			return nil
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return c
}
