package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/builder"
	"github.com/strata-project/strata/internal/container"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/store"
)

// The prune commands print what they removed in docker's shape and ask
// docker's question unless -f. Every image and layer removal goes through
// the store's deletion owner (store.Prune), which keeps what a container,
// a mount, a running operation or a child image needs.

// pruneFilter is a prune's --filter: until= and label= / label!=.
type pruneFilter struct {
	until    time.Time
	labels   []string // k or k=v that must be present
	notLabel []string // k or k=v that must be absent
}

func parsePruneFilter(args []string) (pruneFilter, error) {
	var f pruneFilter
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return f, errFilterFormat
		}
		switch strings.TrimSpace(strings.ToLower(k)) {
		case "until":
			t, err := parseUntil(v)
			if err != nil {
				return f, err
			}
			f.until = t
		case "label":
			f.labels = append(f.labels, v)
		case "label!":
			f.notLabel = append(f.notLabel, v)
		default:
			return f, fmt.Errorf("invalid filter '%s'", k)
		}
	}
	return f, nil
}

// parseUntil reads docker's timestamps: a Go duration before now, Unix
// seconds, or an RFC 3339 date or date-time.
func parseUntil(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	if sec, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Unix(int64(sec), 0), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid filter 'until=%s': not a duration, Unix time or RFC 3339 date", v)
}

func (f pruneFilter) match(created time.Time, labels map[string]string) bool {
	if !f.until.IsZero() && !created.Before(f.until) {
		return false
	}
	has := func(kv string) bool {
		k, want, withValue := strings.Cut(kv, "=")
		got, ok := labels[k]
		return ok && (!withValue || got == want)
	}
	for _, l := range f.labels {
		if !has(l) {
			return false
		}
	}
	for _, l := range f.notLabel {
		if has(l) {
			return false
		}
	}
	return true
}

