package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/container"
	"github.com/strata-project/strata/internal/volume"
)

func newVolumeCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "volume COMMAND", Short: "Manage volumes"}
	c.AddCommand(newVolumeCreateCmd(g), newVolumeLsCmd(g), newVolumeInspectCmd(g), newVolumeRmCmd(g), newVolumePruneCmd(g))
	return c
}

// volumes opens the store's container manager, which knows the volumes
// and who uses them.
func (g *globals) volumes(c *cobra.Command) (*container.Manager, *volume.Volumes, error) {
	_, m, err := g.containers(c)
	if err != nil {
		return nil, nil, err
	}
	return m, m.Volumes(), nil
}

func parseKV(flag string, list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok && flag == "opt" {
			return nil, fmt.Errorf("invalid option %q: want KEY=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

func newVolumeCreateCmd(g *globals) *cobra.Command {
	var driver string
	var labels, opts []string
	c := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  rangeArgs(0, 1),
		RunE: func(c *cobra.Command, args []string) error {
			lbl, err := parseKV("label", labels)
			if err != nil {
				return usageError{cmd: c.CommandPath(), err: err}
			}
			o, err := parseKV("opt", opts)
			if err != nil {
				return usageError{cmd: c.CommandPath(), err: err}
			}
			vol := volume.Volume{Driver: driver, Labels: lbl, Options: o}
			if len(args) == 1 {
				vol.Name = args[0]
			} else if vol.Name, err = volume.NewAnonymousName(); err != nil {
				return err
			}
			_, vols, err := g.volumes(c)
			if err != nil {
				return err
			}
			v, err := vols.Create(c.Context(), vol)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), v.Name)
			return nil
		},
	}
	c.Flags().StringVarP(&driver, "driver", "d", volume.DriverLocal, "specify volume driver name (local)")
	c.Flags().StringArrayVar(&labels, "label", nil, "set metadata for a volume")
	c.Flags().StringArrayVarP(&opts, "opt", "o", nil, "set driver specific options (type=tmpfs, device=tmpfs, o=size=64m)")
	return c
}

// volumeRow is one `volume ls` line, with docker's --format names.
type volumeRow struct {
	Driver, Name, Scope, Mountpoint, Labels, CreatedAt string
	labels                                             map[string]string
}

var volumeHeaders = map[string]string{"Driver": "DRIVER", "Name": "VOLUME NAME", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "CreatedAt": "CREATED AT"}

// Label answers {{.Label "k"}} as docker's does.
func (r volumeRow) Label(k string) string { return r.labels[k] }

func newVolumeLsCmd(g *globals) *cobra.Command {
	var quiet bool
	var format string
	var filters []string
	c := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			keep, err := volumeFilter(filters)
			if err != nil {
				return usageError{cmd: c.CommandPath(), err: err}
			}
			m, vols, err := g.volumes(c)
			if err != nil {
				return err
			}
			list, err := vols.List()
			if err != nil {
				return err
			}
			var rows []volumeRow
			for _, v := range list {
				users, err := m.VolumeUsers(v.Name)
				if err != nil {
					return err
				}
				if !keep(v, len(users) > 0) {
					continue
				}
				rows = append(rows, volumeRow{
					Driver: v.Driver, Name: v.Name, Scope: "local", Mountpoint: vols.Path(v.Name),
					Labels: joinLabels(v.Labels), CreatedAt: v.CreatedAt.Format(time.RFC3339), labels: v.Labels,
				})
			}
			if quiet {
				format = "{{.Name}}"
			}
			return writeRows(c.OutOrStdout(), format, "table {{.Driver}}\t{{.Name}}", volumeHeaders, rows)
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display volume names")
	c.Flags().StringVar(&format, "format", "", "format output using a Go template, or json")
	c.Flags().StringArrayVarP(&filters, "filter", "f", nil, "provide filter values (dangling=true|false, name=, label=K[=V], driver=)")
	return c
}

