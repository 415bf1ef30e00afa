// Package kpeer runs a real Linux kernel as a network peer: a small qemu
// guest booted from Debian 12's kernel package with busybox as its
// userland. The machine gretun is developed on has no ip_gre or ipip
// modules, and the kernel's drivers are the reference gretun must agree
// with, so the guest is where those drivers run.
//
// The guest's ip is the host's full iproute2 (copied in with every library
// ldd lists for it, at GuestIP, ahead of busybox's applet in PATH), so
// tests can use `ip fou`, ip6gre, ip6tnl, sit, gretap, bridges, `ip -6`,
// `ip neigh` and `ip -s -d link`. Every guest loads DefaultModules: the
// IPv4 GRE/IPIP drivers, virtio, fou/fou6, the IPv6 tunnels and the
// bridge; Options.Modules adds more, and Options.Programs copies more of
// the host's programs in with their libraries (pptpd and pppd for the
// PPTP tests).
//
// The guest's only NIC sits on a tap device inside a network namespace the
// caller chooses; that namespace is the underlay gretun uses to reach the
// guest. Commands run in the guest over a serial port (Run), and the
// guest's interface counters can be read back (IfStats, SNMP).
package kpeer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// InstallHint is the command that installs everything kpeer needs.
const InstallHint = "apt-get install -y qemu-system-x86 busybox-static"

// Available reports whether the guest can be booted on this machine: nil,
// or an error naming the packages to install.
func Available() error {
	var missing []string
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		missing = append(missing, "qemu-system-x86")
	}
	if err := checkStatic(Busybox); err != nil {
		missing = append(missing, "busybox-static")
	}
	for _, tool := range []struct{ cmd, pkg string }{
		{"ip", "iproute2"}, {"ldd", "libc-bin"}, {"apt-get", "apt"}, {"dpkg-deb", "dpkg"},
	} {
		if _, err := exec.LookPath(tool.cmd); err != nil {
			missing = append(missing, tool.pkg)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("kpeer: the Linux kernel peer needs %s; install with: apt-get install -y %s",
			strings.Join(missing, ", "), strings.Join(missing, " "))
	}
	return nil
}

// Options configure a guest.
type Options struct {
	// Namespace is the network namespace that holds the tap device; it is
	// the guest's underlay. Required.
	Namespace string
	// TapName names the tap device (default "kpeer0").
	TapName string
	// HostAddr, if set, is put on the tap (e.g. "192.0.2.1/24").
	HostAddr string
	// GuestAddr, if set, is put on the guest's eth0 (e.g. "192.0.2.2/24").
	GuestAddr string
	// Modules are loaded in addition to DefaultModules, with their
	// dependencies (e.g. "ip6_gre").
	Modules []string
	// Programs are host programs (absolute paths) copied into the guest
	// at the same paths, with every library ldd lists for them (e.g.
	// "/usr/sbin/pppd").
	Programs []string
	// MemoryMB is the guest's memory (default 256).
	MemoryMB int
	// BootTimeout bounds the boot (default 2 minutes; TCG on a busy
	// machine is slow).
	BootTimeout time.Duration
	// Console, if set, receives a copy of the guest's kernel console.
	Console io.Writer
	// NoChecksumOffload turns the NIC's checksum offloads off both ways
	// (virtio-net csum=off,guest_csum=off): the guest then computes every
	// checksum itself, as a host sending on a wire does. By default the
	// guest runs with the NIC's defaults, as users run guests, and leaves
	// checksums (GRE's included) for the host to complete: they reach the
	// tap unfilled (CHECKSUM_PARTIAL).
	NoChecksumOffload bool
}

// Guest is a running kernel peer. Its methods are safe for concurrent use;
// commands run one at a time.
type Guest struct {
	// KernelRelease is the guest's `uname -r`, e.g. "6.1.0-56-amd64".
	KernelRelease string
	// KernelPackage is the Debian package file the kernel came from.
	KernelPackage string
	// BootTime is the time from starting qemu to the guest taking
	// commands.
	BootTime time.Duration

	opts    Options
	cmd     *exec.Cmd
	conn    net.Conn
	lines   chan string
	exited  chan struct{}
	exitErr error
	console *ringBuffer
	tmp     string

	runMu  sync.Mutex
	nextID int

	closeOnce sync.Once
}

