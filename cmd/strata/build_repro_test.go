package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Two fresh stores, the same base tarball imported and the same multi-step
// Dockerfile built, both with SOURCE_DATE_EPOCH: one base image ID, one
// final image ID, one set of layers. Each store first holds other images
// and cache, so nothing store-local (a parent step's ID, an earlier
// build's cache, the import time) can leak into the result.
func TestReproducibleFromCleanStores(t *testing.T) {
	t.Parallel()
	tarPath := busyboxTar(t)
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "app.txt"), []byte("app\n"), 0o644)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM base AS build
RUN mkdir -p /out && echo built > /out/artifact && touch /out/stamp
FROM base
ARG VERSION=1
ENV VERSION=$VERSION
WORKDIR /app
COPY app.txt ./
COPY --from=build /out/ /app/out/
RUN echo "$VERSION" > version && chmod 600 version
LABEL org.example.name=repro
CMD ["cat", "/app/version"]
`), 0o644)
	var results []string
	for i := 0; i < 2; i++ {
		c := newCLI(t)
		c.env = []string{"SOURCE_DATE_EPOCH=1700000000"}
		if i == 1 {
			// The second store has history of its own first.
			c.importBusybox()
			other := t.TempDir()
			os.WriteFile(filepath.Join(other, "Dockerfile"), []byte("FROM busybox\nRUN echo other > /x\n"), 0o644)
			c.build("-t", "other", other)
		}
		c.ok("import", tarPath, "base")
		c.build("-t", "repro", ctx)
		results = append(results, c.ok("inspect", "--format", "{{.Id}} {{.Created}} {{.RootFS.Layers}}", "base", "repro"))
	}
	if results[0] != results[1] {
		t.Fatalf("two clean stores differ:\n%s\n%s", results[0], results[1])
	}
	if !strings.Contains(results[0], "2023-11-14T22:13:20Z") {
		t.Errorf("created is not SOURCE_DATE_EPOCH: %s", results[0])
	}
}
