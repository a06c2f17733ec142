package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/strata-project/strata/internal/registry"
)

func newLoginCmd() *cobra.Command {
	var user, password string
	var passwordStdin, tlsVerify bool
	c := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry (Docker Hub when no server is given)",
		Args:  rangeArgs(0, 1),
		RunE: func(c *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			stderr := c.ErrOrStderr()
			switch {
			case password != "" && passwordStdin:
				return usageError{cmd: c.CommandPath(), err: fmt.Errorf("--password and --password-stdin are mutually exclusive")}
			case passwordStdin && user == "":
				return usageError{cmd: c.CommandPath(), err: fmt.Errorf("Must provide --username with --password-stdin")}
			case password != "":
				fmt.Fprintln(stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
			}
			if passwordStdin {
				b, err := io.ReadAll(c.InOrStdin())
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			access, err := registryAccess(tlsVerify)
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			creds := registry.Credentials{Username: user, Password: password}
			if user == "" && password == "" {
				// As docker: stored credentials are tried before asking.
				if stored, ok, err := registry.StoredCredentials(server); err == nil && ok {
					if registry.Verify(c.Context(), access, registry.ServerHost(registry.ServerKey(server)), stored) == nil {
						fmt.Fprintln(out, "Authenticating with existing credentials...")
						fmt.Fprintln(out, "Login Succeeded")
						return nil
					}
				}
			}
			if creds.Username == "" || creds.Password == "" {
				if err := prompt(c, &creds); err != nil {
					return err
				}
			}
			// Stored without a credential helper, docker's config code
			// warns (on stderr) that the password is unencrypted.
			if _, err := registry.Login(c.Context(), access, server, creds); err != nil {
				return err
			}
			fmt.Fprintln(out, "Login Succeeded")
			return nil
		},
	}
	c.Flags().StringVarP(&user, "username", "u", "", "username")
	c.Flags().StringVarP(&password, "password", "p", "", "password")
	c.Flags().BoolVar(&passwordStdin, "password-stdin", false, "take the password from stdin")
	c.Flags().BoolVar(&tlsVerify, "tls-verify", true, "require HTTPS with a verified certificate (plain HTTP only for loopback registries)")
	return c
}

// prompt asks for what the flags did not give, on a terminal only: the
// password is never echoed.
func prompt(c *cobra.Command, creds *registry.Credentials) error {
	in, ok := c.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return fmt.Errorf("Cannot perform an interactive login from a non TTY device")
	}
	out := c.OutOrStdout()
	if creds.Username == "" {
		fmt.Fprint(out, "Username: ")
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil {
			return err
		}
		creds.Username = strings.TrimSpace(line)
		if creds.Username == "" {
			return fmt.Errorf("Username is required")
		}
	}
	if creds.Password == "" {
		fmt.Fprint(out, "Password: ")
		b, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(out)
		if err != nil {
			return err
		}
		creds.Password = string(b)
		if creds.Password == "" {
			return fmt.Errorf("Password is required")
		}
	}
	return nil
}

func newLogoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry (Docker Hub when no server is given)",
		Args:  rangeArgs(0, 1),
		RunE: func(c *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			key := registry.ServerKey(server)
			// As docker: the same words whether or not there was a login.
			fmt.Fprintf(c.OutOrStdout(), "Removing login credentials for %s\n", key)
			_, err := registry.Logout(server)
			return err
		},
	}
}
