package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/container"
	"github.com/strata-project/strata/internal/image"
	"github.com/strata-project/strata/internal/network"
	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/registry"
	"github.com/strata-project/strata/internal/store"
)

// createFlags are the flags `create` and `run` share, with docker's names.
type createFlags struct {
	name, workdir, user, entrypoint, network, hostname, runtime string
	pull                                                        string
	env, envFiles, volumes                                      []string
	interactive, tty, readOnly, rm                              bool
	security                                                    oci.Security
	sysctls                                                     []string
	resources                                                   resourceFlags
	publish, expose                                             []string
	publishAll                                                  bool
	addHosts, dns, dnsSearch, dnsOptions                        []string
	domainname                                                  string
	labels                                                      []string
	log                                                         logFlags
	restart, stopSignal, cidfile                                string
	stopTimeout                                                 int
	init                                                        bool
	labelFiles                                                  []string
	mounts, tmpfs, volumesFrom                                  []string
	health                                                      healthFlags
}

func (f *createFlags) register(c *cobra.Command) {
	fl := c.Flags()
	// Flags after the image name belong to the container's command.
	fl.SetInterspersed(false)
	fl.StringVar(&f.name, "name", "", "assign a name to the container")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set environment variables (KEY=VALUE, or KEY to take the host's value)")
	fl.StringArrayVar(&f.envFiles, "env-file", nil, "read in a file of environment variables")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&f.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind mount a volume or host directory (NAME:CTR[:ro], /HOST:CTR[:ro], or /CTR for an anonymous volume)")
	fl.StringArrayVar(&f.mounts, "mount", nil, "attach a filesystem mount (type=bind|volume|tmpfs,source=,target=,readonly,volume-nocopy,volume-opt=K=V,tmpfs-size=,tmpfs-mode=)")
	fl.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs directory (/CTR[:size=64m,mode=1777])")
	fl.StringArrayVar(&f.volumesFrom, "volumes-from", nil, "mount volumes from the specified container(s) (C[:ro|rw])")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "overwrite the default ENTRYPOINT of the image")
	fl.StringVar(&f.network, "network", "", "connect the container to a network: bridge (default: its own, with outbound access), host, none or container:NAME|ID")
	fl.StringVar(&f.network, "net", "", "connect the container to a network (same as --network)")
	fl.Lookup("net").Hidden = true
	fl.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a container's port(s) to the host ([IP:][HOSTPORT:]CONTAINERPORT[/PROTO])")
	fl.BoolVarP(&f.publishAll, "publish-all", "P", false, "publish all exposed ports to random ports")
	fl.StringArrayVar(&f.expose, "expose", nil, "expose a port or a range of ports")
	fl.StringArrayVar(&f.addHosts, "add-host", nil, "add a custom host-to-IP mapping (host:ip, or host:host-gateway)")
	fl.StringArrayVar(&f.dns, "dns", nil, "set custom DNS servers")
	fl.StringArrayVar(&f.dnsSearch, "dns-search", nil, "set custom DNS search domains")
	fl.StringArrayVar(&f.dnsOptions, "dns-option", nil, "set DNS options")
	fl.StringVar(&f.domainname, "domainname", "", "container NIS domain name")
	fl.StringVar(&f.hostname, "hostname", "", "container host name")
	fl.StringVar(&f.runtime, "runtime", defaultRuntime(), "OCI runtime to use: runc or crun (env STRATA_RUNTIME)")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount the container's root filesystem as read only")
	fl.BoolVar(&f.rm, "rm", false, "automatically remove the container when it exits")
	fl.StringVar(&f.pull, "pull", "missing", `pull image before running ("always", "missing", "never")`)
	sec := &f.security
	fl.BoolVar(&sec.Privileged, "privileged", false, "give extended privileges to this container")
	fl.StringSliceVar(&sec.CapAdd, "cap-add", nil, "add Linux capabilities (ALL for all)")
	fl.StringSliceVar(&sec.CapDrop, "cap-drop", nil, "drop Linux capabilities (ALL for all)")
	fl.StringArrayVar(&sec.SecurityOpt, "security-opt", nil, "security options (seccomp=unconfined|PROFILE.json, no-new-privileges, apparmor=, label=, systempaths=unconfined)")
	fl.StringArrayVar(&sec.Devices, "device", nil, "add a host device to the container (HOST[:CONTAINER[:rwm]])")
	fl.StringArrayVar(&sec.GroupAdd, "group-add", nil, "add additional groups to join")
	fl.StringArrayVar(&f.sysctls, "sysctl", nil, "set a namespaced kernel parameter (KEY=VALUE)")
	fl.StringArrayVarP(&f.labels, "label", "l", nil, "set metadata on the container (KEY=VALUE)")
	f.resources.register(fl, true)
	f.log.register(fl)
	fl.StringVar(&f.restart, "restart", "no", "restart policy to apply when a container exits (no, on-failure[:max-retries], always, unless-stopped)")
	fl.StringVar(&f.stopSignal, "stop-signal", "", "signal to stop the container (default: the image's STOPSIGNAL, else SIGTERM)")
	fl.IntVar(&f.stopTimeout, "stop-timeout", 0, "timeout (in seconds) to stop a container (default 10)")
	fl.BoolVar(&f.init, "init", false, "run an init inside the container that forwards signals and reaps processes (Debian's tini)")
	fl.StringArrayVar(&f.labelFiles, "label-file", nil, "read in a line delimited file of labels")
	fl.StringVar(&f.cidfile, "cidfile", "", "write the container ID to the file")
	f.health.register(fl)
}

