package network

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Port is a container port with its protocol, docker's map key: "80/tcp".
type Port string

// NewPort makes the key for number/proto.
func NewPort(number int, proto string) Port { return Port(strconv.Itoa(number) + "/" + proto) }

// Number is the port number (0 when malformed).
func (p Port) Number() int {
	n, _ := strconv.Atoi(strings.SplitN(string(p), "/", 2)[0])
	return n
}

// Proto is "tcp" or "udp".
func (p Port) Proto() string {
	if _, proto, ok := strings.Cut(string(p), "/"); ok {
		return proto
	}
	return "tcp"
}

// Binding is where one container port is published on the host, in
// docker's JSON shape (HostConfig.PortBindings, NetworkSettings.Ports). An
// empty HostIP means every address; an empty HostPort, a free one chosen at
// start. HostPort may also be a range ("8000-8010") to choose from.
type Binding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// PortMap lists the bindings of each published container port.
type PortMap map[Port][]Binding

// Ports returns m's keys sorted by number, then protocol.
func (m PortMap) Ports() []Port {
	out := make([]Port, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	SortPorts(out)
	return out
}

// SortPorts orders ports by number, then protocol.
func SortPorts(ps []Port) {
	sort.Slice(ps, func(i, j int) bool {
		if a, b := ps[i].Number(), ps[j].Number(); a != b {
			return a < b
		}
		return ps[i].Proto() < ps[j].Proto()
	})
}

// ParsePublish parses one `-p` value in any of docker's forms:
// [IP:][HOSTPORT:]CTRPORT[/PROTO], where either port may be a range
// (8000-8010), IP may be an IPv6 address in brackets, and HOSTPORT may be
// empty (IP::CTRPORT) for a free port. A host range with one container port
// publishes it on one free port of the range, as docker does.
func ParsePublish(spec string) (PortMap, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("invalid publish spec %q: %s", spec, fmt.Sprintf(format, a...))
	}
	rest, proto, err := splitProto(spec)
	if err != nil {
		return nil, bad("%v", err)
	}
	var ip, host, ctr string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 || end+1 >= len(rest) || rest[end+1] != ':' {
			return nil, bad("unterminated IPv6 address")
		}
		ip, rest = rest[1:end], rest[end+2:]
		h, c, ok := strings.Cut(rest, ":")
		if !ok {
			return nil, bad("want [IP]:HOSTPORT:CONTAINERPORT")
		}
		host, ctr = h, c
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
			ctr = parts[0]
		case 2:
			host, ctr = parts[0], parts[1]
		case 3:
			ip, host, ctr = parts[0], parts[1], parts[2]
		default:
			// An unbracketed IPv6 address: the last two fields are the
			// ports, as docker reads it.
			ip = strings.Join(parts[:len(parts)-2], ":")
			host, ctr = parts[len(parts)-2], parts[len(parts)-1]
		}
	}
	if ip != "" {
		addr, err := netip.ParseAddr(ip)
		if err != nil || addr.Zone() != "" {
			return nil, bad("invalid IP address %q", ip)
		}
		ip = addr.Unmap().String()
	}
	if ctr == "" {
		return nil, bad("no container port")
	}
	clo, chi, err := parseRange(ctr)
	if err != nil {
		return nil, bad("invalid container port %q", ctr)
	}
	out := PortMap{}
	if host == "" {
		for p := clo; p <= chi; p++ {
			k := NewPort(p, proto)
			out[k] = append(out[k], Binding{HostIP: ip})
		}
		return out, nil
	}
	hlo, hhi, err := parseRange(host)
	if err != nil {
		return nil, bad("invalid host port %q", host)
	}
	switch {
	case clo == chi && hlo != hhi:
		k := NewPort(clo, proto)
		out[k] = []Binding{{HostIP: ip, HostPort: host}}
	case hhi-hlo != chi-clo:
		return nil, bad("host and container port ranges differ in size")
	default:
		for i := 0; i <= chi-clo; i++ {
			k := NewPort(clo+i, proto)
			out[k] = append(out[k], Binding{HostIP: ip, HostPort: strconv.Itoa(hlo + i)})
		}
	}
	return out, nil
}

// ParseExpose parses one `--expose` value: PORT[-PORT][/PROTO].
func ParseExpose(spec string) ([]Port, error) {
	rest, proto, err := splitProto(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid expose spec %q: %v", spec, err)
	}
	lo, hi, err := parseRange(rest)
	if err != nil {
		return nil, fmt.Errorf("invalid expose spec %q: invalid port %q", spec, rest)
	}
	var out []Port
	for p := lo; p <= hi; p++ {
		out = append(out, NewPort(p, proto))
	}
	return out, nil
}