// Start prepares the kernel and initramfs (from the cache when possible),
// creates the tap in opts.Namespace, boots the guest and waits until it
// takes commands. The caller must Close the guest.
func Start(ctx context.Context, opts Options) (*Guest, error) {
	if opts.Namespace == "" {
		return nil, errors.New("kpeer: Options.Namespace is required")
	}
	if opts.TapName == "" {
		opts.TapName = "kpeer0"
	}
	if opts.MemoryMB == 0 {
		opts.MemoryMB = 256
	}
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 2 * time.Minute
	}
	if err := Available(); err != nil {
		return nil, err
	}
	cache := CacheDir()
	k, err := fetchKernel(ctx, cache, append(append([]string(nil), DefaultModules...), opts.Modules...))
	if err != nil {
		return nil, err
	}
	initrd, err := buildInitramfs(cache, k, opts.Programs)
	if err != nil {
		return nil, err
	}

	g := &Guest{
		KernelPackage: k.pkg,
		opts:          opts,
		lines:         make(chan string, 4096),
		exited:        make(chan struct{}),
		console:       &ringBuffer{max: 64 << 10},
	}
	if err := g.createTap(); err != nil {
		return nil, err
	}
	// A short path: unix socket paths are limited to 108 bytes.
	g.tmp, err = os.MkdirTemp("", "kpeer-")
	if err != nil {
		g.deleteTap()
		return nil, fmt.Errorf("kpeer: %v", err)
	}
	begin := time.Now()
	if err := g.boot(ctx, k, initrd); err != nil {
		g.Close()
		return nil, err
	}
	g.BootTime = time.Since(begin)
	if opts.GuestAddr != "" {
		cmd := fmt.Sprintf("ip link set eth0 up && ip addr add %s dev eth0", opts.GuestAddr)
		if _, err := g.Run(cmd); err != nil {
			g.Close()
			return nil, err
		}
	}
	return g, nil
}

func (g *Guest) createTap() error {
	ns, tap := g.opts.Namespace, g.opts.TapName
	steps := [][]string{
		{"ip", "-n", ns, "tuntap", "add", "dev", tap, "mode", "tap"},
		{"ip", "-n", ns, "link", "set", "dev", tap, "up"},
	}
	if g.opts.HostAddr != "" {
		steps = append(steps, []string{"ip", "-n", ns, "addr", "add", g.opts.HostAddr, "dev", tap})
	}
	for i, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			if i > 0 {
				g.deleteTap()
			}
			return fmt.Errorf("kpeer: %s: %v: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

func (g *Guest) deleteTap() {
	exec.Command("ip", "-n", g.opts.Namespace, "link", "del", "dev", g.opts.TapName).Run()
}

// boot starts qemu inside the namespace and waits for the ready marker.
// The command port is a unix socket qemu listens on and waits for before
// running the guest, so no output is lost.
func (g *Guest) boot(ctx context.Context, k *kernelFiles, initrd string) error {
	sock := filepath.Join(g.tmp, "ctl.sock")
	args := []string{
		"netns", "exec", g.opts.Namespace,
		"qemu-system-x86_64",
		"-accel", "tcg",
		"-m", strconv.Itoa(g.opts.MemoryMB),
		"-smp", "1",
		"-nodefaults", "-no-user-config",
		"-display", "none",
		"-no-reboot",
		"-kernel", k.vmlinuz,
		"-initrd", initrd,
		"-append", bootArgs,
		"-serial", "stdio",
		"-chardev", "socket,id=ctl,path=" + sock + ",server=on,wait=on",
		"-serial", "chardev:ctl",
		"-netdev", "tap,id=net0,ifname=" + g.opts.TapName + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56" + nicOffloads(g.opts),
	}
	g.cmd = exec.Command("ip", args...)
	var console io.Writer = g.console
	if g.opts.Console != nil {
		console = io.MultiWriter(g.console, g.opts.Console)
	}
	g.cmd.Stdout = console
	g.cmd.Stderr = console
	// qemu reads the console port's input from stdin; give it a pipe that
	// stays open and silent.
	if _, err := g.cmd.StdinPipe(); err != nil {
		return fmt.Errorf("kpeer: %v", err)
	}
	if err := g.cmd.Start(); err != nil {
		return fmt.Errorf("kpeer: starting qemu: %v", err)
	}
	go func() {
		g.exitErr = g.cmd.Wait()
		close(g.exited)
	}()

	deadline := time.Now().Add(g.opts.BootTimeout)
	bootCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for {
		conn, err := net.Dial("unix", sock)
		if err == nil {
			g.conn = conn
			break
		}
		select {
		case <-g.exited:
			return fmt.Errorf("kpeer: qemu exited before the guest booted (%v); console: %s", g.exitErr, g.console.tail(4000))
		case <-bootCtx.Done():
			return fmt.Errorf("kpeer: qemu did not open its command port within %v; console: %s", g.opts.BootTimeout, g.console.tail(4000))
		case <-time.After(20 * time.Millisecond):
		}
	}
	go g.readLines()

	for {
		select {
		case line, ok := <-g.lines:
			if !ok {
				return fmt.Errorf("kpeer: guest command port closed during boot; console: %s", g.console.tail(4000))
			}
			if rest, found := strings.CutPrefix(line, readyMarker); found {
				g.KernelRelease = strings.TrimSpace(rest)
				if c := g.console.String(); strings.Contains(c, insmodFailed) {
					return fmt.Errorf("kpeer: guest could not load a module; console: %s", tailString(c, 4000))
				}
				return nil
			}
		case <-g.exited:
			return fmt.Errorf("kpeer: qemu exited during boot (%v); console: %s", g.exitErr, g.console.tail(4000))
		case <-bootCtx.Done():
			return fmt.Errorf("kpeer: guest not ready within %v; console: %s", g.opts.BootTimeout, g.console.tail(4000))
		}
	}
}

// nicOffloads is the guest NIC's offload settings (see NoChecksumOffload).
func nicOffloads(o Options) string {
	if o.NoChecksumOffload {
		return ",csum=off,guest_csum=off"
	}
	return ""
}

func (g *Guest) readLines() {
	defer close(g.lines)
	r := bufio.NewReaderSize(g.conn, 64<<10)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			g.lines <- strings.TrimSuffix(line, "\n")
		}
		if err != nil {
			return
		}
	}
}

