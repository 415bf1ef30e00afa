package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gretun/gretun/bench"
)

// tunnelOptions are the words of `ip tunnel` that add, change and run take.
const tunnelOptions = `OPTIONS, as in ip tunnel:
  ttl N|inherit                  outer TTL, or copied from the inner packet (default)
  tos N|inherit                  outer TOS in hex, or copied (default)
  key K | ikey K okey K          GRE key, both ways or per direction
  csum | icsum | ocsum           GRE checksums: both, required on receipt, sent
  seq | iseq | oseq              GRE sequence numbers: both, required, sent
  pmtudisc|nopmtudisc|ignore-df  outer DF: set (default), copied, never
  mtu N                          device MTU (default: underlay MTU - overhead)
  keepalive [PERIOD [RETRIES]]   Cisco GRE keepalives (default 10 s, 3)
  clamp-mss [N]                  clamp the MSS of TCP SYNs to the path
  noreflect | reflect            return other routers' keepalive probes (default)
  underlay raw|packet            send on a raw socket (default) or AF_PACKET
  encap fou|none                 GRE, IPIP or sit inside UDP (RFC 8086), or not
    encap-dport N                the remote's UDP port (default 4754 for GRE)
    encap-sport auto|N           the source port: per flow (default) or fixed
    fou-port N                   the UDP port to receive on (default encap-dport)
    encap-csum|noencap-csum      UDP checksums sent (default) or 0
  dev NAME                       send out of device NAME, MTU from its route
                                 (link-local endpoints need it)
  fwmark N                       mark outer packets N, for ip rule fwmark
  learn [N] | nolearn            multipoint (no remote): take up to N neighbours
                                 from received traffic (default 256)
  netstack ADDR/PREFIX [ADDR6/PREFIX]   a userspace stack, no TUN device, with
    dns ADDR  socks5 [USER:PASS@]ADDR:PORT  socks5-open
    forward tcp|udp [ADDR:]PORT HOST:PORT  reverse tcp|udp PORT HOST:PORT
IPv6 modes (ip6gre, ip6gretap, ip6ip6, ipip6, any) also:
  hoplimit N|inherit  tclass N|inherit  flowlabel N|inherit  encaplimit none|N
  nokey nocsum noseq nokeepalive noclamp-mss noignore-df   undo on change
`

// helps is each command's own help, printed by `gretun help COMMAND` and
// by `gretun COMMAND -h`: its synopsis and every option it takes.
var helps = map[string]string{
	"daemon": `usage: gretun [-S SOCKET] daemon [-c FILE] [-metrics ADDR]

Runs the engine and the control socket until SIGTERM or SIGINT, which
remove every device gretun created.

  -c FILE      tunnels to create, one a line in the words of tunnel add;
               SIGHUP reloads it (the file is the whole truth)
  -metrics ADDR
               serve Prometheus metrics on http://ADDR/metrics
               (HOST:PORT, e.g. 127.0.0.1:9469; :9469 for every address)
  -S SOCKET    (before daemon) the control socket to serve
`,
	"run": `usage: gretun [-S SOCKET] run [-metrics ADDR] NAME mode gre|gretap|ipip|sit|ip6gre|ip6gretap|ip6ip6|ipip6|any [remote ADDR] local ADDR [OPTIONS]

Serves one tunnel in the foreground, no daemon, until SIGTERM or SIGINT
(which remove its device) or tunnel del. It serves the control socket too
when it is free.

  -metrics ADDR  serve Prometheus metrics on http://ADDR/metrics

` + tunnelOptions,
	"tunnel": `usage: gretun [-s] [-j] [-S SOCKET] tunnel COMMAND

  tunnel add NAME mode gre|gretap|ipip|sit|ip6gre|ip6gretap|ip6ip6|ipip6|any [remote ADDR] local ADDR [OPTIONS]
  tunnel change NAME [OPTIONS]   reconfigure in place, keeping the device
  tunnel del NAME
  tunnel show [NAME]             -s adds counters, -j prints JSON

` + tunnelOptions,
	"capture": `usage: gretun [-S SOCKET] capture NAME [-w FILE] [-c COUNT] [-inner]

Shows tunnel NAME's packets as gretun sees them, asked of the daemon (or
of gretun run): outer packets both ways, and every packet gretun drops with
its drop reason. Without -w, one line a packet, like tcpdump. Ctrl-C stops;
the count of packets captured and lost (a slow reader loses packets, it
never slows the tunnel) goes to stderr. One capture a tunnel at a time.

  -w FILE    write pcapng to FILE (mode 0600): each packet's direction,
             and a dropped packet's reason as its comment (Wireshark shows
             both); written by this command, not by the daemon
  -c COUNT   stop after COUNT packets
  -inner     the inner packets read from and written to the device
             instead (dropped packets still come as they were dropped)
`,
	"neigh": `usage: gretun [-j] [-S SOCKET] neigh COMMAND

The neighbours of a multipoint tunnel (mode gre or ip6gre without
remote), in the words of ip neigh: packets to INNER (an address, or a
prefix for the networks behind the neighbour) go in outer packets to
OUTER.

  neigh add INNER lladdr OUTER dev NAME       refused if INNER exists
  neigh replace INNER lladdr OUTER dev NAME   add or change
  neigh del INNER dev NAME
  neigh show [dev NAME]                       -j prints JSON
`,
	"demo": `usage: gretun demo

Builds two network namespaces, brings a GRE tunnel up between them, pings
across, shows the counters and removes everything. Needs root. No options.
`,
	"version": `usage: gretun version

Prints the module version, the VCS revision and the Go version gretun was
built with. No options.
`,
	"help": `usage: gretun help [COMMAND]

Prints the usage, or COMMAND's options (as gretun COMMAND -h does).
`,
}

// aliases are the other names of commands, as iproute2 abbreviates them.
var aliases = map[string]string{"tun": "tunnel", "tunl": "tunnel", "t": "tunnel",
	"neighbour": "neigh", "neighbor": "neigh", "n": "neigh"}

// commandName resolves an alias.
func commandName(s string) string {
	if c, ok := aliases[s]; ok {
		return c
	}
	return s
}

// wantsHelp reports whether a command's arguments ask for its help. Tunnel
// words never start with "-", so -h anywhere is a request for help.
func wantsHelp(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool {
		return a == "-h" || a == "-help" || a == "--help"
	})
}

// helpCmd prints the help of the command args name, or the usage.
func helpCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stdout, usage)
		return nil
	}
	name := commandName(args[0])
	// `help tunnel add` is `tunnel add -h`: the object's help.
	if len(args) > 1 && (name != "tunnel" && name != "neigh" || len(args) > 2) {
		return fmt.Errorf("help: unexpected %q", args[len(args)-1])
	}
	if name == "bench" {
		bench.Main([]string{"-h"}, stdout, stdout)
		return nil
	}
	h, ok := helps[name]
	if !ok {
		return fmt.Errorf("help: unknown command %q (%s)", args[0], strings.Join(commandNames(), ", "))
	}
	fmt.Fprint(stdout, h)
	return nil
}

func commandNames() []string {
	names := []string{"bench"}
	for n := range helps {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
