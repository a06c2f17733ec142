package requires

import (
	"os"
	"testing"
)

func TestInCI(t *testing.T) {
	t.Setenv("CI", "true")
	if !InCI() {
		t.Fatal("CI=true is not seen as CI")
	}
	t.Setenv("CI", "1")
	if InCI() {
		t.Fatal("only CI=true means CI")
	}
}

func TestCommandFindsShell(t *testing.T) {
	if p := Command(t, "sh"); p == "" {
		t.Fatal("sh has no path")
	}
	if _, err := os.Stat(Command(t, "sh")); err != nil {
		t.Fatal(err)
	}
}
