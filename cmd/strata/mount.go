package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newMountCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "mount IMAGE",
		Short: "Mount an image's root filesystem read-only and print where",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			p, err := s.MountImage(c.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), p)
			return nil
		},
	}
}

func newUmountCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "umount IMAGE [IMAGE...]",
		Aliases: []string{"unmount"},
		Short:   "Unmount image root filesystems mounted with strata mount",
		Args:    minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			for _, ref := range args {
				if err := s.UnmountImage(c.Context(), ref); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
