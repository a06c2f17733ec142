package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/snapshot"
)

// A build's scratch directories (mounted step roots, bundles, secrets
// tmpfs, downloads) are named <pid>-<random> under build/steps, so the next
// build can tell those of a build that was killed and clean them up: its
// RUN containers are killed, its mounts undone, its directories removed.
// The layer snapshots such a build had prepared are ingest snapshots, which
// the store's garbage collection already removes.

func (b *builder) stepDir() string {
	return filepath.Join(b.s.Root, "build", "steps", fmt.Sprintf("%d-%s", os.Getpid(), randomHex(8)))
}

// sweepDeadSteps cleans up after builds whose process is gone.
func sweepDeadSteps(ctx context.Context, rt *oci.Runtime, root string) error {
	steps := filepath.Join(root, "build", "steps")
	ents, err := os.ReadDir(steps)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var dead []string
	for _, e := range ents {
		if pid := stepOwner(e.Name()); pid > 0 && !processAlive(pid) {
			dead = append(dead, filepath.Join(steps, e.Name()))
		}
	}
	if len(dead) == 0 {
		return nil
	}
	// RUN containers of a killed build outlive it, holding its mounts.
	if states, err := rt.List(ctx); err == nil {
		for _, st := range states {
			for _, d := range dead {
				if strings.HasPrefix(st.Bundle, d+string(filepath.Separator)) {
					_ = rt.Delete(ctx, st.ID, true)
				}
			}
		}
	}
	for _, d := range dead {
		if err := snapshot.UnmountAll(d); err != nil {
			return fmt.Errorf("clean up after a killed build: %w", err)
		}
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("clean up after a killed build: %w", err)
		}
	}
	return nil
}

// stepOwner is the pid in a step directory's name, or 0.
func stepOwner(name string) int {
	p, _, ok := strings.Cut(name, "-")
	if !ok {
		return 0
	}
	pid, err := strconv.Atoi(p)
	if err != nil {
		return 0
	}
	return pid
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
