package oci

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ConfigFile is the name of the runtime config inside a bundle directory.
const ConfigFile = "config.json"

// WriteBundle writes spec as dir/config.json, creating dir. The file is
// written to a temporary name and renamed, so a crash never leaves a
// half-written config for a later start to trip over.
func WriteBundle(dir string, spec *specs.Spec) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create bundle %s: %w", dir, err)
	}
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return fmt.Errorf("encode bundle config: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".config-*.json")
	if err != nil {
		return fmt.Errorf("write bundle config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write bundle config: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write bundle config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write bundle config: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, ConfigFile)); err != nil {
		return fmt.Errorf("write bundle config: %w", err)
	}
	return nil
}

// ReadBundle reads dir/config.json.
func ReadBundle(dir string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("read bundle config: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decode bundle config %s: %w", dir, err)
	}
	return &s, nil
}
