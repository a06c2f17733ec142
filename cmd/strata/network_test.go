package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-project/strata/internal/testutil/requires"
)

// These tests run real containers on real pasta; all traffic stays on the
// host's loopback and in the containers' own namespaces.

func newNetworkCLI(t *testing.T) *cli {
	t.Helper()
	requires.Command(t, "pasta")
	return newBusyboxCLI(t)
}

// freePort is a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// httpGet fetches url, retrying while the server in the container comes
// up (bounded: 10 s).
func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 {
				return string(b)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// webRoot is a directory with an index.html saying what.
func webRoot(t *testing.T, what string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(what+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// networkLeftovers lists what of the store's networking is left: pasta
// processes serving it, namespace files, namespace mounts.
func networkLeftovers(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), "pasta") && strings.Contains(string(b), root+"/") {
			out = append(out, "process "+p)
		}
	}
	files, _ := filepath.Glob(filepath.Join(root, "run", "netns", "*"))
	for _, f := range files {
		out = append(out, "file "+f)
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "nsfs") && strings.Contains(line, root+"/") {
				out = append(out, "mount "+line)
			}
		}
	}
	return out
}

func TestPublishedPortsAnswerFromTheHost(t *testing.T) {
	t.Parallel()
	c := newNetworkCLI(t)
	p1, p2 := freePort(t), freePort(t)
	// Two containers bind the same container port; each is reached on its
	// own host port.
	c.ok("run", "-d", "--name", "web1", "-p", "127.0.0.1:"+p1+":8080", "-v", webRoot(t, "one")+":/www", "busybox", "httpd", "-f", "-p", "8080", "-h", "/www")
	c.ok("run", "-d", "--name", "web2", "-p", "127.0.0.1:"+p2+":8080", "-v", webRoot(t, "two")+":/www", "busybox", "httpd", "-f", "-p", "8080", "-h", "/www")
	if got := httpGet(t, "http://127.0.0.1:"+p1+"/"); got != "one\n" {
		t.Fatalf("web1 answered %q", got)
	}
	if got := httpGet(t, "http://127.0.0.1:"+p2+"/"); got != "two\n" {
		t.Fatalf("web2 answered %q", got)
	}

	// A taken host port fails the start before the container runs, with
	// docker's exit status, and leaves no network behind.
	_, errs, code := c.run(nil, "run", "--rm", "-p", "127.0.0.1:"+p1+":80", "busybox", "true")
	if code != 125 || !strings.Contains(errs, "127.0.0.1:"+p1) || !strings.Contains(errs, "already allocated") {
		t.Fatalf("taken port: code %d, stderr %q", code, errs)
	}
	if ps := strings.Fields(c.ok("ps", "-a", "--format", "{{.Names}}")); len(ps) != 2 {
		t.Fatalf("containers after the failed run --rm: %q", ps)
	}
	if left := networkLeftovers(t, c.root); len(left) != 6 { // web1's and web2's pasta, file and mount
		t.Fatalf("network state after the failed start: %q", left)
	}

	// container:NAME shares web1's namespace: its localhost is web1's.
	out := c.ok("run", "--rm", "--network", "container:web1", "busybox", "wget", "-qO-", "http://127.0.0.1:8080/")
	if out != "one\n" {
		t.Fatalf("container:web1 localhost answered %q", out)
	}
	// The port is free again once the container stops.
	c.ok("stop", "-t", "1", "web1")
	l, err := net.Listen("tcp", "127.0.0.1:"+p1)
	if err != nil {
		t.Fatalf("web1's port still taken after stop: %v", err)
	}
	l.Close()
	c.ok("rm", "-f", "web1", "web2")
	if left := networkLeftovers(t, c.root); len(left) > 0 {
		t.Fatalf("left after rm: %q", left)
	}
}

func TestContainerNetworkIsIsolated(t *testing.T) {
	t.Parallel()
	c := newNetworkCLI(t)
	// A server on the host's loopback is not the container's loopback.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(conn, "host secret\n")
			conn.Close()
		}
	}()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	out, _, _ := c.run(nil, "run", "--rm", "busybox", "sh", "-c", "nc -w 2 127.0.0.1 "+port+" </dev/null; ip -o link | cut -d: -f2")
	if strings.Contains(out, "host secret") {
		t.Fatal("the container reached the host's loopback server through its own")
	}
	links := strings.Fields(out)
	if len(links) != 2 || links[0] != "lo" {
		t.Fatalf("default network links %q, want lo and pasta's interface", links)
	}
	if left := networkLeftovers(t, c.root); len(left) > 0 {
		t.Fatalf("left after run --rm: %q", left)
	}

	// Without pasta the default network cannot start: the error names the
	// package and the alternative.
	bin := t.TempDir()
	if err := os.Symlink(requires.Command(t, "runc"), filepath.Join(bin, "runc")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(strataBin, "--root", c.root, "run", "--rm", "busybox", "true")
	cmd.Env = append(os.Environ(), "PATH="+bin)
	out2, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 125 || !strings.Contains(string(out2), "passt") || !strings.Contains(string(out2), "--network host") {
		t.Fatalf("run without pasta: %v %q", err, out2)
	}
	if out := c.ok("ps", "-aq"); out != "" {
		t.Fatalf("run --rm without pasta left %q", out)
	}
}

