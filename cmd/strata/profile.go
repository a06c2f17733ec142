package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile of this one command to the file named
// by STRATA_CPUPROFILE, so a benchmark can say where a command's time goes
// (`go tool pprof bin/strata FILE`; BENCHMARKS.md). It returns the function
// that finishes the profile.
func startProfile() func() {
	p := os.Getenv("STRATA_CPUPROFILE")
	if p == "" {
		return func() {}
	}
	f, err := os.Create(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "strata: STRATA_CPUPROFILE:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "strata: STRATA_CPUPROFILE:", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
