package main

import (
	"fmt"
	"strings"

	"github.com/gretun/gretun/tundev"
	"github.com/gretun/gretun/udpsock"
)

// benchStepsEnv names the data path steps to turn off, comma-separated:
// gso (UDP_SEGMENT on send), gro (UDP_GRO on receive), coalesce (TCP
// segments written to the TUN one by one) and tso (no TUN offloads:
// segmented reads, writes one by one). `gretun bench`'s step rows set it
// to show what each step buys (BENCHMARKS.md); it is not a user setting.
const benchStepsEnv = "GRETUN_BENCH_OFF"

// applyBenchSteps turns off the steps v names.
func applyBenchSteps(v string) error {
	for _, w := range strings.Split(v, ",") {
		switch strings.TrimSpace(w) {
		case "":
		case "gso":
			udpsock.Steps.NoGSO = true
		case "gro":
			udpsock.Steps.NoGRO = true
		case "coalesce":
			tundev.Steps.NoCoalesce = true
		case "tso":
			tundev.Steps.NoTSO = true
		default:
			return fmt.Errorf("%s: unknown step %q (gso, gro, coalesce, tso)", benchStepsEnv, w)
		}
	}
	return nil
}
