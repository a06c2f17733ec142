package network

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strata-project/strata/internal/testutil/requires"
)

// inNamespace runs fn on a thread that has joined the namespace at path;
// sockets fn creates live in that namespace.
func inNamespace(t *testing.T, path string, fn func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is discarded
		f, err := os.Open(path)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func TestPastaPublishesAPortAndCleansUp(t *testing.T) {
	requires.Root(t)
	requires.Command(t, "pasta")
	ns := filepath.Join(t.TempDir(), "netns", "c1")
	if err := CreateNamespace(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { RemoveNamespace(ns) })

	alloc, err := Allocate(PortMap{"8080/tcp": {{HostIP: "127.0.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	hostPort := alloc.Ports["8080/tcp"][0].HostPort
	alloc.Release()
	start := time.Now()
	p, err := StartPasta(PastaOptions{Namespace: ns, Ports: alloc.Ports})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("pasta ready in %v", time.Since(start))

	var l net.Listener
	if err := inNamespace(t, ns, func() (err error) {
		l, err = net.Listen("tcp", "0.0.0.0:8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			io.WriteString(c, "hello from the namespace")
			c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+hostPort, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != "hello from the namespace" {
		t.Fatalf("read %q, %v", got, err)
	}

	p.Stop()
	// The port is free again at once.
	l2, err := net.Listen("tcp", "127.0.0.1:"+hostPort)
	if err != nil {
		t.Fatalf("host port still taken after Stop: %v", err)
	}
	l2.Close()
	if err := RemoveNamespace(ns); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ns); !os.IsNotExist(err) {
		t.Fatalf("namespace file left: %v", err)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), ns) {
		t.Fatal("namespace still mounted")
	}
}

func TestPastaFailureIsReported(t *testing.T) {
	requires.Root(t)
	requires.Command(t, "pasta")
	ns := filepath.Join(t.TempDir(), "c2")
	if err := CreateNamespace(ns); err != nil {
		t.Fatal(err)
	}
	defer RemoveNamespace(ns)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	p, err := StartPasta(PastaOptions{Namespace: ns, Ports: PortMap{"80/tcp": {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(port)}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = p.Ready(ctx)
	t.Logf("pasta with a taken port: %v", err)
}

func TestMissingPastaNamesThePackage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := StartPasta(PastaOptions{Namespace: filepath.Join(t.TempDir(), "ns")})
	if err != ErrNoPasta || !strings.Contains(err.Error(), "passt") || !strings.Contains(err.Error(), "--network host") {
		t.Fatalf("StartPasta without pasta: %v", err)
	}
}

func TestPastaForwardsUDP(t *testing.T) {
	requires.Root(t)
	requires.Command(t, "pasta")
	ns := filepath.Join(t.TempDir(), "c3")
	if err := CreateNamespace(ns); err != nil {
		t.Fatal(err)
	}
	defer RemoveNamespace(ns)
	alloc, err := Allocate(PortMap{"5353/udp": {{HostIP: "127.0.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	alloc.Release()
	p, err := StartPasta(PastaOptions{Namespace: ns, Ports: alloc.Ports})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	var pc net.PacketConn
	if err := inNamespace(t, ns, func() (err error) {
		pc, err = net.ListenPacket("udp", "0.0.0.0:5353")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := net.Dial("udp", "127.0.0.1:"+alloc.Ports["5353/udp"][0].HostPort)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	// UDP may drop the first datagram while pasta sets up the flow: send a
	// few, bounded.
	for i := 0; i < 20; i++ {
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		pc.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		if n, _, err := pc.ReadFrom(buf); err == nil {
			if string(buf[:n]) != "ping" {
				t.Fatalf("got %q", buf[:n])
			}
			return
		}
	}
	t.Fatal("no datagram reached the namespace through the published UDP port")
}
