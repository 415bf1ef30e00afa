// Package bench is the end-to-end benchmark behind `gretun bench`: it
// builds two network namespaces joined by veth, runs each data path in
// turn (direct veth, the kernel's VXLAN, the classic one-packet-per-syscall
// loop of bench/classic, and gretun in IPIP, GRE and GRE key+csum+seq
// modes), and measures each with iperf3: a single TCP stream (Gbit/s),
// UDP with 64-byte payloads (packets per second received), and the CPU
// seconds the whole machine spent per gigabyte carried.
//
// Every row gets a fresh topology, so a failed row cannot disturb the next
// one; a row that fails is reported with its error and the run goes on.
// The ratios to the classic loop are measured in the same run, which is
// what makes them comparable across machines.
//
// It needs root (namespaces) and iperf3. It does not measure the engine
// in-process; that is the Go micro-benchmarks' job.
package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// installHint tells people how to get iperf3.
const installHint = "apt-get install -y iperf3 (or make deps)"

// maxRounds bounds --rounds: each round of every row takes two tests.
const maxRounds = 20

// config is the parsed command line plus state shared by the rows.
type config struct {
	seconds int
	gretun  string // the gretun binary for the gretun rows
	classic string // the classic reference binary; built on first use if empty
	tmpDir  string // where the classic binary was built, removed at the end
}

