package image

import (
	"reflect"
	"strings"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestApplyChanges(t *testing.T) {
	var cfg Config
	cfg.Config.Env = []string{"PATH=/bin", "HOME=/root"}
	err := ApplyChanges(&cfg, []string{
		`CMD ["/bin/sh", "-c", "echo hi"]`,
		`ENTRYPOINT /bin/app --flag`, // after a CMD in the same run: keeps it
		`ENV FOO=bar BAZ=$HOME/x`,
		`ENV PATH=/usr/bin:$PATH PORTS="90 91/udp"`,
		`EXPOSE 80 53/UDP 8000-8001 $PORTS`,
		`LABEL a=b "c d"=e`,
		`USER app:app`,
		`VOLUME ["/data"]`,
		`WORKDIR /srv`,
		`WORKDIR app/../www`,
		`HEALTHCHECK --interval=5s CMD true`,
		`ONBUILD RUN echo child`,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := RunConfig{
		ImageConfig: ocispec.ImageConfig{
			Env:        []string{"PATH=/usr/bin:/bin", "HOME=/root", "FOO=bar", "BAZ=/root/x", "PORTS=90 91/udp"},
			Cmd:        []string{"/bin/sh", "-c", "echo hi"},
			Entrypoint: []string{"/bin/sh", "-c", "/bin/app --flag"},
			ExposedPorts: map[string]struct{}{
				"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}, "90/tcp": {}, "91/udp": {},
			},
			Labels:     map[string]string{"a": "b", "c d": "e"},
			User:       "app:app",
			Volumes:    map[string]struct{}{"/data": {}},
			WorkingDir: "/srv/www",
		},
		DockerOCIImageConfigExt: dockerspec.DockerOCIImageConfigExt{
			Healthcheck: &dockerspec.HealthcheckConfig{Test: []string{"CMD-SHELL", "true"}, Interval: 5e9},
			OnBuild:     []string{"RUN echo child"},
		},
	}
	if !reflect.DeepEqual(cfg.Config, want) {
		t.Fatalf("got  %+v\nwant %+v", cfg.Config, want)
	}
}

// An ENTRYPOINT drops the CMD the image had (docker commit --change and
// the builder agree), so a committed image does not run the old CMD as
// the new entrypoint's arguments.
func TestEntrypointResetsInheritedCmd(t *testing.T) {
	var cfg Config
	cfg.Config.Cmd = []string{"sh"}
	if err := ApplyChanges(&cfg, []string{`ENTRYPOINT ["/bin/echo"]`}); err != nil {
		t.Fatal(err)
	}
	if cfg.Config.Cmd != nil || !reflect.DeepEqual(cfg.Config.Entrypoint, []string{"/bin/echo"}) {
		t.Fatalf("entrypoint %q cmd %q, want [/bin/echo] and no cmd", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
}

// Shell-form CMD runs through the config's SHELL, as in a build.
func TestShellFormUsesConfigShell(t *testing.T) {
	var cfg Config
	cfg.Config.Shell = []string{"/bin/ash", "-ec"}
	if err := ApplyChanges(&cfg, []string{`CMD echo $HOME`}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/bin/ash", "-ec", "echo $HOME"}; !reflect.DeepEqual(cfg.Config.Cmd, want) {
		t.Fatalf("cmd %q, want %q", cfg.Config.Cmd, want)
	}
}

func TestApplyChangesRejects(t *testing.T) {
	for ch, msg := range map[string]string{
		"RUN echo hi":           "run is not a valid change command",
		"COPY a b":              "copy is not a valid change command",
		"FROM x":                "from is not a valid change command",
		"STOPSIGNAL SIGINT":     "stopsignal is not a valid change command",
		`SHELL ["/bin/bash"]`:   "shell is not a valid change command",
		"":                      "no instructions",
		"CMD a\nCMD b":          "want exactly one instruction",
		"NOTANINSTRUCTION x":    "notaninstruction is not a valid change command",
		`VOLUME ""`:             "VOLUME specified can not be an empty string",
		"EXPOSE abc":            "invalid containerPort: abc",
		"EXPOSE 80/icmp":        "invalid proto: icmp",
		"EXPOSE 90-80":          "invalid containerPort: 90-80",
		"ONBUILD ONBUILD RUN x": "ONBUILD",
	} {
		var cfg Config
		err := ApplyChanges(&cfg, []string{ch})
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ApplyChanges(%q) = %v, want an error with %q", ch, err, msg)
		}
	}
}
