package main

import (
	"bytes"
	"strings"
	"testing"
)

// A key the object does not have is an error, as in docker's CLI (its
// fallback over the JSON runs with missingkey=error): scripts rely on
// `inspect -f '{{.State.Health.Status}}'` failing for a container without a
// health check. A missing map key on the typed object still prints
// "<no value>" (labels), as docker's typed pass does.
func TestInspectFormatMissingKey(t *testing.T) {
	type health struct{ Status string }
	type state struct {
		Status string
		Health *health `json:"Health,omitempty"`
	}
	obj := struct {
		State  state
		Labels map[string]string
	}{State: state{Status: "running"}, Labels: map[string]string{"a": "b"}}
	for format, want := range map[string]string{
		"{{.State.Status}}":        "running\n",
		"{{.Labels.nope}}":         "<no value>\n",
		"{{.State.Health.Status}}": "",
		"{{.Nope}}":                "",
	} {
		var out bytes.Buffer
		err := printInspect(&out, format, []any{obj})
		if want == "" {
			if err == nil || !strings.Contains(err.Error(), "map has no entry for key") || !strings.HasPrefix(err.Error(), "template parsing error: ") {
				t.Errorf("%s: err %v, output %q; want docker's missing key error", format, err, out.String())
			}
			continue
		}
		if err != nil || out.String() != want {
			t.Errorf("%s: %q, %v; want %q", format, out.String(), err, want)
		}
	}
}
