package main

import (
	"bytes"
	"fmt"
	"runtime"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/cgroup"
	"github.com/strata-project/strata/internal/container"
)

// statsRow is one line of `stats`, with docker's --format names.
type statsRow struct {
	Container, ID, Name        string
	CPUPerc, MemUsage, MemPerc string
	NetIO, BlockIO, PIDs       string
}

const statsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeaders = map[string]string{
	"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
	"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

// statsInterval is how far apart the two samples of a CPU % are, docker's.
const statsInterval = time.Second

// sample is one reading of a container, with the host's CPU time then.
type sample struct {
	stats  container.Stats
	system uint64
	ok     bool
}

func newStatsCmd(g *globals) *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	c := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(c *cobra.Command, args []string) error {
			_, m, err := g.containers(c)
			if err != nil {
				return err
			}
			ctx := c.Context()
			// The containers to show: those named, else the running ones
			// (all with -a), listed again at every refresh.
			list := func() ([]container.Container, error) {
				if len(args) > 0 {
					var out []container.Container
					for _, ref := range args {
						ctr, err := m.Get(ctx, ref)
						if err != nil {
							return nil, err
						}
						out = append(out, ctr)
					}
					return out, nil
				}
				ctrs, err := m.List(ctx)
				if err != nil {
					return nil, err
				}
				var out []container.Container
				for _, ctr := range ctrs {
					if all || ctr.State.Status == container.StatusRunning {
						out = append(out, ctr)
					}
				}
				return out, nil
			}
			read := func(ctrs []container.Container) map[string]sample {
				out := map[string]sample{}
				sys, _ := cgroup.SystemUsage()
				for _, ctr := range ctrs {
					st, err := m.Stats(ctr)
					out[ctr.ID] = sample{stats: st, system: sys, ok: err == nil}
				}
				return out
			}
			ctrs, err := list()
			if err != nil {
				return err
			}
			prev := read(ctrs)
			ticker := time.NewTicker(statsInterval)
			defer ticker.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-ticker.C:
				}
				cur := read(ctrs)
				rows := make([]statsRow, 0, len(ctrs))
				for _, ctr := range ctrs {
					rows = append(rows, toStatsRow(ctr, prev[ctr.ID], cur[ctr.ID], noTrunc))
				}
				var b bytes.Buffer
				if !noStream {
					b.WriteString("\033[2J\033[H") // docker's clear screen
				}
				if err := writeRows(&b, format, statsTable, statsHeaders, rows); err != nil {
					return err
				}
				if _, err := c.OutOrStdout().Write(b.Bytes()); err != nil {
					return err
				}
				if noStream {
					return nil
				}
				if ctrs, err = list(); err != nil {
					return err
				}
				prev = cur
			}
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	c.Flags().BoolVar(&noStream, "no-stream", false, "disable streaming stats and only pull the first result")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate output")
	c.Flags().StringVar(&format, "format", "", "format output using a Go template, 'table ...' or 'json'")
	return c
}

// toStatsRow computes docker's columns from two samples: CPU % is the
// container's share of the host's CPU time between them, scaled by the
// number of CPUs (100% is one whole CPU).
func toStatsRow(ctr container.Container, prev, cur sample, noTrunc bool) statsRow {
	id := ctr.ID
	if !noTrunc {
		id = ctr.ShortID()
	}
	row := statsRow{Container: id, ID: id, Name: ctr.Name,
		CPUPerc: "0.00%", MemUsage: "0B / 0B", MemPerc: "0.00%", NetIO: "0B / 0B", BlockIO: "0B / 0B", PIDs: "0"}
	if !cur.ok {
		return row
	}
	s := cur.stats
	if prev.ok && cur.system > prev.system && s.CPUUsage >= prev.stats.CPUUsage {
		cpus := float64(runtime.NumCPU())
		row.CPUPerc = fmt.Sprintf("%.2f%%", float64(s.CPUUsage-prev.stats.CPUUsage)/float64(cur.system-prev.system)*cpus*100)
	}
	limit := s.MemoryLimit
	if host := hostMemory(); limit == 0 || (host > 0 && limit > host) {
		limit = host
	}
	row.MemUsage = units.BytesSize(float64(s.MemoryUsage)) + " / " + units.BytesSize(float64(limit))
	if limit > 0 {
		row.MemPerc = fmt.Sprintf("%.2f%%", float64(s.MemoryUsage)/float64(limit)*100)
	}
	row.NetIO = humanSize(int64(s.NetRx)) + " / " + humanSize(int64(s.NetTx))
	row.BlockIO = humanSize(int64(s.BlockRead)) + " / " + humanSize(int64(s.BlockWrite))
	row.PIDs = fmt.Sprint(s.Pids)
	return row
}

// hostMemory is the host's RAM in bytes: docker's limit of an unlimited
// container.
func hostMemory() uint64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}
