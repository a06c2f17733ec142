package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	rt "github.com/strata-project/strata/internal/registry/registrytest"
)

func TestSearchCatalog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := rt.Start(t)
	img := rt.Image(t, "amd64", true, nil, rt.Layer(t, rt.Tar(t, rt.File{Name: "a", Body: "a"}), rt.Gzip))
	for _, r := range []string{"ship/alpha:1", "ship/beta:1", "other/alpha:1"} {
		reg.Push(t, r, img)
	}
	got, err := Search(ctx, Access{}, reg.Host+"/alpha", 25)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range got {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != reg.Host+"/other/alpha,"+reg.Host+"/ship/alpha" {
		t.Errorf("search alpha: %v", names)
	}
	if got, _ := Search(ctx, Access{}, reg.Host+"/ship", 1); len(got) != 1 {
		t.Errorf("limit 1 gave %d results", len(got))
	}
}

// A registry with docker's v1 search API (as Docker Hub has) answers through it.
func TestSearchV1API(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/":
			w.WriteHeader(http.StatusOK)
		case "/v1/search":
			if r.URL.Query().Get("q") != "busybox" || r.URL.Query().Get("n") != "2" {
				t.Errorf("query %s", r.URL.RawQuery)
			}
			w.Write([]byte(`{"num_results":3,"query":"busybox","results":[
{"name":"busybox","description":"Busybox base image.","star_count":3000,"is_official":true,"is_automated":false},
{"name":"me/busybox","description":"mine","star_count":1,"is_official":false,"is_automated":true},
{"name":"extra","description":"","star_count":0}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	got, err := Search(context.Background(), Access{}, host+"/busybox", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (SearchResult{Name: "busybox", Description: "Busybox base image.", StarCount: 3000, IsOfficial: true}) || !got[1].IsAutomated {
		t.Errorf("results %+v", got)
	}
}
