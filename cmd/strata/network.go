package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/container"
	"github.com/strata-project/strata/internal/errdefs"
	"github.com/strata-project/strata/internal/network"
	"github.com/strata-project/strata/internal/store"
)

func newPortCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  rangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			_, _, ctr, err := g.container(c, args[0])
			if err != nil {
				return err
			}
			ports := network.Report(ctr.State.Ports)
			out := c.OutOrStdout()
			if len(args) == 2 {
				p, err := network.ParsePort(args[1])
				if err != nil {
					return err
				}
				bs := ports[p]
				if len(bs) == 0 {
					return fmt.Errorf("No public port '%s' published for %s", p, args[0])
				}
				for _, b := range bs {
					fmt.Fprintf(out, "%s:%s\n", b.HostIP, b.HostPort)
				}
				return nil
			}
			for _, p := range ports.Ports() {
				for _, b := range ports[p] {
					fmt.Fprintf(out, "%s -> %s:%s\n", p, b.HostIP, b.HostPort)
				}
			}
			return nil
		},
	}
}

// newNetworkCmd is `strata network`: the built-in networks. strata has no
// user-defined networks (no bridge to attach them to), so the commands
// that would make or change one are refused.
func newNetworkCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "network", Short: "Manage networks"}
	c.AddCommand(newNetworkLsCmd(g), newNetworkInspectCmd(g), newNetworkRmCmd(), newNetworkPruneCmd())
	for _, verb := range []string{"create", "connect", "disconnect"} {
		c.AddCommand(&cobra.Command{
			Use:                verb,
			Short:              "Not supported: strata has only the built-in networks",
			DisableFlagParsing: true,
			RunE: func(c *cobra.Command, args []string) error {
				return fmt.Errorf("strata network %s: user-defined networks are not supported; containers use the built-in networks bridge (the default: their own namespace, connected by pasta), host, none or container:NAME", verb)
			},
		})
	}
	return c
}

// findBuiltin finds a built-in network by name or ID prefix.
func findBuiltin(ref string) (network.Builtin, bool) {
	for _, n := range network.Builtins() {
		if ref == n.Name || ref != "" && strings.HasPrefix(n.ID, ref) {
			return n, true
		}
	}
	return network.Builtin{}, false
}

// newNetworkRmCmd is `network rm`: the built-in networks cannot be removed
// and there are no others, with docker's messages.
func newNetworkRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			for _, ref := range args {
				if n, ok := findBuiltin(ref); ok {
					fmt.Fprintf(c.ErrOrStderr(), "Error: %s is a pre-defined network and cannot be removed\n", n.Name)
				} else {
					fmt.Fprintf(c.ErrOrStderr(), "Error: No such network: %s\n", ref)
				}
			}
			return exitError{code: 1}
		},
	}
}

// newNetworkPruneCmd is `network prune`: there are no user-defined
// networks, so there is never anything to remove; it asks and answers as
// docker does, so cleanup scripts run unchanged.
func newNetworkPruneCmd() *cobra.Command {
	var force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			if _, err := parsePruneFilter(filters); err != nil {
				return usageOrError(c, err)
			}
			confirm(c, force, "WARNING! This will remove all custom networks not used by at least one container.")
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	c.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (e.g. 'until=<timestamp>')")
	return c
}

// networkRow is one line of `network ls`, with docker's --format names.
type networkRow struct {
	ID, Name, Driver, Scope, IPv6, Internal, Labels, CreatedAt string
}

var networkHeaders = map[string]string{
	"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
	"IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
}