// volumeFilter compiles `volume ls -f` and `volume prune --filter`
// conditions: every key must match (values of one key are alternatives).
func volumeFilter(filters []string) (func(v volume.Volume, used bool) bool, error) {
	byKey := map[string][]string{}
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value)")
		}
		switch k {
		case "dangling":
			if v != "true" && v != "false" && v != "1" && v != "0" {
				return nil, fmt.Errorf("invalid filter 'dangling=%s'", v)
			}
		case "name", "label", "driver":
		default:
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
		byKey[k] = append(byKey[k], v)
	}
	return func(vol volume.Volume, used bool) bool {
		for k, vals := range byKey {
			ok := false
			for _, v := range vals {
				switch k {
				case "dangling":
					ok = ok || (v == "true" || v == "1") == !used
				case "name":
					ok = ok || strings.Contains(vol.Name, v)
				case "driver":
					ok = ok || vol.Driver == v
				case "label":
					lk, lv, hasValue := strings.Cut(v, "=")
					got, has := vol.Labels[lk]
					ok = ok || (has && (!hasValue || got == lv))
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}, nil
}

// inspectVolume is docker's `volume inspect` shape.
type inspectVolume struct {
	CreatedAt  string            `json:"CreatedAt"`
	Driver     string            `json:"Driver"`
	Labels     map[string]string `json:"Labels"`
	Mountpoint string            `json:"Mountpoint"`
	Name       string            `json:"Name"`
	Options    map[string]string `json:"Options"`
	Scope      string            `json:"Scope"`
}

func newVolumeInspectCmd(g *globals) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			_, vols, err := g.volumes(c)
			if err != nil {
				return err
			}
			var out []inspectVolume
			var failed error
			for _, name := range args {
				v, err := vols.Get(name)
				if err != nil {
					fmt.Fprintln(c.ErrOrStderr(), "Error:", err)
					failed = exitError{code: 1}
					continue
				}
				out = append(out, inspectVolume{
					CreatedAt: v.CreatedAt.Format(time.RFC3339), Driver: v.Driver, Labels: v.Labels,
					Mountpoint: vols.Path(v.Name), Name: v.Name, Options: v.Options, Scope: "local",
				})
			}
			if format != "" {
				if err := writeRows(c.OutOrStdout(), format, "", nil, out); err != nil {
					return err
				}
				return failed
			}
			if out == nil {
				out = []inspectVolume{}
			}
			b, err := json.MarshalIndent(out, "", "    ")
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), string(b))
			return failed
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return c
}

func newVolumeRmCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			m, vols, err := g.volumes(c)
			if err != nil {
				return err
			}
			var failed error
			for _, name := range args {
				err := vols.Remove(c.Context(), name, m.VolumeUsers)
				if err != nil && force && errors.Is(err, volume.ErrNotFound) {
					err = nil // -f: a missing volume is no failure
				}
				if err != nil {
					fmt.Fprintln(c.ErrOrStderr(), "Error:", err)
					failed = exitError{code: 1}
					continue
				}
				fmt.Fprintln(c.OutOrStdout(), name)
			}
			return failed
		},
	}
	// docker's -f does not remove a volume in use either.
	c.Flags().BoolVarP(&force, "force", "f", false, "do not fail for volumes that do not exist")
	return c
}

func newVolumePruneCmd(g *globals) *cobra.Command {
	var force, all bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Long:  "Remove the anonymous volumes no container uses; with -a, every unused volume.",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			f, err := parsePruneFilter(filters)
			if err != nil {
				return usageError{cmd: c.CommandPath(), err: err}
			}
			what := "anonymous local volumes"
			if all {
				what = "all local volumes"
			}
			if !confirm(c, force, "WARNING! This will remove "+what+" not used by at least one container.") {
				return nil
			}
			m, vols, err := g.volumes(c)
			if err != nil {
				return err
			}
			removed, freed, err := vols.Prune(c.Context(), all, func(v volume.Volume) bool { return f.match(v.CreatedAt, v.Labels) }, m.VolumeUsers)
			sort.Strings(removed)
			if len(removed) > 0 {
				fmt.Fprintln(c.OutOrStdout(), "Deleted Volumes:")
				for _, n := range removed {
					fmt.Fprintln(c.OutOrStdout(), n)
				}
				fmt.Fprintln(c.OutOrStdout())
			}
			fmt.Fprintf(c.OutOrStdout(), "Total reclaimed space: %s\n", humanSize(freed))
			return err
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	c.Flags().BoolVarP(&all, "all", "a", false, "remove all unused volumes, not just anonymous ones")
	c.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (label=K[=V], label!=K[=V], until=T)")
	return c
}
