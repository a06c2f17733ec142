package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/container"
)

func newExecCmd(g *globals) *cobra.Command {
	var (
		env, envFiles                        []string
		workdir, user                        string
		interactive, tty, detach, privileged bool
	)
	c := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Long: "Execute a command in a running container.\n\n" +
			"The command runs with the container's environment, user, working\n" +
			"directory and confinement unless the options change them; strata\n" +
			"exits with its exit status (126: it could not be run, 127: not found).",
		Args: minArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			cfg := container.ExecConfig{
				Cmd: args[1:], WorkingDir: workdir, User: user,
				Tty: tty, Detach: detach, Privileged: privileged,
			}
			for _, path := range envFiles {
				kv, err := readEnvFile(path)
				if err != nil {
					return usageError{cmd: c.CommandPath(), err: err}
				}
				cfg.Env = append(cfg.Env, kv...)
			}
			for _, e := range env {
				if kv, ok := hostEnv(e); ok {
					cfg.Env = append(cfg.Env, kv)
				}
			}
			if !detach {
				if err := checkTty(interactive, tty); err != nil {
					return err
				}
			}
			s, m, ctr, err := g.container(c, args[0])
			if err != nil {
				return err
			}
			if detach && tty {
				// docker's daemon keeps a detached exec's pty; strata
				// leaves a small process of its own to do it.
				exe, err := os.Executable()
				if err != nil {
					return err
				}
				cfg.PtyHolder = []string{exe, "--root", s.Root(), ptyHolderCmdName}
			}
			stdio := container.AttachIO{Stdout: os.Stdout, Stderr: os.Stderr}
			if interactive && !detach {
				stdio.Stdin = os.Stdin
			}
			code, err := m.Exec(c.Context(), ctr, cfg, stdio)
			var ee *container.ExecError
			switch {
			case errors.As(err, &ee):
				return exitError{code: ee.Code, err: err}
			case errors.Is(err, container.ErrNotRunning):
				return fmt.Errorf("container %s is not running", ctr.ID)
			case err != nil:
				return err
			case code != 0:
				return exitError{code: code}
			}
			return nil
		},
	}
	fl := c.Flags()
	// Flags after the container name belong to the command.
	fl.SetInterspersed(false)
	fl.BoolVarP(&interactive, "interactive", "i", false, "keep STDIN open")
	fl.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.BoolVarP(&detach, "detach", "d", false, "detached mode: run the command in the background")
	fl.StringArrayVarP(&env, "env", "e", nil, "set environment variables (KEY=VALUE, or KEY to take the host's value)")
	fl.StringArrayVar(&envFiles, "env-file", nil, "read in a file of environment variables")
	fl.StringVarP(&workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fl.BoolVar(&privileged, "privileged", false, "give extended privileges to the command")
	return c
}

// ptyHolderCmdName is the hidden command that holds a detached exec's pty.
const ptyHolderCmdName = "exec-pty-holder"

func newPtyHolderCmd() *cobra.Command {
	return &cobra.Command{
		Use:    ptyHolderCmdName,
		Short:  "Hold a detached exec's terminal until it ends (internal)",
		Hidden: true,
		Args:   exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			container.DrainPty(os.NewFile(3, "pty"))
			return nil
		},
	}
}
