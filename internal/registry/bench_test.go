package registry

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	rt "github.com/strata-project/strata/internal/registry/registrytest"
	"github.com/strata-project/strata/internal/store"
)

// BenchmarkPull pulls a 4-layer image (4 × 32 MiB of base64 text, gzip)
// from a local registry into a fresh store, downloading 1 or 3 blobs at a
// time while the layers apply in order.
func BenchmarkPull(b *testing.B) {
	reg := rt.Start(b)
	rnd := rand.New(rand.NewPCG(1, 2))
	var layers []v1.Layer
	var total int64
	for i := range 4 {
		var files []rt.File
		for j := range 16 {
			raw := make([]byte, 1536<<10)
			for k := range raw {
				raw[k] = byte(rnd.UintN(256))
			}
			files = append(files, rt.File{Name: fmt.Sprintf("l%d/f%02d", i, j), Body: base64.StdEncoding.EncodeToString(raw)})
		}
		tarb := rt.Tar(b, files...)
		total += int64(len(tarb))
		layers = append(layers, rt.Layer(b, tarb, rt.Gzip))
	}
	reg.Push(b, "bench/big:1", rt.Image(b, "amd64", false, nil, layers...))
	for _, jobs := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("jobs=%d", jobs), func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				b.StopTimer()
				s, err := store.Open(context.Background(), store.Options{Root: b.TempDir()})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := pull(context.Background(), s, reg.Ref("bench/big:1"), Options{}, jobs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
