// Command gretun runs userspace GRE and IP-in-IP tunnels over TUN devices,
// driven with the words of `ip tunnel`.
//
//	gretun daemon [-c FILE]                 run the engine and its control socket
//	gretun tunnel add NAME mode gre|gretap|ipip|sit|ip6gre|ip6gretap|ip6ip6|ipip6|any remote ADDR local ADDR [options]
//	gretun tunnel change NAME [options]
//	gretun tunnel del NAME
//	gretun [-s] [-j] tunnel show [NAME]
//	gretun neigh add|replace|del INNER lladdr OUTER dev NAME
//	gretun [-j] neigh show [dev NAME]
//	gretun run NAME mode gre|gretap|ipip|sit|ip6gre|ip6gretap|ip6ip6|ipip6|any remote ADDR local ADDR [options]
//	gretun capture NAME [-w FILE] [-c COUNT] [-inner]   a tunnel's packets
//	gretun pptp NAME server ADDR user USER password PASS [options]   a PPTP client
//	gretun demo                             a GRE tunnel between two namespaces
//	gretun bench [flags]                    throughput against the kernel
//	gretun version                          module version, VCS revision, Go version
//	gretun help [COMMAND]                   a command's options (also COMMAND -h)
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `usage: gretun [-s] [-j] [-S SOCKET] OBJECT COMMAND

  gretun daemon [-c FILE] [-metrics ADDR]
                                 run the engine; SIGHUP reloads FILE
  gretun tunnel add NAME mode gre|gretap|ipip|sit|ip6gre|ip6gretap|ip6ip6|ipip6|any remote ADDR local ADDR [OPTIONS]
  gretun tunnel change NAME [OPTIONS]
  gretun tunnel del NAME
  gretun tunnel show [NAME]      -s adds counters, -j prints JSON
  gretun neigh add|replace INNER lladdr OUTER dev NAME
                                 a neighbour of a multipoint tunnel (no remote)
  gretun neigh del INNER dev NAME
  gretun neigh show [dev NAME]
  gretun run [-metrics ADDR] NAME mode gre|gretap|ipip|sit|ip6gre|ip6gretap|ip6ip6|ipip6|any remote ADDR local ADDR [OPTIONS]
                                 one tunnel in the foreground, no daemon
  gretun capture NAME [-w FILE] [-c COUNT] [-inner]
                                 the tunnel's packets, as gretun sees them
  gretun pptp NAME server ADDR user USER password PASS [OPTIONS]
                                 a PPTP client (legacy, no MPPE; see gretun pptp -h)
  gretun demo                    a GRE tunnel between two namespaces
  gretun bench [-h]              throughput: gretun against the kernel
  gretun version                 module version, VCS revision, Go version
  gretun help [COMMAND]          a command's options (also gretun COMMAND -h)

OPTIONS: ttl N|inherit  tos N|inherit  key K | ikey K okey K
         csum|icsum|ocsum  seq|iseq|oseq  pmtudisc|nopmtudisc|ignore-df
         mtu N  keepalive [PERIOD [RETRIES]]  clamp-mss [N]  underlay raw|packet
         encap fou|none  encap-dport N  encap-sport auto|N  fou-port N  noencap-csum
         learn [N] (multipoint: take up to N neighbours from received traffic)
         netstack ADDR/PREFIX [ADDR6/PREFIX] (a userspace stack, no TUN device)
           with dns ADDR  socks5 [USER:PASS@]ADDR:PORT  socks5-open
           forward tcp|udp [ADDR:]PORT HOST:PORT  reverse tcp|udp PORT HOST:PORT
IPv6 modes: hoplimit N|inherit  tclass N|inherit  flowlabel N|inherit  encaplimit none|N
            dev NAME (link-local addresses)

-S SOCKET is the control socket (default: one per network namespace,
/run/gretun/net-INODE.sock for a root daemon, else @gretun).
`

// globals are the options before the object, as `ip -s -j …` has them.
type globals struct {
	stats  bool
	json   bool
	socket string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks errors that come with the usage text.
var errUsage = errors.New("usage")

func run(args []string, stdout, stderr io.Writer) int {
	if err := applyBenchSteps(os.Getenv(benchStepsEnv)); err != nil {
		fmt.Fprintln(stderr, "gretun:", err)
		return 1
	}
	g := globals{socket: os.Getenv("GRETUN_SOCKET")} // "": the default
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-s", "-stats", "--stats":
			g.stats = true
		case "-j", "-json", "--json":
			g.json = true
		case "-sj", "-js":
			g.stats, g.json = true, true
		case "-S", "--socket":
			if len(args) < 2 {
				fmt.Fprintln(stderr, "gretun: missing value after -S")
				return 2
			}
			g.socket = args[1]
			args = args[1:]
		case "-h", "-help", "--help":
			fmt.Fprint(stdout, usage)
			return 0
		default:
			fmt.Fprintf(stderr, "gretun: unknown option %q (try gretun -h)\n", args[0])
			return 2
		}
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	if name := commandName(args[0]); name != "bench" && wantsHelp(args[1:]) {
		if err := helpCmd([]string{name}, stdout); err == nil {
			return 0
		}
	}
	switch args[0] {
	case "tunnel", "tun", "tunl", "t":
		err = tunnelCmd(g, args[1:], stdout)
	case "neigh", "neighbour", "neighbor", "n":
		err = neighCmd(g, args[1:], stdout)
	case "daemon":
		err = daemonCmd(g, args[1:], stderr)
	case "run":
		err = runCmd(g, args[1:], stderr)
	case "demo":
		err = demoCmd(args[1:], stdout, stderr)
	case "bench":
		return benchCmd(args[1:], stdout, stderr)
	case "pptp":
		err = pptpCmd(args[1:], stdout, stderr)
	case "capture":
		err = captureCmd(g, args[1:], stdout, stderr)
	case "version":
		err = versionCmd(args[1:], stdout)
	case "help":
		err = helpCmd(args[1:], stdout)
	default:
		err = fmt.Errorf("unknown object %q (try gretun -h)", args[0])
	}
	if err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprint(stderr, usage)
			return 2
		}
		fmt.Fprintf(stderr, "gretun: %v\n", err)
		return 1
	}
	return 0
}
