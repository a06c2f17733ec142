package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// addChecksum is ADD --checksum's value ("" for COPY and without it).
func addChecksum(c instructions.Command) string {
	if a, ok := c.(*instructions.AddCommand); ok {
		return a.Checksum
	}
	return ""
}

func isHTTP(src string) bool {
	return strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")
}

// parseChecksum reads --checksum=sha256:HEX.
func parseChecksum(s string) ([]byte, error) {
	alg, hexSum, ok := strings.Cut(s, ":")
	if !ok || alg != "sha256" {
		return nil, fmt.Errorf("invalid checksum %q: want sha256:HEX", s)
	}
	sum, err := hex.DecodeString(hexSum)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("invalid checksum %q: want sha256: and 64 hex digits", s)
	}
	return sum, nil
}

// download fetches an ADD URL into a scratch directory released with src,
// verifies --checksum when given, and selects the file. As in docker the
// file is named after the URL's last path element, has mode 0600 and the
// server's Last-Modified time (else the Unix epoch, so that layers stay
// reproducible), and is never unpacked.
func (b *builder) download(ctx context.Context, src *sources, rawURL, checksum string) (match, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return match{}, err
	}
	var want []byte
	if checksum != "" {
		if want, err = parseChecksum(checksum); err != nil {
			return match{}, err
		}
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		return match{}, fmt.Errorf("cannot name the file: the URL has no path (give a destination file name)")
	}
	dir := b.stepDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return match{}, err
	}
	src.onClose(func() { os.RemoveAll(dir) })

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return match{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return match{}, fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return match{}, fmt.Errorf("download: server answered %s", resp.Status)
	}
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return match{}, err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return match{}, fmt.Errorf("download: %w", err)
	}
	if want != nil && !bytes.Equal(h.Sum(nil), want) {
		return match{}, fmt.Errorf("checksum mismatch: got sha256:%x, want %s", h.Sum(nil), checksum)
	}
	mtime := time.Unix(0, 0)
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		mtime = lm
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		return match{}, err
	}
	root, err := holdRoot(src, dir)
	if err != nil {
		return match{}, err
	}
	m, err := walkSource(root, name, nil)
	if err != nil {
		return match{}, err
	}
	m.remote = true
	return m, nil
}
