package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/strata-project/strata/internal/container"
	"github.com/strata-project/strata/internal/netconf"
	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/store"
)

// imageUsers tells rmi which containers use an image.
func imageUsers(s *store.Store) store.ImageUsers {
	return container.NewManager(s, defaultRuntime()).Users
}

func containerCount(ctx context.Context, s *store.Store) (all, running int, err error) {
	ctrs, err := container.NewManager(s, defaultRuntime()).List(ctx)
	for _, ctr := range ctrs {
		if ctr.State.Status == container.StatusRunning {
			running++
		}
	}
	return len(ctrs), running, err
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
		newCommitCmd(g), newDiffCmd(g), newExportCmd(g), newCpCmd(g), newExecCmd(g))
	c.AddCommand(newUpdateCmd(g), newStatsCmd(g))
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
}

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
	return psRow{
		ID: id, Image: ctr.ImageRef, Command: strconv.Quote(cmd),
		CreatedAt:  ctr.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: since(ctr.Created), State: string(ctr.State.Status),
		Status: ctr.StatusText(now), Names: ctr.Name, Networks: ctr.NetworkName(),
	}
}

// containerArgs is the command line the container runs (or would run).
func containerArgs(ctr container.Container) []string {
	args, _ := oci.Args(ctr.ImageConfig.ImageConfig, ctr.Config.Entrypoint, ctr.Config.EntrypointSet, ctr.Config.Cmd)
	return args
}

func newRmCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			err := eachContainer(c, g, args, func(m *container.Manager, ctr container.Container) error {
				return m.Remove(c.Context(), ctr, force)
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
	c := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			timeout := time.Duration(seconds) * time.Second
			return eachContainer(c, g, args, func(m *container.Manager, ctr container.Container) error {
				return m.Stop(c.Context(), ctr, timeout)
			})
		},
	}
	c.Flags().IntVarP(&seconds, "time", "t", 10, "seconds to wait before killing the container (-1: wait forever)")
	return c
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
				return usageError{cmd: c.CommandPath(), err: err}
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
	return &cobra.Command{
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
					code, err = m.Wait(c.Context(), ctr)
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
}

func newLogsCmd(g *globals) *cobra.Command {
	var o container.LogOptions
	var tail string
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
	c.Flags().StringVarP(&tail, "tail", "n", "all", "number of lines to show from the end of the logs")
	return c
}

// inspectContainer is docker's `container inspect` JSON shape (the parts
// strata has).
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
	Driver          string               `json:"Driver"`
	ExecIDs         []string             `json:"ExecIDs"` // running execs; null when none, as docker
	HostConfig      inspectHostConfig    `json:"HostConfig"`
	Config          inspectCtrConfig     `json:"Config"`
	GraphDriver     inspectDriver        `json:"GraphDriver"`
	NetworkSettings inspectNetworkConfig `json:"NetworkSettings"`
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
}

type inspectHostConfig struct {
	Binds          []string `json:"Binds"`
	NetworkMode    string   `json:"NetworkMode"`
	ReadonlyRootfs bool     `json:"ReadonlyRootfs"`
	AutoRemove     bool     `json:"AutoRemove"`
	Runtime        string   `json:"Runtime"`

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
	CPUShares         int64           `json:"CpuShares"`
	CpusetCpus        string          `json:"CpusetCpus"`
	CpusetMems        string          `json:"CpusetMems"`
	PidsLimit         *int64          `json:"PidsLimit"`
	BlkioWeight       uint16          `json:"BlkioWeight"`
	Ulimits           []*units.Ulimit `json:"Ulimits"`
	ShmSize           int64           `json:"ShmSize"`
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
		AutoRemove: ctr.Config.AutoRemove, Runtime: ctr.Config.Runtime,
		Privileged: sec.Privileged, CapAdd: sec.CapAdd, CapDrop: sec.CapDrop,
		SecurityOpt: sec.SecurityOpt, GroupAdd: sec.GroupAdd, Sysctls: sec.Sysctls,
		Devices: []inspectDevice{},
		Memory:  res.Memory, MemorySwap: res.MemorySwap, MemoryReservation: res.MemoryReservation,
		OomKillDisable: res.OomKillDisable, NanoCpus: res.NanoCPUs, CPUShares: res.CPUShares,
		CpusetCpus: res.CpusetCpus, CpusetMems: res.CpusetMems, BlkioWeight: res.BlkioWeight,
		ShmSize: res.ShmSize, Ulimits: []*units.Ulimit{},
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
	return hc
}

type inspectCtrConfig struct {
	Hostname     string              `json:"Hostname"`
	User         string              `json:"User"`
	AttachStdin  bool                `json:"AttachStdin"`
	Tty          bool                `json:"Tty"`
	OpenStdin    bool                `json:"OpenStdin"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Image        string              `json:"Image"`
	WorkingDir   string              `json:"WorkingDir"`
	Entrypoint   []string            `json:"Entrypoint"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
}

type inspectNetworkConfig struct {
	Networks map[string]struct{} `json:"Networks"`
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
	return inspectContainer{
		ID: ctr.ID, Created: ts(ctr.Created), Path: path, Args: args,
		State: inspectState{
			Status: string(ctr.State.Status), Running: ctr.State.Status == container.StatusRunning,
			Pid: ctr.State.Pid, ExitCode: ctr.State.ExitCode, Error: ctr.State.Error, OOMKilled: ctr.State.OOMKilled,
			StartedAt: ts(ctr.State.StartedAt), FinishedAt: ts(ctr.State.FinishedAt),
		},
		Image:          ctr.Image.String(),
		ResolvConfPath: nf.ResolvConf, HostnamePath: nf.Hostname, HostsPath: nf.Hosts,
		LogPath: m.LogPath(ctr.ID), Name: "/" + ctr.Name, Driver: driver,
		ExecIDs:    m.ExecIDs(ctr),
		HostConfig: inspectHostConfigOf(ctr),
		Config: inspectCtrConfig{
			Hostname: ctr.Config.Hostname, User: rc.User, AttachStdin: ctr.Config.OpenStdin,
			Tty: ctr.Config.Tty, OpenStdin: ctr.Config.OpenStdin, Env: rc.Env, Cmd: rc.Cmd,
			Image: ctr.ImageRef, WorkingDir: rc.WorkingDir, Entrypoint: rc.Entrypoint,
			Labels: rc.Labels, StopSignal: rc.StopSignal,
			ExposedPorts: rc.ExposedPorts,
		},
		GraphDriver:     inspectDriver{Name: driver, Data: map[string]string{"MergedDir": m.RootfsDir(ctr.ID)}},
		NetworkSettings: inspectNetworkConfig{Networks: map[string]struct{}{ctr.Config.Network: {}}},
	}
}
