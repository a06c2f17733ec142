package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/registry"
)

func newPushCmd(g *globals) *cobra.Command {
	var quiet, allTags, tlsVerify bool
	var compression string
	c := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
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
			pushed, err := registry.Push(c.Context(), s, args[0], registry.PushOptions{
				Access: access, Compression: compression, AllTags: allTags, Progress: pr.Event,
			})
			pr.Close()
			if err != nil {
				return err
			}
			if quiet {
				for _, p := range pushed {
					fmt.Fprintln(out, p.Ref.String())
				}
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&allTags, "all-tags", "a", false, "push all tags of the repository")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	c.Flags().StringVar(&compression, "compression", "", "compression of uploaded layers: gzip, zstd or none (default: reuse what the registry has, else gzip)")
	c.Flags().BoolVar(&tlsVerify, "tls-verify", true, "require HTTPS with a verified certificate (plain HTTP only for loopback registries)")
	return c
}

// registryAccess is how commands reach registries: strata's config file
// (insecure-registries) and --tls-verify.
func registryAccess(tlsVerify bool) (registry.Access, error) {
	a, err := registry.LoadAccess("")
	if err != nil {
		return a, err
	}
	a.SkipTLSVerify = !tlsVerify
	return a, nil
}