// config turns the flags and the command after the image into a container
// config.
func (f *createFlags) config(c *cobra.Command, cmd []string) (container.Config, error) {
	cfg := container.Config{
		Cmd: cmd, WorkingDir: f.workdir, User: f.user, Hostname: f.hostname,
		Binds: slices.Clone(f.volumes), Network: f.network, ReadOnly: f.readOnly,
		Tty: f.tty, OpenStdin: f.interactive, AutoRemove: f.rm, Runtime: f.runtime,
		Security: f.security,
	}
	var err error
	if cfg.Resources, err = f.resources.resources(c.Flags(), oci.Resources{}); err != nil {
		return cfg, err
	}
	if cfg.RestartPolicy, err = container.ParseRestartPolicy(f.restart); err != nil {
		return cfg, err
	}
	if cfg.Healthcheck, err = f.health.config(c.Flags()); err != nil {
		return cfg, err
	}
	cfg.StopSignal, cfg.Init, cfg.CIDFile = f.stopSignal, f.init, f.cidfile
	if c.Flags().Changed("stop-timeout") {
		cfg.StopTimeout = &f.stopTimeout
	}
	if cfg.Labels, err = readLabels(f.labelFiles, f.labels); err != nil {
		return cfg, err
	}
	if cfg.Log, err = f.log.config(); err != nil {
		return cfg, err
	}
	cfg.MountSpecs, cfg.Tmpfs, cfg.VolumesFrom = slices.Clone(f.mounts), slices.Clone(f.tmpfs), slices.Clone(f.volumesFrom)
	if cfg.Security.SecurityOpt, err = oci.SetSecuritySeccompFile(f.security.SecurityOpt); err != nil {
		return cfg, err
	}
	for _, kv := range f.sysctls {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return cfg, fmt.Errorf("invalid argument %q for \"--sysctl\" flag: want KEY=VALUE", kv)
		}
		if cfg.Security.Sysctls == nil {
			cfg.Security.Sysctls = map[string]string{}
		}
		cfg.Security.Sysctls[k] = v
	}
	for i, v := range cfg.Binds {
		// Like docker 23 and later, a host path starting with "." is
		// relative to the current directory (a bare name would be a
		// named volume, which strata does not have).
		if host, rest, ok := strings.Cut(v, ":"); ok && strings.HasPrefix(host, ".") {
			abs, err := filepath.Abs(host)
			if err != nil {
				return cfg, fmt.Errorf("volume %s: %w", v, err)
			}
			cfg.Binds[i] = abs + ":" + rest
		}
	}
	cfg.ExtraHosts, cfg.Domainname = slices.Clone(f.addHosts), f.domainname
	cfg.DNS, cfg.DNSSearch, cfg.DNSOptions = slices.Clone(f.dns), slices.Clone(f.dnsSearch), slices.Clone(f.dnsOptions)
	if err := f.ports(c, &cfg); err != nil {
		return cfg, err
	}
	if c.Flags().Changed("entrypoint") {
		cfg.EntrypointSet = true
		if f.entrypoint != "" {
			cfg.Entrypoint = []string{f.entrypoint}
		}
	}
	for _, path := range f.envFiles {
		env, err := readEnvFile(path)
		if err != nil {
			return cfg, err
		}
		cfg.Env = append(cfg.Env, env...)
	}
	for _, e := range f.env {
		if kv, ok := hostEnv(e); ok {
			cfg.Env = append(cfg.Env, kv)
		}
	}
	cfg.Env = withProxyEnv(cfg.Env, clientProxies(c.ErrOrStderr()))
	return cfg, nil
}

