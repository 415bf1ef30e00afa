package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of the counters in /proc/stat. The kernel exports them
// in USER_HZ, which is 100 on every Linux architecture's user ABI.
const userHZ = 100

// CPUTimes is the machine-wide CPU time from the "cpu" line of /proc/stat,
// in USER_HZ ticks summed over all CPUs. Busy counts everything but idle
// and iowait, so the softirq time the kernel spends forwarding packets is
// charged the same as the user time a userspace tunnel spends: that keeps
// CPU cost comparable between kernel and userspace data paths.
type CPUTimes struct {
	Busy uint64
	Idle uint64
}

// ParseProcStat reads the aggregate "cpu" line of /proc/stat.
func ParseProcStat(r io.Reader) (CPUTimes, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		// user nice system idle iowait irq softirq steal [guest guest_nice]
		if len(f) < 9 {
			return CPUTimes{}, fmt.Errorf("/proc/stat: cpu line has %d fields, want at least 8 counters", len(f)-1)
		}
		var v [8]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return CPUTimes{}, fmt.Errorf("/proc/stat: cpu counter %d: %v", i+1, err)
			}
			v[i] = n
		}
		// guest and guest_nice are already included in user and nice.
		user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		return CPUTimes{
			Busy: user + nice + system + irq + softirq + steal,
			Idle: idle + iowait,
		}, nil
	}
	if err := sc.Err(); err != nil {
		return CPUTimes{}, fmt.Errorf("/proc/stat: %v", err)
	}
	return CPUTimes{}, fmt.Errorf("/proc/stat: no aggregate cpu line")
}

// ReadCPUTimes samples /proc/stat now.
func ReadCPUTimes() (CPUTimes, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return CPUTimes{}, err
	}
	defer f.Close()
	return ParseProcStat(f)
}

// BusySecondsSince returns the CPU seconds, summed over all CPUs, spent
// busy between before and t. A counter that went backwards yields 0.
func (t CPUTimes) BusySecondsSince(before CPUTimes) float64 {
	if t.Busy < before.Busy {
		return 0
	}
	return float64(t.Busy-before.Busy) / userHZ
}

// CPUSecondsPerGB is the CPU cost of carrying bytes: CPU seconds divided
// by gigabytes (10^9 bytes). It returns 0 when nothing was carried.
func CPUSecondsPerGB(cpuSeconds float64, bytes int64) float64 {
	if bytes <= 0 || cpuSeconds < 0 {
		return 0
	}
	return cpuSeconds / (float64(bytes) / 1e9)
}

// BusyPercentSince is the share of all CPU time between before and t that
// was busy, in percent.
func (t CPUTimes) BusyPercentSince(before CPUTimes) float64 {
	if t.Busy < before.Busy || t.Idle < before.Idle {
		return 0
	}
	busy, idle := t.Busy-before.Busy, t.Idle-before.Idle
	if busy+idle == 0 {
		return 0
	}
	return 100 * float64(busy) / float64(busy+idle)
}
