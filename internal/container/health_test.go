package container

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

func TestMergeHealthcheck(t *testing.T) {
	img := &dockerspec.HealthcheckConfig{Test: []string{"CMD", "check"}, Interval: time.Minute, Retries: 5}
	flags := &dockerspec.HealthcheckConfig{Interval: time.Second, Timeout: 2 * time.Second}
	want := &dockerspec.HealthcheckConfig{Test: []string{"CMD", "check"}, Interval: time.Second, Timeout: 2 * time.Second, Retries: 5}
	if d := cmp.Diff(want, MergeHealthcheck(img, flags)); d != "" {
		t.Error(d)
	}
	if MergeHealthcheck(img, nil) != img || MergeHealthcheck(nil, flags) != flags {
		t.Error("a missing side is not inherited")
	}
}

func TestProbeOf(t *testing.T) {
	c := Container{}
	c.ImageConfig.Healthcheck = &dockerspec.HealthcheckConfig{Test: []string{"CMD-SHELL", "curl -f localhost"}}
	p := probeOf(c)
	if p == nil || !cmp.Equal(p.args, []string{"/bin/sh", "-c", "curl -f localhost"}) || p.interval != 30*time.Second || p.timeout != 30*time.Second || p.retries != 3 {
		t.Errorf("CMD-SHELL with docker's defaults: %+v", p)
	}
	c.Config.Healthcheck = &dockerspec.HealthcheckConfig{Test: []string{"NONE"}}
	if p := probeOf(c); p != nil {
		t.Errorf("NONE: %+v", p)
	}
}
