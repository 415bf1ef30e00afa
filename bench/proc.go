package bench

import (
	"bytes"
	"context"
	"fmt"
	"github.com/gretun/gretun/internal/testnet"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// proc is a long-running command inside a namespace (a tunnel process, an
// iperf3 server) whose output is kept to explain a failure.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  testnet.Buffer
	done chan struct{}
	err  error // valid after done is closed
}

// startProc starts args inside namespace ns. `ip netns exec` execs the
// command in place, so the process we signal is the command itself.
func startProc(ns string, args ...string) (*proc, error) {
	p := &proc{name: args[0], done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", args[0], err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop asks the process to end (SIGTERM, so a tunnel can clean up), and
// kills it if it has not ended within two seconds.
func (p *proc) stop() { p.stopWithin(2 * time.Second) }

// stopWithin is stop with another grace period, for a daemon that has many
// devices to remove. It reports whether the process ended by itself.
func (p *proc) stopWithin(grace time.Duration) bool {
	if ok, _ := p.exited(); ok {
		return true
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
		return false
	}
}

// describe is a one-line account of the process's fate and last output.
func (p *proc) describe() string {
	s := p.name
	if ok, err := p.exited(); ok {
		if err != nil {
			s += " exited: " + err.Error()
		} else {
			s += " exited"
		}
	} else {
		s += " running"
	}
	if out := lastLine(p.out.String()); out != "" {
		s += ": " + out
	}
	return s
}

// lastLine returns the last non-empty line of s, trimmed to 200 bytes.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > 200 {
		l = l[:200] + "…"
	}
	return l
}

// execIn runs a short command inside ns, bounded by ctx, and returns its
// standard output; on failure the error carries its last line of output.
func execIn(ctx context.Context, ns string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return stdout.Bytes(), ctx.Err()
		}
		msg := lastLine(stderr.String())
		if msg == "" {
			msg = lastLine(stdout.String())
		}
		return stdout.Bytes(), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}
