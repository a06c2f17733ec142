package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/registry"
)

func newSearchCmd() *cobra.Command {
	var limit int
	var filters []string
	var noTrunc, tlsVerify bool
	var format string
	c := &cobra.Command{
		Use:   "search [OPTIONS] TERM",
		Short: "Search Docker Hub, or REGISTRY/TERM a registry, for images",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if limit < 1 || limit > 100 {
				return fmt.Errorf("limit %d is outside the range of [1, 100]", limit)
			}
			keep, err := searchFilter(filters)
			if err != nil {
				return usageError{cmd: c.CommandPath(), err: err}
			}
			access, err := registryAccess(tlsVerify)
			if err != nil {
				return err
			}
			found, err := registry.Search(c.Context(), access, args[0], limit)
			if err != nil {
				return err
			}
			type row struct {
				Name, Description, StarCount, IsOfficial, IsAutomated string
			}
			var rows []row
			for _, r := range found {
				if !keep(r) {
					continue
				}
				desc := strings.ReplaceAll(r.Description, "\n", " ")
				if !noTrunc && len([]rune(desc)) > 45 {
					desc = string([]rune(desc)[:44]) + "…"
				}
				rows = append(rows, row{Name: r.Name, Description: desc, StarCount: strconv.Itoa(r.StarCount), IsOfficial: okMark(r.IsOfficial), IsAutomated: okMark(r.IsAutomated)})
			}
			return writeRows(c.OutOrStdout(), format,
				"table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
				map[string]string{"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS", "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED"}, rows)
		},
	}
	c.Flags().IntVar(&limit, "limit", 25, "max number of search results")
	c.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter output: stars=N, is-official=true|false, is-automated=true|false")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	c.Flags().StringVar(&format, "format", "", "pretty-print search using a Go template")
	c.Flags().BoolVar(&tlsVerify, "tls-verify", true, "require HTTPS with a verified certificate (plain HTTP only for loopback registries)")
	return c
}

func okMark(b bool) string {
	if b {
		return "[OK]"
	}
	return ""
}

// searchFilter reads docker's search filters into one predicate.
func searchFilter(filters []string) (func(registry.SearchResult) bool, error) {
	minStars := 0
	var official, automated *bool
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %s", f)
		}
		switch k {
		case "stars":
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("invalid filter 'stars=%s'", v)
			}
			minStars = n
		case "is-official", "is-automated":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("invalid filter '%s=%s'", k, v)
			}
			if k == "is-official" {
				official = &b
			} else {
				automated = &b
			}
		default:
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
	}
	return func(r registry.SearchResult) bool {
		return r.StarCount >= minStars && (official == nil || r.IsOfficial == *official) && (automated == nil || r.IsAutomated == *automated)
	}, nil
}
