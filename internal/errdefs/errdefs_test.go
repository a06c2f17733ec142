package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestNotFoundKinds(t *testing.T) {
	err := fmt.Errorf("commit: %w", NotFound("container", "web"))
	if !IsNotFound(err) || !IsMissing(err, "container") || IsMissing(err, "image") {
		t.Fatalf("kinds of %v wrong", err)
	}
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Error() != "No such container: web" {
		t.Fatalf("As: %v", nf)
	}
	if IsNotFound(fmt.Errorf("x: %w", ErrConflict)) || !IsConflict(fmt.Errorf("x: %w", ErrConflict)) {
		t.Fatal("conflict is not not-found")
	}
}

func TestFormattedKinds(t *testing.T) {
	for _, tc := range []struct {
		err  error
		kind error
		msg  string
	}{
		{Invalidf("bad %s", "spec"), ErrInvalidArgument, "bad spec"},
		{Conflictf("Container %s is not paused", "abc"), ErrConflict, "Container abc is not paused"},
	} {
		if !errors.Is(tc.err, tc.kind) || tc.err.Error() != tc.msg {
			t.Errorf("%v: kind %v, message %q", tc.err, tc.kind, tc.err.Error())
		}
		if errors.Is(tc.err, ErrNotFound) {
			t.Errorf("%v is also not-found", tc.err)
		}
	}
}
