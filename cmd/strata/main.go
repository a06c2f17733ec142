// Command strata is a daemonless container image engine with docker's verbs.
// Each command parses flags, makes one call into an internal package and
// prints the result; the logic lives in the packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/builder"
	"github.com/strata-project/strata/internal/container"
	"github.com/strata-project/strata/internal/errdefs"
	"github.com/strata-project/strata/internal/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// globals are the flags every command shares.
type globals struct {
	root   string
	driver string
	// reconciled is what opening the store cleaned up after dead
	// processes (system check reports it).
	reconciled store.Reconciled
	thawed     []string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile := startProfile()
	code := run(ctx, os.Args[1:])
	stopProfile()
	os.Exit(code)
}

// run executes one command line and returns the process exit status.
func run(ctx context.Context, args []string) int {
	g := &globals{}
	root := newRootCmd(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	return report(os.Stderr, err)
}

// report prints err as docker would and returns the exit status: the one
// place where error kinds become messages and exit codes.
func report(w io.Writer, err error) int {
	var uc unknownCommandError
	if errors.As(err, &uc) {
		fmt.Fprintf(w, "strata: unknown command: %s %s\n\nRun '%s --help' for more information\n", uc.cmd, shortenWords(uc.arg), uc.cmd)
		return 1
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(w, "Error:", message(ee.err))
		}
		return ee.code
	}
	var ue usageError
	if errors.As(err, &ue) && ue.args {
		// docker: `"docker rmi" requires at least 1 argument.`, exit 1.
		fmt.Fprintf(w, "%s.\nSee '%s --help'.\n", message(err), ue.cmd)
		return 1
	}
	fmt.Fprintln(w, "Error:", message(err))
	if errors.As(err, &ue) {
		fmt.Fprintf(w, "See '%s --help'.\n", ue.cmd)
		return 125
	}
	return 1
}

// exitError carries a status other than 1, e.g. a container's exit code.
type exitError struct {
	code int
	err  error // printed when not nil
	// onlyMissing: every failure it stands for was a lookup that found
	// nothing (rm -f and rmi -f do not fail for those).
	onlyMissing bool
}

// add prints err for one of several objects a command works on and
// returns the command's exit error so far (nil: no failure yet).
func (e *exitError) add(w io.Writer, err error) *exitError {
	fmt.Fprintln(w, "Error:", message(err))
	missing := errdefs.IsNotFound(err)
	if e == nil {
		return &exitError{code: 1, onlyMissing: missing}
	}
	e.onlyMissing = e.onlyMissing && missing
	return e
}

func (e exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

// unknownCommandError is a command name that is not one of strata's.
type unknownCommandError struct{ cmd, arg string }

func (e unknownCommandError) Error() string { return "unknown command: " + e.cmd + " " + e.arg }

// groupCommands makes every command that only groups others (strata,
// image, container, builder...) print its help when given nothing, and
// fail as docker does when given a name it does not have, rather than
// print help and exit 0 (which a script would take for success).
func groupCommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		groupCommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return unknownCommandError{cmd: c.CommandPath(), arg: args[0]}
		}
		return nil
	}
	c.RunE = func(c *cobra.Command, args []string) error { return c.Help() }
}

