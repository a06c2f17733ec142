package main

import (
	"strings"
	"testing"
)

// A wrong number of arguments exits 1 with docker's two lines, and no
// "Error:" prefix; an unknown flag stays a 125.
func TestWrongArgumentCountExitsOne(t *testing.T) {
	c := newCLI(t)
	for args, want := range map[string]string{
		"image push": "\"strata image push\" requires exactly 1 argument.\nSee 'strata image push --help'.\n",
		"rmi":        "\"strata rmi\" requires at least 1 argument.\nSee 'strata rmi --help'.\n",
		"exec x":     "\"strata exec\" requires at least 2 arguments.\nSee 'strata exec --help'.\n",
		"images a b": "\"strata images\" requires at most 1 argument.\nSee 'strata images --help'.\n",
		"commit":     "\"strata commit\" requires at least 1 and at most 2 arguments.\nSee 'strata commit --help'.\n",
	} {
		out, errs, code := c.run(nil, strings.Fields(args)...)
		if code != 1 || errs != want || out != "" {
			t.Errorf("strata %s: exit %d, stdout %q, stderr %q; want 1 and %q", args, code, out, errs, want)
		}
	}
	if _, errs, code := c.run(nil, "images", "--frob"); code != 125 || !strings.HasPrefix(errs, "Error: unknown flag: --frob\n") {
		t.Errorf("unknown flag: exit %d %q", code, errs)
	}
}
