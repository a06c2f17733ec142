package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/docker/cli/cli/config"
)

// clientProxies are the proxies of the docker client's config file
// ($DOCKER_CONFIG/config.json, else ~/.docker/config.json), "proxies" →
// "default", as docker's client reads them: each set one as both the upper
// and the lower case variable (HTTP_PROXY and http_proxy, ...). docker
// applies them as build args to builds and as environment variables to
// containers, wherever the user did not set the variable already. An
// unreadable config file is a warning, as in docker.
func clientProxies(stderr io.Writer) map[string]string {
	cf, err := config.Load(config.Dir())
	if err != nil {
		fmt.Fprintf(stderr, "WARNING: Error loading config file: %v\n", err)
	}
	if cf == nil {
		return nil
	}
	out := map[string]string{}
	// The daemon host picks a per-daemon entry in docker; strata has none,
	// so "default" applies.
	for k, v := range cf.ParseProxyConfig("", nil) {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// withProxyEnv adds the client's proxies to a container's env (KEY=VALUE
// entries) for the variables env does not set, in a stable order.
func withProxyEnv(env []string, proxies map[string]string) []string {
	set := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	var keys []string
	for k := range proxies {
		if !set[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+proxies[k])
	}
	return env
}
