package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Neigh is one neighbour of a multipoint tunnel, in the words of `ip neigh`:
// `INNER lladdr OUTER dev NAME`. Inner packets on device NAME to INNER (an
// address, or a prefix for the networks behind the neighbour) go in outer
// packets to OUTER, the neighbour's underlay address.
type Neigh struct {
	Dev    string       `json:"dev"`
	Dst    netip.Prefix `json:"dst"`
	LLAddr netip.Addr   `json:"lladdr,omitempty"`
}

// ParseNeigh reads `INNER lladdr OUTER dev NAME [nud permanent]`; with
// del, as `ip neigh del`, only INNER and dev are wanted.
func ParseNeigh(words []string, del bool) (Neigh, error) {
	var n Neigh
	for i := 0; i < len(words); i++ {
		w := words[i]
		value := func() (string, error) { return valueAfter(words, &i) }
		switch w {
		case "lladdr", "dev", "nud", "to":
			v, err := value()
			if err != nil {
				return Neigh{}, err
			}
			switch w {
			case "lladdr":
				a, err := netip.ParseAddr(v)
				if err != nil {
					return Neigh{}, fmt.Errorf("invalid lladdr %q (want the neighbour's underlay address)", v)
				}
				n.LLAddr = a
			case "dev":
				n.Dev = v
			case "nud":
				// Only static entries are configured; learned ones
				// come from traffic.
				if v != "permanent" && v != "perm" {
					return Neigh{}, fmt.Errorf("nud %q: only permanent neighbours are configured", v)
				}
			case "to":
				if err := n.setDst(v); err != nil {
					return Neigh{}, err
				}
			}
		default:
			if n.Dst.IsValid() {
				return Neigh{}, fmt.Errorf("unexpected %q", w)
			}
			if err := n.setDst(w); err != nil {
				return Neigh{}, err
			}
		}
	}
	switch {
	case !n.Dst.IsValid():
		return Neigh{}, errors.New("missing neighbour address")
	case n.Dev == "":
		return Neigh{}, errors.New("missing dev NAME")
	case del && n.LLAddr.IsValid():
		return Neigh{}, errors.New("neigh del takes no lladdr")
	case !del && !n.LLAddr.IsValid():
		return Neigh{}, errors.New("missing lladdr (the neighbour's underlay address)")
	}
	if err := ValidateName(n.Dev); err != nil {
		return Neigh{}, err
	}
	if !del && !n.LLAddr.IsGlobalUnicast() {
		return Neigh{}, fmt.Errorf("lladdr %s is not a unicast address", n.LLAddr)
	}
	return n, nil
}

// setDst reads the inner destination: an address (a host) or a prefix,
// which must have no bits set past its length, as `ip route` insists.
func (n *Neigh) setDst(v string) error {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return fmt.Errorf("invalid neighbour %q (want an address or a prefix)", v)
		}
		if p != p.Masked() {
			return fmt.Errorf("invalid prefix %s (host bits set: %s?)", p, p.Masked())
		}
		n.Dst = p
		return nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return fmt.Errorf("invalid neighbour %q (want an address or a prefix)", v)
	}
	n.Dst = netip.PrefixFrom(a, a.BitLen())
	return nil
}

// DstString is the inner destination as `ip neigh` prints it: a host as an
// address, a wider prefix with its length.
func (n Neigh) DstString() string {
	if n.Dst.IsSingleIP() {
		return n.Dst.Addr().String()
	}
	return n.Dst.String()
}

// String renders n as the words that add it: "198.51.100.2 lladdr 192.0.2.2 dev mg0".
func (n Neigh) String() string {
	return fmt.Sprintf("%s lladdr %s dev %s", n.DstString(), n.LLAddr, n.Dev)
}
