package container

import (
	"testing"
	"time"
)

func TestParseRestartPolicy(t *testing.T) {
	for in, want := range map[string]RestartPolicy{
		"":               {Name: "no"},
		"no":             {Name: "no"},
		"always":         {Name: "always"},
		"on-failure":     {Name: "on-failure"},
		"on-failure:5":   {Name: "on-failure", MaximumRetryCount: 5},
		"unless-stopped": {Name: "unless-stopped"},
	} {
		got, err := ParseRestartPolicy(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
	for _, bad := range []string{"sometimes", "on-failure:x", "on-failure:-1", "always:3"} {
		if p, err := ParseRestartPolicy(bad); err == nil {
			t.Errorf("%q accepted: %+v", bad, p)
		}
	}
}

func TestShouldRestart(t *testing.T) {
	onf := RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}
	for _, tc := range []struct {
		p        RestartPolicy
		code, n  int
		stopped  bool
		restarts bool
	}{
		{onf, 1, 0, false, true},
		{onf, 1, 2, false, false},
		{onf, 0, 0, false, false},
		{RestartPolicy{Name: "on-failure"}, 1, 100, false, true},
		{RestartPolicy{Name: "always"}, 0, 100, false, true},
		{RestartPolicy{Name: "unless-stopped"}, 0, 0, true, false},
		{RestartPolicy{Name: "no"}, 1, 0, false, false},
	} {
		if got := tc.p.shouldRestart(tc.code, tc.n, tc.stopped); got != tc.restarts {
			t.Errorf("%+v code %d after %d stopped %v: %v", tc.p, tc.code, tc.n, tc.stopped, got)
		}
	}
}

func TestNextDelay(t *testing.T) {
	d := nextDelay(0, 0)
	for _, want := range []time.Duration{100, 200, 400, 800} {
		if d != want*time.Millisecond {
			t.Fatalf("delay %v, want %v", d, want*time.Millisecond)
		}
		d = nextDelay(d, time.Second)
	}
	if got := nextDelay(800*time.Millisecond, 10*time.Second); got != restartDelayMin {
		t.Errorf("after a 10s run: %v", got)
	}
	if got := nextDelay(restartDelayMax, 0); got != restartDelayMax {
		t.Errorf("capped: %v", got)
	}
}
