package network

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePublish(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want PortMap
		err  string
	}{
		{spec: "80", want: PortMap{"80/tcp": {{}}}},
		{spec: "8080:80", want: PortMap{"80/tcp": {{HostPort: "8080"}}}},
		{spec: "127.0.0.1:8080:80", want: PortMap{"80/tcp": {{HostIP: "127.0.0.1", HostPort: "8080"}}}},
		{spec: "127.0.0.1::80/udp", want: PortMap{"80/udp": {{HostIP: "127.0.0.1"}}}},
		{spec: "[::1]:8080:80", want: PortMap{"80/tcp": {{HostIP: "::1", HostPort: "8080"}}}},
		{spec: "::1:8080:80", want: PortMap{"80/tcp": {{HostIP: "::1", HostPort: "8080"}}}},
		{spec: "8000-8002:9000-9002/UDP", want: PortMap{
			"9000/udp": {{HostPort: "8000"}}, "9001/udp": {{HostPort: "8001"}}, "9002/udp": {{HostPort: "8002"}}}},
		{spec: "7000-7001", want: PortMap{"7000/tcp": {{}}, "7001/tcp": {{}}}},
		{spec: "8000-8010:80", want: PortMap{"80/tcp": {{HostPort: "8000-8010"}}}},
		{spec: "8000-8001:80-82", err: "ranges differ"},
		{spec: "0:80", err: "invalid host port"},
		{spec: "80/sctp", err: "sctp is not supported"},
		{spec: "80/icmp", err: "invalid protocol"},
		{spec: "1.2.3:80:80", err: "invalid IP address"},
		{spec: "70000", err: "invalid container port"},
		{spec: "8080:", err: "no container port"},
		{spec: "[::1:80", err: "unterminated"},
	} {
		got, err := ParsePublish(tc.spec)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.spec) {
				t.Errorf("%s: err %v, want one with %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.spec, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.spec, diff)
		}
	}
}

func TestParseExposeAndPort(t *testing.T) {
	got, err := ParseExpose("7000-7002/udp")
	if err != nil || !cmp.Equal(got, []Port{"7000/udp", "7001/udp", "7002/udp"}) {
		t.Fatalf("expose range: %v %v", got, err)
	}
	if p, err := ParsePort("53/UDP"); err != nil || p != "53/udp" || p.Number() != 53 || p.Proto() != "udp" {
		t.Fatalf("ParsePort: %v %v", p, err)
	}
	if _, err := ParsePort("x"); err == nil {
		t.Fatal("ParsePort(x) accepted")
	}
}

func TestFormatIsDockersPortsColumn(t *testing.T) {
	got := Format(PortMap{
		"80/tcp":   {{HostIP: "0.0.0.0", HostPort: "8080"}, {HostIP: "::", HostPort: "8080"}},
		"9000/tcp": {{HostIP: "127.0.0.1", HostPort: "9000"}},
		"9001/tcp": {{HostIP: "127.0.0.1", HostPort: "9001"}},
		"53/udp":   {{HostIP: "0.0.0.0", HostPort: "5353"}},
	}, []Port{"80/tcp", "443/tcp", "444/tcp"})
	want := "443-444/tcp, 127.0.0.1:9000-9001->9000-9001/tcp, 0.0.0.0:5353->53/udp, 0.0.0.0:8080->80/tcp, :::8080->80/tcp"
	if got != want {
		t.Fatalf("Format =\n %q\nwant\n %q", got, want)
	}
	if got := Format(PortMap{"8080/tcp": {{HostIP: "0.0.0.0", HostPort: "8080"}}}, nil); got != "0.0.0.0:8080->8080/tcp" {
		t.Fatalf("Format = %q", got)
	}
}

func TestPortArgs(t *testing.T) {
	got := portArgs(PortMap{
		"80/tcp": {{HostPort: "8080"}},
		"81/tcp": {{HostIP: "127.0.0.1", HostPort: "8081"}},
		"82/tcp": {{HostPort: "8082"}},
	})
	want := []string{"-t", "8080:80,8082:82", "-t", "127.0.0.1/8081:81", "-u", "none"}
	if !cmp.Equal(got, want) {
		t.Fatalf("portArgs = %q, want %q", got, want)
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]string{"": Bridge, "default": Bridge, "bridge": Bridge, "host": Host, "none": None, "container:web": ContainerPrefix} {
		if got, _, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, _, err := ParseMode("mynet"); err == nil || !strings.Contains(err.Error(), "network mynet not found") {
		t.Errorf("ParseMode(mynet): %v", err)
	}
}
