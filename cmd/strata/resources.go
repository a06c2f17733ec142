package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-project/strata/internal/container"
	"github.com/strata-project/strata/internal/oci"
)

// resourceFlags are the limits `run`/`create` and `update` share, in
// docker's spelling; sizes take docker's units (b, k, m, g).
type resourceFlags struct {
	memory, memorySwap, memoryReservation, shmSize string
	cpus                                           float64
	cpuShares, pidsLimit                           int64
	cpusetCpus, cpusetMems                         string
	blkioWeight                                    uint16
	oomKillDisable                                 bool
	ulimits                                        []string
}

// register adds the flags; create says whether the flags only a new
// container takes (--ulimit, --shm-size, --oom-kill-disable) are included.
func (f *resourceFlags) register(fl *pflag.FlagSet, create bool) {
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit")
	fl.StringVar(&f.memorySwap, "memory-swap", "", "swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fl.StringVar(&f.memoryReservation, "memory-reservation", "", "memory soft limit")
	fl.Float64Var(&f.cpus, "cpus", 0, "number of CPUs")
	fl.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.StringVar(&f.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.StringVar(&f.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fl.Int64Var(&f.pidsLimit, "pids-limit", 0, "tune container pids limit (set -1 for unlimited)")
	fl.Uint16Var(&f.blkioWeight, "blkio-weight", 0, "block IO (relative weight), between 10 and 1000, or 0 to disable")
	if create {
		fl.StringArrayVar(&f.ulimits, "ulimit", nil, "ulimit options (NAME=SOFT[:HARD])")
		fl.StringVar(&f.shmSize, "shm-size", "", "size of /dev/shm")
		fl.BoolVar(&f.oomKillDisable, "oom-kill-disable", false, "disable OOM killer")
	}
}

// resources applies the flags that were given over r.
func (f *resourceFlags) resources(fl *pflag.FlagSet, r oci.Resources) (oci.Resources, error) {
	size := func(name, v string, dst *int64, allowUnlimited bool) error {
		if !fl.Changed(name) {
			return nil
		}
		if allowUnlimited && v == "-1" {
			*dst = -1
			return nil
		}
		n, err := units.RAMInBytes(v)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--%s\" flag: %w", v, name, err)
		}
		*dst = n
		return nil
	}
	if err := size("memory", f.memory, &r.Memory, false); err != nil {
		return r, err
	}
	if err := size("memory-swap", f.memorySwap, &r.MemorySwap, true); err != nil {
		return r, err
	}
	if err := size("memory-reservation", f.memoryReservation, &r.MemoryReservation, false); err != nil {
		return r, err
	}
	if err := size("shm-size", f.shmSize, &r.ShmSize, false); err != nil {
		return r, err
	}
	if fl.Changed("cpus") {
		if f.cpus < 0 || math.IsNaN(f.cpus) || math.IsInf(f.cpus, 0) {
			return r, fmt.Errorf("invalid argument %q for \"--cpus\" flag", strconv.FormatFloat(f.cpus, 'f', -1, 64))
		}
		r.NanoCPUs = int64(math.Round(f.cpus * 1e9))
	}
	if fl.Changed("cpu-shares") {
		r.CPUShares = f.cpuShares
	}
	if fl.Changed("cpuset-cpus") {
		r.CpusetCpus = f.cpusetCpus
	}
	if fl.Changed("cpuset-mems") {
		r.CpusetMems = f.cpusetMems
	}
	if fl.Changed("pids-limit") {
		r.PidsLimit = f.pidsLimit
	}
	if fl.Changed("blkio-weight") {
		r.BlkioWeight = f.blkioWeight
	}
	if fl.Lookup("ulimit") != nil {
		r.Ulimits = append(r.Ulimits, f.ulimits...)
		r.OomKillDisable = f.oomKillDisable
	}
	return r, nil
}

func newUpdateCmd(g *globals) *cobra.Command {
	var f resourceFlags
	var restart string
	c := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			changed := false
			c.LocalFlags().VisitAll(func(f *pflag.Flag) { changed = changed || f.Changed })
			if !changed {
				return usageError{cmd: c.CommandPath(), err: errors.New("you must provide one or more flags when using this command")}
			}
			return eachContainer(c, g, args, func(m *container.Manager, ctr container.Container) error {
				res, err := f.resources(c.Flags(), ctr.Config.Resources)
				if err != nil {
					return err
				}
				var policy *container.RestartPolicy
				if c.Flags().Changed("restart") {
					p, err := container.ParseRestartPolicy(restart)
					if err != nil {
						return err
					}
					policy = &p
				}
				return m.Update(c.Context(), ctr, res, policy)
			})
		},
	}
	f.register(c.Flags(), false)
	c.Flags().StringVar(&restart, "restart", "", "restart policy to apply when a container exits")
	return c
}
