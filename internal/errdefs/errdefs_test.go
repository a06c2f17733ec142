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
