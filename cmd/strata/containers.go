package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/container"
	"github.com/strata-project/strata/internal/netconf"
	"github.com/strata-project/strata/internal/network"
	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/store"
	"github.com/strata-project/strata/internal/volume"
)

// containerCount counts containers as docker's info does: a paused
// container is paused, not running.
func containerCount(ctx context.Context, s *store.Store) (all, running, paused int, err error) {
	ctrs, err := container.NewManager(s, defaultRuntime()).List(ctx)
	for _, ctr := range ctrs {
		switch {
		case ctr.State.Status == container.StatusRunning && ctr.State.Paused:
			paused++
		case ctr.State.Status == container.StatusRunning:
			running++
		}
	}
	return len(ctrs), running, paused, err
}

// defaultRuntime is the OCI runtime for new containers: STRATA_RUNTIME, or runc.
func defaultRuntime() string {
	if r := os.Getenv("STRATA_RUNTIME"); r != "" {
		return r
	}
	return "runc"
}

// newContainerCmd is `strata container ...`, docker's management-command spelling.
func newContainerCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "container", Short: "Manage containers"}
	ls := newPsCmd(g)
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"ps", "list"}
	rm := newRmCmd(g)
	rm.Use, rm.Aliases = "rm [OPTIONS] CONTAINER [CONTAINER...]", []string{"remove"}
	c.AddCommand(ls, rm, newRunCmd(g), newCreateCmd(g), newStartCmd(g), newStopCmd(g),
		newKillCmd(g), newWaitCmd(g), newLogsCmd(g), newContainerInspectCmd(g),
		newCommitCmd(g), newDiffCmd(g), newExportCmd(g), newCpCmd(g), newExecCmd(g), newAttachCmd(g), newContainerPruneCmd(g))
	c.AddCommand(newUpdateCmd(g), newStatsCmd(g), newPortCmd(g))
	c.AddCommand(newRestartCmd(g), newPauseCmd(g), newUnpauseCmd(g), newRenameCmd(g), newTopCmd(g))
	return c
}

// psRow is one line of `ps`, with docker's --format names.
type psRow struct {
	ID         string
	Image      string
	Command    string
	CreatedAt  string
	RunningFor string
	Ports      string
	State      string
	Status     string
	Size       string
	Names      string
	Labels     string
	Mounts     string
	Networks   string
	labels     map[string]string
}

// Label is {{.Label "key"}}: one label's value, "" when unset.
func (r psRow) Label(key string) string { return r.labels[key] }

var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
	"RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
	"Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
}

const psTable = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

func newPsCmd(g *globals) *cobra.Command {
	var all, quiet, noTrunc bool
	var format string
	var filters []string
	c := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			f, err := parsePsFilter(filters)
			if errors.Is(err, errFilterFormat) {
				return usageError{cmd: c.CommandPath(), err: err}
			}
			if err != nil {
				return err
			}
			s, m, err := g.containers(c)
			if err != nil {
				return err
			}
			ctrs, err := m.List(c.Context())
			if err != nil {
				return err
			}
			imageIDs, ancestors, err := psImages(c.Context(), s, f)
			if err != nil {
				return err
			}
			all = all || f.showsAll()
			now := time.Now()
			var rows []psRow
			for _, ctr := range ctrs {
				if !all && ctr.State.Status != container.StatusRunning {
					continue
				}
				if !f.match(ctr, ancestors(ctr.Image), imageIDs) {
					continue
				}
				rows = append(rows, toPsRow(ctr, now, noTrunc))
			}
			if quiet {
				format = "{{.ID}}"
			}
			return writeRows(c.OutOrStdout(), format, psTable, psHeaders, rows)
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	c.Flags().StringVar(&format, "format", "", "format output using a Go template, 'table ...' or 'json'")
	c.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided (id, name, status, exited, ancestor, label)")
	return c
}

