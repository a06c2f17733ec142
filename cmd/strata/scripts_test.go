package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Scripts see an unknown command as a failure with docker's message,
// never help text and exit 0; a group alone still prints its help.
func TestUnknownCommandsFail(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{{"image", "pussh"}, {"image", "frob"}, {"container", "frob"}, {"builder", "frob"}, {"frob"}} {
		out, errs, code := c.run(nil, args...)
		parent := "strata " + strings.Join(args[:len(args)-1], " ")
		parent = strings.TrimSpace(parent)
		want := "strata: unknown command: " + parent + " " + args[len(args)-1] + "\n\nRun '" + parent + " --help' for more information\n"
		if code != 1 || errs != want || out != "" {
			t.Errorf("strata %v: exit %d, stdout %q, stderr %q; want exit 1 and %q", args, code, out, errs, want)
		}
	}
	for _, args := range [][]string{{"image", "--frob"}, {"--frob"}, {"ps", "--frob"}} {
		if _, errs, code := c.run(nil, args...); code != 125 || !strings.Contains(errs, "unknown flag: --frob") {
			t.Errorf("strata %v: exit %d %q, want 125 and unknown flag", args, code, errs)
		}
	}
	if out, _, code := c.run(nil, "image"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("strata image: exit %d %q, want its help", code, out)
	}
}

// --root ” is a mistake, not a store in the current directory.
func TestEmptyRootIsAnError(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(strataBin, "--root", "", "images")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--root") {
		t.Fatalf("--root '': %v %q", err, out)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("--root '' made %d entries in the current directory", len(ents))
	}
}

// version and info --format see docker's field names.
func TestVersionInfoFormat(t *testing.T) {
	c := newCLI(t)
	if got := c.ok("version", "--format", "{{.Client.Version}} {{.Server.Version}} {{.Client.Os}}"); got != version+" "+version+" linux\n" {
		t.Errorf("version --format: %q", got)
	}
	got := c.ok("info", "--format", "{{.ServerVersion}}|{{.ContainersRunning}}|{{.DockerRootDir}}|{{.Driver}}|{{.Images}}|{{gt .NCPU 0}}|{{gt .MemTotal 1000}}")
	if want := version + "|0|" + c.root + "|"; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "|0|true|true\n") {
		t.Errorf("info --format: %q, want %q...|0|true|true", got, want)
	}
}

// inspect templates run over typed values, as docker's do: sizes are
// integers (not 2.387641e+06), gt compares them, join takes .Config.Env;
// docker's JSON names (.Id) still work.
func TestInspectFormatKeepsTypes(t *testing.T) {
	c := newCLI(t)
	c.ok("import", "-c", "ENV A=1 B=2", busyboxTar(t), "busybox")
	got := c.ok("image", "inspect", "-f", `{{.Size}}|{{gt .Size 1000}}|{{join .Config.Env ","}}|{{len .Id}}`, "busybox")
	parts := strings.Split(strings.TrimSpace(got), "|")
	if len(parts) != 4 || strings.ContainsAny(parts[0], "e.") || parts[1] != "true" || parts[2] != "A=1,B=2" || parts[3] != "71" {
		t.Fatalf("image inspect -f: %q", got)
	}
}

// Container inspect has docker's fields with docker's types, so scripts
// written against docker never print <no value>; ps shows labels.
func TestContainerInspectFields(t *testing.T) {
	c := newBusyboxCLI(t)
	host := t.TempDir()
	c.ok("create", "--name", "fields", "--label", "tier=web", "-v", host+":/data:ro", "busybox")
	got := c.ok("inspect", "-f", strings.Join([]string{
		"{{.State.Status}} {{.State.Pid}} {{.State.ExitCode}} {{.State.OOMKilled}} {{.RestartCount}} {{.Platform}}",
		"{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.LogConfig.Type}} {{json .HostConfig.PortBindings}} {{.HostConfig.NetworkMode}} {{.HostConfig.ShmSize}} {{.HostConfig.CpuQuota}} {{.HostConfig.Dns}}",
		"{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}} {{.Mode}} {{.RW}} {{.Propagation}}{{end}}",
		"{{json .NetworkSettings.Ports}} {{.NetworkSettings.IPAddress}}| {{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
		"{{.Config.Labels.tier}} {{.Config.AttachStdout}} {{.Config.Volumes}} {{.Config.OnBuild}} {{.Id | len}}",
	}, "\n"), "fields")
	want := strings.Join([]string{
		"created 0 0 false 0 linux",
		"no json-file {} default 67108864 0 []",
		"bind " + host + " /data ro false rprivate",
		"{} | bridge",
		"web true map[] [] 64",
	}, "\n") + "\n"
	if got != want {
		t.Fatalf("inspect:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(got, "<no value>") {
		t.Fatal("<no value> in inspect")
	}
	ps := c.ok("ps", "-a", "--format", `{{.Labels}}|{{.Label "tier"}}|{{.Label "nope"}}|{{.Mounts}}`)
	if ps != "tier=web|web||"+host+"\n" {
		t.Fatalf("ps labels: %q", ps)
	}
	if ps := c.ok("ps", "-a", "-q", "--filter", "label=tier=web"); strings.TrimSpace(ps) == "" {
		t.Fatal("ps --filter label= does not see --label")
	}
}

// info counts a paused container as paused, not running, as docker does.
func TestInfoCountsPaused(t *testing.T) {
	c := newBusyboxCLI(t)
	c.ok("run", "-d", "--name", "sleeper", "busybox", "sleep", "1000")
	c.ok("run", "-d", "--name", "napper", "busybox", "sleep", "1000")
	c.ok("pause", "napper")
	t.Cleanup(func() { c.run(nil, "unpause", "napper") })
	if got := c.ok("info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}}"); got != "2 1 1 0\n" {
		t.Fatalf("info counts %q, want 2 1 1 0", got)
	}
}
