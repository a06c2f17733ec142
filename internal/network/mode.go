// Package network gives containers their network: a network namespace of
// their own bound to a file (ip-netns style), connected to the outside by
// pasta, which also forwards published ports from the host. There is no
// bridge, no veth pair and no NAT rule: what works on a laptop works the
// same on a CI runner. The host's network (host) and loopback only (none)
// need nothing from this package but the mode's name.
package network

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Network modes, docker's names.
const (
	Bridge = "bridge" // the default: own namespace, pasta outside
	Host   = "host"
	None   = "none"
	// ContainerPrefix starts "container:NAME|ID": join that container's.
	ContainerPrefix = "container:"
	// HostGateway in --add-host NAME:host-gateway stands for the host.
	HostGateway = "host-gateway"
)

// ParseMode normalises a --network value: "" and "default" are the
// default (bridge); "container:REF" returns the mode with ref. Names of
// user-defined networks are refused, as strata has none.
func ParseMode(s string) (mode, ref string, err error) {
	switch s {
	case "", "default", Bridge:
		return Bridge, "", nil
	case Host, None:
		return s, "", nil
	}
	if r, ok := strings.CutPrefix(s, ContainerPrefix); ok {
		if r == "" {
			return "", "", fmt.Errorf("invalid network mode %q: no container given", s)
		}
		return ContainerPrefix, r, nil
	}
	return "", "", fmt.Errorf("network %s not found (strata has the built-in networks bridge, host and none, and container:NAME)", s)
}

// Builtin is one of the networks `network ls` lists.
type Builtin struct {
	ID, Name, Driver string
}

// Builtins are the networks every store has, in docker's order. Their IDs
// are derived from the names, so they are the same on every machine.
func Builtins() []Builtin {
	var out []Builtin
	for _, n := range []struct{ name, driver string }{{Bridge, "bridge"}, {Host, "host"}, {None, "null"}} {
		sum := sha256.Sum256([]byte("strata network " + n.name))
		out = append(out, Builtin{ID: hex.EncodeToString(sum[:]), Name: n.name, Driver: n.driver})
	}
	return out
}
