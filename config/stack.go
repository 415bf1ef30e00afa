package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Stack is a `netstack` tunnel's userspace TCP/IP stack, which replaces
// its TUN device, and what the stack serves to programs on this host.
type Stack struct {
	// Addrs are the stack's addresses (`netstack ADDR/PREFIX
	// [ADDR6/PREFIX]`): at most one IPv4 and one IPv6.
	Addrs []netip.Prefix `json:"addrs"`
	// DNS looks up names for the SOCKS5 proxy and forward targets,
	// inside the tunnel (`dns ADDR`).
	DNS netip.Addr `json:"dns,omitzero"`
	// SOCKS5 is where the SOCKS5 proxy listens (`socks5
	// [USER:PASS@]ADDR:PORT`), zero for none.
	SOCKS5     netip.AddrPort `json:"socks5,omitzero"`
	SOCKS5User string         `json:"socks5_user,omitempty"`
	SOCKS5Pass string         `json:"-"`
	// SOCKS5Open lets a proxy without a user and password listen on an
	// address other than loopback (`socks5-open`).
	SOCKS5Open bool `json:"socks5_open,omitempty"`
	// Forwards are the `forward` and `reverse` ports.
	Forwards []Forward `json:"forwards,omitempty"`
}

// Forward is one forwarded port. `forward tcp|udp LISTEN TARGET` listens
// on this host and connects inside the tunnel, as `ssh -L`; `reverse
// tcp|udp PORT TARGET` listens inside the stack and connects to a local
// TARGET, as `ssh -R`.
type Forward struct {
	Reverse bool   `json:"reverse,omitempty"`
	Proto   string `json:"proto"` // "tcp" or "udp"
	// Listen is ADDR:PORT on this host (forward), or the stack's port
	// as ":PORT" (reverse).
	Listen string `json:"listen"`
	// Target is HOST:PORT: inside the tunnel for forward (HOST may be a
	// name, looked up through dns), on this host for reverse.
	Target string `json:"target"`
}

// Word is how the forward reads in the config (`forward tcp L T`).
func (f Forward) Word() string {
	if f.Reverse {
		return fmt.Sprintf("reverse %s %s %s", f.Proto, strings.TrimPrefix(f.Listen, ":"), f.Target)
	}
	return fmt.Sprintf("forward %s %s %s", f.Proto, f.Listen, f.Target)
}

// Equal reports whether t and u are the same configuration.
func (t *Tunnel) Equal(u *Tunnel) bool { return reflect.DeepEqual(*t, *u) }

// SameDevice reports whether u keeps t's device: the same mode and the
// same stack (a running stack's words are not changed in place; the
// tunnel is added again).
func (t *Tunnel) SameDevice(u *Tunnel) bool {
	return t.Mode == u.Mode && reflect.DeepEqual(t.Stack, u.Stack)
}

// stackWords are the words applyStack reads.
var stackWords = map[string]bool{"netstack": true, "dns": true, "socks5": true, "socks5-open": true, "forward": true, "reverse": true}

