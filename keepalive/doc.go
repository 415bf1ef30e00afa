// Package keepalive is the state machine behind Cisco-compatible GRE
// keepalives, with authenticated replies and flap damping.
//
// # Why
//
// A GRE tunnel is stateless: it stays up while its far end is unreachable
// and black-holes traffic that a floating static route could carry. GRE
// keepalives let one side notice this without any help from the other side.
//
// # The Cisco mechanism
//
// The sender builds the reply inside the request. BuildInner writes an
// inner packet addressed from the far end back to us,
//
//	inner IPv4  src=remote dst=local protocol 47, TTL 255, DF clear
//	inner GRE   flags 0, protocol type 0x0000
//	payload     24 bytes (see below)
//
// which the engine then encapsulates like any other packet (outer IPv4
// local→remote, GRE protocol 0x0800). The far end needs no keepalive support
// at all: it decapsulates the outer header, finds an IPv4 packet addressed to
// us and routes it back. Timers on the two sides are independent, and a side
// without keepalives configured still answers the other side's.
//
// Counting is exactly Cisco's. Each keepalive sent increments a counter of
// unanswered keepalives and each returned one resets it to zero. When a
// keepalive is due while the counter already stands at Retries — Retries
// keepalives in a row each went a full Period without an answer — the line
// protocol goes down. So after the far end disappears the tunnel is down
// within Period×(Retries+1). Keepalives keep going while down, and returning
// replies bring the tunnel back.
//
// # States
//
//	Up    line protocol up: the engine turns the TUN carrier on.
//	Down  Retries keepalives went unanswered: carrier off, routes through the
//	      tunnel are skipped and a higher-metric backup route takes over.
//	Hold  replies are coming back, but damping still wants more consecutive
//	      good ones before the tunnel comes up; the carrier stays off.
//
// The machine starts Up, as a Cisco tunnel does when it is configured.
//
// # Damping
//
// A path that loses and regains connectivity every few seconds would make
// routes flap with it. After a down the machine requires DampInitial
// consecutive good replies before coming up (default 1: a single outage
// recovers exactly as on Cisco). Each further down doubles the requirement,
// up to DampMax (default 16). Each DampDecay the tunnel stays up halves it
// again, back to DampInitial. A keepalive that goes unanswered while in Hold
// restarts the count, so "consecutive" assumes the round trip is shorter than
// Period. Only up→down counts as a flap: bouncing between Hold and Down never
// touches the carrier, so it does not raise the requirement. This follows
// the spirit of OpenBSD's gre(4), whose hold count doubles on each recovery
// (capped at 16×count) and shrinks while replies keep arriving.
//
// # Authentication
//
// A plain Cisco keepalive carries nothing after the inner GRE header, so
// anyone on the path who can send a GRE protocol-0 packet to us can hold a
// dead tunnel up. Like OpenBSD's gre(4) (sys/net/if_gre.c, struct
// gre_keepalive: uptime, random, SipHash digest), the inner GRE here carries
// a payload:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      'g'      |      't'      |      'k'      |      'a'      |  magic
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   version=1   |              reserved, zero                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                timestamp (64 bits, big endian)                |
//	+                                                               +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        MAC = SipHash-2-4(key, bytes 0..15), 64 bits           |
//	+                                                               +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The timestamp is the injected clock's nanoseconds since New plus a random
// 64-bit bias (so it does not reveal the process uptime); the 128-bit SipHash
// key is drawn from crypto/rand in New and never leaves the process. The MAC
// is written as the 8 little-endian output bytes of SipHash, the byte order
// of the reference vectors.
//
// Every genuine reply carries this payload: the far end only forwards the
// inner packet we built, bytes unchanged. So Reply accepts a payload only if
//   - it has the magic and version (an empty or foreign payload, such as a
//     payload-less Cisco-format packet, is rejected as forged),
//   - its MAC verifies with our key (otherwise: forged),
//   - its timestamp is not in the future and younger than Period×Retries
//     (otherwise: stale), and
//   - its timestamp is newer than the last accepted one (otherwise:
//     replayed). Timestamps only grow, so each keepalive counts at most once
//     and a copy captured on the path cannot be replayed, even inside the
//     freshness window. The price is that a reply overtaken by a newer one is
//     rejected as replayed; the newer one already reset the counter.
//
// Peers that merely reflect stay compatible, keepalives configured on one
// side only keep working, and forged or replayed replies cannot hold a dead
// tunnel up. What authentication cannot stop is an attacker on the path who
// sees our keepalives leave and returns them within Period×Retries: to us
// that is exactly what a reflecting far end does.
//
// # What it does not do
//
// No I/O, no goroutines, no timers: the engine owns the clock and the
// sockets. It calls Tick when NextDeadline passes; when Tick says so it
// builds the packet with BuildInner, encapsulates and writes it, then calls
// Sent (whether or not the write succeeded: an unsendable keepalive is an
// unanswered one). It hands the GRE protocol-0 payload of every keepalive
// reply that arrives for the tunnel to Reply, logs each Event whose
// Changed() is true, and sets the carrier to State() == Up. Reflecting other
// routers' keepalives is also the engine's job. A Machine is safe for
// concurrent use; BuildInner and Reply do not allocate.
package keepalive
