package main

import (
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile to the file named by GRETUN_CPUPROFILE,
// if set, until the returned function is called: for finding where the
// data path spends its time (`go tool pprof bin/gretun FILE`).
func startProfile() func() {
	path := os.Getenv("GRETUN_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
