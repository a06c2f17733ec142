package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	digest "github.com/opencontainers/go-digest"
)

// client speaks the distribution protocol's write side to one repository:
// blob existence, cross-repository mounts, streamed uploads, manifests.
// go-containerregistry authenticates it (basic or token, with the scopes
// asked for) and picks the scheme; strata drives the requests, so it can
// compress while uploading and decide per layer what to send.
type client struct {
	rt       http.RoundTripper
	base     string // scheme://host
	repo     string
	spoolDir string // for the monolithic-upload fallback's temp file
}

// newClient opens repo on host for pushing, with pull access to the
// repositories blobs may be mounted from.
func newClient(ctx context.Context, a Access, host, repo, spoolDir string, mountFrom []string) (*client, error) {
	reg, err := a.registry(host)
	if err != nil {
		return nil, err
	}
	t, err := a.transport(host)
	if err != nil {
		return nil, err
	}
	r := reg.Repo(repo)
	auth, err := a.keychain().Resolve(r)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", host, err)
	}
	scopes := []string{r.Scope(transport.PushScope)}
	for _, from := range mountFrom {
		scopes = append(scopes, reg.Repo(from).Scope(transport.PullScope))
	}
	rt, err := transport.NewWithContext(ctx, reg, auth, t, scopes)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", host, err)
	}
	return &client{rt: rt, base: reg.Scheme() + "://" + reg.RegistryStr(), repo: repo, spoolDir: spoolDir}, nil
}

// Retries: a failed request is tried again this many times, after these
// pauses, when a retry can help (network errors, 5xx, 429, 408).
var retryBackoff = []time.Duration{250 * time.Millisecond, time.Second}

// retryable tells whether err (a transport error or a status) is worth another try.
func retryable(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		return se.code >= 500 || se.code == http.StatusTooManyRequests || se.code == http.StatusRequestTimeout
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrDigestMismatch) && !errors.Is(err, ErrInsecure)
}

