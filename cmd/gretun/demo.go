package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gretun/gretun/internal/testnet"
)

// demoCmd replays the GRE example of the classic tunneling instructions
// between two network namespaces standing in for routers A and B, with
// documentation addresses: underlay 192.0.2.0/24, network A
// 198.51.100.0/24, network B 203.0.113.0/24. It pings across the tunnel,
// prints the counters and removes everything.
func demoCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("demo: unexpected %q", args[0])
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	n, err := testnet.New("gretun-demo")
	if err != nil {
		return fmt.Errorf("demo: %v", err)
	}
	defer n.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		n.Close()
		os.Exit(130)
	}()

	step := func(title string) { fmt.Fprintf(stdout, "\n== %s\n", title) }
	must := func(err error) {
		if err != nil {
			panic(demoError{err})
		}
	}
	defer func() {
		if r := recover(); r != nil {
			if de, ok := r.(demoError); ok {
				err = fmt.Errorf("demo: %v", de.err)
				return
			}
			panic(r)
		}
	}()
	sh := func(ns, label string, args ...string) string {
		fmt.Fprintf(stdout, "%s# %s\n", label, strings.Replace(strings.Join(args, " "), self, "gretun", 1))
		out, err := n.Exec(ns, args...)
		if out != "" {
			fmt.Fprint(stdout, indent(out))
		}
		must(err)
		return out
	}

	step("two routers on an underlay (network C): A 192.0.2.1, B 192.0.2.2")
	a, err := n.NS("a")
	must(err)
	b, err := n.NS("b")
	must(err)
	must(n.Veth(a, "eth0", b, "eth0"))
	must(n.Addr(a, "eth0", "192.0.2.1/24"))
	must(n.Addr(b, "eth0", "192.0.2.2/24"))

	step("gretun in place of `ip tunnel add` on each router")
	var logA, logB testnet.Buffer
	start := func(ns, label string, log *testnet.Buffer, words ...string) *exec.Cmd {
		fmt.Fprintf(stdout, "%s# gretun %s &\n", label, strings.Join(words, " "))
		cmd, err := n.Start(ns, log, log, append([]string{self}, words...)...)
		must(err)
		return cmd
	}
	runA := start(a, "A", &logA, "run", "netb", "mode", "gre", "remote", "192.0.2.2", "local", "192.0.2.1", "ttl", "255")
	runB := start(b, "B", &logB, "run", "neta", "mode", "gre", "remote", "192.0.2.1", "local", "192.0.2.2", "ttl", "255")
	must(waitLink(n, a, "netb", &logA))
	must(waitLink(n, b, "neta", &logB))

	step("the ordinary ip commands, exactly as with a kernel tunnel")
	sh(a, "A", "ip", "addr", "add", "198.51.100.1", "dev", "netb")
	sh(a, "A", "ip", "route", "add", "203.0.113.0/24", "dev", "netb")
	sh(b, "B", "ip", "addr", "add", "203.0.113.1", "dev", "neta")
	sh(b, "B", "ip", "route", "add", "198.51.100.0/24", "dev", "neta")
	sh(a, "A", "ip", "link", "show", "dev", "netb")

	step("traffic from network A to network B through the tunnel")
	sh(a, "A", "ping", "-c", "3", "-i", "0.2", "-I", "198.51.100.1", "203.0.113.1")

	step("counters, like `ip -s tunnel show`")
	sh(a, "A", self, "-s", "tunnel", "show")
	sh(b, "B", self, "tunnel", "show")

	step("remove the tunnels (SIGTERM removes the devices)")
	runA.Process.Signal(syscall.SIGTERM)
	runB.Process.Signal(syscall.SIGTERM)
	runA.Wait()
	runB.Wait()
	out, _ := n.Exec(a, "ip", "-brief", "link")
	fmt.Fprintf(stdout, "A# ip -brief link\n%s", indent(out))
	fmt.Fprintln(stdout, "\ndemo done: namespaces removed")
	return nil
}

type demoError struct{ err error }

// waitLink waits for gretun to create its device.
func waitLink(n *testnet.Net, ns, dev string, log *testnet.Buffer) error {
	if err := n.WaitLink(ns, dev, 10*time.Second, nil); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(log.String()))
	}
	return nil
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}
