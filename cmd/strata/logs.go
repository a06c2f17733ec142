package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-project/strata/internal/container"
	"github.com/strata-project/strata/internal/oci"
)

// logFlags are run/create's --log-driver and --log-opt.
type logFlags struct {
	driver string
	opts   []string
}

func (f *logFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.driver, "log-driver", container.LogDriverJSONFile, "logging driver for the container: json-file or none")
	fl.StringArrayVar(&f.opts, "log-opt", nil, "log driver options (json-file: max-size=SIZE, max-file=N)")
}

func (f *logFlags) config() (container.LogConfig, error) {
	cfg := container.LogConfig{Driver: f.driver}
	if cfg.Driver == container.LogDriverJSONFile {
		cfg.Driver = ""
	}
	for _, o := range f.opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok || k == "" {
			return cfg, fmt.Errorf("invalid log opt %q: want KEY=VALUE", o)
		}
		if cfg.Opts == nil {
			cfg.Opts = map[string]string{}
		}
		cfg.Opts[k] = v
	}
	return cfg, cfg.Validate()
}

// parseLogTime reads docker's --since/--until values: an RFC 3339 time
// (date-only and local forms too), Unix seconds with an optional
// fraction, or a duration (10m, 1h30m) before now.
func parseLogTime(flag, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil && !strings.ContainsAny(v, "eE") {
		sec, frac, _ := strings.Cut(v, ".")
		s, _ := strconv.ParseInt(sec, 10, 64)
		var ns int64
		if frac != "" {
			frac = (frac + "000000000")[:9]
			ns, _ = strconv.ParseInt(frac, 10, 64)
		}
		return time.Unix(s, ns), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid value for %q: failed to parse value as time or duration: %q", flag, v)
}

func newAttachCmd(g *globals) *cobra.Command {
	var o container.AttachOptions
	c := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Long: "Attach to a running container: its output from now on, and your input when it\n" +
			"was created with -i. Signals go to the container unless --sig-proxy=false;\n" +
			"strata exits with the container's exit status when it ends.",
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			_, m, ctr, err := g.container(c, args[0])
			if err != nil {
				return err
			}
			return attachRunning(c, m, ctr, o)
		},
	}
	c.Flags().BoolVar(&o.NoStdin, "no-stdin", false, "do not attach STDIN")
	c.Flags().BoolVar(&o.SigProxy, "sig-proxy", true, "proxy all received signals to the process")
	return c
}

// attachRunning is `attach` (and `start -a` of a running container, as in
// docker): the container's output from now on, the user's input with -i,
// and its exit status when it ends.
func attachRunning(c *cobra.Command, m *container.Manager, ctr container.Container, o container.AttachOptions) error {
	if ctr.Config.Tty && ctr.Config.OpenStdin && !o.NoStdin && !isTerminal(os.Stdin) {
		return exitError{code: 1, err: errors.New("the input device is not a TTY")}
	}
	if ctr.Config.Tty && !o.NoStdin && ctr.Config.OpenStdin {
		// Keys go to the container's pty as bytes.
		restore, err := oci.MakeRaw(os.Stdin)
		if err != nil {
			return err
		}
		defer restore()
	}
	code, err := m.Attach(c.Context(), ctr, o, os.Stdin, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, container.ErrNotRunning):
		return errors.New("You cannot attach to a stopped container, start it first")
	case err != nil:
		return err
	case code != 0:
		return exitError{code: code}
	}
	return nil
}