func toPsRow(ctr container.Container, now time.Time, noTrunc bool) psRow {
	id := ctr.ID
	cmd := strings.Join(containerArgs(ctr), " ")
	if !noTrunc {
		id = ctr.ShortID()
		cmd = ellipsis(cmd, 20)
	}
	labels := ctr.RunConfig().Labels
	var mounts []string
	for _, m := range ctr.Config.Mounts {
		if m.Type == container.MountVolume {
			mounts = append(mounts, m.Source) // docker shows the volume's name
		} else if m.Type == container.MountBind {
			mounts = append(mounts, m.Source)
		}
	}
	return psRow{
		ID: id, Image: ctr.ImageRef, Command: strconv.Quote(cmd),
		CreatedAt:  ctr.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: since(ctr.Created), State: ctr.StateName(),
		Status: ctr.StatusText(now), Names: ctr.Name, Networks: ctr.NetworkName(),
		Ports:  psPorts(ctr),
		Labels: joinLabels(labels), labels: labels,
		Mounts: strings.Join(mounts, ","),
	}
}

// psPorts is the PORTS column: a running container's published and
// exposed ports, nothing for others (as docker).
func psPorts(ctr container.Container) string {
	if ctr.State.Status != container.StatusRunning {
		return ""
	}
	return network.Format(network.Report(ctr.State.Ports), ctr.ExposedPorts())
}

// joinLabels is ps's LABELS column: k=v pairs, sorted, comma-separated.
func joinLabels(labels map[string]string) string {
	kv := make([]string, 0, len(labels))
	for k, v := range labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// containerArgs is the command line the container runs (or would run).
func containerArgs(ctr container.Container) []string {
	args, _ := oci.Args(ctr.ImageConfig.ImageConfig, ctr.Config.Entrypoint, ctr.Config.EntrypointSet, ctr.Config.Cmd)
	return args
}

func newRmCmd(g *globals) *cobra.Command {
	var force, volumes bool
	c := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			err := eachContainer(c, g, args, func(m *container.Manager, ctr container.Container) error {
				if err := m.Remove(c.Context(), ctr, force); err != nil {
					return err
				}
				if volumes {
					return m.RemoveAnonymousVolumes(c.Context(), ctr)
				}
				return nil
			})
			// docker: with -f, a container that is already gone is
			// reported but is no failure (cleanup scripts run under set -e).
			var ee exitError
			if force && errors.As(err, &ee) && ee.onlyMissing {
				return nil
			}
			return err
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "force the removal of a running container (uses SIGKILL)")
	c.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove the anonymous volumes associated with the container")
	return c
}

// eachContainer applies fn to every named container, printing the name of
// each success and an error line for each failure, like docker.
func eachContainer(c *cobra.Command, g *globals, refs []string, fn func(*container.Manager, container.Container) error) error {
	_, m, err := g.containers(c)
	if err != nil {
		return err
	}
	return forEachContainer(c, m, refs, fn)
}

// forEachContainer is eachContainer with the manager already open.
func forEachContainer(c *cobra.Command, m *container.Manager, refs []string, fn func(*container.Manager, container.Container) error) error {
	var failed *exitError
	for _, ref := range refs {
		ctr, err := m.Get(c.Context(), ref)
		if err == nil {
			err = fn(m, ctr)
		}
		if err != nil {
			failed = failed.add(c.ErrOrStderr(), err)
			continue
		}
		fmt.Fprintln(c.OutOrStdout(), ref)
	}
	if failed == nil {
		return nil
	}
	return *failed
}

func newStopCmd(g *globals) *cobra.Command {
	var seconds int
	var signal string
	c := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o, err := stopOptions(c, seconds, signal)
			if err != nil {
				return err
			}
			return eachContainer(c, g, args, func(m *container.Manager, ctr container.Container) error {
				return m.Stop(c.Context(), ctr, o)
			})
		},
	}
	c.Flags().IntVarP(&seconds, "time", "t", 0, "seconds to wait before killing the container (-1: wait forever; default: the container's --stop-timeout, else 10)")
	c.Flags().StringVarP(&signal, "signal", "s", "", "signal to send to the container (default: its --stop-signal, the image's STOPSIGNAL, else SIGTERM)")
	return c
}

// stopOptions turns stop's and restart's -t and -s into StopOptions.
func stopOptions(c *cobra.Command, seconds int, signal string) (container.StopOptions, error) {
	var o container.StopOptions
	if c.Flags().Changed("time") {
		d := time.Duration(seconds) * time.Second
		o.Timeout = &d
	}
	if signal != "" {
		if _, err := oci.ParseSignal(signal); err != nil {
			return o, usageError{cmd: c.CommandPath(), err: err}
		}
		o.Signal = signal
	}
	return o, nil
}