// withRetry runs op until it succeeds, fails for good, or runs out of tries.
func withRetry(ctx context.Context, op func() error) error {
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil || attempt >= len(retryBackoff) || !retryable(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(retryBackoff[attempt]):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// statusError is an unexpected HTTP status, with the registry's message.
type statusError struct {
	method, url string
	code        int
	msg         string
}

// Is makes 401 and 403 answers of kind ErrUnauthorized.
func (e *statusError) Is(target error) bool {
	return target == ErrUnauthorized && (e.code == http.StatusUnauthorized || e.code == http.StatusForbidden)
}

func (e *statusError) Error() string {
	if e.msg != "" {
		return fmt.Sprintf("%s %s: %d %s: %s", e.method, e.url, e.code, http.StatusText(e.code), e.msg)
	}
	return fmt.Sprintf("%s %s: %d %s", e.method, e.url, e.code, http.StatusText(e.code))
}

func (c *client) do(ctx context.Context, method, u string, body io.Reader, size int64, header map[string]string, want ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if size >= 0 && body != nil {
		req.ContentLength = size
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	se := &statusError{method: method, url: redact(u), code: resp.StatusCode}
	if terr := transport.CheckError(resp, want...); terr != nil {
		var te *transport.Error
		if errors.As(terr, &te) && len(te.Errors) > 0 {
			se.msg = te.Errors[0].Message
		}
	}
	return nil, se
}

// redact drops the query (upload state tokens) from a URL shown in an error.
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

func (c *client) url(p string) string { return c.base + "/v2/" + c.repo + p }

// hasBlob asks whether the repository has blob d.
func (c *client) hasBlob(ctx context.Context, d digest.Digest) (bool, error) {
	var has bool
	err := withRetry(ctx, func() error {
		resp, err := c.do(ctx, http.MethodHead, c.url("/blobs/"+d.String()), nil, -1, nil, http.StatusOK, http.StatusNotFound)
		if err != nil {
			return err
		}
		resp.Body.Close()
		has = resp.StatusCode == http.StatusOK
		return nil
	})
	return has, err
}

// mount asks the registry to link blob d from repository from; false
// means it would not (the caller uploads instead).
func (c *client) mount(ctx context.Context, d digest.Digest, from string) (bool, error) {
	q := url.Values{"mount": {d.String()}, "from": {from}}
	var mounted bool
	err := withRetry(ctx, func() error {
		resp, err := c.do(ctx, http.MethodPost, c.url("/blobs/uploads/?"+q.Encode()), nil, -1, nil, http.StatusCreated, http.StatusAccepted)
		if err != nil {
			return err
		}
		resp.Body.Close()
		mounted = resp.StatusCode == http.StatusCreated
		if !mounted {
			// An upload session was opened instead; end it.
			if loc, err := c.location(resp); err == nil {
				if r, err := c.do(ctx, http.MethodDelete, loc, nil, -1, nil, http.StatusNoContent, http.StatusOK, http.StatusNotFound); err == nil {
					r.Body.Close()
				}
			}
		}
		return nil
	})
	return mounted, err
}

// startUpload opens an upload session and returns where to send to it.
func (c *client) startUpload(ctx context.Context) (string, error) {
	resp, err := c.do(ctx, http.MethodPost, c.url("/blobs/uploads/"), nil, -1, nil, http.StatusAccepted)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	return c.location(resp)
}

func (c *client) location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("registry %s gave no upload location", c.base)
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("upload location %q: %w", loc, err)
	}
	return resp.Request.URL.ResolveReference(u).String(), nil
}

// upload sends one blob: a session is opened, the body streamed in one
// PATCH (chunked: its length is known only at its end), and the session
// closed with the digest the body turned out to have. body is called once
// per try and returns the stream and a function giving its digest and
// size once read to the end.
func (c *client) upload(ctx context.Context, body func() (io.Reader, func() (digest.Digest, int64, error), func())) (digest.Digest, int64, error) {
	var d digest.Digest
	var n int64
	err := withRetry(ctx, func() error {
		loc, err := c.startUpload(ctx)
		if err != nil {
			return err
		}
		r, result, done := body()
		defer done()
		resp, err := c.do(ctx, http.MethodPatch, loc, r, -1, map[string]string{"Content-Type": "application/octet-stream"}, http.StatusAccepted, http.StatusNoContent, http.StatusCreated)
		var se *statusError
		if errors.As(err, &se) && refusesStreaming(se.code) {
			done()
			d, n, err = c.uploadMonolithic(ctx, body)
			return err
		}
		if err != nil {
			return err
		}
		resp.Body.Close()
		if d, n, err = result(); err != nil {
			return err
		}
		if loc, err = c.location(resp); err != nil {
			return err
		}
		return c.commit(ctx, loc, d)
	})
	return d, n, err
}

// refusesStreaming tells a registry that will not take a chunked PATCH.
func refusesStreaming(code int) bool {
	return code == http.StatusLengthRequired || code == http.StatusMethodNotAllowed || code == http.StatusNotImplemented
}

// uploadMonolithic is the fallback for registries that want a blob's
// length before its bytes: the blob is written to an unlinked temp file
// (the one copy the protocol forces), then sent in one PUT.
func (c *client) uploadMonolithic(ctx context.Context, body func() (io.Reader, func() (digest.Digest, int64, error), func())) (digest.Digest, int64, error) {
	f, err := os.CreateTemp(c.spoolDir, ".push-")
	if err != nil {
		return "", 0, err
	}
	os.Remove(f.Name())
	defer f.Close()
	r, result, done := body()
	_, err = io.Copy(f, r)
	done()
	if err != nil {
		return "", 0, err
	}
	d, n, err := result()
	if err != nil {
		return "", 0, err
	}
	err = withRetry(ctx, func() error {
		loc, err := c.startUpload(ctx)
		if err != nil {
			return err
		}
		return c.commitWith(ctx, loc, d, io.NewSectionReader(f, 0, n), n)
	})
	return d, n, err
}

// putBlob uploads a small blob held in memory, in one request.
func (c *client) putBlob(ctx context.Context, b []byte) error {
	d := digest.FromBytes(b)
	return withRetry(ctx, func() error {
		loc, err := c.startUpload(ctx)
		if err != nil {
			return err
		}
		return c.commitWith(ctx, loc, d, bytes.NewReader(b), int64(len(b)))
	})
}

func (c *client) commit(ctx context.Context, loc string, d digest.Digest) error {
	return c.commitWith(ctx, loc, d, bytes.NewReader(nil), 0)
}

// commitWith ends upload session loc with its last bytes (body, size).
func (c *client) commitWith(ctx context.Context, loc string, d digest.Digest, body io.Reader, size int64) error {
	u, err := url.Parse(loc)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	resp, err := c.do(ctx, http.MethodPut, u.String(), body, size, map[string]string{"Content-Type": "application/octet-stream"}, http.StatusCreated)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		return fmt.Errorf("%w: the registry stored blob %s as %s", ErrDigestMismatch, d, got)
	}
	return nil
}

// putManifest stores manifest b of media type mt under tag.
func (c *client) putManifest(ctx context.Context, tag, mt string, b []byte) error {
	d := digest.FromBytes(b)
	return withRetry(ctx, func() error {
		resp, err := c.do(ctx, http.MethodPut, c.url("/manifests/"+tag), bytes.NewReader(b), int64(len(b)), map[string]string{"Content-Type": mt}, http.StatusCreated, http.StatusOK)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
			return fmt.Errorf("%w: the registry stored the manifest as %s, strata sent %s", ErrDigestMismatch, got, d)
		}
		return nil
	})
}
