package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/layer"
)

// versionPart is one half of docker's `version` data. strata has no
// daemon: the engine is this binary, so Client and Server are the same.
type versionPart struct {
	Platform   struct{ Name string }
	Version    string
	ApiVersion string `json:"ApiVersion"`
	GoVersion  string
	GitCommit  string
	Os         string
	Arch       string
}

// versionData is what `version --format` sees, with docker's names.
type versionData struct {
	Client versionPart
	Server *versionPart
}

func newVersionCmd() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "version",
		Short: "Show the strata version information",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			p := versionPart{Version: version, ApiVersion: "1.41", GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH}
			p.Platform.Name = "strata"
			if format != "" {
				return writeRows(c.OutOrStdout(), format, "", nil, []versionData{{Client: p, Server: &p}})
			}
			fmt.Fprintf(c.OutOrStdout(), "Client: strata\n Version:    %s\n Go version: %s\n OS/Arch:    %s/%s\n",
				version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template or 'json'")
	return c
}

// infoData is what `info` shows; --format templates see docker's names
// (.ServerVersion, .ContainersRunning, .DockerRootDir, .Driver...), plus
// strata's Layers and RuntimeBinary.
type infoData struct {
	ID                string
	Name              string
	DockerRootDir     string
	Driver            string
	DefaultRuntime    string
	RuntimeBinary     string
	Images            int
	Layers            int
	Containers        int
	ContainersRunning int
	ContainersPaused  int
	ContainersStopped int
	ServerVersion     string
	OperatingSystem   string
	OSType            string
	Architecture      string
	KernelVersion     string
	NCPU              int
	MemTotal          int64
	CgroupVersion     string
}

func newInfoCmd(g *globals) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "info",
		Short: "Display system-wide information",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := g.openStore(c.Context())
			if err != nil {
				return err
			}
			imgs, err := s.Images().List(c.Context())
			if err != nil {
				return err
			}
			layers := 0
			if err := s.Layers().Walk(c.Context(), func(layer.Layer) error { layers++; return nil }); err != nil {
				return err
			}
			d := infoData{
				DockerRootDir: s.Root(), Driver: s.Driver(), DefaultRuntime: defaultRuntime(), Images: len(imgs), Layers: layers,
				ServerVersion: version, OSType: runtime.GOOS, Architecture: hostArch(), NCPU: runtime.NumCPU(),
			}
			fillHost(&d)
			d.Containers, d.ContainersRunning, d.ContainersPaused, err = containerCount(c.Context(), s)
			if err != nil {
				return err
			}
			d.ContainersStopped = d.Containers - d.ContainersRunning - d.ContainersPaused
			if p, err := exec.LookPath(d.DefaultRuntime); err == nil {
				d.RuntimeBinary = p
			} else {
				d.RuntimeBinary = "not found in PATH"
			}
			if format != "" {
				return writeRows(c.OutOrStdout(), format, "", nil, []infoData{d})
			}
			var b strings.Builder
			fmt.Fprintf(&b, "Server:\n")
			fmt.Fprintf(&b, " Containers: %d\n", d.Containers)
			fmt.Fprintf(&b, "  Running: %d\n  Paused: %d\n  Stopped: %d\n", d.ContainersRunning, d.ContainersPaused, d.ContainersStopped)
			fmt.Fprintf(&b, " Images: %d\n", d.Images)
			fmt.Fprintf(&b, " Layers: %d\n", d.Layers)
			fmt.Fprintf(&b, " Server Version: strata %s\n", d.ServerVersion)
			fmt.Fprintf(&b, " Storage Driver: %s\n", d.Driver)
			fmt.Fprintf(&b, " Default Runtime: %s (%s)\n", d.DefaultRuntime, d.RuntimeBinary)
			fmt.Fprintf(&b, " Kernel Version: %s\n", d.KernelVersion)
			fmt.Fprintf(&b, " Operating System: %s\n", d.OperatingSystem)
			fmt.Fprintf(&b, " OSType: %s\n", d.OSType)
			fmt.Fprintf(&b, " Architecture: %s\n", d.Architecture)
			fmt.Fprintf(&b, " CPUs: %d\n", d.NCPU)
			fmt.Fprintf(&b, " Total Memory: %s\n", units.BytesSize(float64(d.MemTotal)))
			fmt.Fprintf(&b, " Name: %s\n", d.Name)
			fmt.Fprintf(&b, " Strata Root Dir: %s\n", d.DockerRootDir)
			fmt.Fprint(c.OutOrStdout(), b.String())
			return nil
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return c
}

// hostArch is the architecture in docker's info spelling (uname -m).
func hostArch() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return runtime.GOARCH
	}
	return unix.ByteSliceToString(u.Machine[:])
}

// fillHost adds what docker's info says about the host: kernel, OS
// name, memory, hostname, cgroup version.
func fillHost(d *infoData) {
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		d.KernelVersion = unix.ByteSliceToString(u.Release[:])
		d.Name = unix.ByteSliceToString(u.Nodename[:])
	}
	d.OperatingSystem = d.OSType
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				d.OperatingSystem = strings.Trim(v, `"`)
			}
		}
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		d.MemTotal = int64(si.Totalram) * int64(si.Unit)
	}
	d.CgroupVersion = "1"
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		d.CgroupVersion = "2"
	}
	if id, err := os.ReadFile("/etc/machine-id"); err == nil {
		d.ID = strings.TrimSpace(string(id))
	}
}
