package oci

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ForwardedSignals are the signals ForwardSignals relays when given none.
// SIGCHLD, SIGWINCH, SIGPIPE and SIGURG (used by the Go scheduler) concern
// strata itself and are never relayed.
var ForwardedSignals = []os.Signal{
	syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2,
}

// ForwardSignals relays the given signals (ForwardedSignals when none) that
// strata receives to the container's init process, while a foreground Run
// is in progress, until stop is called. Relaying is best effort: a signal
// that arrives before the container exists or after it has exited has no
// process to go to and is dropped.
func (r *Runtime) ForwardSignals(id string, sigs ...os.Signal) (stop func()) {
	if len(sigs) == 0 {
		sigs = ForwardedSignals
	}
	return onSignals(16, sigs, func(s os.Signal) {
		sig, ok := s.(syscall.Signal)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = r.Kill(ctx, id, sig, false)
		cancel()
	})
}

// ForwardSignalsToPid relays signals like ForwardSignals, straight to one
// process of the caller's (an exec'd process it adopted and has not yet
// reaped, so the pid cannot have been reused). Signals are caught from the
// call on; those that arrive before the pid is sent on pid wait for it, and
// are dropped if pid is closed instead (the process never started).
func ForwardSignalsToPid(pid <-chan int, sigs ...os.Signal) (stop func()) {
	if len(sigs) == 0 {
		sigs = ForwardedSignals
	}
	target := 0
	return onSignals(16, sigs, func(s os.Signal) {
		if target == 0 {
			p, ok := <-pid
			if !ok {
				return
			}
			target = p
		}
		if sig, ok := s.(syscall.Signal); ok {
			_ = unix.Kill(target, sig)
		}
	})
}

// onSignals calls fn for each of sigs that strata receives, one at a time,
// until stop is called; once stop returns fn is not running and never will.
func onSignals(buffer int, sigs []os.Signal, fn func(os.Signal)) (stop func()) {
	ch := make(chan os.Signal, buffer)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case s := <-ch:
				fn(s)
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			wg.Wait()
		})
	}
}

// The real-time signal range a process sees under glibc (the kernel's 32 and
// 33 are taken by the C library), as docker's signal table has it.
const sigRTMin, sigRTMax = 34, 64

// ParseSignal parses a signal the way `docker kill -s` and the image's
// StopSignal spell it: "SIGTERM", "TERM", "term" or "15".
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	// Real-time signals by offset, as docker spells them: systemd images
	// stop with SIGRTMIN+3.
	for _, rt := range []struct {
		prefix string
		base   int
		sign   int
	}{{"SIGRTMIN", sigRTMin, 1}, {"SIGRTMAX", sigRTMax, -1}} {
		rest, ok := strings.CutPrefix(name, rt.prefix)
		if !ok {
			continue
		}
		off := 0
		if rest != "" {
			op := "+"
			if rt.sign < 0 {
				op = "-"
			}
			n, err := strconv.Atoi(strings.TrimPrefix(rest, op))
			if err != nil || !strings.HasPrefix(rest, op) || n < 0 {
				break
			}
			off = n
		}
		if n := rt.base + rt.sign*off; n >= sigRTMin && n <= sigRTMax {
			return syscall.Signal(n), nil
		}
	}
	return 0, fmt.Errorf("invalid signal %q", s)
}

// StopSignal is the signal `stop` sends first: the image's StopSignal, or
// SIGTERM.
func StopSignal(imageStopSignal string) (syscall.Signal, error) {
	if imageStopSignal == "" {
		return syscall.SIGTERM, nil
	}
	return ParseSignal(imageStopSignal)
}
