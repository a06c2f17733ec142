package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/analysis"
	"github.com/strata-project/strata/internal/builder"
	"github.com/strata-project/strata/internal/container"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/layer"
	"github.com/strata-project/strata/internal/store"
)

// newSystemCmd is `strata system ...`: df, prune, check, info.
func newSystemCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "system", Short: "Manage strata"}
	c.AddCommand(newSystemDfCmd(g), newSystemPruneCmd(g), newSystemCheckCmd(g), newInfoCmd(g))
	return c
}

func newSystemDfCmd(g *globals) *cobra.Command {
	var verbose bool
	c := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show strata disk usage",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			s, m, err := g.containers(c)
			if err != nil {
				return err
			}
			all, err := s.Images().List(ctx)
			if err != nil {
				return err
			}
			// As docker's: the images `images` lists; a classic build's
			// step images are counted as build cache below.
			imgs := image.WithoutIntermediates(all)
			layerSize := map[digest.Digest]int64{}
			if err := s.Layers().Walk(ctx, func(l layer.Layer) error { layerSize[l.ChainID] = l.Size; return nil }); err != nil {
				return err
			}
			ctrs, err := m.List(ctx)
			if err != nil {
				return err
			}
			cache, err := builder.CacheItems(ctx, s)
			if err != nil {
				return err
			}

			// Images: each layer counted once; shared is what more than one
			// image's stack holds — the numbers `image tree` shows.
			chains := map[digest.Digest][]digest.Digest{}
			var stacks []analysis.ImageLayers
			for _, img := range imgs {
				chains[img.ID] = image.ChainIDs(img.Config.RootFS.DiffIDs)
				st := analysis.ImageLayers{ID: img.ID}
				for _, l := range chains[img.ID] {
					st.Layers = append(st.Layers, analysis.Layer{ChainID: l, Size: layerSize[l]})
				}
				stacks = append(stacks, st)
			}
			sharing := analysis.Share(stacks)
			usage := map[digest.Digest]analysis.Usage{}
			for _, u := range sharing.Images {
				usage[u.ID] = u
			}
			ctrsOf := map[digest.Digest]int{}
			for _, ctr := range ctrs {
				ctrsOf[ctr.Image]++
			}
			total := sharing.OnDisk
			var kept int64
			active := 0
			inUse := map[digest.Digest]bool{}
			for _, img := range imgs {
				if ctrsOf[img.ID] > 0 {
					active++
					for _, l := range chains[img.ID] {
						if !inUse[l] {
							inUse[l] = true
							kept += layerSize[l]
						}
					}
				}
			}

			// Containers: their writable layers.
			ctrSize := map[string]int64{}
			var ctrTotal, ctrReclaim int64
			running := 0
			for _, ctr := range ctrs {
				size := m.LayerSize(ctx, ctr)
				ctrSize[ctr.ID] = size
				ctrTotal += size
				if ctr.State.Status == container.StatusRunning {
					running++
				} else {
					ctrReclaim += size
				}
			}

			// Build cache: what the unnamed step images added, and the
			// RUN cache mounts.
			var cacheSize int64
			for _, it := range cache {
				if !it.Named {
					cacheSize += it.Size
				}
			}
			cacheSize += builder.CacheMountsSize(s)

			// Local volumes: in use when a container mounts them.
			vols := m.Volumes()
			vlist, err := vols.List()
			if err != nil {
				return err
			}
			type volRow struct {
				name  string
				links int
				size  int64
			}
			var vrows []volRow
			var volSize, volReclaim int64
			volActive := 0
			for _, v := range vlist {
				users, err := m.VolumeUsers(v.Name)
				if err != nil {
					return err
				}
				r := volRow{v.Name, len(users), vols.Size(v.Name)}
				vrows = append(vrows, r)
				volSize += r.size
				if r.links > 0 {
					volActive++
				} else {
					volReclaim += r.size
				}
			}

			w := c.OutOrStdout()
			tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
			if !verbose {
				fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
				fmt.Fprintf(tw, "Images\t%d\t%d\t%s\t%s\n", len(imgs), active, humanSize(total), withPercent(total-kept, total))
				fmt.Fprintf(tw, "Containers\t%d\t%d\t%s\t%s\n", len(ctrs), running, humanSize(ctrTotal), withPercent(ctrReclaim, ctrTotal))
				fmt.Fprintf(tw, "Local Volumes\t%d\t%d\t%s\t%s\n", len(vlist), volActive, humanSize(volSize), withPercent(volReclaim, volSize))
				fmt.Fprintf(tw, "Build Cache\t%d\t0\t%s\t%s\n", len(cache), humanSize(cacheSize), humanSize(cacheSize))
				return tw.Flush()
			}
			fmt.Fprintln(w, "Images space usage:")
			fmt.Fprintln(w)
			fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS")
			for _, img := range imgs {
				shared, unique := usage[img.ID].Shared, usage[img.ID].Unique
				for _, r := range imageRows(img, false, false, func(string, string) bool { return true }, nil) {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", r.Repository, r.Tag, r.ID, r.CreatedSince,
						humanSize(img.Size), humanSize(shared), humanSize(unique), ctrsOf[img.ID])
				}
			}
			tw.Flush()
			fmt.Fprintln(w)
			fmt.Fprintln(w, "Containers space usage:")
			fmt.Fprintln(w)
			fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES")
			now := time.Now()
			for _, ctr := range ctrs {
				r := toPsRow(ctr, now, false)
				nvol := 0
				for _, mt := range ctr.Config.Mounts {
					if mt.Type == container.MountVolume {
						nvol++
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.ID, r.Image, r.Command, nvol, humanSize(ctrSize[ctr.ID]), r.RunningFor, r.Status, r.Names)
			}
			tw.Flush()
			fmt.Fprintln(w)
			fmt.Fprintln(w, "Local Volumes space usage:")
			fmt.Fprintln(w)
			fmt.Fprintln(tw, "VOLUME NAME\tLINKS\tSIZE")
			for _, r := range vrows {
				fmt.Fprintf(tw, "%s\t%d\t%s\n", r.name, r.links, humanSize(r.size))
			}
			tw.Flush()
			fmt.Fprintln(w)
			fmt.Fprintf(w, "Build cache usage: %s\n\n", humanSize(cacheSize))
			fmt.Fprintln(tw, "CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED")
			for _, it := range cache {
				fmt.Fprintf(tw, "%s\tregular\t%s\t%s\t%s\t1\t%s\n", strings.TrimPrefix(it.Key, "sha256:")[:12], humanSize(it.Size),
					since(it.Created), since(it.Created), strconv.FormatBool(it.Named))
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "show detailed information on space usage")
	return c
}

