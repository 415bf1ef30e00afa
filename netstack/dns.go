package netstack

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// lookup asks the tunnel's DNS server, and nothing else, for host's
// addresses of the families the stack has: A and AAAA questions over UDP
// to st.dns through the stack, each tried twice. Go's resolver would
// answer names in the host's /etc/hosts itself and apply its search list;
// a name here means what the tunnel's server says it means.
func (st *Stack) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	name, err := dnsmessage.NewName(dnsName(host))
	if err != nil {
		return nil, &net.DNSError{Err: "invalid name", Name: host}
	}
	var types []dnsmessage.Type
	for _, a := range st.Addrs() {
		if a.Is4() {
			types = append(types, dnsmessage.TypeA)
		} else {
			types = append(types, dnsmessage.TypeAAAA)
		}
	}
	var addrs []netip.Addr
	var lastErr error
	for _, t := range types {
		got, err := st.ask(ctx, name, t)
		if err != nil {
			lastErr = err
			continue
		}
		addrs = append(addrs, got...)
	}
	if len(addrs) == 0 {
		if lastErr == nil {
			lastErr = errNoAddress
		}
		return nil, &net.DNSError{Err: lastErr.Error(), Name: host, Server: st.dns.String(), IsNotFound: !errors.Is(lastErr, errNoAnswer)}
	}
	return addrs, nil
}

var (
	errNoAddress = errors.New("no such host")
	errNoAnswer  = errors.New("no answer from the tunnel's dns server")
)

// dnsName is host as an absolute name: no search list applies.
func dnsName(host string) string {
	if len(host) > 0 && host[len(host)-1] == '.' {
		return host
	}
	return host + "."
}

// ask sends one question and returns the addresses of its answer.
func (st *Stack) ask(ctx context.Context, name dnsmessage.Name, t dnsmessage.Type) ([]netip.Addr, error) {
	id := uint16(rand.Uint32())
	q, err := (&dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: name, Type: t, Class: dnsmessage.ClassINET}},
	}).Pack()
	if err != nil {
		return nil, err
	}
	c, err := st.dialDNS(ctx, "udp", "")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	buf := make([]byte, 1500)
	for try := 0; try < 2; try++ {
		deadline := time.Now().Add(2 * time.Second)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		c.SetDeadline(deadline)
		if _, err := c.Write(q); err != nil {
			return nil, err
		}
		for {
			n, err := c.Read(buf)
			if err != nil {
				break // timed out: ask again
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil || !m.Header.Response || m.Header.ID != id ||
				len(m.Questions) != 1 || m.Questions[0].Name != name || m.Questions[0].Type != t {
				continue // not the answer to this question
			}
			if m.Header.RCode == dnsmessage.RCodeNameError {
				return nil, errNoAddress
			}
			var addrs []netip.Addr
			for _, r := range m.Answers {
				switch b := r.Body.(type) {
				case *dnsmessage.AResource:
					addrs = append(addrs, netip.AddrFrom4(b.A))
				case *dnsmessage.AAAAResource:
					addrs = append(addrs, netip.AddrFrom16(b.AAAA))
				}
			}
			return addrs, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, errNoAnswer
}
