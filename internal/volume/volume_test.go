package volume

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-project/strata/internal/store"
)

// Size counts the blocks of what a volume holds (volume prune reports it
// as reclaimed space, system df as the volume's size).
func TestSizeCountsContent(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{Root: t.TempDir(), Driver: "native"})
	if err != nil {
		t.Fatal(err)
	}
	v := New(s)
	if _, err := v.Create(ctx, Volume{Name: "data"}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(v.Path("data"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i) | 1
	}
	if err := os.WriteFile(filepath.Join(v.Path("data"), "f"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := v.Size("data"); got < 1<<20 {
		t.Fatalf("Size = %d, want at least %d", got, 1<<20)
	}
}
