package builder

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-project/strata/internal/archive"
)

// Output is --output: the final stage's files exported as BuildKit's local
// and tar exporters write them, besides the image the build records.
type Output struct {
	Type string // "local" (a directory) or "tar"
	// Dest is the directory (local), or the file or "-" for Stdout (tar).
	Dest   string
	Stdout io.Writer
}

// ParseOutput reads an --output / -o value: "type=local,dest=DIR",
// "type=tar,dest=FILE|-", or BuildKit's shorthands "DIR" and "-" (a tar on
// stdout). "type=image"/"type=docker" ask for the image alone: ok false.
func ParseOutput(spec string) (out Output, ok bool, err error) {
	if spec == "-" {
		return Output{Type: "tar", Dest: "-"}, true, nil
	}
	if !strings.Contains(spec, "=") {
		return Output{Type: "local", Dest: spec}, true, nil
	}
	for _, field := range strings.Split(spec, ",") {
		k, v, found := strings.Cut(field, "=")
		if !found {
			return out, false, fmt.Errorf("invalid output %q: %q is not KEY=VALUE", spec, field)
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "type":
			out.Type = v
		case "dest":
			out.Dest = v
		default:
			return out, false, fmt.Errorf("invalid output %q: unknown key %q (want type and dest)", spec, k)
		}
	}
	switch out.Type {
	case "image", "docker":
		return out, false, nil
	case "local", "tar":
		if out.Dest == "" {
			return out, false, fmt.Errorf("invalid output %q: type=%s needs dest=", spec, out.Type)
		}
		return out, true, nil
	case "":
		return out, false, fmt.Errorf("invalid output %q: no type= (local, tar or image)", spec)
	}
	return out, false, fmt.Errorf("invalid output %q: type %q is not supported (local, tar or image)", spec, out.Type)
}

// output writes the final stage's files where --output says: the merged
// tree of its layers, owners and modes as they are, through the one tar
// writer and the one tar apply.
func (b *builder) output(ctx context.Context, st *stageState) error {
	o := b.opts.Output
	n := b.begin("", "exporting to "+o.Type+" "+o.Dest)
	w, err := b.prepare(ctx, st.chainID())
	if err != nil {
		return b.fail(n, err)
	}
	defer b.discard(ctx, w)
	tree := func(wr io.Writer) error {
		return archive.WriteTreeDiff(ctx, wr, "", w.rootfs, archive.DiffOptions{SourceDateEpoch: b.opts.SourceDateEpoch})
	}
	switch {
	case o.Type == "tar" && o.Dest == "-":
		err = tree(o.Stdout)
	case o.Type == "tar":
		err = writeFileAtomic(o.Dest, tree)
	default:
		if err = os.MkdirAll(o.Dest, 0o755); err != nil {
			break
		}
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() { done <- pw.CloseWithError(tree(pw)) }()
		_, err = archive.Apply(ctx, o.Dest, pr, archive.ApplyOptions{Whiteouts: archive.WhiteoutNone})
		pr.CloseWithError(io.ErrClosedPipe) // unblocks the writer if Apply stopped early
		if werr := <-done; err == nil {
			err = werr
		}
	}
	if err != nil {
		return b.fail(n, fmt.Errorf("export to %s: %w", o.Dest, err))
	}
	b.done(n)
	return nil
}

// writeFileAtomic writes path through a temp file beside it, so a failed
// export leaves no half file.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".strata-output-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
