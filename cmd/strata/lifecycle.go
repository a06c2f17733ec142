package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/container"
	"github.com/strata-project/strata/internal/events"
)

func newRestartCmd(g *globals) *cobra.Command {
	var seconds int
	var signal string
	c := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o, err := stopOptions(c, seconds, signal)
			if err != nil {
				return err
			}
			s, m, err := g.containers(c)
			if err != nil {
				return err
			}
			return forEachContainer(c, m, args, func(m *container.Manager, ctr container.Container) error {
				if err := m.Stop(c.Context(), ctr, o); err != nil {
					return err
				}
				ctr, err := m.Get(c.Context(), ctr.ID)
				if err != nil {
					return err
				}
				if err := startDetached(c, s, m, ctr); err != nil {
					return err
				}
				m.Event(ctr, "restart")
				return nil
			})
		},
	}
	c.Flags().IntVarP(&seconds, "time", "t", 0, "seconds to wait before killing the container (default: its --stop-timeout, else 10)")
	c.Flags().StringVarP(&signal, "signal", "s", "", "signal to stop the container with")
	return c
}

func newPauseCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return eachContainer(c, g, args, func(m *container.Manager, ctr container.Container) error {
				return m.Pause(c.Context(), ctr)
			})
		},
	}
}

func newUnpauseCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return eachContainer(c, g, args, func(m *container.Manager, ctr container.Container) error {
				return m.Unpause(c.Context(), ctr)
			})
		},
	}
}

func newRenameCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			_, m, ctr, err := g.container(c, args[0])
			if err != nil {
				return err
			}
			return m.Rename(c.Context(), ctr, args[1])
		},
	}
}

func newTopCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			_, m, ctr, err := g.container(c, args[0])
			if err != nil {
				return err
			}
			out, err := m.Top(c.Context(), ctr, args[1:])
			if err != nil {
				return err
			}
			return writeTop(c.OutOrStdout(), string(out))
		},
	}
	c.Flags().SetInterspersed(false) // ps's options are ps's
	return c
}

// writeTop prints ps output as docker's top does: the header's columns,
// each line split into as many fields (the last, the command, keeps its
// spaces), aligned in columns at least 20 wide.
func writeTop(w io.Writer, ps string) error {
	lines := strings.Split(strings.TrimRight(ps, "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
		return errors.New("ps printed nothing")
	}
	titles := strings.Fields(lines[0])
	tw := tabwriter.NewWriter(w, 20, 1, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(titles, "\t"))
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) > len(titles) {
			// The last column (CMD, COMMAND, ARGS) holds the rest.
			f = append(f[:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		}
		fmt.Fprintln(tw, strings.Join(f, "\t"))
	}
	return tw.Flush()
}

// eventRow is an event with docker's --format fields.
type eventRow struct {
	events.Event
}

// String is docker's default line: time, type, action, ID, attributes.
func (e eventRow) String() string {
	keys := make([]string, 0, len(e.Actor.Attributes))
	for k := range e.Actor.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]string, len(keys))
	for i, k := range keys {
		attrs[i] = k + "=" + e.Actor.Attributes[k]
	}
	return fmt.Sprintf("%s %s %s %s (%s)", e.At().Format("2006-01-02T15:04:05.000000000Z07:00"), e.Type, e.Action, e.Actor.ID, strings.Join(attrs, ", "))
}

func newEventsCmd(g *globals) *cobra.Command {
	var since, until, format string
	var filters []string
	c := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from strata's event log",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			now := time.Now()
			var from, to time.Time
			var err error
			if since != "" {
				if from, err = parseLogTime("since", since, now); err != nil {
					return err
				}
			} else {
				from = now
			}
			if until != "" {
				if to, err = parseLogTime("until", until, now); err != nil {
					return err
				}
			}
			match, err := eventFilter(filters)
			if err != nil {
				return usageError{cmd: c.CommandPath(), err: err}
			}
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			var write func(eventRow) error
			if format == "" {
				write = func(e eventRow) error {
					_, err := fmt.Fprintln(c.OutOrStdout(), e.String())
					return err
				}
			} else {
				tmpl, _, err := parseFormat(format)
				if err != nil {
					return err
				}
				write = func(e eventRow) error {
					if err := tmpl.Execute(c.OutOrStdout(), e); err != nil {
						return fmt.Errorf("template: %w", err)
					}
					_, err := fmt.Fprintln(c.OutOrStdout())
					return err
				}
			}
			var werr error
			// Without --until, docker follows the log until interrupted.
			err = events.Open(s.Root()).Read(c.Context(), from, to, until == "" || to.After(now), func(e events.Event) bool {
				if !match(e) {
					return true
				}
				werr = write(eventRow{e})
				return werr == nil
			})
			return errors.Join(err, werr)
		},
	}
	c.Flags().StringVar(&since, "since", "", "show all events created since timestamp")
	c.Flags().StringVar(&until, "until", "", "stream events until this timestamp")
	c.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided (container, event, image, label, type)")
	c.Flags().StringVar(&format, "format", "", "format the output using the given Go template, or 'json'")
	return c
}

// eventFilter builds the --filter predicate: values of one key are ORed,
// keys are ANDed, as docker does.
func eventFilter(filters []string) (func(events.Event) bool, error) {
	want := map[string][]string{}
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value)")
		}
		switch k {
		case "container", "event", "image", "label", "type":
		default:
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
		want[k] = append(want[k], v)
	}
	return func(e events.Event) bool {
		for k, vs := range want {
			ok := false
			for _, v := range vs {
				switch k {
				case "container":
					ok = ok || e.Actor.Attributes["name"] == v || strings.HasPrefix(e.Actor.ID, v)
				case "event":
					// "health_status" matches "health_status: healthy", as in docker.
					ok = ok || e.Action == v || strings.HasPrefix(e.Action, v+":")
				case "image":
					ok = ok || e.Actor.Attributes["image"] == v || e.From == v
				case "type":
					ok = ok || e.Type == v
				case "label":
					lk, lv, hasValue := strings.Cut(v, "=")
					got, present := e.Actor.Attributes[lk]
					ok = ok || (present && (!hasValue || got == lv))
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}, nil
}
