package oci

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestExecProcessKeepsConfinement(t *testing.T) {
	ctr := &specs.Process{
		Args: []string{"sleep", "1"}, Env: []string{"PATH=/bin", "A=1"}, Cwd: "/srv",
		User:            specs.User{UID: 5, GID: 6},
		Capabilities:    &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}},
		Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 10, Soft: 10}},
		NoNewPrivileges: true, ApparmorProfile: "strata-default",
	}
	p, err := ExecProcess(ctr, ExecOptions{Args: []string{"sh"}, Env: []string{"A=2", "B=3"}, Terminal: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Args, []string{"sh"}) || p.Cwd != "/srv" || p.User.UID != 5 || !p.Terminal {
		t.Errorf("process %+v", p)
	}
	if want := []string{"PATH=/bin", "TERM=xterm", "A=2", "B=3"}; !slices.Equal(p.Env, want) {
		t.Errorf("env %q, want %q", p.Env, want)
	}
	if p.Capabilities != ctr.Capabilities || !p.NoNewPrivileges || p.ApparmorProfile != "strata-default" || len(p.Rlimits) != 1 {
		t.Errorf("confinement not kept: %+v", p)
	}
	if !slices.Equal(ctr.Args, []string{"sleep", "1"}) || ctr.Terminal {
		t.Errorf("the container's process was changed: %+v", ctr)
	}

	p, err = ExecProcess(ctr, ExecOptions{Args: []string{"id"}, WorkingDir: "/tmp/../etc", User: &specs.User{UID: 0}})
	if err != nil || p.Cwd != "/etc" || p.User.UID != 0 {
		t.Errorf("workdir/user override: %+v %v", p, err)
	}
	if _, err := ExecProcess(ctr, ExecOptions{Args: []string{"id"}, WorkingDir: "rel"}); err == nil {
		t.Error("relative working directory accepted")
	}
	if _, err := ExecProcess(ctr, ExecOptions{}); err != ErrNoCommand {
		t.Errorf("no command: %v", err)
	}
}

// docker exec -u lists the user's primary group among its supplementary
// ones, as run does: busybox `id` then prints groups=... for both.
func TestExecProcessUserKeepsPrimaryGroup(t *testing.T) {
	ctr := &specs.Process{Args: []string{"sleep"}, Cwd: "/", User: specs.User{AdditionalGids: []uint32{0}}}
	p, err := ExecProcess(ctr, ExecOptions{Args: []string{"id"}, User: &specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{20, 100}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint32{100, 20}; !slices.Equal(p.User.AdditionalGids, want) {
		t.Fatalf("additional gids %v, want %v", p.User.AdditionalGids, want)
	}
}
