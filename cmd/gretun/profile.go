package main

import (
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile to the file named by GRETUN_CPUPROFILE,
// if set, until the returned function is called, and a heap profile to
// GRETUN_MEMPROFILE then: for finding where the data path spends its time
// and memory (`go tool pprof bin/gretun FILE`).
func startProfile() func() {
	stopCPU := startCPUProfile()
	return func() {
		stopCPU()
		writeHeapProfile()
	}
}

// writeHeapProfile writes a heap profile to the file named by
// GRETUN_MEMPROFILE, if set. The daemon writes it before removing its
// tunnels, so that it shows what they hold.
func writeHeapProfile() {
	path := os.Getenv("GRETUN_MEMPROFILE")
	if path == "" {
		return
	}
	if f, err := os.Create(path); err == nil {
		pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
}

func startCPUProfile() func() {
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