// confirm asks docker's question on stdin unless force; no answer is no.
func confirm(c *cobra.Command, force bool, warning string) bool {
	if force {
		return true
	}
	fmt.Fprintf(c.OutOrStdout(), "%s\nAre you sure you want to continue? [y/N] ", warning)
	line, _ := bufio.NewReader(c.InOrStdin()).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

// pruneImages removes dangling images (all unused ones with all) that pass f.
func pruneImages(ctx context.Context, s *store.Store, all bool, f pruneFilter) (store.PruneReport, error) {
	return s.Prune(ctx, store.PruneOptions{
		Images: func(img image.Image) bool {
			if !all && len(img.Names) > 0 {
				return false
			}
			created := img.Added
			if img.Config.Created != nil {
				created = *img.Config.Created
			}
			return f.match(created, img.Config.Config.Labels)
		},
		Untag: all,
	})
}

func printImagePrune(w io.Writer, rep store.PruneReport) {
	if len(rep.Untagged)+len(rep.Deleted)+len(rep.Layers) == 0 {
		return
	}
	fmt.Fprintln(w, "Deleted Images:")
	for _, n := range rep.Untagged {
		fmt.Fprintln(w, "untagged:", n)
	}
	for _, id := range rep.Deleted {
		fmt.Fprintln(w, "deleted:", id)
	}
	for _, id := range rep.Layers {
		fmt.Fprintln(w, "deleted:", id)
	}
	fmt.Fprintln(w)
}

func printReclaimed(w io.Writer, n int64) {
	fmt.Fprintln(w, "Total reclaimed space:", humanSize(n))
}

func newImagePruneCmd(g *globals) *cobra.Command {
	var all, force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			f, err := parsePruneFilter(filters)
			if err != nil {
				return usageOrError(c, err)
			}
			warning := "WARNING! This will remove all dangling images."
			if all {
				warning = "WARNING! This will remove all images without at least one container associated to them."
			}
			if !confirm(c, force, warning) {
				return nil
			}
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			rep, err := pruneImages(c.Context(), s, all, f)
			printImagePrune(c.OutOrStdout(), rep)
			if err != nil {
				return err
			}
			printReclaimed(c.OutOrStdout(), rep.Reclaimed)
			return nil
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	c.Flags().StringArrayVar(&filters, "filter", nil, `provide filter values (e.g. "until=<timestamp>")`)
	return c
}

// pruneContainers removes the stopped containers that pass f and returns
// their IDs and the bytes their writable layers held.
func pruneContainers(ctx context.Context, m *container.Manager, f pruneFilter) ([]string, int64, error) {
	ctrs, err := m.List(ctx)
	if err != nil {
		return nil, 0, err
	}
	var ids []string
	var size int64
	for _, ctr := range ctrs {
		if ctr.State.Status == container.StatusRunning || !f.match(ctr.Created, ctr.ImageConfig.Labels) {
			continue
		}
		n := m.LayerSize(ctx, ctr)
		switch err := m.Remove(ctx, ctr, false); {
		case err == nil:
			ids = append(ids, ctr.ID)
			size += n
		case store.IsNotFound(err):
		default:
			return ids, size, err
		}
	}
	return ids, size, nil
}

func printContainerPrune(w io.Writer, ids []string) {
	if len(ids) == 0 {
		return
	}
	fmt.Fprintln(w, "Deleted Containers:")
	for _, id := range ids {
		fmt.Fprintln(w, id)
	}
	fmt.Fprintln(w)
}

func newContainerPruneCmd(g *globals) *cobra.Command {
	var force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			f, err := parsePruneFilter(filters)
			if err != nil {
				return usageOrError(c, err)
			}
			if !confirm(c, force, "WARNING! This will remove all stopped containers.") {
				return nil
			}
			_, m, err := g.containers(c)
			if err != nil {
				return err
			}
			ids, size, err := pruneContainers(c.Context(), m, f)
			printContainerPrune(c.OutOrStdout(), ids)
			if err != nil {
				return err
			}
			printReclaimed(c.OutOrStdout(), size)
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	c.Flags().StringArrayVar(&filters, "filter", nil, `provide filter values (e.g. "until=<timestamp>")`)
	return c
}

func newSystemPruneCmd(g *globals) *cobra.Command {
	var all, force, volumes bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			f, err := parsePruneFilter(filters)
			if err != nil {
				return usageOrError(c, err)
			}
			images := "  - all dangling images\n  - all dangling build cache"
			if all {
				images = "  - all images without at least one container associated to them\n  - all build cache"
			}
			if volumes {
				images = "  - all anonymous volumes not used by at least one container\n" + images
			}
			if !confirm(c, force, "WARNING! This will remove:\n  - all stopped containers\n"+images+"\n") {
				return nil
			}
			s, m, err := g.containers(c)
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			ids, total, err := pruneContainers(c.Context(), m, f)
			printContainerPrune(w, ids)
			if err != nil {
				return err
			}
			if volumes {
				removed, freed, err := m.Volumes().Prune(c.Context(), false, nil, m.VolumeUsers)
				if len(removed) > 0 {
					fmt.Fprintln(w, "Deleted Volumes:")
					for _, n := range removed {
						fmt.Fprintln(w, n)
					}
					fmt.Fprintln(w)
				}
				if err != nil {
					return err
				}
				total += freed
			}
			// The build cache goes first: its step images then become
			// dangling images like any other.
			cache, err := builder.PruneCache(c.Context(), s, builder.PruneOptions{Until: f.until})
			if err != nil {
				return err
			}
			total += cache.Reclaimed
			rep, err := pruneImages(c.Context(), s, all, f)
			printImagePrune(w, rep)
			if err != nil {
				return err
			}
			total += rep.Reclaimed
			if len(cache.Images) > 0 || cache.Entries > 0 {
				fmt.Fprintln(w, "Deleted build cache objects:")
				for _, id := range cache.Images {
					fmt.Fprintln(w, id)
				}
				fmt.Fprintln(w)
			}
			printReclaimed(w, total)
			return nil
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images not just dangling ones")
	c.Flags().BoolVar(&volumes, "volumes", false, "prune anonymous volumes")
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	c.Flags().StringArrayVar(&filters, "filter", nil, `provide filter values (e.g. "label=<key>=<value>")`)
	return c
}

// usageOrError reports a malformed --filter as a usage error (exit 125).
func usageOrError(c *cobra.Command, err error) error {
	if err == errFilterFormat {
		return usageError{cmd: c.CommandPath(), err: err}
	}
	return err
}
