package bench

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// procStat is the head of a real /proc/stat from the 2-CPU reference VM.
const procStat = `cpu  8844 0 6964 37083 472 0 398 0 0 0
cpu0 3816 0 2874 19963 34 0 181 0 0 0
cpu1 5027 0 4090 17120 437 0 217 0 0 0
intr 1167387 0 9 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
`

func TestParseProcStat(t *testing.T) {
	got, err := ParseProcStat(strings.NewReader(procStat))
	if err != nil {
		t.Fatal(err)
	}
	want := CPUTimes{
		Busy: 8844 + 0 + 6964 + 0 + 398 + 0, // user nice system irq softirq steal
		Idle: 37083 + 472,                   // idle iowait
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("ParseProcStat (-want +got):\n%s", d)
	}
}

func TestParseProcStatGuestNotCountedTwice(t *testing.T) {
	// guest (9th) and guest_nice (10th) are already inside user and nice.
	got, err := ParseProcStat(strings.NewReader("cpu 100 10 50 1000 5 1 2 3 40 4\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Busy != 100+10+50+1+2+3 || got.Idle != 1005 {
		t.Fatalf("got %+v", got)
	}
}

func TestParseProcStatErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":        "",
		"per-cpu only": "cpu0 1 2 3 4 5 6 7 8\n",
		"short":        "cpu 1 2 3 4\n",
		"not a number": "cpu 1 2 x 4 5 6 7 8\n",
		"negative":     "cpu 1 2 -3 4 5 6 7 8\n",
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := ParseProcStat(strings.NewReader(in)); err == nil {
				t.Fatalf("ParseProcStat(%q) = %+v, want an error", in, got)
			}
		})
	}
}

func TestReadCPUTimes(t *testing.T) {
	a, err := ReadCPUTimes()
	if err != nil {
		t.Skipf("no /proc/stat here: %v", err)
	}
	b, err := ReadCPUTimes()
	if err != nil {
		t.Fatal(err)
	}
	if b.Busy < a.Busy || b.Idle < a.Idle {
		t.Fatalf("counters went backwards: %+v then %+v", a, b)
	}
}

func TestCPUAccountingMath(t *testing.T) {
	before := CPUTimes{Busy: 1000, Idle: 5000}
	after := CPUTimes{Busy: 1750, Idle: 5250}
	secs := after.BusySecondsSince(before) // 750 ticks at USER_HZ 100
	if secs != 7.5 {
		t.Fatalf("BusySecondsSince = %v, want 7.5", secs)
	}
	if got := before.BusySecondsSince(after); got != 0 {
		t.Fatalf("backwards counters gave %v, want 0", got)
	}
	// 7.5 CPU seconds to carry 2.5 GB is 3 s/GB.
	if got := CPUSecondsPerGB(secs, 2_500_000_000); got != 3 {
		t.Fatalf("CPUSecondsPerGB = %v, want 3", got)
	}
	if got := CPUSecondsPerGB(secs, 0); got != 0 {
		t.Fatalf("nothing carried gave %v, want 0", got)
	}
	if got := CPUSecondsPerGB(-1, 100); got != 0 {
		t.Fatalf("negative CPU time gave %v, want 0", got)
	}
}

func TestBusyPercent(t *testing.T) {
	before := CPUTimes{Busy: 1000, Idle: 5000}
	after := CPUTimes{Busy: 1050, Idle: 5150} // 50 busy of 200 ticks
	if got := after.BusyPercentSince(before); got != 25 {
		t.Fatalf("BusyPercentSince = %v, want 25", got)
	}
	if got := before.BusyPercentSince(before); got != 0 {
		t.Fatalf("no time passed gave %v, want 0", got)
	}
	if got := before.BusyPercentSince(after); got != 0 {
		t.Fatalf("backwards counters gave %v, want 0", got)
	}
}
