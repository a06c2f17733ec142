package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/strata-project/strata/internal/lockfile"
	"github.com/strata-project/strata/internal/oci"
)

// Reconciled is what a reconcile cleaned up after dead processes.
type Reconciled struct {
	Owners, Leases, TarSplits, RuntimeLogs, LayerRecords int
}

// String says what was cleaned up, or "" when nothing was.
func (r Reconciled) String() string {
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{
		{r.Leases, "leases"}, {r.TarSplits, "tar-split temp files"}, {r.RuntimeLogs, "runtime logs"},
		{r.LayerRecords, "layer records without a snapshot"},
	} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	return strings.Join(parts, ", ")
}

// Reconcile is the cheap pass every command starts with: it cleans up
// after strata processes that died (kill -9, power loss). It touches only
// what a dead owner left, decided by owner locks, never by age or PID, and
// costs a few directory reads and one metadata read when there is nothing
// to do. Layer and image garbage waits for rmi or a prune.
func (s *Store) Reconcile(ctx context.Context) (Reconciled, error) {
	var r Reconciled
	var err error
	if r.Leases, err = s.releaseDeadLeases(); err != nil {
		return r, err
	}
	if r.Owners, err = lockfile.SweepOwners(filepath.Join(s.root, ownersDir)); err != nil {
		return r, err
	}
	if err = s.content.CleanIngest(0); err != nil {
		return r, err
	}
	if r.TarSplits, err = s.layers.CleanTemps(s.Alive); err != nil {
		return r, err
	}
	for _, dir := range []string{
		oci.LogDir(filepath.Join(s.root, "runtime", "runc")),
		oci.LogDir(filepath.Join(s.root, "build", "runtime")),
	} {
		n, err := oci.CleanLogs(dir)
		if err != nil {
			return r, err
		}
		r.RuntimeLogs += n
	}
	if err := s.removeDeadIngests(ctx); err != nil {
		return r, err
	}
	// A removal killed between the snapshot and the record.
	if r.LayerRecords, err = s.layers.RemoveOrphans(ctx); err != nil {
		return r, err
	}
	// Snapshot directories a killed process renamed into place inside a
	// transaction that never committed: left there, the next snapshot
	// would be given the same number and fail.
	if c, ok := s.snapshots.(interface{ Cleanup(context.Context) error }); ok {
		if err := c.Cleanup(ctx); err != nil {
			return r, err
		}
	}
	return r, nil
}
