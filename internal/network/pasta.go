package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoPasta is returned when the pasta binary is missing.
var ErrNoPasta = errors.New("pasta not found in PATH: install the passt package (apt-get install passt), or run the container with --network host or --network none")

// Pasta is the pasta process that connects one container's namespace to
// the host: outbound TCP/UDP/ICMP through the host's sockets, published
// ports bound on the host and forwarded in. Its runner supervises it for
// the container's life.
type Pasta struct {
	cmd   *exec.Cmd
	log   *os.File      // pasta's stderr (unlinked)
	fifo  string        // where pasta writes its PID once initialised
	done  chan struct{} // closed when the process has been waited for
	err   error         // its wait status, once done
	ready chan error
}

// PastaOptions say what one pasta forwards.
type PastaOptions struct {
	// Namespace is the path of the bound network namespace (CreateNamespace).
	Namespace string
	// Ports are the published ports with concrete host ports (Allocate).
	Ports PortMap
	// MapGateway makes connections to the gateway address reach the host's
	// own loopback (--add-host NAME:host-gateway); off by default, so that
	// services the host binds to 127.0.0.1 stay out of reach.
	MapGateway bool
}

// StartPasta starts pasta in the foreground (as this process's child) on
// o.Namespace. It returns at once; Ready says when pasta has set up the
// namespace's interface and bound every published port. The namespace
// must not be in use by a process yet that relies on its network.
func StartPasta(o PastaOptions) (*Pasta, error) {
	bin, err := exec.LookPath("pasta")
	if err != nil {
		return nil, ErrNoPasta
	}
	fifo := o.Namespace + ".pid"
	_ = os.Remove(fifo)
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return nil, fmt.Errorf("pasta: %w", err)
	}
	// Read-write, so opening does not wait for pasta and reading never
	// sees an end of file before pasta wrote.
	rd, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		os.Remove(fifo)
		return nil, fmt.Errorf("pasta: %w", err)
	}
	log, err := os.CreateTemp(filepath.Dir(o.Namespace), "pasta-log-")
	if err != nil {
		rd.Close()
		os.Remove(fifo)
		return nil, fmt.Errorf("pasta: %w", err)
	}
	os.Remove(log.Name())

	args := []string{"--runas", "0:0", "--config-net", "--foreground", "--quiet",
		"--netns", o.Namespace, "--pid", fifo,
		// Nothing in the namespace may reach the host's loopback ports.
		"-T", "none", "-U", "none"}
	if !o.MapGateway {
		args = append(args, "--no-map-gw")
	}
	args = append(args, portArgs(o.Ports)...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = log
	// Its own process group: the user's ^C is for the container (which
	// strata forwards it to), not for its network.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Pasta{cmd: cmd, log: log, fifo: fifo, done: make(chan struct{}), ready: make(chan error, 1)}
	if err := startLocked(cmd); err != nil {
		rd.Close()
		log.Close()
		os.Remove(fifo)
		return nil, fmt.Errorf("start pasta: %w", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	go func() {
		got := make(chan error, 1)
		go func() {
			var b [32]byte
			n, err := rd.Read(b[:])
			if err == nil && n == 0 {
				err = io.ErrUnexpectedEOF
			}
			got <- err
		}()
		select {
		case err := <-got:
			p.ready <- err
		case <-p.done:
			p.ready <- p.failure()
		}
		rd.Close()
		os.Remove(fifo)
	}()
	return p, nil
}

// startLocked starts cmd from a thread that stays in the runtime's pool,
// in case a parent-death signal is ever set: it fires when the starting
// thread exits, and locked threads that end are discarded.
func startLocked(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}

// Pid is pasta's process ID.
func (p *Pasta) Pid() int { return p.cmd.Process.Pid }

// Ready waits until pasta has configured the namespace and bound the
// published ports, or failed to.
func (p *Pasta) Ready(ctx context.Context) error {
	select {
	case err := <-p.ready:
		p.ready <- err // later calls see it too
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failure describes why pasta exited, with its last message.
func (p *Pasta) failure() error {
	msg := ""
	if _, err := p.log.Seek(0, io.SeekStart); err == nil {
		b, _ := io.ReadAll(io.LimitReader(p.log, 64<<10))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		msg = strings.TrimSpace(lines[len(lines)-1])
	}
	if msg == "" {
		msg = fmt.Sprint(p.err)
	}
	return fmt.Errorf("pasta: %s", msg)
}

// Stop ends pasta (SIGTERM, then SIGKILL after a second) and waits for it;
// its published ports are free when Stop returns.
func (p *Pasta) Stop() {
	defer p.log.Close()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// portArgs turns concrete published ports into pasta's -t/-u options: one
// option per host address, "HOST:CTR" pairs joined by commas.
func portArgs(ports PortMap) []string {
	specs := map[string][]string{} // "-t"/"-u" + address -> pairs
	var keys []string
	for _, port := range ports.Ports() {
		opt := "-t"
		if port.Proto() == "udp" {
			opt = "-u"
		}
		for _, b := range ports[port] {
			k := opt + " " + b.HostIP
			if _, ok := specs[k]; !ok {
				keys = append(keys, k)
			}
			specs[k] = append(specs[k], b.HostPort+":"+strconv.Itoa(port.Number()))
		}
	}
	var args []string
	seen := map[string]bool{}
	for _, k := range keys {
		opt, ip, _ := strings.Cut(k, " ")
		spec := strings.Join(specs[k], ",")
		if ip != "" {
			spec = ip + "/" + spec
		}
		args = append(args, opt, spec)
		seen[opt] = true
	}
	// Unset, pasta forwards every port the container listens on (-t) and
	// the UDP twins of the TCP ports (-u).
	for _, opt := range []string{"-t", "-u"} {
		if !seen[opt] {
			args = append(args, opt, "none")
		}
	}
	return args
}
