package network

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrPortInUse is wrapped by Allocate's error for a host port that is taken.
var ErrPortInUse = errors.New("port is already allocated")

// Allocation is a set of published ports made concrete: every binding has
// one host port, and each is held bound by this process until Release, so
// nothing else takes it before pasta binds it.
type Allocation struct {
	Ports   PortMap
	holders []io.Closer
}

// Release lets go of the held ports (right before pasta binds them).
func (a *Allocation) Release() {
	for _, h := range a.holders {
		h.Close()
	}
	a.holders = nil
}

// Allocate binds every requested host port, picking free ones for an empty
// HostPort (from the kernel's ephemeral range) and for a host range (the
// first free one). A taken port is an error that names it. On error nothing
// stays bound.
func Allocate(requested PortMap) (*Allocation, error) {
	a := &Allocation{Ports: PortMap{}}
	for _, port := range requested.Ports() {
		for _, b := range requested[port] {
			got, h, err := bindHost(port.Proto(), b)
			if err != nil {
				a.Release()
				return nil, fmt.Errorf("cannot publish %s: %w", describe(port, b), err)
			}
			a.holders = append(a.holders, h)
			a.Ports[port] = append(a.Ports[port], Binding{HostIP: b.HostIP, HostPort: strconv.Itoa(got)})
		}
	}
	return a, nil
}

func describe(port Port, b Binding) string {
	ip := b.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	host := b.HostPort
	if host == "" {
		host = "0"
	}
	return fmt.Sprintf("%s:%s->%s", ip, host, port)
}

// bindHost binds one binding on the host and returns the port it got.
func bindHost(proto string, b Binding) (int, io.Closer, error) {
	lo, hi := 0, 0
	if b.HostPort != "" {
		var err error
		if lo, hi, err = parseRange(b.HostPort); err != nil {
			return 0, nil, err
		}
	}
	var last error
	for p := lo; p <= hi; p++ {
		addr := net.JoinHostPort(b.HostIP, strconv.Itoa(p))
		var c io.Closer
		var err error
		var got int
		if proto == "udp" {
			var pc net.PacketConn
			if pc, err = net.ListenPacket("udp", addr); err == nil {
				c, got = pc, pc.LocalAddr().(*net.UDPAddr).Port
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("tcp", addr); err == nil {
				c, got = l, l.Addr().(*net.TCPAddr).Port
			}
		}
		if err == nil {
			return got, c, nil
		}
		last = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
		last = fmt.Errorf("bind %s: %w", addr, ErrPortInUse)
	}
	return 0, nil, last
}

// Report expands bindings for docker's output: a binding on every address
// ("") is shown as 0.0.0.0 and, where the host has IPv6, as :: too.
func Report(ports PortMap) PortMap {
	if ports == nil {
		return nil
	}
	v6 := hostHasIPv6()
	out := PortMap{}
	for p, bs := range ports {
		for _, b := range bs {
			if b.HostIP != "" {
				out[p] = append(out[p], b)
				continue
			}
			out[p] = append(out[p], Binding{HostIP: "0.0.0.0", HostPort: b.HostPort})
			if v6 {
				out[p] = append(out[p], Binding{HostIP: "::", HostPort: b.HostPort})
			}
		}
	}
	return out
}

func hostHasIPv6() bool {
	b, err := os.ReadFile("/proc/net/if_inet6")
	return err == nil && strings.TrimSpace(string(b)) != ""
}