// usageError is a command-line mistake: docker exits 125 for those, and 1
// for a wrong number of arguments (args).
type usageError struct {
	cmd  string
	err  error
	args bool
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// message is what the user reads for err: a lookup that found nothing in
// docker's words alone ("No such image: NAME"), anything else as wrapped,
// and never a name so long that it buries the message.
func message(err error) string {
	var nf *errdefs.NotFoundError
	if errors.As(err, &nf) {
		return shortenWords(nf.Error())
	}
	return shortenWords(err.Error())
}

// maxWord is the longest run of non-space characters an error message
// shows whole; longer ones (a 10,000-character name) keep their ends.
const maxWord = 256

func shortenWords(s string) string {
	if len(s) <= maxWord {
		return s
	}
	words := strings.Fields(s)
	changed := false
	for i, w := range words {
		if r := []rune(w); len(r) > maxWord {
			words[i] = fmt.Sprintf("%s...%s (%d characters)", string(r[:maxWord/2]), string(r[len(r)-16:]), len(r))
			changed = true
		}
	}
	if !changed {
		return s
	}
	return strings.Join(words, " ")
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "strata",
		Short:         "A daemonless container image engine",
		Long:          "strata builds, stores, runs, commits and shares layered container images.\nIts commands, flags and output follow docker's.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	defRoot := os.Getenv("STRATA_ROOT")
	if defRoot == "" {
		defRoot = store.DefaultRoot
	}
	root.PersistentFlags().StringVar(&g.root, "root", defRoot, "store root directory (env STRATA_ROOT)")
	root.PersistentFlags().StringVar(&g.driver, "storage-driver", os.Getenv("STRATA_STORAGE_DRIVER"), "storage driver: overlay or native (default: detected on first use)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{cmd: c.CommandPath(), err: err}
	})
	root.AddCommand(
		newVersionCmd(), newInfoCmd(g),
		newImportCmd(g), newImagesCmd(g), newTagCmd(g), newRmiCmd(g),
		newInspectCmd(g), newHistoryCmd(g), newMountCmd(g), newUmountCmd(g),
		newImageCmd(g), newBuildCmd(g), newPullCmd(g), newPushCmd(g), newSaveCmd(g), newLoadCmd(g), newLoginCmd(), newLogoutCmd(), newSearchCmd(),
		newRunCmd(g), newCreateCmd(g), newStartCmd(g), newStopCmd(g), newKillCmd(g),
		newWaitCmd(g), newLogsCmd(g), newPsCmd(g), newRmCmd(g), newContainerCmd(g),
		newExecCmd(g), newAttachCmd(g), newVolumeCmd(g), newPtyHolderCmd(),
		newCommitCmd(g), newDiffCmd(g), newExportCmd(g), newCpCmd(g),
		newBuilderCmd(g), newMonitorCmd(g), newSystemCmd(g),
		newUpdateCmd(g), newStatsCmd(g),
		newPortCmd(g), newNetworkCmd(g),
		newRestartCmd(g), newPauseCmd(g), newUnpauseCmd(g), newRenameCmd(g), newTopCmd(g), newEventsCmd(g),
		newGenerateCmd(g),
	)
	root.PersistentPreRunE = func(c *cobra.Command, args []string) error {
		if g.root == "" {
			return usageError{cmd: c.CommandPath(), err: errors.New("--root must name a directory, not be empty")}
		}
		return nil
	}
	groupCommands(root)
	return root
}

// newImageCmd is `strata image ...`, docker's management-command spelling.
func newImageCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Manage images"}
	ls := newImagesCmd(g)
	ls.Use, ls.Aliases = "ls [OPTIONS] [REPOSITORY[:TAG]]", []string{"list"}
	rm := newRmiCmd(g)
	rm.Use, rm.Aliases = "rm [OPTIONS] IMAGE [IMAGE...]", []string{"remove"}
	c.AddCommand(ls, rm, newTagCmd(g), newImageInspectCmd(g), newHistoryCmd(g), newImportCmd(g), newPullCmd(g),
		newImageAnalyzeCmd(g), newImageDiffCmd(g), newImageTreeCmd(g), newPushCmd(g), newSaveCmd(g), newLoadCmd(g), newImagePruneCmd(g))
	return c
}

// openStore opens the store the global flags name, with containers' images
// as GC roots.
func (g *globals) openStore(ctx context.Context) (*store.Store, error) {
	s, err := store.Open(ctx, store.Options{Root: g.root, Driver: g.driver})
	if err != nil {
		return nil, err
	}
	m := container.NewManager(s, defaultRuntime())
	s.AddRoots(m.ImageRoots)
	if err := g.reconcile(ctx, s, m); err != nil {
		return nil, err
	}
	return s, nil
}

// reconcile cleans up after strata processes that died, before any command
// runs: dead leases, their temp files and runtime logs, containers a dead
// commit left paused, RUN containers and mounts of a dead build.
func (g *globals) reconcile(ctx context.Context, s *store.Store, m *container.Manager) error {
	r, err := s.Reconcile(ctx)
	g.reconciled = r
	if err != nil {
		return fmt.Errorf("reconcile store: %w", err)
	}
	if g.thawed, err = m.Thaw(ctx); err != nil {
		return fmt.Errorf("reconcile store: %w", err)
	}
	if err := builder.Sweep(ctx, s); err != nil {
		return fmt.Errorf("reconcile store: %w", err)
	}
	return nil
}

// exactArgs is cobra.ExactArgs with docker's wording and exit status.
func exactArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{cmd: c.CommandPath(), err: fmt.Errorf("%q requires exactly %d %s", c.CommandPath(), n, arguments(n)), args: true}
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError{cmd: c.CommandPath(), err: fmt.Errorf("%q requires at least %d %s", c.CommandPath(), n, arguments(n)), args: true}
		}
		return nil
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			msg := fmt.Sprintf("%q requires at least %d and at most %d %s", c.CommandPath(), lo, hi, arguments(hi))
			if lo == 0 {
				msg = fmt.Sprintf("%q requires at most %d %s", c.CommandPath(), hi, arguments(hi))
			}
			return usageError{cmd: c.CommandPath(), err: errors.New(msg), args: true}
		}
		return nil
	}
}

// arguments is docker's plural: "1 argument", "2 arguments".
func arguments(n int) string {
	if n == 1 {
		return "argument"
	}
	return "arguments"
}