// Main runs `gretun bench [flags]` and returns the exit status: 0 when every
// row was measured, 1 when a row failed (the table is still printed) or the
// run could not start, 2 for bad flags, 130 when interrupted.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gretun bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonOut := fs.Bool("json", false, "print the results as JSON instead of a table")
	chart := fs.String("chart", "", "also write a bar chart to `FILE`.svg (or .png, with rsvg-convert; .txt: text bars of the TCP column)")
	dur := fs.Duration("duration", 5*time.Second, "length of each iperf3 test (whole seconds)")
	only := fs.String("only", "", "run only these rows, comma-separated: "+strings.Join(rowNames(), ",")+","+scaleName)
	scaleN := fs.Int("scale-tunnels", scaleTunnels, "number of tunnels in the daemon of the scale section")
	rounds := fs.Int("rounds", 1, "measure every row this many times, the rows taking turns, and report medians")
	gretunBin := fs.String("gretun", "", "gretun `binary` for the gretun rows (default: this program)")
	classicBin := fs.String("classic", "", "prebuilt bench/classic `binary` (default: go build it from the source tree)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: gretun bench [flags]\n\nMeasures direct veth, kernel VXLAN, the classic one-packet-per-syscall loop\nand gretun (IPIP, GRE, GRE key+csum+seq) between two namespaces with iperf3,\nthen the scale of one daemon with many tunnels (time, memory, busy-tunnel TCP).\nNeeds root and iperf3.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gretun bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	selected, scale, err := selectRows(*only)
	if err != nil {
		fmt.Fprintln(stderr, "gretun bench:", err)
		return 2
	}
	if *scaleN < 1 || *scaleN > maxScale {
		fmt.Fprintf(stderr, "gretun bench: --scale-tunnels %d: want 1 to %d\n", *scaleN, maxScale)
		return 2
	}
	if *rounds < 1 || *rounds > maxRounds {
		fmt.Fprintf(stderr, "gretun bench: --rounds %d: want 1 to %d\n", *rounds, maxRounds)
		return 2
	}
	seconds := int(math.Round(dur.Seconds()))
	if seconds < 1 {
		fmt.Fprintf(stderr, "gretun bench: --duration %v is shorter than iperf3's 1s minimum\n", *dur)
		return 2
	}
	switch ext := strings.ToLower(filepath.Ext(*chart)); {
	case *chart == "" || ext == ".svg" || ext == ".txt":
	case ext == ".png":
		if _, err := exec.LookPath("rsvg-convert"); err != nil {
			fmt.Fprintln(stderr, "gretun bench: --chart *.png needs rsvg-convert: apt-get install -y librsvg2-bin (or write *.svg)")
			return 1
		}
	default:
		fmt.Fprintf(stderr, "gretun bench: --chart %q: name the file *.svg, *.png or *.txt\n", *chart)
		return 2
	}

	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "gretun bench: needs root to create network namespaces (CAP_SYS_ADMIN, CAP_NET_ADMIN)")
		return 1
	}
	if _, err := exec.LookPath("iperf3"); err != nil {
		fmt.Fprintln(stderr, "gretun bench: iperf3 is not installed:", installHint)
		return 1
	}
	cfg := &config{seconds: seconds, gretun: *gretunBin, classic: *classicBin}
	if cfg.gretun == "" {
		if cfg.gretun, err = os.Executable(); err != nil {
			fmt.Fprintln(stderr, "gretun bench: cannot find this program to run gretun rows; pass --gretun:", err)
			return 1
		}
		// Inside `go test` this program is the test binary, which would
		// run every test again for each `gretun run` of a row, and so on.
		if strings.HasSuffix(cfg.gretun, ".test") && (scale || slices.ContainsFunc(selected, func(r row) bool { return !references[r.name] })) {
			fmt.Fprintln(stderr, "gretun bench: running inside a test binary; pass --gretun")
			return 1
		}
	}
	defer cfg.cleanup()

	// Interrupted runs must not leave namespaces behind: the signal
	// cancels ctx, which kills the running command; the row then returns
	// through its deferred cleanup. A second signal is not caught.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()

	rep := &Report{
		Time:            time.Now().UTC().Format(time.RFC3339),
		DurationSeconds: seconds,
		Machine:         machine(),
	}
	// Other load on the machine lowers every figure and is charged to
	// CPU s/GB, which counts the whole machine: say so up front.
	if busy, err := busyPercent(ctx, 500*time.Millisecond); err == nil {
		rep.BusyBeforePercent = math.Round(busy)
		if busy > 10 {
			fmt.Fprintf(stderr, "bench: warning: the machine was %.0f%% busy before the run (100%% = all %d CPUs); figures will be low and noisy\n", busy, runtime.NumCPU())
		}
	}
	steps := len(selected) * *rounds
	if scale {
		steps++
	}
	// The rows take turns, round after round, so that a slow minute on a
	// shared machine lowers one round of every row rather than every round
	// of one; each round's ratios are against its own classic row.
	var measured [][]Result
	for round := range *rounds {
		rr := &Report{}
		for i, r := range selected {
			progress := func(msg string) {
				fmt.Fprintf(stderr, "bench: [%d/%d] %s: %s\n", round*len(selected)+i+1, steps, r.title, msg)
			}
			res := runRow(ctx, cfg, r, progress)
			if !finished(ctx, stderr, progress, res.Error, fmt.Sprintf("%.2f Gbit/s, %.1f kpps (%.1f delivered), %.2f CPU s/GB",
				res.TCPGbps, res.UDPKpps, res.DeliveredKpps, res.CPUPerGB)) {
				return 130
			}
			rr.Rows = append(rr.Rows, res)
		}
		rr.SetRatios()
		measured = append(measured, rr.Rows)
	}
	rep.Rounds = *rounds
	rep.Rows = CombineRounds(measured)
	rep.Ratios = FOURatios(measured)
	if scale {
		progress := func(msg string) {
			fmt.Fprintf(stderr, "bench: [%d/%d] %s: %s\n", steps, steps, scaleName, msg)
		}
		res := runScale(ctx, cfg, *scaleN, progress)
		if !finished(ctx, stderr, progress, res.Error, fmt.Sprintf("%d tunnels in %.2fs, %.1f MB RSS (%.1f KB per tunnel), TCP %.2f alone, %.2f among them (%.2fx)",
			res.Created, res.CreateSeconds, res.RSSTotalMB, res.RSSPerTunnelKB, res.TCPAloneGbps, res.TCPAmongGbps, res.TCPRatio)) {
			return 130
		}
		rep.Scale = &res
	}

	if *jsonOut {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "gretun bench: writing results:", err)
		return 1
	}
	if *chart != "" {
		if err := writeChart(*chart, rep); err != nil {
			fmt.Fprintln(stderr, "gretun bench:", err)
			return 1
		}
		fmt.Fprintln(stderr, "bench: chart written to", *chart)
	}
	if rep.Failed() {
		return 1
	}
	return 0
}

// finished tells how a step ended: its failure, or its summary. It
// reports false when the run was interrupted (the step has removed its
// namespaces), and the caller exits with 130.
func finished(ctx context.Context, stderr io.Writer, progress func(string), failure, summary string) bool {
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "bench: interrupted; namespaces removed")
		return false
	}
	if failure != "" {
		progress("FAILED: " + failure)
	} else {
		progress(summary)
	}
	return true
}