func newKillCmd(g *globals) *cobra.Command {
	var sigName string
	c := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			sig, err := oci.ParseSignal(sigName)
			if err != nil {
				// docker's daemon refuses it: exit 1, not a usage error.
				return err
			}
			return eachContainer(c, g, args, func(m *container.Manager, ctr container.Container) error {
				return m.Kill(c.Context(), ctr, sig)
			})
		},
	}
	c.Flags().StringVarP(&sigName, "signal", "s", "KILL", "signal to send to the container")
	return c
}

func newWaitCmd(g *globals) *cobra.Command {
	var condition string
	c := &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			_, m, err := g.containers(c)
			if err != nil {
				return err
			}
			var failed error
			for _, ref := range args {
				ctr, err := m.Get(c.Context(), ref)
				code := 0
				if err == nil {
					code, err = m.WaitFor(c.Context(), ctr, container.WaitCondition(condition))
				}
				if err != nil {
					fmt.Fprintln(c.ErrOrStderr(), "Error:", message(err))
					failed = exitError{code: 1}
					continue
				}
				fmt.Fprintln(c.OutOrStdout(), code)
			}
			return failed
		},
	}
	c.Flags().StringVar(&condition, "condition", "not-running", "condition to wait for: not-running, next-exit or removed")
	return c
}