func newNetworkLsCmd(g *globals) *cobra.Command {
	var quiet, noTrunc bool
	var format string
	var filters []string
	c := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			match, err := networkFilter(filters)
			if err != nil {
				return usageError{cmd: c.CommandPath(), err: err}
			}
			var rows []networkRow
			for _, n := range network.Builtins() {
				if !match(n) {
					continue
				}
				id := n.ID
				if !noTrunc {
					id = id[:12]
				}
				rows = append(rows, networkRow{ID: id, Name: n.Name, Driver: n.Driver, Scope: "local", IPv6: "false", Internal: "false"})
			}
			if quiet {
				format = "{{.ID}}"
			}
			return writeRows(c.OutOrStdout(), format, "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", networkHeaders, rows)
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display network IDs")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate the output")
	c.Flags().StringVar(&format, "format", "", "format output using a Go template, 'table ...' or 'json'")
	c.Flags().StringArrayVarP(&filters, "filter", "f", nil, "provide filter values (e.g. 'driver=bridge')")
	return c
}

// networkFilter is `network ls --filter`: name (regexp), id (prefix),
// driver, scope and type (builtin/custom).
func networkFilter(args []string) (func(network.Builtin) bool, error) {
	f := map[string][]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, errFilterFormat
		}
		switch k = strings.ToLower(k); k {
		case "name":
			if _, err := regexp.Compile(v); err != nil {
				return nil, fmt.Errorf("invalid filter 'name=%s': %w", v, err)
			}
		case "id", "driver", "scope":
		case "type":
			if v != "builtin" && v != "custom" {
				return nil, fmt.Errorf("invalid filter: 'type'='%s'", v)
			}
		default:
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
		f[k] = append(f[k], v)
	}
	return func(n network.Builtin) bool {
		anyOf := func(key string, ok func(string) bool) bool {
			return len(f[key]) == 0 || slices.ContainsFunc(f[key], ok)
		}
		return anyOf("name", func(v string) bool { return regexp.MustCompile(v).MatchString(n.Name) }) &&
			anyOf("id", func(v string) bool { return strings.HasPrefix(n.ID, v) }) &&
			anyOf("driver", func(v string) bool { return v == n.Driver }) &&
			anyOf("scope", func(v string) bool { return v == "local" }) &&
			anyOf("type", func(v string) bool { return v == "builtin" })
	}, nil
}

// inspectNetwork is docker's `network inspect` shape for a built-in network.
type inspectNetwork struct {
	Name       string                      `json:"Name"`
	ID         string                      `json:"Id"`
	Created    string                      `json:"Created"`
	Scope      string                      `json:"Scope"`
	Driver     string                      `json:"Driver"`
	EnableIPv6 bool                        `json:"EnableIPv6"`
	Internal   bool                        `json:"Internal"`
	Attachable bool                        `json:"Attachable"`
	Ingress    bool                        `json:"Ingress"`
	Containers map[string]inspectNetworkCt `json:"Containers"`
	Options    map[string]string           `json:"Options"`
	Labels     map[string]string           `json:"Labels"`
}

type inspectNetworkCt struct {
	Name        string `json:"Name"`
	IPv4Address string `json:"IPv4Address"`
}

func newNetworkInspectCmd(g *globals) *cobra.Command {
	return inspectCommand(g, "inspect [OPTIONS] NETWORK [NETWORK...]", "Display detailed information on one or more networks",
		func(c *cobra.Command, s *store.Store, ref string) (any, error) {
			if n, ok := findBuiltin(ref); ok {
				out := inspectNetwork{Name: n.Name, ID: n.ID, Created: "0001-01-01T00:00:00Z", Scope: "local", Driver: n.Driver,
					Containers: map[string]inspectNetworkCt{}, Options: map[string]string{}, Labels: map[string]string{}}
				ctrs, err := container.NewManager(s, defaultRuntime()).List(c.Context())
				if err != nil {
					return nil, err
				}
				addr := network.HostAddress()
				for _, ctr := range ctrs {
					if ctr.State.Status != container.StatusRunning || ctr.NetworkName() != n.Name {
						continue
					}
					ct := inspectNetworkCt{Name: ctr.Name}
					if n.Name == network.Bridge && addr.IP != "" {
						ct.IPv4Address = fmt.Sprintf("%s/%d", addr.IP, addr.PrefixLen)
					}
					out.Containers[ctr.ID] = ct
				}
				return out, nil
			}
			return nil, errdefs.NotFound("network", ref)
		})
}
