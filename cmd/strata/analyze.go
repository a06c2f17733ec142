package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	units "github.com/docker/go-units"
	digest "github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/analysis"
	"github.com/strata-project/strata/internal/builder"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/progress"
	"github.com/strata-project/strata/internal/store"
)

func newImageAnalyzeCmd(g *globals) *cobra.Command {
	var format, failOn string
	c := &cobra.Command{
		Use:   "analyze [OPTIONS] IMAGE",
		Short: "Show where an image's bytes go: per layer, wasted bytes and how to fix them",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			limit, err := parseWasteLimit(failOn)
			if err != nil {
				return usageError{cmd: c.CommandPath(), err: err}
			}
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			img, layers, err := imageStack(c, s, args[0])
			if err != nil {
				return err
			}
			r, err := analysis.Analyze(c.Context(), s.Layers(), layers)
			if err != nil {
				return fmt.Errorf("analyze %s: %w", args[0], err)
			}
			if err := writeFormatted(c.OutOrStdout(), format, r, func(w io.Writer) { writeAnalysis(w, img, r) }); err != nil {
				return err
			}
			if limit.over(r.Wasted, r.WastedPercent) {
				return exitError{code: 1, err: fmt.Errorf("%s wastes %s (%.1f%% of %s shipped), over the --fail-on-waste limit of %s",
					args[0], humanSize(r.Wasted), r.WastedPercent, humanSize(r.Shipped), failOn)}
			}
			return nil
		},
	}
	c.Flags().StringVar(&format, "format", "", "json, or a Go template over the report")
	c.Flags().StringVar(&failOn, "fail-on-waste", "", "exit 1 when the wasted bytes exceed SIZE (e.g. 10MB) or PCT (e.g. 5%) of the shipped bytes")
	return c
}

// wasteLimit is a --fail-on-waste value: bytes, or a percentage.
type wasteLimit struct {
	set     bool
	bytes   int64
	percent float64
}

func parseWasteLimit(s string) (wasteLimit, error) {
	if s == "" {
		return wasteLimit{}, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f < 0 || f > 100 {
			return wasteLimit{}, fmt.Errorf("invalid --fail-on-waste %q: a percentage is 0%% to 100%%", s)
		}
		return wasteLimit{set: true, percent: f}, nil
	}
	n, err := units.FromHumanSize(s)
	if err != nil || n < 0 {
		return wasteLimit{}, fmt.Errorf("invalid --fail-on-waste %q: want a size like 10MB or a percentage like 5%%", s)
	}
	return wasteLimit{set: true, bytes: n, percent: -1}, nil
}

func (l wasteLimit) over(bytes int64, percent float64) bool {
	if !l.set {
		return false
	}
	if l.percent >= 0 && l.bytes == 0 {
		return percent > l.percent
	}
	return bytes > l.bytes
}

// imageStack is an image and its layers for the analysis.
func imageStack(c *cobra.Command, s *store.Store, ref string) (image.Image, []analysis.Layer, error) {
	img, err := s.Images().Get(c.Context(), ref)
	if err != nil {
		return image.Image{}, nil, err
	}
	layers, err := analysis.Stack(img.Config, func(id digest.Digest) (int64, error) {
		l, err := s.Layers().Get(c.Context(), id)
		return l.Size, err
	})
	return img, layers, err
}

