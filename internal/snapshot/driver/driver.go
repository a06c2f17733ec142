// Package driver picks and opens a snapshot driver for a store. It lives
// apart from package snapshot because it imports the drivers, which import
// snapshot.
package driver

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/strata-project/strata/internal/metadata"
	"github.com/strata-project/strata/internal/snapshot"
	"github.com/strata-project/strata/internal/snapshot/native"
	"github.com/strata-project/strata/internal/snapshot/overlay"
)

// Names are the drivers Open knows, preferred first.
var Names = []string{"overlay", "native"}

// Open returns driver name for the store at storeRoot, keeping its
// snapshots in storeRoot/snapshots/<name>. An empty name means the driver
// the store already uses, or for a new store the one Detect chooses.
func Open(name, storeRoot string, db *metadata.DB) (snapshot.Snapshotter, error) {
	base := filepath.Join(storeRoot, "snapshots")
	if name == "" {
		name = Choose(base)
	}
	root := filepath.Join(base, name)
	switch name {
	case "overlay":
		return overlay.New(root, db)
	case "native":
		return native.New(root, db)
	}
	return nil, fmt.Errorf("unknown snapshot driver %q (known: %q)", name, Names)
}

// Choose returns the driver whose directory already exists under base, so
// a store keeps its driver, or else what snapshot.Detect finds works there.
func Choose(base string) string {
	for _, n := range Names {
		if fi, err := os.Stat(filepath.Join(base, n)); err == nil && fi.IsDir() {
			return n
		}
	}
	return snapshot.Detect(base)
}