func newLogsCmd(g *globals) *cobra.Command {
	var o container.LogOptions
	var tail, since, until string
	c := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			o.Tail = -1
			if tail != "all" {
				n, err := strconv.Atoi(tail)
				if err != nil {
					return usageError{cmd: c.CommandPath(), err: fmt.Errorf("invalid --tail %q: want a number or \"all\"", tail)}
				}
				o.Tail = n
			}
			now := time.Now()
			var err error
			if o.Since, err = parseLogTime("since", since, now); err != nil {
				return err
			}
			if o.Until, err = parseLogTime("until", until, now); err != nil {
				return err
			}
			_, m, err := g.containers(c)
			if err != nil {
				return err
			}
			ctr, err := m.Get(c.Context(), args[0])
			if err != nil {
				return err
			}
			return m.Logs(c.Context(), ctr, o, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	c.Flags().BoolVarP(&o.Follow, "follow", "f", false, "follow log output")
	c.Flags().BoolVarP(&o.Timestamps, "timestamps", "t", false, "show timestamps")
	c.Flags().BoolVar(&o.Details, "details", false, "show extra details provided to logs")
	c.Flags().StringVarP(&tail, "tail", "n", "all", "number of lines to show from the end of the logs")
	c.Flags().StringVar(&since, "since", "", "show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	c.Flags().StringVar(&until, "until", "", "show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	return c
}

// inspectContainer is docker's `container inspect` JSON shape. Field
// names are docker's JSON names (CpuQuota, not CPUQuota): --format
// templates run over these typed values, and docker's names must resolve.
//
// Id answers {{.Id}} on the typed value (see inspectImage.Id).
func (v inspectContainer) Id() string { return v.ID }

type inspectContainer struct {
	ID              string               `json:"Id"`
	Created         string               `json:"Created"`
	Path            string               `json:"Path"`
	Args            []string             `json:"Args"`
	State           inspectState         `json:"State"`
	Image           string               `json:"Image"`
	ResolvConfPath  string               `json:"ResolvConfPath"`
	HostnamePath    string               `json:"HostnamePath"`
	HostsPath       string               `json:"HostsPath"`
	LogPath         string               `json:"LogPath"`
	Name            string               `json:"Name"`
	RestartCount    int                  `json:"RestartCount"`
	Driver          string               `json:"Driver"`
	Platform        string               `json:"Platform"`
	MountLabel      string               `json:"MountLabel"`
	ProcessLabel    string               `json:"ProcessLabel"`
	AppArmorProfile string               `json:"AppArmorProfile"`
	ExecIDs         []string             `json:"ExecIDs"` // running execs; null when none, as docker
	HostConfig      inspectHostConfig    `json:"HostConfig"`
	GraphDriver     inspectDriver        `json:"GraphDriver"`
	Mounts          []inspectMount       `json:"Mounts"`
	Config          inspectCtrConfig     `json:"Config"`
	NetworkSettings inspectNetworkConfig `json:"NetworkSettings"`
}

// inspectMount is one of docker's .Mounts entries.
type inspectMount struct {
	Type        string `json:"Type"` // "bind" or "volume"
	Name        string `json:"Name,omitempty"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	Driver      string `json:"Driver,omitempty"`
	Mode        string `json:"Mode"`
	RW          bool   `json:"RW"`
	Propagation string `json:"Propagation"`
}

// inspectMounts lists the container's mounts as docker's .Mounts does:
// binds, volumes (with their name, driver and directory) and tmpfs.
func inspectMounts(vols *volume.Volumes, ctr container.Container) []inspectMount {
	out := []inspectMount{}
	mounts := ctr.Config.Mounts
	if len(mounts) == 0 {
		// A record from before strata had volumes: its binds.
		for _, spec := range ctr.Config.Binds {
			if b, err := oci.ParseBind(spec); err == nil {
				mounts = append(mounts, container.Mount{Type: container.MountBind, Source: b.Source, Target: b.Destination, ReadOnly: b.ReadOnly})
			}
		}
	}
	for _, mt := range mounts {
		im := inspectMount{Type: mt.Type, Destination: mt.Target, RW: !mt.ReadOnly, Mode: mt.Mode}
		switch mt.Type {
		case container.MountBind:
			im.Source, im.Propagation = mt.Source, mt.Propagation
			if im.Propagation == "" {
				im.Propagation = "rprivate"
			}
		case container.MountVolume:
			im.Name, im.Source, im.Driver = mt.Source, vols.Path(mt.Source), volume.DriverLocal
			if im.Mode == "" && !mt.FromMountFlag {
				im.Mode = "z" // docker's default label mode for -v volumes
			}
		}
		out = append(out, im)
	}
	return out
}

// inspectHostMounts is docker's HostConfig.Mounts: the --mount entries.
func inspectHostMounts(ctr container.Container) []inspectHostMount {
	var out []inspectHostMount
	for _, mt := range ctr.Config.Mounts {
		if !mt.FromMountFlag {
			continue
		}
		hm := inspectHostMount{Type: mt.Type, Source: mt.Source, Target: mt.Target, ReadOnly: mt.ReadOnly}
		if mt.Anonymous {
			hm.Source = ""
		}
		switch mt.Type {
		case container.MountBind:
			if mt.Propagation != "" {
				hm.BindOptions = &inspectBindOptions{Propagation: mt.Propagation}
			}
		case container.MountVolume:
			if mt.NoCopy || len(mt.VolumeOptions) > 0 {
				hm.VolumeOptions = &inspectVolumeOptions{NoCopy: mt.NoCopy}
				if len(mt.VolumeOptions) > 0 {
					hm.VolumeOptions.DriverConfig = &inspectDriverConfig{Name: volume.DriverLocal, Options: mt.VolumeOptions}
				}
			}
		}
		out = append(out, hm)
	}
	return out
}

type inspectHostMount struct {
	Type          string                `json:"Type"`
	Source        string                `json:"Source,omitempty"`
	Target        string                `json:"Target"`
	ReadOnly      bool                  `json:"ReadOnly,omitempty"`
	BindOptions   *inspectBindOptions   `json:"BindOptions,omitempty"`
	VolumeOptions *inspectVolumeOptions `json:"VolumeOptions,omitempty"`
}

type inspectBindOptions struct {
	Propagation string `json:"Propagation,omitempty"`
}

type inspectVolumeOptions struct {
	NoCopy       bool                 `json:"NoCopy,omitempty"`
	DriverConfig *inspectDriverConfig `json:"DriverConfig,omitempty"`
}

type inspectDriverConfig struct {
	Name    string            `json:"Name,omitempty"`
	Options map[string]string `json:"Options,omitempty"`
}

// inspectHealth is docker's .State.Health, present when the container
// has a healthcheck.
type inspectHealth struct {
	Status        string             `json:"Status"` // starting, healthy, unhealthy
	FailingStreak int                `json:"FailingStreak"`
	Log           []inspectHealthLog `json:"Log"`
}

type inspectHealthLog struct {
	Start    string `json:"Start"`
	End      string `json:"End"`
	ExitCode int    `json:"ExitCode"`
	Output   string `json:"Output"`
}

type inspectState struct {
	Status     string `json:"Status"`
	Running    bool   `json:"Running"`
	Paused     bool   `json:"Paused"`
	Restarting bool   `json:"Restarting"`
	OOMKilled  bool   `json:"OOMKilled"`
	Dead       bool   `json:"Dead"`
	Pid        int    `json:"Pid"`
	ExitCode   int    `json:"ExitCode"`
	Error      string `json:"Error"`
	StartedAt  string `json:"StartedAt"`
	FinishedAt string `json:"FinishedAt"`
	// Health is docker's healthcheck state; nil (and absent) without one.
	Health *inspectHealth `json:"Health,omitempty"`
}

type inspectHostConfig struct {
	Binds           []string             `json:"Binds"`
	ContainerIDFile string               `json:"ContainerIDFile"`
	LogConfig       inspectLogConfig     `json:"LogConfig"`
	NetworkMode     string               `json:"NetworkMode"`
	PortBindings    network.PortMap      `json:"PortBindings"`
	RestartPolicy   inspectRestartPolicy `json:"RestartPolicy"`
	ReadonlyRootfs  bool                 `json:"ReadonlyRootfs"`
	AutoRemove      bool                 `json:"AutoRemove"`
	Runtime         string               `json:"Runtime"`
	VolumesFrom     []string             `json:"VolumesFrom"`
	Mounts          []inspectHostMount   `json:"Mounts,omitempty"`
	Tmpfs           map[string]string    `json:"Tmpfs,omitempty"`
	Dns             []string             `json:"Dns"`
	DnsOptions      []string             `json:"DnsOptions"`
	DnsSearch       []string             `json:"DnsSearch"`
	ExtraHosts      []string             `json:"ExtraHosts"`
	CgroupnsMode    string               `json:"CgroupnsMode"`
	IpcMode         string               `json:"IpcMode"`
	PidMode         string               `json:"PidMode"`
	UTSMode         string               `json:"UTSMode"`
	UsernsMode      string               `json:"UsernsMode"`
	PublishAllPorts bool                 `json:"PublishAllPorts"`
	ConsoleSize     [2]uint              `json:"ConsoleSize"`

	VolumeDriver string   `json:"VolumeDriver"`
	Cgroup       string   `json:"Cgroup"`
	CgroupParent string   `json:"CgroupParent"`
	Links        []string `json:"Links"`
	OomScoreAdj  int      `json:"OomScoreAdj"`
	Isolation    string   `json:"Isolation"`

	// Resource fields strata does not set, with docker's zero values.
	BlkioWeightDevice    []string `json:"BlkioWeightDevice"`
	BlkioDeviceReadBps   []string `json:"BlkioDeviceReadBps"`
	BlkioDeviceWriteBps  []string `json:"BlkioDeviceWriteBps"`
	BlkioDeviceReadIOps  []string `json:"BlkioDeviceReadIOps"`
	BlkioDeviceWriteIOps []string `json:"BlkioDeviceWriteIOps"`
	CpuPeriod            int64    `json:"CpuPeriod"`
	CpuQuota             int64    `json:"CpuQuota"`
	CpuRealtimePeriod    int64    `json:"CpuRealtimePeriod"`
	CpuRealtimeRuntime   int64    `json:"CpuRealtimeRuntime"`
	DeviceCgroupRules    []string `json:"DeviceCgroupRules"`
	DeviceRequests       []string `json:"DeviceRequests"`
	KernelMemory         int64    `json:"KernelMemory"`
	KernelMemoryTCP      int64    `json:"KernelMemoryTCP"`
	MemorySwappiness     *int64   `json:"MemorySwappiness"`
	CpuCount             int64    `json:"CpuCount"`
	CpuPercent           int64    `json:"CpuPercent"`
	IOMaximumIOps        uint64   `json:"IOMaximumIOps"`
	IOMaximumBandwidth   uint64   `json:"IOMaximumBandwidth"`

	Init *bool `json:"Init"`

	Privileged  bool              `json:"Privileged"`
	CapAdd      []string          `json:"CapAdd"`
	CapDrop     []string          `json:"CapDrop"`
	SecurityOpt []string          `json:"SecurityOpt"`
	GroupAdd    []string          `json:"GroupAdd"`
	Sysctls     map[string]string `json:"Sysctls,omitempty"`
	Devices     []inspectDevice   `json:"Devices"`

	Memory            int64           `json:"Memory"`
	MemorySwap        int64           `json:"MemorySwap"`
	MemoryReservation int64           `json:"MemoryReservation"`
	OomKillDisable    bool            `json:"OomKillDisable"`
	NanoCpus          int64           `json:"NanoCpus"`
	CpuShares         int64           `json:"CpuShares"`
	CpusetCpus        string          `json:"CpusetCpus"`
	CpusetMems        string          `json:"CpusetMems"`
	PidsLimit         *int64          `json:"PidsLimit"`
	BlkioWeight       uint16          `json:"BlkioWeight"`
	Ulimits           []*units.Ulimit `json:"Ulimits"`
	ShmSize           int64           `json:"ShmSize"`
}

type inspectLogConfig struct {
	Type   string            `json:"Type"`
	Config map[string]string `json:"Config"`
}

type inspectRestartPolicy struct {
	Name              string `json:"Name"`
	MaximumRetryCount int    `json:"MaximumRetryCount"`
}

type inspectDevice struct {
	PathOnHost        string `json:"PathOnHost"`
	PathInContainer   string `json:"PathInContainer"`
	CgroupPermissions string `json:"CgroupPermissions"`
}

// inspectHostConfigOf is the HostConfig part docker's confinement and
// resource flags fill.
func inspectHostConfigOf(ctr container.Container) inspectHostConfig {
	sec, res := ctr.Config.Security, ctr.Config.Resources
	binds := ctr.Config.Binds
	if binds == nil {
		binds = []string{}
	}
	hc := inspectHostConfig{
		Binds: binds, NetworkMode: ctr.Config.Network, ReadonlyRootfs: ctr.Config.ReadOnly,
		LogConfig:    inspectLogConfig{Type: "json-file", Config: map[string]string{}},
		PortBindings: network.PortMap{},
		Dns:          orEmpty(ctr.Config.DNS), DnsOptions: orEmpty(ctr.Config.DNSOptions), DnsSearch: orEmpty(ctr.Config.DNSSearch),
		ExtraHosts:   ctr.Config.ExtraHosts,
		CgroupnsMode: "host", IpcMode: "private", BlkioWeightDevice: []string{},
		AutoRemove: ctr.Config.AutoRemove, Runtime: ctr.Config.Runtime, ContainerIDFile: ctr.Config.CIDFile,
		PublishAllPorts: ctr.Config.PublishAll,
		Privileged:      sec.Privileged, CapAdd: sec.CapAdd, CapDrop: sec.CapDrop,
		SecurityOpt: sec.SecurityOpt, GroupAdd: sec.GroupAdd, Sysctls: sec.Sysctls,
		Devices: []inspectDevice{}, RestartPolicy: inspectRestartPolicy(ctr.Config.RestartPolicy),
		Memory: res.Memory, MemorySwap: res.MemorySwap, MemoryReservation: res.MemoryReservation,
		OomKillDisable: res.OomKillDisable, NanoCpus: res.NanoCPUs, CpuShares: res.CPUShares,
		CpusetCpus: res.CpusetCpus, CpusetMems: res.CpusetMems, BlkioWeight: res.BlkioWeight,
		ShmSize: res.ShmSize, Ulimits: []*units.Ulimit{},
	}
	for p, b := range ctr.Config.PortBindings {
		hc.PortBindings[p] = b
	}
	if hc.RestartPolicy.Name == "" {
		hc.RestartPolicy.Name = "no"
	}
	if ctr.Config.Init {
		hc.Init = &ctr.Config.Init
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = 64 << 20
	}
	if res.PidsLimit != 0 {
		hc.PidsLimit = &res.PidsLimit
	}
	for _, d := range sec.Devices {
		if dev, err := oci.ParseDevice(d); err == nil {
			hc.Devices = append(hc.Devices, inspectDevice{dev.Host, dev.Container, dev.Permissions})
		}
	}
	for _, u := range res.Ulimits {
		if ul, err := units.ParseUlimit(u); err == nil {
			hc.Ulimits = append(hc.Ulimits, ul)
		}
	}
	if ctr.Config.Log.Driver != "" {
		hc.LogConfig.Type = ctr.Config.Log.Driver
	}
	for k, v := range ctr.Config.Log.Opts {
		hc.LogConfig.Config[k] = v
	}
	hc.VolumesFrom = ctr.Config.VolumesFrom
	hc.Mounts = inspectHostMounts(ctr)
	if len(ctr.Config.Tmpfs) > 0 {
		hc.Tmpfs = map[string]string{}
		for _, t := range ctr.Config.Tmpfs {
			dst, opts, _ := strings.Cut(t, ":")
			hc.Tmpfs[dst] = opts
		}
	}
	return hc
}

type inspectCtrConfig struct {
	Hostname     string                        `json:"Hostname"`
	Domainname   string                        `json:"Domainname"`
	User         string                        `json:"User"`
	AttachStdin  bool                          `json:"AttachStdin"`
	AttachStdout bool                          `json:"AttachStdout"`
	AttachStderr bool                          `json:"AttachStderr"`
	ExposedPorts map[string]struct{}           `json:"ExposedPorts,omitempty"`
	Tty          bool                          `json:"Tty"`
	OpenStdin    bool                          `json:"OpenStdin"`
	StdinOnce    bool                          `json:"StdinOnce"`
	Env          []string                      `json:"Env"`
	Cmd          []string                      `json:"Cmd"`
	Healthcheck  *dockerspec.HealthcheckConfig `json:"Healthcheck,omitempty"`
	Image        string                        `json:"Image"`
	Volumes      map[string]struct{}           `json:"Volumes"`
	WorkingDir   string                        `json:"WorkingDir"`
	Entrypoint   []string                      `json:"Entrypoint"`
	OnBuild      []string                      `json:"OnBuild"`
	Labels       map[string]string             `json:"Labels"`
	StopSignal   string                        `json:"StopSignal,omitempty"`
	StopTimeout  *int                          `json:"StopTimeout,omitempty"`
}

// inspectNetworkConfig is docker's .NetworkSettings.
type inspectNetworkConfig struct {
	Bridge                 string                      `json:"Bridge"`
	SandboxID              string                      `json:"SandboxID"`
	HairpinMode            bool                        `json:"HairpinMode"`
	LinkLocalIPv6Address   string                      `json:"LinkLocalIPv6Address"`
	LinkLocalIPv6PrefixLen int                         `json:"LinkLocalIPv6PrefixLen"`
	Ports                  network.PortMap             `json:"Ports"`
	SandboxKey             string                      `json:"SandboxKey"`
	SecondaryIPAddresses   []string                    `json:"SecondaryIPAddresses"`
	SecondaryIPv6Addresses []string                    `json:"SecondaryIPv6Addresses"`
	EndpointID             string                      `json:"EndpointID"`
	Gateway                string                      `json:"Gateway"`
	GlobalIPv6Address      string                      `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen    int                         `json:"GlobalIPv6PrefixLen"`
	IPAddress              string                      `json:"IPAddress"`
	IPPrefixLen            int                         `json:"IPPrefixLen"`
	IPv6Gateway            string                      `json:"IPv6Gateway"`
	MacAddress             string                      `json:"MacAddress"`
	Networks               map[string]*inspectEndpoint `json:"Networks"`
}

// inspectEndpoint is the container's place on one network.
type inspectEndpoint struct {
	IPAMConfig          map[string]string `json:"IPAMConfig"`
	Links               []string          `json:"Links"`
	Aliases             []string          `json:"Aliases"`
	NetworkID           string            `json:"NetworkID"`
	EndpointID          string            `json:"EndpointID"`
	Gateway             string            `json:"Gateway"`
	IPAddress           string            `json:"IPAddress"`
	IPPrefixLen         int               `json:"IPPrefixLen"`
	IPv6Gateway         string            `json:"IPv6Gateway"`
	GlobalIPv6Address   string            `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen int               `json:"GlobalIPv6PrefixLen"`
	MacAddress          string            `json:"MacAddress"`
	DriverOpts          map[string]string `json:"DriverOpts"`
}

func toInspectContainer(m *container.Manager, driver string, ctr container.Container) inspectContainer {
	zero := "0001-01-01T00:00:00Z"
	ts := func(t time.Time) string {
		if t.IsZero() {
			return zero
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	args := containerArgs(ctr)
	path := ""
	if len(args) > 0 {
		path, args = args[0], args[1:]
	}
	rc := ctr.RunConfig()
	nf := netconf.PathsIn(m.Dir(ctr.ID))
	labels := rc.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return inspectContainer{
		ID: ctr.ID, Created: ts(ctr.Created), Path: path, Args: args,
		State: inspectState{
			Status: ctr.StateName(), Running: ctr.State.Status == container.StatusRunning,
			Paused: ctr.State.Paused, Restarting: ctr.State.Restarting,
			Pid: ctr.State.Pid, ExitCode: ctr.State.ExitCode, Error: ctr.State.Error, OOMKilled: ctr.State.OOMKilled,
			StartedAt: ts(ctr.State.StartedAt), FinishedAt: ts(ctr.State.FinishedAt),
			Health: inspectHealthOf(ctr.State.Health),
		},
		Image:          ctr.Image.String(),
		ResolvConfPath: nf.ResolvConf, HostnamePath: nf.Hostname, HostsPath: nf.Hosts,
		LogPath: m.LogPath(ctr.ID), Name: "/" + ctr.Name, Driver: driver, Platform: "linux",
		ExecIDs:      m.ExecIDs(ctr),
		HostConfig:   inspectHostConfigOf(ctr),
		Mounts:       inspectMounts(m.Volumes(), ctr),
		RestartCount: ctr.RestartCount,
		Config: inspectCtrConfig{
			Hostname: ctr.Config.Hostname, Domainname: ctr.Config.Domainname, User: rc.User, AttachStdin: ctr.Config.OpenStdin,
			AttachStdout: true, AttachStderr: true, StdinOnce: ctr.Config.OpenStdin,
			Tty: ctr.Config.Tty, OpenStdin: ctr.Config.OpenStdin, Env: rc.Env, Cmd: rc.Cmd,
			Image: ctr.ImageRef, WorkingDir: rc.WorkingDir, Entrypoint: rc.Entrypoint,
			Labels: labels, StopSignal: rc.StopSignal, StopTimeout: ctr.Config.StopTimeout, Volumes: rc.Volumes,
			ExposedPorts: exposedSet(ctr), Healthcheck: rc.Healthcheck, OnBuild: rc.OnBuild,
		},
		GraphDriver:     inspectDriver{Name: driver, Data: map[string]string{"MergedDir": m.RootfsDir(ctr.ID)}},
		NetworkSettings: inspectNetworkOf(m, ctr),
	}
}

// inspectNetworkOf fills NetworkSettings: the ports a running container
// publishes (an exposed port without a binding is null, as docker shows
// it) and, on the default network, the address pasta gave it.
func inspectNetworkOf(m *container.Manager, ctr container.Container) inspectNetworkConfig {
	ns := inspectNetworkConfig{Ports: network.PortMap{}, Networks: map[string]*inspectEndpoint{}}
	name := ctr.NetworkName()
	ep := &inspectEndpoint{}
	for _, n := range network.Builtins() {
		if n.Name == name {
			ep.NetworkID = n.ID
		}
	}
	if ctr.State.Status == container.StatusRunning {
		for p, bs := range network.Report(ctr.State.Ports) {
			ns.Ports[p] = bs
		}
		for _, p := range ctr.ExposedPorts() {
			if _, ok := ns.Ports[p]; !ok {
				ns.Ports[p] = nil
			}
		}
		if name == network.Bridge {
			a := network.HostAddress()
			ns.IPAddress, ns.Gateway, ns.IPPrefixLen = a.IP, a.Gateway, a.PrefixLen
			ep.IPAddress, ep.Gateway, ep.IPPrefixLen = a.IP, a.Gateway, a.PrefixLen
			ns.SandboxKey = m.NetnsPath(ctr.ID)
		}
	}
	if name != "" {
		ns.Networks[name] = ep
	}
	return ns
}

// exposedSet is Config.ExposedPorts: the image's, --expose's and -p's.
func exposedSet(ctr container.Container) map[string]struct{} {
	ps := ctr.ExposedPorts()
	if len(ps) == 0 {
		return nil
	}
	out := map[string]struct{}{}
	for _, p := range ps {
		out[string(p)] = struct{}{}
	}
	return out
}

// orEmpty is docker's [] for a list that was not given.
func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// inspectHealthOf is .State.Health from the record's.
func inspectHealthOf(h *container.Health) *inspectHealth {
	if h == nil {
		return nil
	}
	out := &inspectHealth{Status: h.Status, FailingStreak: h.FailingStreak, Log: []inspectHealthLog{}}
	for _, l := range h.Log {
		out.Log = append(out.Log, inspectHealthLog{
			Start: l.Start.Format(time.RFC3339Nano), End: l.End.Format(time.RFC3339Nano),
			ExitCode: l.ExitCode, Output: l.Output,
		})
	}
	return out
}
