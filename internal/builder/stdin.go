package builder

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/strata-project/strata/internal/archive"
	"github.com/strata-project/strata/internal/compression"
)

// StdinContext reads what `strata build -` gets on stdin, as docker does:
// a tar archive (plain or compressed) is the build context; anything else
// is a Dockerfile, built with an empty context. It fills dir, an empty
// directory the caller removes afterwards, and returns the context
// directory and, for a Dockerfile, its path ("" = the context's own).
func StdinContext(ctx context.Context, r io.Reader, dir string) (contextDir, dockerfile string, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(512)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return "", "", fmt.Errorf("read stdin: %w", err)
	}
	contextDir = filepath.Join(dir, "context")
	if err := os.Mkdir(contextDir, 0o755); err != nil {
		return "", "", err
	}
	if isTarHead(head) {
		zr, _, err := compression.Decompress(br)
		if err != nil {
			return "", "", fmt.Errorf("build context from stdin: %w", err)
		}
		defer zr.Close()
		// Apply keeps every entry inside contextDir, whatever the names;
		// a context is not a layer, so .wh.* names are plain files.
		if _, err := archive.Apply(ctx, contextDir, zr, archive.ApplyOptions{Whiteouts: archive.WhiteoutNone}); err != nil {
			return "", "", fmt.Errorf("build context from stdin: %w", err)
		}
		return contextDir, "", nil
	}
	dockerfile = filepath.Join(dir, "Dockerfile")
	if err := writeFileFrom(dockerfile, br); err != nil {
		return "", "", fmt.Errorf("read Dockerfile from stdin: %w", err)
	}
	return contextDir, dockerfile, nil
}

// isTarHead tells whether a stream starting with head is an archive: a
// compressed stream, or a tar header ("ustar" magic at offset 257).
func isTarHead(head []byte) bool {
	if compression.Detect(head) != compression.Uncompressed {
		return true
	}
	return len(head) >= 262 && string(head[257:262]) == "ustar"
}

// StdinDockerfile writes the Dockerfile of `strata build -f - DIR` to a
// file in dir and returns its path.
func StdinDockerfile(r io.Reader, dir string) (string, error) {
	p := filepath.Join(dir, "Dockerfile")
	if err := writeFileFrom(p, r); err != nil {
		return "", fmt.Errorf("read Dockerfile from stdin: %w", err)
	}
	return p, nil
}

func writeFileFrom(p string, r io.Reader) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
