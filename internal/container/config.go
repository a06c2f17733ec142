package container

import (
	"github.com/strata-project/strata/internal/image"
)

// RunConfig is the config the container runs with: its image's, with
// what create/run overrode. It is what commit stores (docker commits
// exactly this, Healthcheck and OnBuild included) and what inspect shows.
func (c Container) RunConfig() image.RunConfig {
	rc := c.ImageConfig
	cc := c.Config
	if cc.EntrypointSet {
		rc.Entrypoint = cc.Entrypoint
		// `--entrypoint ""` arrives as [""]: docker clears the entrypoint.
		if len(rc.Entrypoint) == 1 && rc.Entrypoint[0] == "" {
			rc.Entrypoint = nil
		}
		rc.Cmd = nil
	}
	if len(cc.Cmd) > 0 {
		rc.Cmd = cc.Cmd
	}
	rc.Env = image.NormalizeEnv(append(append([]string{}, rc.Env...), cc.Env...))
	if cc.WorkingDir != "" {
		rc.WorkingDir = cc.WorkingDir
	}
	if cc.User != "" {
		rc.User = cc.User
	}
	if len(cc.Labels) > 0 {
		rc.Labels = c.Labels()
	}
	rc.Healthcheck = MergeHealthcheck(rc.Healthcheck, cc.Healthcheck)
	if cc.StopSignal != "" {
		rc.StopSignal = cc.StopSignal
	}
	return rc
}
