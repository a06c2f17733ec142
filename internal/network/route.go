package network

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"strings"
)

// Address is what pasta gives a container's interface: the IPv4 address
// and gateway of the host's interface with the default route (it copies
// them). Both are empty when the host has no IPv4 default route.
type Address struct {
	IP, Gateway string
	PrefixLen   int
}

// HostAddress reads the host's default IPv4 route and its interface's
// address from /proc and the kernel, the way pasta chooses them.
func HostAddress() Address {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return Address{}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// Iface Destination Gateway Flags ...; the default route's
		// destination is 0.0.0.0.
		if len(fields) < 3 || fields[1] != "00000000" {
			continue
		}
		a := Address{Gateway: hexIPv4(fields[2])}
		ifc, err := net.InterfaceByName(fields[0])
		if err != nil {
			return a
		}
		addrs, _ := ifc.Addrs()
		for _, ad := range addrs {
			if n, ok := ad.(*net.IPNet); ok && n.IP.To4() != nil {
				a.IP = n.IP.String()
				a.PrefixLen, _ = n.Mask.Size()
				break
			}
		}
		return a
	}
	return Address{}
}

// hexIPv4 decodes /proc/net/route's little-endian hex address.
func hexIPv4(s string) string {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return ""
	}
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], binary.LittleEndian.Uint32(b))
	return netip.AddrFrom4(a).String()
}
