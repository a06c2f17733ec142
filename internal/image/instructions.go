package image

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Applier applies the Dockerfile instructions that only change an image's
// config (ENV, LABEL, CMD, ENTRYPOINT, EXPOSE, VOLUME, USER, WORKDIR,
// SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER). It is the one
// place their meaning lives: the builder runs every such step through it,
// and commit/import --change run their instructions through it, so an
// instruction means the same wherever it is written.
type Applier struct {
	// CmdSet records that a CMD was applied in this run (a build stage or
	// one set of --change instructions). An ENTRYPOINT after it keeps it;
	// otherwise an ENTRYPOINT drops the CMD it inherited, as docker does.
	CmdSet bool
	// Words expands an EXPOSE word, which may become several ports
	// (EXPOSE $PORTS). nil leaves words as written.
	Words func(word string) ([]string, error)
}

// Apply changes cfg as instruction c does. It reports false, changing
// nothing, for instructions that do more than change the config (RUN,
// COPY, ADD, FROM, ARG): the caller runs those. WORKDIR only sets the
// working directory here; a builder also creates it. Words other than
// EXPOSE's must already be expanded (instructions.SupportsSingleWordExpansion).
func (a *Applier) Apply(cfg *Config, c instructions.Command) (bool, error) {
	rc := &cfg.Config
	switch c := c.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			rc.Env = append(rc.Env, kv.Key+"="+kv.Value)
		}
		rc.Env = NormalizeEnv(rc.Env)
	case *instructions.LabelCommand:
		if rc.Labels == nil {
			rc.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			rc.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		cfg.Author = c.Maintainer
	case *instructions.ExposeCommand:
		for _, w := range c.Ports {
			words := []string{w}
			if a.Words != nil {
				var err error
				if words, err = a.Words(w); err != nil {
					return true, fmt.Errorf("EXPOSE %s: %w", w, err)
				}
			}
			for _, spec := range words {
				ports, err := ParsePortSpec(spec)
				if err != nil {
					return true, err
				}
				if rc.ExposedPorts == nil {
					rc.ExposedPorts = map[string]struct{}{}
				}
				for _, p := range ports {
					rc.ExposedPorts[p] = struct{}{}
				}
			}
		}
	case *instructions.VolumeCommand:
		for _, v := range c.Volumes {
			if v == "" {
				return true, errors.New("VOLUME specified can not be an empty string")
			}
			if rc.Volumes == nil {
				rc.Volumes = map[string]struct{}{}
			}
			rc.Volumes[v] = struct{}{}
		}
	case *instructions.UserCommand:
		rc.User = c.User
	case *instructions.CmdCommand:
		rc.Cmd = commandLine(*rc, c.ShellDependantCmdLine)
		a.CmdSet = true
	case *instructions.EntrypointCommand:
		rc.Entrypoint = commandLine(*rc, c.ShellDependantCmdLine)
		if !a.CmdSet {
			rc.Cmd = nil
		}
	case *instructions.ShellCommand:
		rc.Shell = append([]string{}, c.Shell...)
	case *instructions.StopSignalCommand:
		rc.StopSignal = c.Signal
	case *instructions.HealthCheckCommand:
		rc.Healthcheck = c.Health
	case *instructions.OnbuildCommand:
		rc.OnBuild = append(rc.OnBuild, c.Expression)
	case *instructions.WorkdirCommand:
		rc.WorkingDir = JoinWorkdir(rc.WorkingDir, c.Path)
	default:
		return false, nil
	}
	return true, nil
}

// Shell is the shell a config runs shell-form commands with: its SHELL,
// or docker's default.
func Shell(rc RunConfig) []string {
	if len(rc.Shell) > 0 {
		return rc.Shell
	}
	return []string{"/bin/sh", "-c"}
}

// commandLine is CMD/ENTRYPOINT's exec form; the shell form runs through
// the config's shell.
func commandLine(rc RunConfig, c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return append(append([]string{}, Shell(rc)...), strings.Join(c.CmdLine, " "))
	}
	return append([]string{}, c.CmdLine...)
}

// ParsePortSpec reads one EXPOSE word: PORT[-PORT][/PROTO], as docker
// does ("8000-8001/UDP" is 8000/udp and 8001/udp; no protocol is tcp).
func ParsePortSpec(spec string) ([]string, error) {
	portRange, proto, hasProto := strings.Cut(spec, "/")
	proto = strings.ToLower(proto)
	if !hasProto {
		proto = "tcp"
	}
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, fmt.Errorf("invalid proto: %s", proto)
	}
	lo, hi, isRange := strings.Cut(portRange, "-")
	first, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid containerPort: %s", portRange)
	}
	last := first
	if isRange {
		if last, err = strconv.ParseUint(hi, 10, 16); err != nil || last < first {
			return nil, fmt.Errorf("invalid containerPort: %s", portRange)
		}
	}
	out := make([]string, 0, last-first+1)
	for p := first; p <= last; p++ {
		out = append(out, strconv.FormatUint(p, 10)+"/"+proto)
	}
	return out, nil
}

// changeCommands are the instructions docker accepts in --change.
var changeCommands = map[string]bool{
	"cmd": true, "entrypoint": true, "env": true, "expose": true, "healthcheck": true,
	"label": true, "onbuild": true, "user": true, "volume": true, "workdir": true,
}

// ApplyChanges applies commit/import --change instructions to cfg in
// order, as one run (a CMD among them survives a later ENTRYPOINT). Words
// are expanded against the config's environment, as in a Dockerfile.
func ApplyChanges(cfg *Config, changes []string) error {
	if len(changes) == 0 {
		return nil
	}
	lex := shell.NewLex('\\')
	a := Applier{Words: func(w string) ([]string, error) {
		return lex.ProcessWords(w, shell.EnvsFromSlice(cfg.Config.Env))
	}}
	for _, change := range changes {
		res, err := parser.Parse(strings.NewReader(change))
		if err != nil {
			return fmt.Errorf("--change %q: %w", change, err)
		}
		if len(res.AST.Children) != 1 {
			return fmt.Errorf("--change %q: want exactly one instruction", change)
		}
		node := res.AST.Children[0]
		if !changeCommands[strings.ToLower(node.Value)] {
			return fmt.Errorf("%s is not a valid change command", strings.ToLower(node.Value))
		}
		inst, err := instructions.ParseInstruction(node)
		if err != nil {
			return fmt.Errorf("--change %q: %w", change, err)
		}
		if e, ok := inst.(instructions.SupportsSingleWordExpansion); ok {
			err := e.Expand(func(word string) (string, error) {
				out, _, err := lex.ProcessWord(word, shell.EnvsFromSlice(cfg.Config.Env))
				return out, err
			})
			if err != nil {
				return fmt.Errorf("--change %q: %w", change, err)
			}
		}
		c, ok := inst.(instructions.Command)
		if !ok {
			return fmt.Errorf("%s is not a valid change command", strings.ToLower(node.Value))
		}
		if _, err := a.Apply(cfg, c); err != nil {
			return fmt.Errorf("--change %q: %w", change, err)
		}
	}
	return nil
}
