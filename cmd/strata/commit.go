package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/archive"
	"github.com/strata-project/strata/internal/cp"
	"github.com/strata-project/strata/internal/errdefs"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/store"
)

func newCommitCmd(g *globals) *cobra.Command {
	var changes []string
	var message, author string
	var pause bool
	c := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  rangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			opts := store.CommitOptions{Changes: changes, Message: message, Author: author}
			if len(args) == 2 {
				ref, err := image.ParseTagged(args[1])
				if err != nil {
					return err
				}
				opts.Ref = ref
			}
			s, m, ctr, err := g.container(c, args[0])
			if err != nil {
				return err
			}
			opts.SnapshotKey, opts.Image = ctr.SnapshotKey, ctr.Image
			opts.Config = ctr.RunConfig()
			opts.CreatedBy = strings.Join(containerArgs(ctr), " ")
			var id digest.Digest
			commit := func() error {
				var err error
				id, err = s.CommitContainer(c.Context(), opts)
				return err
			}
			if pause {
				err = m.Frozen(c.Context(), ctr, commit)
			} else {
				err = commit()
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), id)
			return nil
		},
	}
	f := c.Flags()
	f.StringArrayVarP(&changes, "change", "c", nil, "apply a Dockerfile instruction to the created image")
	f.StringVarP(&message, "message", "m", "", "commit message")
	f.StringVarP(&author, "author", "a", "", `author (e.g. "John Hannibal Smith <hannibal@a-team.com>")`)
	f.BoolVarP(&pause, "pause", "p", true, "pause the container during commit")
	return c
}

func newDiffCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			_, m, ctr, err := g.container(c, args[0])
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			return m.Changes(c.Context(), ctr, func(ch archive.Change) error {
				_, err := fmt.Fprintf(out, "%s %s\n", ch.Kind, ch.Path)
				return err
			})
		},
	}
}

func newExportCmd(g *globals) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var w io.Writer = c.OutOrStdout()
			if output == "" && isTerminal(os.Stdout) {
				return fmt.Errorf("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			_, m, ctr, err := g.container(c, args[0])
			if err != nil {
				return err
			}
			return writeOutput(output, w, func(w io.Writer) error {
				return m.WithRootfs(c.Context(), ctr, func(rootfs string) error {
					return archive.WriteTreeDiff(c.Context(), w, "", rootfs, archive.DiffOptions{})
				})
			})
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return c
}

func dirOf(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		if i == 0 {
			return "/"
		}
		return p[:i]
	}
	return "."
}

func isTerminal(f *os.File) bool { return oci.IsTerminal(f) }

func newCpCmd(g *globals) *cobra.Command {
	var follow, archiveMode, quiet bool
	c := &cobra.Command{
		Use:   "cp CONTAINER:SRC_PATH DEST_PATH|-\n  strata cp SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			srcCtr, srcPath := splitCpArg(args[0])
			dstCtr, dstPath := splitCpArg(args[1])
			switch {
			case srcCtr != "" && dstCtr != "":
				return usageError{cmd: c.CommandPath(), err: fmt.Errorf("copying between containers is not supported")}
			case srcCtr == "" && dstCtr == "":
				return usageError{cmd: c.CommandPath(), err: fmt.Errorf("must specify at least one container source")}
			}
			_, m, ctr, err := g.container(c, srcCtr+dstCtr)
			if err != nil {
				return err
			}
			// A running container is paused while the copy runs, as docker
			// does: every open is resolved inside its root anyway, but a
			// directory walk reads by path below what was opened.
			return m.WithRootfs(c.Context(), ctr, func(rootfs string) error {
				return m.Frozen(c.Context(), ctr, func() error {
					// A path under a volume or bind mount is copied in that
					// mount's directory, as docker's cp does.
					if srcCtr != "" {
						root, rel, _ := m.CopyRoot(ctr, rootfs, srcPath)
						src := cp.Endpoint{Root: root, Path: rel, FollowLink: follow}
						if dstPath == "-" {
							return cp.WriteSource(c.Context(), c.OutOrStdout(), src)
						}
						// As docker: the host's copy belongs to whoever copies.
						caller := &[2]int{os.Getuid(), os.Getgid()}
						return cp.Copy(c.Context(), src, cp.Endpoint{Root: "/", Path: dstPath, Owner: caller})
					}
					root, rel, readOnly := m.CopyRoot(ctr, rootfs, dstPath)
					if readOnly {
						return errdefs.Invalidf("mounted volume is marked read-only")
					}
					dst := cp.Endpoint{Root: root, Path: rel}
					// -a, as docker: the copy belongs to the container's
					// user (when it has one; docker keeps the source's
					// owners otherwise), looked up in the container.
					if user := ctr.RunConfig().User; archiveMode && user != "" {
						uid, gid, _, err := oci.ResolveUser(rootfs, user)
						if err != nil {
							return err
						}
						dst.Owner = &[2]int{int(uid), int(gid)}
					}
					if srcPath == "-" {
						return cp.Extract(c.Context(), os.Stdin, dst)
					}
					return cp.Copy(c.Context(), cp.Endpoint{Root: "/", Path: srcPath, FollowLink: follow}, dst)
				})
			})
		},
	}
	c.Flags().BoolVarP(&follow, "follow-link", "L", false, "always follow symbol link in SRC_PATH")
	c.Flags().BoolVarP(&archiveMode, "archive", "a", false, "archive mode (copy all uid/gid information)")
	// strata cp prints no progress: there is nothing for -q to suppress.
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress progress output during copy")
	return c
}

// splitCpArg splits "CONTAINER:PATH"; a local path has no container part
// (paths with a colon can be given as ./a:b, like docker).
func splitCpArg(arg string) (ctr, p string) {
	if strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	if i := strings.Index(arg, ":"); i > 0 {
		return arg[:i], arg[i+1:]
	}
	return "", arg
}
