package store

import (
	"errors"
	"syscall"
)

// processAlive tells whether pid names a live process (signal 0 probes it).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
