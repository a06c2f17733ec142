package image

import (
	"reflect"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestApplyChange(t *testing.T) {
	cfg := ocispec.ImageConfig{Env: []string{"PATH=/bin", "HOME=/root"}}
	for _, ch := range []string{
		`CMD ["/bin/sh", "-c", "echo hi"]`,
		`ENTRYPOINT /bin/app --flag`,
		`ENV FOO=bar BAZ=$HOME/x`,
		`ENV PATH=/usr/bin:$PATH`,
		`EXPOSE 80 53/udp`,
		`LABEL a=b "c d"=e`,
		`USER app:app`,
		`VOLUME ["/data"]`,
		`WORKDIR /srv`,
		`WORKDIR app/../www`,
		`STOPSIGNAL SIGINT`,
	} {
		if err := ApplyChange(&cfg, ch); err != nil {
			t.Fatalf("%s: %v", ch, err)
		}
	}
	want := ocispec.ImageConfig{
		Env:          []string{"PATH=/usr/bin:/bin", "HOME=/root", "FOO=bar", "BAZ=/root/x"},
		Cmd:          []string{"/bin/sh", "-c", "echo hi"},
		Entrypoint:   []string{"/bin/sh", "-c", "/bin/app --flag"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		Labels:       map[string]string{"a": "b", "c d": "e"},
		User:         "app:app",
		Volumes:      map[string]struct{}{"/data": {}},
		WorkingDir:   "/srv/www",
		StopSignal:   "SIGINT",
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestApplyChangeRejects(t *testing.T) {
	for _, ch := range []string{"RUN echo hi", "COPY a b", "FROM x", "", "CMD a\nCMD b", "NOTANINSTRUCTION x"} {
		cfg := ocispec.ImageConfig{}
		if err := ApplyChange(&cfg, ch); err == nil {
			t.Errorf("ApplyChange(%q) accepted", ch)
		}
	}
}
