package builder

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// setupSSH gives a RUN --mount=type=ssh the agent named by its id (--ssh
// ID=SOCKET): a socket of its own, made for this step with the mount's
// owner and mode, that forwards each connection to the agent. The agent's
// own path never enters the container, and the forwarder stops with the
// step.
func (b *builder) setupSSH(rm *runMounts, p mountPlan) error {
	agent, ok := b.opts.SSH[p.id]
	if !ok {
		if p.m.Required {
			return fmt.Errorf("no SSH agent %q was given (strata build --ssh %s[=SOCKET])", p.id, p.id)
		}
		return nil // as BuildKit: an absent optional agent mounts nothing
	}
	// A short temp path: a unix socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "strata-ssh-")
	if err != nil {
		return err
	}
	sock := filepath.Join(dir, "agent.sock")
	stop, err := forwardUnix(sock, agent)
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	rm.release = append(rm.release, func() {
		stop()
		os.RemoveAll(dir)
	})
	uid, gid, mode := 0, 0, os.FileMode(0o600)
	if p.m.UID != nil {
		uid = int(*p.m.UID)
	}
	if p.m.GID != nil {
		gid = int(*p.m.GID)
	}
	if p.m.Mode != nil {
		mode = os.FileMode(*p.m.Mode)
	}
	if err := os.Chown(sock, uid, gid); err != nil {
		return err
	}
	if err := os.Chmod(sock, mode); err != nil {
		return err
	}
	rm.mounts = append(rm.mounts, specs.Mount{Destination: p.target, Type: "bind", Source: sock, Options: bindOptions(false)})
	return nil
}

// forwardUnix listens on sock and copies every connection both ways to the
// unix socket target until stop is called.
func forwardUnix(sock, target string) (stop func(), err error) {
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("ssh agent forwarder: %w", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = true
		} else {
			delete(conns, c)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return // closed by stop
			}
			track(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer track(c, false)
				defer c.Close()
				a, err := net.Dial("unix", target)
				if err != nil {
					return
				}
				defer a.Close()
				done := make(chan struct{})
				go func() {
					io.Copy(a, c)
					a.(*net.UnixConn).CloseWrite()
					close(done)
				}()
				io.Copy(c, a)
				c.(*net.UnixConn).CloseWrite()
				<-done
			}()
		}
	}()
	return func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}, nil
}

// CheckSSHAgent tells whether path is a unix socket strata can forward: an
// agent, not a key file (strata has no agent of its own to load keys into).
func CheckSSHAgent(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return errors.New(path + " is not a socket: strata forwards SSH agent sockets (run ssh-agent and ssh-add the key)")
	}
	return nil
}
