package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-project/strata/internal/oci"
	"github.com/strata-project/strata/internal/snapshot"
)

// A build's scratch directories (mounted step roots, bundles, secrets
// tmpfs, downloads) are named <owner>-<random> under build/steps, where
// owner is the build process's lockfile.Owner ID, so the next
// build can tell those of a build that was killed and clean them up: its
// RUN containers are killed, its mounts undone, its directories removed.
// The layer snapshots such a build had prepared are ingest snapshots, which
// the store's garbage collection already removes.

func (b *builder) stepDir() string {
	return filepath.Join(b.s.Root(), "build", "steps", b.s.Owner()+"-"+randomHex(8))
}

// Sweep cleans up after builds whose process died: their RUN containers
// are killed, their mounts undone, their scratch directories removed.
func Sweep(ctx context.Context, s Store) error {
	steps := filepath.Join(s.Root(), "build", "steps")
	if ents, err := os.ReadDir(steps); err != nil || len(ents) == 0 {
		return nil // nothing to look at: no runtime needed
	}
	rt, err := oci.New("", filepath.Join(s.Root(), "build", "runtime"))
	if err != nil {
		return err
	}
	return sweepDeadSteps(ctx, rt, s)
}

// sweepDeadSteps cleans up after builds whose process is gone.
func sweepDeadSteps(ctx context.Context, rt *oci.Runtime, s Store) error {
	steps := filepath.Join(s.Root(), "build", "steps")
	ents, err := os.ReadDir(steps)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var dead []string
	for _, e := range ents {
		if owner, _, ok := strings.Cut(e.Name(), "-"); ok && !s.Alive(owner) {
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
