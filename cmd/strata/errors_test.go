package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/strata-project/strata/internal/errdefs"
)

// Error kinds become docker's messages and exit codes in one place.
func TestReportMapsKinds(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		want string
	}{
		{fmt.Errorf("history: %w", errdefs.NotFound("image", "web:1")), 1, "Error: No such image: web:1\n"},
		{errdefs.NotFound("container", "db"), 1, "Error: No such container: db\n"},
		{usageError{cmd: "strata ps", err: errors.New("unknown flag: --x")}, 125, "Error: unknown flag: --x\nSee 'strata ps --help'.\n"},
		{exitError{code: 3}, 3, ""},
	} {
		var b bytes.Buffer
		if code := report(&b, tc.err); code != tc.code || b.String() != tc.want {
			t.Errorf("report(%v) = %d %q, want %d %q", tc.err, code, b.String(), tc.code, tc.want)
		}
	}
}

// A 10,000-character name is shortened in the message, ends kept.
func TestMessageShortensLongNames(t *testing.T) {
	name := "a" + strings.Repeat("b", 9998) + "z"
	got := message(errdefs.NotFound("image", name))
	if len(got) > 400 || !strings.HasPrefix(got, "No such image: abbb") || !strings.Contains(got, "bbz (10000 characters)") {
		t.Fatalf("message of a long name (%d bytes): %.500s", len(got), got)
	}
	if got := message(errors.New("short: message")); got != "short: message" {
		t.Fatalf("short message changed: %q", got)
	}
}

// rm -f and rmi -f of something that does not exist say so and exit 0,
// as docker's do; without -f they fail.
func TestForceRemoveOfMissingSucceeds(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"rm", "nosuch"}, 1, "No such container: nosuch"},
		{[]string{"rm", "-f", "nosuch", "nosuch2"}, 0, "No such container: nosuch2"},
		{[]string{"rmi", "nosuch"}, 1, "No such image: nosuch"},
		{[]string{"rmi", "-f", "nosuch", "busybox:nosuchtag"}, 0, "No such image: busybox:nosuchtag"},
	} {
		_, errs, code := c.run(nil, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("strata %v: exit %d %q, want %d and %q", tc.args, code, errs, tc.code, tc.msg)
		}
	}
	_, errs, code := c.run(nil, "rmi", strings.Repeat("x", 10000))
	if code != 1 || len(errs) > 500 || !strings.Contains(errs, "(10000 characters)") {
		t.Errorf("rmi of a 10000-character name: exit %d, %d bytes of stderr: %.300q", code, len(errs), errs)
	}
}