// ports reads -p, -P and --expose into cfg.
func (f *createFlags) ports(c *cobra.Command, cfg *container.Config) error {
	cfg.PublishAll = f.publishAll
	for _, p := range f.publish {
		m, err := network.ParsePublish(p)
		if err != nil {
			return err
		}
		if cfg.PortBindings == nil {
			cfg.PortBindings = network.PortMap{}
		}
		cfg.PortBindings.Merge(m)
	}
	for _, e := range f.expose {
		ps, err := network.ParseExpose(e)
		if err != nil {
			return err
		}
		cfg.ExposedPorts = append(cfg.ExposedPorts, ps...)
	}
	if f.network == network.Host && (len(f.publish) > 0 || f.publishAll) {
		fmt.Fprintln(c.ErrOrStderr(), "WARNING: Published ports are discarded when using host network mode")
	}
	return nil
}

// hostEnv resolves docker's `-e KEY` (no value: the host's, or nothing when
// the host has none).
func hostEnv(e string) (string, bool) {
	if strings.Contains(e, "=") {
		return e, true
	}
	if v, ok := os.LookupEnv(e); ok {
		return e + "=" + v, true
	}
	return "", false
}

// readEnvFile reads KEY=VALUE lines; blank lines and # comments are skipped
// and a bare KEY takes the host's value, as docker does.
func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open env file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, _, _ := strings.Cut(line, "="); strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("env file %s: variable %q contains whitespaces", path, k)
		}
		if kv, ok := hostEnv(line); ok {
			out = append(out, kv)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read env file %s: %w", path, err)
	}
	return out, nil
}

// containers opens the store and its container manager.
func (g *globals) containers(c *cobra.Command) (*store.Store, *container.Manager, error) {
	s, err := g.openStore(c.Context())
	if err != nil {
		return nil, nil, err
	}
	return s, container.NewManager(s, defaultRuntime()), nil
}

// container opens the store and finds the container ref names.
func (g *globals) container(c *cobra.Command, ref string) (*store.Store, *container.Manager, container.Container, error) {
	s, m, err := g.containers(c)
	if err != nil {
		return nil, nil, container.Container{}, err
	}
	ctr, err := m.Get(c.Context(), ref)
	return s, m, ctr, err
}

// monitorCommand is how StartDetached re-executes strata as the monitor.
func monitorCommand(s *store.Store) ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the strata binary: %w", err)
	}
	return []string{exe, "--root", s.Root(), monitorCmdName}, nil
}