// withPercent is docker's RECLAIMABLE cell: "1.985MB (100%)".
func withPercent(n, of int64) string {
	if of <= 0 {
		return humanSize(n)
	}
	return fmt.Sprintf("%s (%d%%)", humanSize(n), n*100/of)
}

func newSystemCheckCmd(g *globals) *cobra.Command {
	var o store.CheckOptions
	c := &cobra.Command{
		Use:   "check [OPTIONS]",
		Short: "Check the store for damage, and repair it",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			s, m, err := g.containers(c)
			if err != nil {
				return err
			}
			o.ExpectedMount = m.MountInUse
			rep, err := s.Check(ctx, o)
			if err != nil {
				return err
			}
			// Containers whose writable layer is gone cannot run again.
			ctrs, err := m.List(ctx)
			if err != nil {
				return err
			}
			for _, ctr := range ctrs {
				if m.HasLayer(ctx, ctr) {
					continue
				}
				what := fmt.Sprintf("container %s (%s): its writable layer is missing", ctr.ShortID(), ctr.Name)
				if o.Repair {
					if err := m.Remove(ctx, ctr, true); err != nil {
						rep.Problems = append(rep.Problems, fmt.Sprintf("%s (repair failed: %v)", what, err))
						continue
					}
					rep.Repaired = append(rep.Repaired, what)
					continue
				}
				rep.Problems = append(rep.Problems, what)
			}
			w := c.OutOrStdout()
			if done := g.reconciled.String(); done != "" {
				fmt.Fprintln(w, "Cleaned up after killed strata processes:", done)
			}
			for _, id := range g.thawed {
				fmt.Fprintf(w, "Resumed container %s, left paused by a killed commit\n", id[:12])
			}
			fmt.Fprintf(w, "Checked %d blobs, %d images, %d layers (%d re-read against their diffID), %d containers.\n",
				rep.Checked.Blobs, rep.Checked.Images, rep.Checked.Layers, rep.Checked.Tars, len(ctrs))
			for _, r := range rep.Repaired {
				fmt.Fprintln(w, "Repaired:", r)
			}
			for _, p := range rep.Problems {
				fmt.Fprintln(w, "Problem:", p)
			}
			if len(rep.Problems) > 0 {
				hint := ""
				if !o.Repair {
					hint = " (strata system check --repair removes what is broken and unreachable)"
				}
				return fmt.Errorf("%d problems remain%s", len(rep.Problems), hint)
			}
			fmt.Fprintln(w, "No problems found.")
			return nil
		},
	}
	c.Flags().BoolVar(&o.Repair, "repair", false, "remove what is broken and unreachable (never a complete image)")
	c.Flags().BoolVar(&o.Full, "full", false, "re-read every layer against its diffID, not a sample")
	return c
}
