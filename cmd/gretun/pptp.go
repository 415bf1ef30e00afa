package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/gretun/gretun/ppp"
	"github.com/gretun/gretun/pptp"
)

const pptpHelp = `usage: gretun pptp NAME server ADDR user USER password PASS|password-file FILE [OPTIONS]

A PPTP client (RFC 2637), as pptp-linux with pppd: the control connection
to ADDR port 1723, PPP in enhanced GRE, LCP, PAP, CHAP-MD5 or MS-CHAPv2,
IPCP. Once
the server assigns an address the TUN device NAME comes up with it
(point-to-point to the server's end) and carries IPv4 until SIGTERM or
SIGINT, which terminate PPP, clear the call and remove the device. The
call's counters go to stdout as JSON when it ends.

PPTP's cryptography is broken (MS-CHAPv2 is crackable, PAP is clear
text) and gretun offers no MPPE: use this only to reach legacy servers,
over networks you trust or inside something that encrypts.

OPTIONS, as pppd spells them:
  local ADDR                      source address of the control connection and GRE
  mtu N                           device MTU (default: the server's MRU, at most 1400)
  mru N                           the MRU gretun asks for (default 1500)
  require-pap | require-chap | require-mschap-v2
                                  accept only this authentication (default: any)
  refuse-pap | refuse-chap | refuse-mschap-v2
                                  do not accept this one
  lcp-echo-interval N             an LCP Echo-Request every N s (default 30, 0: none)
  lcp-echo-failure N              end the link after N unanswered in a row (default 4, 0: never)
  noipdefault                     ask the server for the address (always so)
  nodefaultroute                  add no default route (always so: routes are yours)
`

func init() { helps["pptp"] = pptpHelp }

// parsePPTP reads pptp's words into a configuration.
func parsePPTP(args []string) (pptp.Config, error) {
	var c pptp.Config
	if len(args) == 0 || args[0] == "" {
		return c, fmt.Errorf("pptp: missing device NAME")
	}
	c.Name = args[0]
	if len(c.Name) > 15 || strings.ContainsAny(c.Name, "/ \t") {
		return c, fmt.Errorf("pptp: bad device name %q", c.Name)
	}
	allow := ppp.AuthAny
	c.PPP.EchoInterval, c.PPP.EchoFailure = 30, 4 // as pptp-linux's options.pptp
	var haveUser, havePass bool
	for i := 1; i < len(args); i++ {
		w := args[i]
		value := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("pptp: missing value after %q", w)
			}
			i++
			return args[i], nil
		}
		var v string
		var err error
		switch w {
		case "server", "local", "user", "password", "password-file", "mtu", "mru", "lcp-echo-interval", "lcp-echo-failure":
			if v, err = value(); err != nil {
				return c, err
			}
		}
		switch w {
		case "server", "local":
			a, err := netip.ParseAddr(v)
			if err != nil || !a.Is4() || a.IsUnspecified() {
				return c, fmt.Errorf("pptp: %s %q: want an IPv4 address", w, v)
			}
			if w == "server" {
				c.Server = a
			} else {
				c.Local = a
			}
		case "user":
			if len(v) > 255 {
				return c, fmt.Errorf("pptp: user is longer than 255 bytes")
			}
			c.PPP.User, haveUser = v, true
		case "password":
			c.PPP.Password, havePass = v, true
		case "password-file":
			b, err := os.ReadFile(v)
			if err != nil {
				return c, fmt.Errorf("pptp: %v", err)
			}
			c.PPP.Password, havePass = strings.TrimRight(string(b), "\r\n"), true
		case "mtu", "mru":
			n, err := strconv.Atoi(v)
			if err != nil || n < 576 || n > 1500 {
				return c, fmt.Errorf("pptp: %s %q: want 576..1500", w, v)
			}
			if w == "mtu" {
				c.MTU = n
			} else {
				c.PPP.MRU = n
			}
		case "lcp-echo-interval", "lcp-echo-failure":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 65535 {
				return c, fmt.Errorf("pptp: %s %q: want 0..65535", w, v)
			}
			if w == "lcp-echo-interval" {
				c.PPP.EchoInterval = n
			} else {
				c.PPP.EchoFailure = n
			}
		case "require-pap":
			allow = ppp.AuthPAP
		case "require-chap":
			allow = ppp.AuthCHAPMD5
		case "require-mschap-v2":
			allow = ppp.AuthMSCHAPv2
		case "refuse-pap":
			allow &^= ppp.AuthPAP
		case "refuse-chap":
			allow &^= ppp.AuthCHAPMD5
		case "refuse-mschap-v2":
			allow &^= ppp.AuthMSCHAPv2
		case "noipdefault", "nodefaultroute":
		case "defaultroute":
			return c, fmt.Errorf("pptp: defaultroute is not supported: add your routes through %s once it is up", c.Name)
		case "require-mppe", "require-mppe-128", "mppe", "require-mschap":
			return c, fmt.Errorf("pptp: %s is not supported (gretun offers no MPPE and no MS-CHAP version 1: both are broken cryptography)", w)
		default:
			return c, fmt.Errorf("pptp: unknown option %q (try gretun pptp -h)", w)
		}
	}
	switch {
	case !c.Server.IsValid():
		return c, fmt.Errorf("pptp: missing server ADDR")
	case !haveUser:
		return c, fmt.Errorf("pptp: missing user USER")
	case !havePass:
		return c, fmt.Errorf("pptp: missing password PASS (or password-file FILE)")
	case allow == 0:
		return c, fmt.Errorf("pptp: every authentication protocol is refused")
	case len(c.PPP.Password) > 255:
		return c, fmt.Errorf("pptp: password is longer than 255 bytes")
	}
	c.PPP.Allow = allow
	return c, nil
}

// pptpCmd runs one PPTP call in the foreground.
func pptpCmd(args []string, stdout, stderr io.Writer) error {
	cfg, err := parsePPTP(args)
	if err != nil {
		return err
	}
	cfg.Log = stderr
	// Catch the signals before anything exists, as run does.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	stats, err := pptp.Run(ctx, cfg)
	if stats != nil {
		b, _ := json.Marshal(stats)
		fmt.Fprintf(stdout, "%s\n", b)
	}
	if err != nil {
		return fmt.Errorf("pptp: %w", err)
	}
	return nil
}