// writeFormatted prints v as indented JSON ("json"), through a Go template,
// or with text when format is empty.
func writeFormatted(w io.Writer, format string, v any, text func(io.Writer)) error {
	switch format {
	case "":
		text(w)
		return nil
	case "json":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tmpl, _, err := parseFormat(format)
	if err != nil {
		return err
	}
	if err := tmpl.Execute(w, v); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	fmt.Fprintln(w)
	return nil
}

func imageLabel(img image.Image) string {
	if tags := img.RepoTags(); len(tags) > 0 {
		return tags[0]
	}
	return image.ShortID(img.ID)
}

func writeAnalysis(w io.Writer, img image.Image, r *analysis.Report) {
	fmt.Fprintf(w, "Image %s (%s)\n\n", image.ShortID(img.ID), imageLabel(img))
	tw := tabwriter.NewWriter(w, 4, 1, 3, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tSIZE\tFILES\tADDED\tCHANGED\tDELETED\tCREATED BY")
	for _, l := range r.Layers {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%s\n", l.Index, humanSize(l.Size), l.Files, l.Added, l.Changed, l.Deleted, ellipsis(l.CreatedBy, 60))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nShipped %s in %d layers; %s visible in the final tree: efficiency %.1f%%\n",
		humanSize(r.Shipped), len(r.Layers), humanSize(r.Visible), 100*r.Efficiency)
	fmt.Fprintf(w, "Wasted %s (%.1f%% of what is shipped)\n", humanSize(r.Wasted), r.WastedPercent)
	if len(r.Findings) > 0 {
		fmt.Fprintln(w, "\nFINDINGS (largest first)")
		for _, f := range r.Findings {
			fmt.Fprintf(w, "  %-9s %-13s %s\n", humanSize(f.Bytes), f.Kind, f.Fix)
			for _, p := range f.Paths {
				fmt.Fprintf(w, "  %-9s %-13s   %s (layer %d)\n", "", "", p.Path, p.Layer)
			}
		}
	}
	if len(r.LargestDirs) > 0 {
		fmt.Fprintln(w, "\nLARGEST DIRECTORIES")
		for _, d := range r.LargestDirs {
			fmt.Fprintf(w, "  %-9s %s\n", humanSize(d.Size), d.Path)
		}
	}
}

func newImageDiffCmd(g *globals) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "diff [OPTIONS] IMAGE1 IMAGE2",
		Short: "Show the files that differ between two images and the layers they share",
		Args:  exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			imgA, a, err := imageStack(c, s, args[0])
			if err != nil {
				return err
			}
			imgB, b, err := imageStack(c, s, args[1])
			if err != nil {
				return err
			}
			d, err := analysis.Diff(c.Context(), s.Layers(), a, b)
			if err != nil {
				return fmt.Errorf("diff %s %s: %w", args[0], args[1], err)
			}
			return writeFormatted(c.OutOrStdout(), format, d, func(w io.Writer) {
				layers := "layers"
				if d.SharedLayers == 1 {
					layers = "layer"
				}
				fmt.Fprintf(w, "# %s and %s share %d %s (%s); %d paths differ\n",
					imageLabel(imgA), imageLabel(imgB), d.SharedLayers, layers, humanSize(d.SharedBytes), len(d.Changes))
				for _, ch := range d.Changes {
					if len(ch.What) > 0 {
						fmt.Fprintf(w, "%s %s (%s)\n", ch.Kind, ch.Path, strings.Join(ch.What, ", "))
					} else {
						fmt.Fprintf(w, "%s %s\n", ch.Kind, ch.Path)
					}
				}
			})
		},
	}
	c.Flags().StringVar(&format, "format", "", "json, or a Go template over the comparison")
	return c
}

func newImageTreeCmd(g *globals) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "tree [OPTIONS] [IMAGE...]",
		Short: "Show the store's images as a tree of the layers they share, with shared and unique sizes",
		RunE: func(c *cobra.Command, args []string) error {
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			var imgs []image.Image
			if len(args) == 0 {
				all, err := s.Images().List(c.Context())
				if err != nil {
					return err
				}
				imgs = image.WithoutIntermediates(all) // as `images` lists them
			}
			for _, ref := range args {
				img, err := s.Images().Get(c.Context(), ref)
				if err != nil {
					return err
				}
				imgs = append(imgs, img)
			}
			var in []analysis.ImageLayers
			seen := map[digest.Digest]bool{}
			for _, img := range imgs {
				if seen[img.ID] {
					continue
				}
				seen[img.ID] = true
				_, layers, err := imageStack(c, s, img.ID.String())
				if err != nil {
					return err
				}
				in = append(in, analysis.ImageLayers{ID: img.ID, Names: img.RepoTags(), Layers: layers})
			}
			sh := analysis.Share(in)
			return writeFormatted(c.OutOrStdout(), format, sh, func(w io.Writer) { writeSharing(w, sh) })
		},
	}
	c.Flags().StringVar(&format, "format", "", "json, or a Go template over the tree")
	return c
}