// ParsePort parses an image's EXPOSE key or `port`'s argument: NUM[/PROTO].
func ParsePort(s string) (Port, error) {
	rest, proto, err := splitProto(s)
	if err != nil {
		return "", err
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("invalid port %q", s)
	}
	return NewPort(n, proto), nil
}

func splitProto(s string) (rest, proto string, err error) {
	rest, proto, ok := strings.Cut(s, "/")
	if !ok || proto == "" {
		return rest, "tcp", nil
	}
	switch proto = strings.ToLower(proto); proto {
	case "tcp", "udp":
		return rest, proto, nil
	case "sctp":
		return "", "", fmt.Errorf("protocol sctp is not supported (strata forwards tcp and udp)")
	}
	return "", "", fmt.Errorf("invalid protocol %q", proto)
}

// parseRange parses N or N-M (1 <= N <= M <= 65535).
func parseRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err = strconv.Atoi(a)
	if err != nil || lo < 1 || lo > 65535 {
		return 0, 0, fmt.Errorf("invalid port %q", s)
	}
	hi = lo
	if isRange {
		hi, err = strconv.Atoi(b)
		if err != nil || hi < lo || hi > 65535 {
			return 0, 0, fmt.Errorf("invalid port range %q", s)
		}
	}
	return lo, hi, nil
}

// Merge adds the bindings of b to m.
func (m PortMap) Merge(b PortMap) {
	for k, v := range b {
		m[k] = append(m[k], v...)
	}
}

// Format is docker's PORTS column: published ports
// ("0.0.0.0:8080->8080/tcp, :::8080->8080/tcp") and exposed ports without a
// binding ("443/tcp"), sorted and grouped into ranges the way docker's
// DisplayablePorts does it: ports whose host and container numbers agree
// group by address and protocol, other mappings follow one by one.
func Format(published PortMap, exposed []Port) string {
	type entry struct {
		ip        string
		host, ctr int
		proto     string
	}
	var entries []entry
	for p, bs := range published {
		for _, b := range bs {
			h, _ := strconv.Atoi(b.HostPort)
			entries = append(entries, entry{b.HostIP, h, p.Number(), p.Proto()})
		}
	}
	for _, p := range exposed {
		if _, ok := published[p]; !ok {
			entries = append(entries, entry{ctr: p.Number(), proto: p.Proto()})
		}
	}
	sort.Slice(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		switch {
		case a.ctr != b.ctr:
			return a.ctr < b.ctr
		case a.ip != b.ip:
			return a.ip < b.ip
		case a.host != b.host:
			return a.host < b.host
		}
		return a.proto < b.proto
	})
	type group struct{ first, last int }
	groups := map[string]*group{}
	var keys, result, mappings []string
	form := func(key string, g *group) string {
		ip, proto, ok := strings.Cut(key, "/")
		if !ok {
			ip, proto = "", key
		}
		s := strconv.Itoa(g.first)
		if g.last != g.first {
			s += "-" + strconv.Itoa(g.last)
		}
		if ip != "" {
			s = ip + ":" + s + "->" + s
		}
		return s + "/" + proto
	}
	for _, e := range entries {
		key := e.proto
		if e.ip != "" {
			if e.host != e.ctr {
				mappings = append(mappings, e.ip+":"+strconv.Itoa(e.host)+"->"+strconv.Itoa(e.ctr)+"/"+e.proto)
				continue
			}
			key = e.ip + "/" + e.proto
		}
		g := groups[key]
		switch {
		case g == nil:
			groups[key] = &group{e.ctr, e.ctr}
			keys = append(keys, key)
		case e.ctr == g.last+1:
			g.last = e.ctr
		default:
			result = append(result, form(key, g))
			groups[key] = &group{e.ctr, e.ctr}
		}
	}
	for _, k := range keys {
		result = append(result, form(k, groups[k]))
	}
	return strings.Join(append(result, mappings...), ", ")
}

// MatchPorts tells whether any of ports is in filter, ps --filter's
// publish= or expose= value: PORT, PORT/PROTO or a range START-END[/PROTO]
// (tcp unless said). An invalid filter matches nothing.
func MatchPorts(filter string, ports []Port) bool {
	rest, proto, err := splitProto(filter)
	if err != nil {
		return false
	}
	lo, hi, err := parseRange(rest)
	if err != nil {
		return false
	}
	for _, p := range ports {
		if n := p.Number(); n >= lo && n <= hi && p.Proto() == proto {
			return true
		}
	}
	return false
}