// DefaultRunTimeout bounds Run.
const DefaultRunTimeout = time.Minute

// Run executes a shell command in the guest (busybox sh, working directory
// /, stdin /dev/null) and returns its combined output. A non-zero exit
// status is an error that carries the output. Background jobs must
// redirect their output; their stdout otherwise ends up in this output
// only up to the command's end.
func (g *Guest) Run(cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultRunTimeout)
	defer cancel()
	return g.RunContext(ctx, cmd)
}

// RunContext is Run bounded by ctx. A command that times out keeps running
// in the guest; its late output is recognised by its ID and discarded.
func (g *Guest) RunContext(ctx context.Context, cmd string) (string, error) {
	g.runMu.Lock()
	defer g.runMu.Unlock()
	g.nextID++
	id := strconv.Itoa(g.nextID)
	msg := id + " " + base64.StdEncoding.EncodeToString([]byte(cmd)) + "\n"
	if g.conn == nil {
		return "", errors.New("kpeer: guest is not running")
	}
	if _, err := io.WriteString(g.conn, msg); err != nil {
		return "", fmt.Errorf("kpeer: sending command to guest: %v", err)
	}
	begin := beginMarker + " " + id + ">>>"
	endPrefix := endMarker + " " + id + " "
	var out []string
	started := false
	for {
		select {
		case line, ok := <-g.lines:
			if !ok {
				return strings.Join(out, "\n"), fmt.Errorf("kpeer: guest command port closed while running %q; console: %s", cmd, g.console.tail(2000))
			}
			switch {
			case line == begin:
				started = true
			case !started:
				// Output of an earlier, timed-out command.
			case strings.HasPrefix(line, endPrefix) && strings.HasSuffix(line, ">>>"):
				// The guest prints a newline before the end marker, so
				// the lines joined back are exactly the output.
				output := strings.Join(out, "\n")
				rc, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(line, endPrefix), ">>>"))
				if err != nil {
					return output, fmt.Errorf("kpeer: bad end marker %q", line)
				}
				if rc != 0 {
					return output, fmt.Errorf("guest: %q exited %d: %s", cmd, rc, strings.TrimSpace(output))
				}
				return output, nil
			default:
				out = append(out, line)
			}
		case <-g.exited:
			return strings.Join(out, "\n"), fmt.Errorf("kpeer: qemu exited (%v) while running %q; console: %s", g.exitErr, cmd, g.console.tail(2000))
		case <-ctx.Done():
			return strings.Join(out, "\n"), fmt.Errorf("kpeer: guest command %q: %v (started: %v); console: %s", cmd, ctx.Err(), started, g.console.tail(1500))
		}
	}
}

// Console returns the guest's kernel console output so far (the last 64 KiB).
func (g *Guest) Console() string { return g.console.String() }

// Close stops qemu and deletes the tap device and temporary files.
func (g *Guest) Close() {
	g.closeOnce.Do(func() {
		if g.cmd != nil && g.cmd.Process != nil {
			g.cmd.Process.Kill()
			<-g.exited
		}
		if g.conn != nil {
			g.conn.Close()
		}
		g.deleteTap()
		if g.tmp != "" {
			os.RemoveAll(g.tmp)
		}
	})
}

// ringBuffer keeps the last max bytes written to it.
type ringBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (r *ringBuffer) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	if len(r.buf) > r.max {
		r.buf = append([]byte(nil), r.buf[len(r.buf)-r.max:]...)
	}
	return len(p), nil
}

func (r *ringBuffer) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(bytes.ReplaceAll(r.buf, []byte("\r"), nil))
}

func (r *ringBuffer) tail(n int) string { return tailString(r.String(), n) }

func tailString(s string, n int) string {
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}

// bootArgs is the guest's kernel command line. Besides the serial console
// it turns off boot work that costs seconds under TCG and matters nothing
// to a network peer: crypto self-tests, the W+X page scan, KASLR, CPU
// vulnerability mitigations, TSC checks and console chatter.
const bootArgs = "console=ttyS0 panic=-1 quiet loglevel=4 cryptomgr.notests rodata=off nokaslr mitigations=off tsc=reliable no_timer_check audit=0"