func newCreateCmd(g *globals) *cobra.Command {
	f := &createFlags{}
	c := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := f.config(c, args[1:])
			if err != nil {
				return usageError{cmd: c.CommandPath(), err: err}
			}
			s, m, err := g.containers(c)
			if err != nil {
				return err
			}
			ctr, err := createContainer(c, s, m, args[0], f, cfg)
			var ee exitError
			if errors.As(err, &ee) && ee.code == 125 {
				// 125 is run's status for a container it could not make;
				// docker's create exits 1 for those.
				ee.code = 1
				return ee
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), ctr.ID)
			return nil
		},
	}
	f.register(c)
	return c
}

func newRunCmd(g *globals) *cobra.Command {
	f := &createFlags{}
	var detach bool
	c := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Long: "Create and run a new container from an image.\n\n" +
			"The container gets a network namespace of its own, connected to the outside\n" +
			"by pasta (no bridge, no NAT rules); -p publishes its ports on the host.\n" +
			"Without -d, strata runs the container in the foreground and exits with its\n" +
			"exit status.",
		Args: minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cfg, err := f.config(c, args[1:])
			if err != nil {
				return usageError{cmd: c.CommandPath(), err: err}
			}
			if !detach {
				if err := checkTty(cfg.OpenStdin, cfg.Tty); err != nil {
					return err
				}
			}
			s, m, err := g.containers(c)
			if err != nil {
				return err
			}
			ctr, err := createContainer(c, s, m, args[0], f, cfg)
			if err != nil {
				return err
			}
			if detach {
				if err := startDetached(c, s, m, ctr); err != nil {
					return err
				}
				fmt.Fprintln(c.OutOrStdout(), ctr.ID)
				return nil
			}
			err = runAttached(c, m, ctr, f.interactive)
			// As with docker, the command returns with the first exit and
			// the restart policy carries on in the background.
			if code := exitCodeOf(err); code >= 0 && !cfg.RestartPolicy.IsNone() {
				if argv, merr := monitorCommand(s); merr == nil {
					_, _ = m.RestartDetached(c.Context(), ctr.ID, code, argv)
				}
			}
			return err
		},
	}
	f.register(c)
	c.Flags().BoolVarP(&detach, "detach", "d", false, "run the container in the background and print its ID")
	return c
}