func writeSharing(w io.Writer, sh *analysis.Sharing) {
	var draw func(n *analysis.SharedNode, prefix string, last bool, top bool)
	draw = func(n *analysis.SharedNode, prefix string, last bool, top bool) {
		// A run of layers with one child each and no image of their own
		// is one line: the tree shows where images branch, not every step.
		run, size := 1, n.Size
		for len(n.Children) == 1 && len(n.Images) == 0 {
			n = n.Children[0]
			run++
			size += n.Size
		}
		branch, next := "├── ", "│   "
		if last {
			branch, next = "└── ", "    "
		}
		if top {
			branch, next = "", ""
		}
		what := image.ShortID(n.ChainID)
		if run > 1 {
			what = fmt.Sprintf("%s (%d layers)", what, run)
		}
		line := fmt.Sprintf("%s%s%s  %s", prefix, branch, what, humanSize(size))
		if n.Users > 1 {
			line += fmt.Sprintf("  shared by %d images", n.Users)
		}
		if len(n.Images) > 0 {
			line += "  [" + strings.Join(n.Images, ", ") + "]"
		}
		fmt.Fprintln(w, line)
		for i, ch := range n.Children {
			draw(ch, prefix+next, i == len(n.Children)-1, false)
		}
	}
	for _, r := range sh.Roots {
		draw(r, "", true, true)
	}
	for _, name := range sh.NoLayers {
		fmt.Fprintf(w, "(no layers)  0B  [%s]\n", name)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 4, 1, 3, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tSIZE\tSHARED SIZE\tUNIQUE SIZE")
	for _, u := range sh.Images {
		name := image.ShortID(u.ID)
		if len(u.Names) > 0 {
			name = strings.Join(u.Names, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, humanSize(u.Size), humanSize(u.Shared), humanSize(u.Unique))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d images: %s as separate images, %s on disk with each layer stored once\n",
		len(sh.Images), humanSize(sh.Separate), humanSize(sh.OnDisk))
}

// collectMisses keeps the build's cache-miss events while still passing
// every event to the printer opts.Events already has.
func collectMisses(opts *builder.Options) *[]progress.Event {
	var misses []progress.Event
	next := opts.Events
	opts.Events = func(e progress.Event) {
		if e.Kind == progress.EventMiss {
			misses = append(misses, e)
		}
		if next != nil {
			next(e)
		}
	}
	return &misses
}

// writeMisses is --explain-cache: each step that ran, and why.
func writeMisses(w io.Writer, misses []progress.Event) {
	if len(misses) == 0 {
		fmt.Fprintln(w, "\nexplain-cache: every step was cached")
		return
	}
	fmt.Fprintf(w, "\nexplain-cache: %d steps missed the cache\n", len(misses))
	for _, e := range misses {
		fmt.Fprintf(w, "  #%d %s\n      %s\n", e.Step, e.Name, e.Detail)
	}
}

// buildAdvice ends a build with image analyze's advice when the build's
// own layers waste more than the threshold.
func buildAdvice(c *cobra.Command, s *store.Store, res builder.Result, limit wasteLimit) {
	_, layers, err := imageStack(c, s, res.ID.String())
	if err != nil || len(layers) <= res.BaseLayers {
		return
	}
	r, err := analysis.Analyze(c.Context(), s.Layers(), layers)
	if err != nil {
		return // advice only: the build itself succeeded
	}
	own, n := r.OwnWaste(res.BaseLayers)
	pct := 0.0
	if r.Shipped > 0 {
		pct = 100 * float64(n) / float64(r.Shipped)
	}
	if !limit.over(n, pct) {
		return
	}
	w := c.ErrOrStderr()
	fmt.Fprintf(w, "\nThis build's own layers waste %s (%.1f%% of the image's %s); `strata image analyze %s` shows all of it:\n",
		humanSize(n), pct, humanSize(r.Shipped), image.ShortID(res.ID))
	for i, f := range own {
		if i == 5 {
			fmt.Fprintf(w, "  ... and %d more findings\n", len(own)-5)
			break
		}
		fmt.Fprintf(w, "  %s: %s\n", humanSize(f.Bytes), f.Fix)
	}
}
