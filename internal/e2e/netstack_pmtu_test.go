package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/testnet"
)

// TestNetstackPathMTU: a netstack tunnel on the narrow path (a 1400-byte
// hop between the routers that router A's 1500-byte underlay does not
// show) uploads 2 MB through a forwarded port to a TCP sink behind router
// B. The stack starts at the tunnel's MTU from A's underlay (1476), so its
// full-size segments leave as 1500-byte outer packets with DF; the router
// answers Fragmentation Needed, gretun learns the 1400-byte hop, and from
// then on answers the stack's oversize packets itself, as it answers a
// TUN device's senders: the upload arrives whole, with no black hole for
// a userspace stack either, and `tunnel show` reports the learnt path MTU.
func TestNetstackPathMTU(t *testing.T) {
	t.Parallel()
	tp := narrowPath(t)
	pb := tp.Run(tp.B, "tb", "mode", "gre", "remote", narrowA, "local", narrowB)
	defer pb.Stop()
	tp.Sh(tp.B, "ip", "addr", "add", innerB4+"/32", "dev", "tb")
	// Router B advertises the MSS of a wide path (its own underlay is the
	// narrow hop, which would keep A's segments small from the start).
	tp.Sh(tp.B, "ip", "route", "add", stackIP+"/32", "dev", "tb", "advmss", "1436")

	// Router B's sink: reads everything, answers with its SHA-256.
	var sink net.Listener
	if err := testnet.InNS(tp.B, func() (err error) { sink, err = net.Listen("tcp", innerB4+":8000"); return err }); err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	go func() {
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(60 * time.Second))
				h := sha256.New()
				io.Copy(h, c)
				fmt.Fprintf(c, "%x\n", h.Sum(nil))
			}()
		}
	}()

	pa := tp.Start(tp.A, "run", "ns", "mode", "gre", "remote", narrowB, "local", narrowA,
		"netstack", stackIP+"/24", "forward", "tcp", "127.0.0.1:8080", innerB4+":8000")
	defer pa.Stop()
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(pa.Log(), "tunnel added"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) || pa.Cmd.ProcessState != nil {
			t.Fatalf("the netstack tunnel did not start: %s", pa.Log())
		}
	}
	const overhead = 24
	if p := tp.pathMTU(tp.A, "ns"); p != 1500-overhead {
		t.Fatalf("path MTU %d before the upload, want the underlay's %d", p, 1500-overhead)
	}

	file := make([]byte, 2<<20)
	for i := range file {
		file[i] = byte(rand.Uint32())
	}
	sum := sha256.Sum256(file)
	if err := testnet.InNS(tp.A, func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:8080", 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(45 * time.Second))
		if _, err := c.Write(file); err != nil {
			return fmt.Errorf("upload: %v", err)
		}
		c.(*net.TCPConn).CloseWrite()
		reply, err := io.ReadAll(c)
		if got := strings.TrimSpace(string(reply)); got != hex.EncodeToString(sum[:]) {
			return fmt.Errorf("the sink got a file with SHA-256 %q (%v), want %x", got, err, sum)
		}
		return nil
	}); err != nil {
		t.Errorf("2 MB through the netstack tunnel over the narrow path: %v\n%s", err, pa.Log())
	}
	if p := tp.pathMTU(tp.A, "ns"); p != narrowHop-overhead {
		t.Errorf("path MTU %d after the upload, want %d learnt from the router's Fragmentation Needed", p, narrowHop-overhead)
	}
	// The stack sets DF: its oversize packets are answered, not fragmented.
	for _, st := range tp.statuses(tp.A) {
		if s := st.Stats; s.TxTooBig == 0 || s.TxICMP == 0 || s.TxFragmented != 0 {
			t.Errorf("tx_too_big %d, tx_icmp %d, tx_fragmented %d: want the stack's oversize packets answered with Fragmentation Needed",
				s.TxTooBig, s.TxICMP, s.TxFragmented)
		}
	}
}