// createContainer makes the container, pulling its image as --pull says:
// "missing" (docker's default) only when the store lacks it, "always"
// first, "never" not at all. Pull progress goes to stderr, like docker's.
func createContainer(c *cobra.Command, s *store.Store, m *container.Manager, ref string, f *createFlags, cfg container.Config) (container.Container, error) {
	ctx := c.Context()
	switch f.pull {
	case "always":
		if err := pullForRun(c, s, ref); err != nil {
			return container.Container{}, exitError{code: 125, err: err}
		}
	case "missing", "never":
	default:
		return container.Container{}, usageError{cmd: c.CommandPath(), err: fmt.Errorf("invalid pull option: %q: must be one of \"always\", \"missing\" or \"never\"", f.pull)}
	}
	var cidFile *os.File
	if f.cidfile != "" {
		// Taken before the container exists, as docker does, so that two
		// runs with one file cannot both proceed.
		var err error
		cidFile, err = os.OpenFile(f.cidfile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			return container.Container{}, exitError{code: 125, err: fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", f.cidfile)}
		}
		if err != nil {
			return container.Container{}, exitError{code: 125, err: fmt.Errorf("failed to create the container ID file: %w", err)}
		}
		defer cidFile.Close()
	}
	ctr, err := m.Create(ctx, ref, f.name, cfg)
	if err != nil && f.pull == "missing" && store.IsNoSuchImage(err) && registry.Pullable(ref) {
		named, _ := image.ParseNamed(ref)
		fmt.Fprintf(c.ErrOrStderr(), "Unable to find image '%s' locally\n", reference.FamiliarString(named))
		if err := pullForRun(c, s, ref); err != nil {
			return container.Container{}, exitError{code: 125, err: err}
		}
		ctr, err = m.Create(ctx, ref, f.name, cfg)
	}
	if err != nil {
		if cidFile != nil {
			os.Remove(f.cidfile)
		}
		return container.Container{}, exitError{code: 125, err: err}
	}
	if cidFile != nil {
		if _, err := cidFile.WriteString(ctr.ID); err != nil {
			return ctr, exitError{code: 125, err: fmt.Errorf("failed to write the container ID to the file: %w", err)}
		}
	}
	if cfg.Security.Privileged {
		// Root here may lack some capabilities (strata in a container):
		// the container gets what there is, and the user hears what not.
		if _, missing, err := oci.BoundingCapabilities(); err == nil && len(missing) > 0 {
			fmt.Fprintf(c.ErrOrStderr(), "WARNING: --privileged: strata's capability bounding set lacks %s; the container runs without them\n", strings.Join(missing, ", "))
		}
	}
	return ctr, nil
}

func pullForRun(c *cobra.Command, s *store.Store, ref string) error {
	pr := newPullPrinter(c.ErrOrStderr(), false)
	access, err := registryAccess(true)
	if err != nil {
		return err
	}
	_, err = registry.Pull(c.Context(), s, ref, registry.Options{Progress: pr.Event, Access: access})
	pr.Close()
	return err
}

// checkTty refuses, as docker does, to wire a pipe or file to a container's
// terminal: the pty would never see the end of the input and the container
// would wait for more forever.
func checkTty(stdin, tty bool) error {
	if stdin && tty && !isTerminal(os.Stdin) {
		return exitError{code: 1, err: errors.New("the input device is not a TTY")}
	}
	return nil
}

// runAttached runs ctr in the foreground; strata's exit status becomes the
// container's.
func runAttached(c *cobra.Command, m *container.Manager, ctr container.Container, stdin bool) error {
	user := container.AttachIO{Stdout: os.Stdout, Stderr: os.Stderr}
	if stdin {
		user.Stdin = os.Stdin
	}
	code, err := m.RunAttached(c.Context(), ctr, user)
	var se *container.StartError
	if errors.As(err, &se) {
		return exitError{code: se.Code, err: err}
	}
	if err != nil {
		if code < 0 {
			code = 125
		}
		return exitError{code: code, err: err}
	}
	if code != 0 {
		return exitError{code: code}
	}
	return nil
}

func startDetached(c *cobra.Command, s *store.Store, m *container.Manager, ctr container.Container) error {
	argv, err := monitorCommand(s)
	if err != nil {
		return err
	}
	if err := m.StartDetached(c.Context(), ctr, argv); err != nil {
		var se *container.StartError
		if errors.As(err, &se) {
			return exitError{code: se.Code, err: err}
		}
		return err
	}
	return nil
}

func newStartCmd(g *globals) *cobra.Command {
	var attach, interactive bool
	c := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, m, err := g.containers(c)
			if err != nil {
				return err
			}
			if attach || interactive {
				if len(args) > 1 {
					return usageError{cmd: c.CommandPath(), err: errors.New("you cannot start and attach multiple containers at once")}
				}
				ctr, err := m.Get(c.Context(), args[0])
				if err != nil {
					return err
				}
				if err := checkTty(interactive, ctr.Config.Tty); err != nil {
					return err
				}
				if ctr.State.Status == container.StatusRunning {
					// docker's start -a of a running container attaches.
					return attachRunning(c, m, ctr, container.AttachOptions{NoStdin: !interactive, SigProxy: true})
				}
				return runAttached(c, m, ctr, interactive)
			}
			return forEachContainer(c, m, args, func(m *container.Manager, ctr container.Container) error {
				return startDetached(c, s, m, ctr)
			})
		},
	}
	c.Flags().BoolVarP(&attach, "attach", "a", false, "attach STDOUT/STDERR and forward signals")
	c.Flags().BoolVarP(&interactive, "interactive", "i", false, "attach container's STDIN")
	return c
}

// monitorCmdName is the hidden command a detached container's monitor runs.
const monitorCmdName = "container-monitor"

func newMonitorCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    monitorCmdName + " ID",
		Short:  "Run a detached container to its end (internal)",
		Hidden: true,
		Args:   exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			// fd 3 is the pipe to the command that started us.
			report := os.NewFile(3, "report")
			// Inherited without close-on-exec: the runtime must not get it.
			unix.CloseOnExec(3)
			_, m, err := g.containers(c)
			if err != nil {
				fmt.Fprintf(report, "{\"error\":%q,\"code\":125}\n", err.Error())
				report.Close()
				return err
			}
			return m.Monitor(c.Context(), args[0], report)
		},
	}
}

// readLabels reads --label-file files (KEY=VALUE lines, # comments) and
// then --label values, later ones winning; a bare KEY has an empty value.
func readLabels(files, labels []string) (map[string]string, error) {
	var all []string
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("open label file: %w", err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line != "" && !strings.HasPrefix(line, "#") {
				all = append(all, line)
			}
		}
	}
	all = append(all, labels...)
	if len(all) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(all))
	for _, l := range all {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid argument %q for \"--label\" flag: want KEY=VALUE", l)
		}
		out[k] = v
	}
	return out, nil
}

// exitCodeOf is the container's exit status runAttached reported, or -1
// when it did not run.
func exitCodeOf(err error) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if !errors.As(err, &ee) || ee.err != nil {
		return -1 // it did not start, or strata failed
	}
	return ee.code
}

// healthFlags are docker's --health-* and --no-healthcheck.
type healthFlags struct {
	cmd                                        string
	interval, timeout, startPeriod, startEvery time.Duration
	retries                                    int
	none                                       bool
}

func (h *healthFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&h.cmd, "health-cmd", "", "command to run to check health")
	fl.DurationVar(&h.interval, "health-interval", 0, "time between running the check (ms|s|m|h) (default 30s)")
	fl.DurationVar(&h.timeout, "health-timeout", 0, "maximum time to allow one check to run (ms|s|m|h) (default 30s)")
	fl.DurationVar(&h.startPeriod, "health-start-period", 0, "start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fl.DurationVar(&h.startEvery, "health-start-interval", 0, "time between running the check during the start period (ms|s|m|h) (default 5s)")
	fl.IntVar(&h.retries, "health-retries", 0, "consecutive failures needed to report unhealthy")
	fl.BoolVar(&h.none, "no-healthcheck", false, "disable any container-specified HEALTHCHECK")
}

// config is the healthcheck the flags ask for: nil when none was given
// (the image's applies), Test ["NONE"] for --no-healthcheck.
func (h *healthFlags) config(fl *pflag.FlagSet) (*dockerspec.HealthcheckConfig, error) {
	set := false
	for _, n := range []string{"health-cmd", "health-interval", "health-timeout", "health-start-period", "health-start-interval", "health-retries"} {
		set = set || fl.Changed(n)
	}
	if h.none {
		if set {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		return &dockerspec.HealthcheckConfig{Test: []string{"NONE"}}, nil
	}
	if !set {
		return nil, nil
	}
	for name, d := range map[string]time.Duration{"--health-interval": h.interval, "--health-timeout": h.timeout, "--health-start-period": h.startPeriod, "--health-start-interval": h.startEvery} {
		if d < 0 {
			return nil, fmt.Errorf("%s cannot be negative", name)
		}
		if d != 0 && d < time.Millisecond && name != "--health-start-period" {
			return nil, fmt.Errorf("%s cannot be less than 1ms", name)
		}
	}
	if h.retries < 0 {
		return nil, errors.New("--health-retries cannot be negative")
	}
	hc := &dockerspec.HealthcheckConfig{Interval: h.interval, Timeout: h.timeout, StartPeriod: h.startPeriod, StartInterval: h.startEvery, Retries: h.retries}
	if h.cmd != "" {
		hc.Test = []string{"CMD-SHELL", h.cmd}
	}
	return hc, nil
}
