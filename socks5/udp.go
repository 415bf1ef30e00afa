package socks5

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
)

// maxDatagram bounds a relayed datagram with its SOCKS header.
const maxDatagram = 65535

// associate serves UDP ASSOCIATE (RFC 1928 §7): a UDP socket on this
// host for the client, one in the Net for the far side, relaying between
// them until the client's TCP connection ends. Datagrams are taken only
// from the client's address (its IP, and the port it named if it named
// one), and answers go back to where its last datagram came from.
func (s *Server) associate(c net.Conn, req Request, log *slog.Logger) {
	local := addrOf(c.LocalAddr())
	client := addrOf(c.RemoteAddr())
	near, err := net.ListenUDP("udp", &net.UDPAddr{IP: local.IP.AsSlice()})
	if err != nil {
		c.Write(appendReply(nil, ReplyGeneralFailure, Addr{}))
		log.Warn("socks5: udp associate: local socket", "err", err)
		return
	}
	defer near.Close()
	far, err := s.Net.ListenUDP(0)
	if err != nil {
		c.Write(appendReply(nil, ReplyGeneralFailure, Addr{}))
		log.Warn("socks5: udp associate: tunnel socket", "err", err)
		return
	}
	defer far.Close()
	if _, err := c.Write(appendReply(nil, ReplySucceeded, addrOf(near.LocalAddr()))); err != nil {
		return
	}

	var mu sync.Mutex
	var peer netip.AddrPort // where the client sends from
	if req.Dest.Port != 0 && req.Dest.IP.IsValid() && !req.Dest.IP.IsUnspecified() {
		peer = netip.AddrPortFrom(req.Dest.IP, req.Dest.Port)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // client → tunnel
		defer wg.Done()
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := near.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
			mu.Lock()
			ok := from.Addr() == client.IP && (req.Dest.Port == 0 || !peer.IsValid() || from == peer)
			if ok {
				peer = from
			}
			mu.Unlock()
			if !ok {
				log.Debug("socks5: udp datagram from a stranger dropped", "from", from)
				continue
			}
			dst, data, err := ParseUDP(buf[:n])
			if err != nil {
				log.Debug("socks5: udp datagram dropped", "err", err)
				continue
			}
			ip := dst.IP
			if dst.Name != "" {
				ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
				ip, err = s.Net.Resolve(ctx, dst.Name)
				cancel()
				if err != nil {
					log.Warn("socks5: udp destination not found", "name", dst.Name, "err", err)
					continue
				}
			}
			far.WriteTo(data, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, dst.Port)))
		}
	}()
	go func() { // tunnel → client
		defer wg.Done()
		buf := make([]byte, maxDatagram)
		out := make([]byte, 0, maxDatagram+262)
		for {
			n, from, err := far.ReadFrom(buf)
			if err != nil {
				return
			}
			mu.Lock()
			to := peer
			mu.Unlock()
			if !to.IsValid() {
				continue
			}
			out = AppendUDP(out[:0], addrOf(from), buf[:n])
			near.WriteToUDPAddrPort(out, to)
		}
	}()
	// The association lives as long as the client's TCP connection.
	var one [1]byte
	for {
		if _, err := c.Read(one[:]); err != nil {
			break
		}
	}
	near.Close()
	far.Close()
	wg.Wait()
}