// busyPercent samples how busy the machine is, in percent of all CPUs.
func busyPercent(ctx context.Context, d time.Duration) (float64, error) {
	before, err := ReadCPUTimes()
	if err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(d):
	}
	after, err := ReadCPUTimes()
	if err != nil {
		return 0, err
	}
	return after.BusyPercentSince(before), nil
}

// selectRows turns --only into rows, in table order, and whether the scale
// section is wanted; without --only, everything is.
func selectRows(only string) ([]row, bool, error) {
	if strings.TrimSpace(only) == "" {
		var sel []row
		for _, r := range rows {
			if !r.step {
				sel = append(sel, r)
			}
		}
		return sel, true, nil
	}
	scale := false
	want := map[string]bool{}
	for _, name := range strings.Split(only, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if name == scaleName {
			scale = true
			continue
		}
		found := false
		for _, r := range rows {
			found = found || r.name == name
		}
		if !found {
			return nil, false, fmt.Errorf("--only: no row %q (rows: %s, %s)", name, strings.Join(rowNames(), ", "), scaleName)
		}
		want[name] = true
	}
	var sel []row
	for _, r := range rows {
		if want[r.name] {
			sel = append(sel, r)
		}
	}
	if len(sel) == 0 && !scale {
		return nil, false, fmt.Errorf("--only %q names no row", only)
	}
	return sel, scale, nil
}

// writeChart writes the chart as SVG, or as PNG through rsvg-convert when
// path ends in .png: rendering text into pixels is a job for a library we
// do not want as a dependency.
func writeChart(path string, rep *Report) error {
	svgPath := path
	if strings.EqualFold(filepath.Ext(path), ".png") {
		tmp, err := os.CreateTemp("", "gretun-bench-*.svg")
		if err != nil {
			return fmt.Errorf("chart: %v", err)
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		svgPath = tmp.Name()
	}
	f, err := os.Create(svgPath)
	if err != nil {
		return fmt.Errorf("chart: %v", err)
	}
	write := rep.WriteSVG
	if strings.EqualFold(filepath.Ext(path), ".txt") {
		write = rep.WriteText
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("chart %s: %v", svgPath, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("chart %s: %v", svgPath, err)
	}
	if svgPath != path {
		if out, err := exec.Command("rsvg-convert", "-o", path, svgPath).CombinedOutput(); err != nil {
			return fmt.Errorf("chart: rsvg-convert: %v: %s", err, lastLine(string(out)))
		}
	}
	return nil
}

// classicBinary returns the classic reference program, building it from
// the source tree with `go build` the first time it is needed.
func (c *config) classicBinary(ctx context.Context) (string, error) {
	if c.classic != "" {
		return c.classic, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, statErr := os.Stat(goCmd); statErr != nil {
			return "", fmt.Errorf("building bench/classic needs the go command; pass --classic BINARY instead")
		}
	}
	if c.tmpDir, err = os.MkdirTemp("", "gretun-bench-"); err != nil {
		return "", err
	}
	bin := filepath.Join(c.tmpDir, "classic")
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", bin, "./bench/classic")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./bench/classic: %v: %s", err, lastLine(string(out)))
	}
	c.classic = bin
	return bin, nil
}

func (c *config) cleanup() {
	if c.tmpDir != "" {
		os.RemoveAll(c.tmpDir)
	}
}

// modulePath identifies gretun's source tree.
const modulePath = "github.com/gretun/gretun"

// moduleRoot finds gretun's source tree: above the working directory, or
// where this file was compiled from.
func moduleRoot() (string, error) {
	var candidates []string
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			candidates = append(candidates, d)
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		candidates = append(candidates, filepath.Dir(filepath.Dir(file)))
	}
	for _, d := range candidates {
		if isModuleRoot(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("cannot find the gretun source tree to build bench/classic; run from the repository or pass --classic BINARY")
}

func isModuleRoot(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "module" {
			return f[1] == modulePath
		}
	}
	return false
}

// machine describes this host for the report.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), CPU: "unknown CPU", Iperf3: "iperf3"}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU = cpuModel(string(data))
	}
	if out, err := exec.Command("iperf3", "--version").Output(); err == nil {
		m.Iperf3 = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	return m
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel(cpuinfo string) string {
	for _, line := range strings.Split(cpuinfo, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
