package image

import (
	"encoding/json"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// Config is strata's one image-config model: the OCI image config plus
// docker's Healthcheck, OnBuild and Shell (moby's docker-image-spec). It is
// what docker writes, so every image strata makes, pulls or inspects keeps
// those fields, whichever path (build, commit, import, pull) made it.
type Config = dockerspec.DockerOCIImage

// RunConfig is the execution part of a Config (the "config" object):
// command, environment, ports, volumes, healthcheck.
type RunConfig = dockerspec.DockerOCIImageConfig

// CloneConfig is a deep copy of c, so that one step's edits never reach
// the config it started from.
func CloneConfig(c Config) Config {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a config always marshals
	}
	var out Config
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}
