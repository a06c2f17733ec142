package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// SearchResult is one repository a search found, in Docker Hub's shape.
type SearchResult struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	StarCount   int    `json:"star_count"`
	IsOfficial  bool   `json:"is_official"`
	IsAutomated bool   `json:"is_automated"`
}

// Search looks term up: "REGISTRY/TERM" asks that registry, anything else
// Docker Hub. A registry with docker's search API answers through it;
// a plain v2 registry's catalog is listed and filtered by TERM instead.
// At most limit results are returned.
func Search(ctx context.Context, a Access, term string, limit int) ([]SearchResult, error) {
	host, q := "index.docker.io", term
	if i := strings.IndexByte(term, '/'); i > 0 {
		if h := term[:i]; strings.ContainsAny(h, ".:") || h == "localhost" {
			host, q = h, term[i+1:]
		}
	}
	if host == "docker.io" {
		host = "index.docker.io"
	}
	c, err := newSearchClient(ctx, a, host)
	if err != nil {
		return nil, err
	}
	res, err := c.v1Search(ctx, q, limit)
	if err == nil {
		return res, nil
	}
	if host == "index.docker.io" {
		return nil, err
	}
	return c.catalogSearch(ctx, host, q, limit)
}

type searchClient struct {
	rt   http.RoundTripper
	base string
}

func newSearchClient(ctx context.Context, a Access, host string) (*searchClient, error) {
	reg, err := a.registry(host)
	if err != nil {
		return nil, err
	}
	t, err := a.transport(host)
	if err != nil {
		return nil, err
	}
	auth, err := a.keychain().Resolve(reg)
	if err != nil {
		return nil, err
	}
	rt, err := transport.NewWithContext(ctx, reg, auth, t, []string{reg.Scope("")})
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", host, err)
	}
	return &searchClient{rt: rt, base: reg.Scheme() + "://" + reg.RegistryStr()}, nil
}

// maxSearchBody bounds what a search answer may hold.
const maxSearchBody = 16 << 20

func (c *searchClient) get(ctx context.Context, u string, v any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return nil, err
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxSearchBody)).Decode(v); err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	return resp.Header, nil
}

// v1Search is Docker Hub's search API.
func (c *searchClient) v1Search(ctx context.Context, q string, limit int) ([]SearchResult, error) {
	var body struct {
		Results []SearchResult `json:"results"`
	}
	u := c.base + "/v1/search?" + url.Values{"q": {q}, "n": {strconv.Itoa(limit)}}.Encode()
	if _, err := c.get(ctx, u, &body); err != nil {
		return nil, err
	}
	if len(body.Results) > limit {
		body.Results = body.Results[:limit]
	}
	return body.Results, nil
}

// maxCatalogPages bounds how far a catalog is followed.
const maxCatalogPages = 100

// catalogSearch lists the registry's repositories and keeps those whose
// name contains q.
func (c *searchClient) catalogSearch(ctx context.Context, host, q string, limit int) ([]SearchResult, error) {
	var out []SearchResult
	next := c.base + "/v2/_catalog?n=1000"
	for page := 0; next != "" && page < maxCatalogPages; page++ {
		var body struct {
			Repositories []string `json:"repositories"`
		}
		h, err := c.get(ctx, next, &body)
		if err != nil {
			return nil, fmt.Errorf("search %s: %w", host, err)
		}
		for _, r := range body.Repositories {
			if strings.Contains(r, q) {
				out = append(out, SearchResult{Name: host + "/" + r})
				if len(out) == limit {
					return out, nil
				}
			}
		}
		next = nextLink(c.base, h.Get("Link"))
	}
	return out, nil
}

// nextLink reads `<URL>; rel="next"` (relative to base).
func nextLink(base, link string) string {
	if link == "" || !strings.Contains(link, `rel="next"`) {
		return ""
	}
	start, end := strings.IndexByte(link, '<'), strings.IndexByte(link, '>')
	if start < 0 || end < start {
		return ""
	}
	u := link[start+1 : end]
	if strings.HasPrefix(u, "/") {
		return base + u
	}
	return u
}