func TestKilledRunnerNetworkIsReconciled(t *testing.T) {
	t.Parallel()
	c := newNetworkCLI(t)
	port := freePort(t)
	cmd := exec.Command(strataBin, "--root", c.root, "run", "--name", "fg", "-p", "127.0.0.1:"+port+":8080", "-v", webRoot(t, "fg")+":/www", "busybox", "httpd", "-f", "-p", "8080", "-h", "/www")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if got := httpGet(t, "http://127.0.0.1:"+port+"/"); got != "fg\n" {
		t.Fatalf("fg answered %q", got)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// The next command finds the dead runner and cleans up after it.
	if out := c.ok("ps", "-a", "--format", "{{.Names}} {{.State}}"); out != "fg exited\n" {
		t.Fatalf("ps after kill -9 of the runner: %q", out)
	}
	if left := networkLeftovers(t, c.root); len(left) > 0 {
		t.Fatalf("left after the runner's kill -9: %q", left)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("port still taken: %v", err)
	}
	l.Close()
}

func TestPublishAllPortPsInspect(t *testing.T) {
	t.Parallel()
	c := newNetworkCLI(t)
	c.ok("run", "-d", "--name", "pa", "-P", "--expose", "8080", "--expose", "9000/udp", "-v", webRoot(t, "all")+":/www", "busybox", "httpd", "-f", "-p", "8080", "-h", "/www")
	// -P gave 8080 a free host port; port finds it and it answers.
	lines := strings.Split(strings.TrimSpace(c.ok("port", "pa", "8080")), "\n")
	host, port, ok := strings.Cut(lines[0], ":")
	if !ok || host != "0.0.0.0" {
		t.Fatalf("port pa 8080: %q", lines)
	}
	if got := httpGet(t, "http://127.0.0.1:"+port+"/"); got != "all\n" {
		t.Fatalf("-P port answered %q", got)
	}
	if _, errs, code := c.run(nil, "port", "pa", "80"); code != 1 || !strings.Contains(errs, "No public port '80/tcp' published for pa") {
		t.Fatalf("port pa 80: %d %q", code, errs)
	}
	if out := c.ok("ps", "--format", "{{.Ports}}"); !strings.Contains(out, "0.0.0.0:"+port+"->8080/tcp") {
		t.Fatalf("ps PORTS %q lacks 8080's binding", out)
	}
	insp := c.ok("inspect", "--format", `{{(index (index .NetworkSettings.Ports "8080/tcp") 0).HostPort}} {{.HostConfig.PublishAllPorts}} {{json .HostConfig.PortBindings}} {{if .NetworkSettings.IPAddress}}ip{{end}} {{json .Config.ExposedPorts}}`, "pa")
	if want := port + ` true {} ip {"8080/tcp":{},"9000/udp":{}}` + "\n"; insp != want {
		t.Fatalf("inspect: %q, want %q", insp, want)
	}
	for filter, want := range map[string]string{
		"publish=8080": "pa\n", "publish=8000-8100/tcp": "pa\n", "publish=8080/udp": "",
		"expose=9000/udp": "pa\n", "expose=7000": "", "network=bridge": "pa\n", "network=host": "",
	} {
		if got := c.ok("ps", "--filter", filter, "--format", "{{.Names}}"); got != want {
			t.Errorf("ps --filter %s: %q, want %q", filter, got, want)
		}
	}
	// The published ports come back after a stop and a start (maybe on
	// other host ports, as docker's -P gives).
	c.ok("stop", "-t", "1", "pa")
	if out := c.ok("port", "pa"); out != "" {
		t.Fatalf("a stopped container still lists ports: %q", out)
	}
	c.ok("start", "pa")
	lines = strings.Split(strings.TrimSpace(c.ok("port", "pa", "8080")), "\n")
	_, port, _ = strings.Cut(lines[0], ":")
	if got := httpGet(t, "http://127.0.0.1:"+port+"/"); got != "all\n" {
		t.Fatalf("-P port after stop and start answered %q", got)
	}
	c.ok("restart", "-t", "1", "pa")
	lines = strings.Split(strings.TrimSpace(c.ok("port", "pa", "8080")), "\n")
	_, port, _ = strings.Cut(lines[0], ":")
	if got := httpGet(t, "http://127.0.0.1:"+port+"/"); got != "all\n" {
		t.Fatalf("-P port after restart answered %q", got)
	}

	// -p with --network host is accepted with docker's warning and ignored.
	if _, errs, code := c.run(nil, "run", "--rm", "--network", "host", "-p", "80:80", "busybox", "true"); code != 0 || !strings.Contains(errs, "Published ports are discarded when using host network mode") {
		t.Fatalf("-p with host network: %d %q", code, errs)
	}
	if _, errs, code := c.run(nil, "run", "--rm", "--network", "container:pa", "-p", "80:80", "busybox", "true"); code != 125 || !strings.Contains(errs, "conflicting options") {
		t.Fatalf("-p with container network: %d %q", code, errs)
	}
}

func TestNetworkLsAndCreate(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	out := c.ok("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")
	if out != "bridge bridge local\nhost host local\nnone null local\n" {
		t.Fatalf("network ls: %q", out)
	}
	if out := c.ok("network", "ls", "-q", "--filter", "driver=null"); len(strings.TrimSpace(out)) != 12 {
		t.Fatalf("network ls -q: %q", out)
	}
	if out := c.ok("network", "inspect", "--format", "{{.Name}} {{.Driver}}", "bridge"); out != "bridge bridge\n" {
		t.Fatalf("network inspect: %q", out)
	}
	if _, errs, code := c.run(nil, "network", "create", "mynet"); code == 0 || !strings.Contains(errs, "not supported") {
		t.Fatalf("network create: %d %q", code, errs)
	}
	if _, errs, code := c.run(nil, "network", "rm", "bridge", "mynet"); code != 1 ||
		!strings.Contains(errs, "bridge is a pre-defined network and cannot be removed") || !strings.Contains(errs, "No such network: mynet") {
		t.Fatalf("network rm: %d %q", code, errs)
	}
	// Nothing to prune, ever: cleanup scripts that prune still succeed.
	if out := c.ok("network", "prune", "-f"); out != "" {
		t.Fatalf("network prune -f: %q", out)
	}
	if _, errs, code := c.run(nil, "network", "inspect", "mynet"); code != 1 || !strings.Contains(errs, "No such network: mynet") {
		t.Fatalf("network inspect mynet: %d %q", code, errs)
	}
}

func TestNameResolutionFlags(t *testing.T) {
	t.Parallel()
	c := newNetworkCLI(t)
	out := c.ok("run", "--rm", "--add-host", "db:192.0.2.77", "--add-host", "v6=[2001:db8::1]", "--dns", "192.0.2.53", "--dns-search", "example.com",
		"--dns-option", "ndots:2", "--hostname", "web", "--domainname", "example.org", "busybox",
		"sh", "-c", "cat /etc/hosts /etc/resolv.conf; hostname; cat /proc/sys/kernel/domainname")
	for _, want := range []string{"192.0.2.77\tdb\n", "2001:db8::1\tv6\n", "127.0.1.1\tweb.example.org web\n",
		"search example.com\n", "nameserver 192.0.2.53\n", "options ndots:2\n", "\nweb\nexample.org\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("container files lack %q:\n%s", want, out)
		}
	}
	insp := c.ok("create", "--dns", "192.0.2.53", "--add-host", "db:192.0.2.77", "--domainname", "example.org", "busybox")
	if got := c.ok("inspect", "-f", "{{json .HostConfig.Dns}} {{json .HostConfig.ExtraHosts}} {{.Config.Domainname}}", strings.TrimSpace(insp)); got != `["192.0.2.53"] ["db:192.0.2.77"] example.org`+"\n" {
		t.Errorf("inspect: %q", got)
	}
	if _, errs, code := c.run(nil, "run", "--rm", "--add-host", "bad", "busybox", "true"); code != 125 || !strings.Contains(errs, "add-host") {
		t.Errorf("--add-host bad: %d %q", code, errs)
	}

	// host-gateway reaches the host's loopback (only when asked for).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(conn, "hello host\n")
			conn.Close()
		}
	}()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	// pasta (Debian's 2023 build) does not always pass the server's close
	// on to the container on this path: nc is bounded (not as PID 1, which
	// the signal could not end).
	out = c.ok("run", "--rm", "--add-host", "host.docker.internal:host-gateway", "busybox", "sh", "-c", "timeout -s KILL 10 nc host.docker.internal "+port+"; true")
	if !strings.HasPrefix(out, "hello host\n") {
		t.Fatalf("host-gateway: %q", out)
	}
}

// TestWebExample is the README's example: a web server image built from
// examples/web, run detached with a published port, answers on the host;
// -P publishes its EXPOSEd port too.
func TestWebExample(t *testing.T) {
	t.Parallel()
	c := newNetworkCLI(t)
	c.ok("build", "-q", "-t", "web", "../../examples/web")
	port := freePort(t)
	c.ok("run", "-d", "--name", "web", "-p", port+":8080", "web")
	if got := httpGet(t, "http://127.0.0.1:"+port+"/"); got != "hello from a strata container\n" {
		t.Fatalf("the web example answered %q", got)
	}
	c.ok("run", "-d", "--name", "web-all", "-P", "web")
	line := strings.Split(c.ok("port", "web-all", "8080/tcp"), "\n")[0]
	_, p, _ := strings.Cut(line, ":")
	if got := httpGet(t, "http://127.0.0.1:"+p+"/"); got != "hello from a strata container\n" {
		t.Fatalf("-P of the web example answered %q", got)
	}
}