// applyStack applies the stack word at words[0] with its values to a copy
// of t.Stack (the running tunnel's stays untouched), and returns how many
// words it took.
func (t *Tunnel) applyStack(words []string) (int, error) {
	s := &Stack{}
	if t.Stack != nil {
		*s = *t.Stack
		s.Addrs, s.Forwards = slices.Clone(s.Addrs), slices.Clone(s.Forwards)
	}
	t.Stack = s
	need := func(n int) error {
		if len(words) <= n {
			return fmt.Errorf("missing value after %q", strings.Join(words, " "))
		}
		return nil
	}
	switch w := words[0]; w {
	case "netstack":
		if err := need(1); err != nil {
			return 0, err
		}
		s.Addrs = s.Addrs[:0]
		n := 1
		for ; n < len(words) && n <= 2; n++ {
			p, err := netip.ParsePrefix(words[n])
			if err != nil {
				if n == 1 {
					return 0, fmt.Errorf("invalid netstack address %q (want ADDR/PREFIX)", words[n])
				}
				break
			}
			s.Addrs = append(s.Addrs, p)
		}
		return n, nil
	case "dns":
		if err := need(1); err != nil {
			return 0, err
		}
		a, err := netip.ParseAddr(words[1])
		if err != nil {
			return 0, fmt.Errorf("invalid dns address %q", words[1])
		}
		s.DNS = a
		return 2, nil
	case "socks5":
		if err := need(1); err != nil {
			return 0, err
		}
		v := words[1]
		s.SOCKS5User, s.SOCKS5Pass = "", ""
		if at := strings.LastIndexByte(v, '@'); at >= 0 {
			user, pass, ok := strings.Cut(v[:at], ":")
			if !ok || user == "" || len(user) > 255 || len(pass) > 255 {
				return 0, errors.New("invalid socks5 credentials (want USER:PASS@ADDR:PORT, each at most 255 bytes)")
			}
			s.SOCKS5User, s.SOCKS5Pass, v = user, pass, v[at+1:]
		}
		ap, err := netip.ParseAddrPort(v)
		if err != nil || ap.Port() == 0 {
			return 0, fmt.Errorf("invalid socks5 address %q (want ADDR:PORT)", v)
		}
		s.SOCKS5 = ap
		return 2, nil
	case "socks5-open":
		s.SOCKS5Open = true
		return 1, nil
	case "forward", "reverse":
		if err := need(3); err != nil {
			return 0, err
		}
		f := Forward{Reverse: w == "reverse", Proto: words[1], Listen: words[2], Target: words[3]}
		if f.Proto != "tcp" && f.Proto != "udp" {
			return 0, fmt.Errorf("invalid %s protocol %q (want tcp or udp)", w, f.Proto)
		}
		if f.Reverse {
			p, err := strconv.ParseUint(f.Listen, 10, 16)
			if err != nil || p == 0 {
				return 0, fmt.Errorf("invalid reverse port %q (want 1-65535)", f.Listen)
			}
			f.Listen = ":" + f.Listen
		} else {
			if !strings.Contains(f.Listen, ":") {
				f.Listen = "127.0.0.1:" + f.Listen
			}
			if ap, err := netip.ParseAddrPort(f.Listen); err != nil || ap.Port() == 0 {
				return 0, fmt.Errorf("invalid forward listening address %q (want [ADDR:]PORT)", words[2])
			}
		}
		if host, port, err := net.SplitHostPort(f.Target); err != nil || host == "" {
			return 0, fmt.Errorf("invalid %s target %q (want HOST:PORT)", w, f.Target)
		} else if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
			return 0, fmt.Errorf("invalid %s target port in %q", w, f.Target)
		}
		s.Forwards = append(s.Forwards, f)
		return 4, nil
	}
	return 0, nil
}

// validateStack checks the stack's words.
func (t *Tunnel) validateStack() error {
	s := t.Stack
	if s == nil {
		return nil
	}
	if len(s.Addrs) == 0 {
		for _, w := range []struct {
			set  bool
			word string
		}{{s.DNS.IsValid(), "dns"}, {s.SOCKS5.IsValid(), "socks5"}, {s.SOCKS5Open, "socks5-open"}, {len(s.Forwards) > 0, "forward and reverse"}} {
			if w.set {
				return fmt.Errorf("%s needs netstack ADDR/PREFIX", w.word)
			}
		}
		return errors.New("netstack needs an address")
	}
	if t.Ethernet() {
		return fmt.Errorf("netstack carries IP packets: mode %s needs a TAP device", t.Mode)
	}
	var has4, has6 bool
	for _, p := range s.Addrs {
		a := p.Addr()
		if a.Is4In6() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
			return fmt.Errorf("netstack address %s is not a unicast address", p)
		}
		if a.Is4() && has4 || a.Is6() && has6 {
			return errors.New("netstack takes one IPv4 and one IPv6 address at most")
		}
		has4, has6 = has4 || a.Is4(), has6 || a.Is6()
	}
	if s.SOCKS5.IsValid() && s.SOCKS5User == "" && !s.SOCKS5Open && !s.SOCKS5.Addr().IsLoopback() {
		return fmt.Errorf("socks5 without USER:PASS@ listens only on loopback, not %s (add socks5-open to serve it there without authentication)", s.SOCKS5.Addr())
	}
	seen := map[string]bool{}
	for _, f := range s.Forwards {
		k := fmt.Sprint(f.Reverse, f.Proto, f.Listen)
		if seen[k] {
			return fmt.Errorf("%s: that port is forwarded twice", f.Word())
		}
		seen[k] = true
	}
	return nil
}

// String renders the stack's words, the password hidden.
func (s *Stack) String() string {
	if s == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(" netstack")
	for _, p := range s.Addrs {
		b.WriteString(" " + p.String())
	}
	if s.DNS.IsValid() {
		b.WriteString(" dns " + s.DNS.String())
	}
	if s.SOCKS5.IsValid() {
		b.WriteString(" socks5 ")
		if s.SOCKS5User != "" {
			b.WriteString(s.SOCKS5User + ":*@")
		}
		b.WriteString(s.SOCKS5.String())
	}
	if s.SOCKS5Open {
		b.WriteString(" socks5-open")
	}
	for _, f := range s.Forwards {
		b.WriteString(" " + f.Word())
	}
	return b.String()
}
