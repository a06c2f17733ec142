package image

import (
	"fmt"
	"path"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ApplyChange applies one Dockerfile instruction given with `--change` (import
// and commit) to cfg. Only the instructions docker accepts there are allowed:
// CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME,
// WORKDIR. Words are expanded against the config's environment, as in a
// Dockerfile.
func ApplyChange(cfg *ocispec.ImageConfig, change string) error {
	res, err := parser.Parse(strings.NewReader(change))
	if err != nil {
		return fmt.Errorf("--change %q: %w", change, err)
	}
	if len(res.AST.Children) != 1 {
		return fmt.Errorf("--change %q: want exactly one instruction", change)
	}
	node := res.AST.Children[0]
	inst, err := instructions.ParseInstruction(node)
	if err != nil {
		return fmt.Errorf("--change %q: %w", change, err)
	}
	lex := shell.NewLex('\\')
	expand := func(word string) (string, error) {
		out, _, err := lex.ProcessWord(word, shell.EnvsFromSlice(cfg.Env))
		return out, err
	}
	if e, ok := inst.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(expand); err != nil {
			return fmt.Errorf("--change %q: %w", change, err)
		}
	}
	switch c := inst.(type) {
	case *instructions.CmdCommand:
		cfg.Cmd = commandLine(c.ShellDependantCmdLine)
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = commandLine(c.ShellDependantCmdLine)
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = append(cfg.Env, kv.Key+"="+kv.Value)
		}
		cfg.Env = NormalizeEnv(cfg.Env)
	case *instructions.ExposeCommand:
		for _, p := range c.Ports {
			port, err := expand(p)
			if err != nil {
				return fmt.Errorf("--change %q: %w", change, err)
			}
			if !strings.Contains(port, "/") {
				port += "/tcp"
			}
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			cfg.ExposedPorts[port] = struct{}{}
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.WorkdirCommand:
		cfg.WorkingDir = JoinWorkdir(cfg.WorkingDir, c.Path)
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
	case *instructions.OnbuildCommand:
		// ocispec has no OnBuild field; docker keeps it in the config
		// JSON, which the builder reads through its own type.
		return fmt.Errorf("--change %q: ONBUILD is only supported in Dockerfiles", change)
	default:
		return fmt.Errorf("--change %q: %s is not a valid change command", change, strings.ToUpper(node.Value))
	}
	return nil
}

// commandLine is the exec form of CMD/ENTRYPOINT; the shell form runs
// through /bin/sh -c like docker's default shell.
func commandLine(c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return []string{"/bin/sh", "-c", strings.Join(c.CmdLine, " ")}
	}
	return append([]string{}, c.CmdLine...)
}

// JoinWorkdir resolves a WORKDIR p against the current working directory,
// as docker does ("" counts as "/").
func JoinWorkdir(cur, p string) string {
	if !path.IsAbs(p) {
		if cur == "" {
			cur = "/"
		}
		p = path.Join(cur, p)
	}
	return path.Clean(p)
}
