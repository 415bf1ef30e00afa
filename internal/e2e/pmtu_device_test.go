package e2e

import (
	"fmt"
	"testing"
)

// TestMTULearntStaysSoft is issue 12's "528 after an unrelated ip link
// add": on the narrow path, A's tunnel learns the 1400-byte hop from R1's
// Fragmentation Needed, and A's kernel keeps a route exception of 1400
// toward B. Link events that follow (a link added, the underlay device's
// MTU changed) make gretun re-read the underlay: the device MTU must come
// from the underlay device (1500, then 1450, less the overhead), as the
// kernel's ip_tunnel_bind_dev has it, never from the exception, while the
// learnt path MTU stays in force as soft state.
func TestMTULearntStaysSoft(t *testing.T) {
	t.Parallel()
	tp := narrowPath(t)
	tp.Run(tp.A, pmtuDevice, "mode", "gre", "remote", narrowB, "local", narrowA)
	tp.Run(tp.B, "ta", "mode", "gre", "remote", narrowA, "local", narrowB)
	tp.Sh(tp.A, "ip", "addr", "add", innerA4, "peer", innerB4, "dev", pmtuDevice)
	tp.Sh(tp.B, "ip", "addr", "add", innerB4, "peer", innerA4, "dev", "ta")
	const overhead = 24
	learnt := narrowHop - overhead
	for i := 0; i < 10 && tp.pathMTU(tp.A, pmtuDevice) != learnt; i++ {
		tp.Exec(tp.A, "ping", "-M", "do", "-s", "1400", "-c", "2", "-i", "0.1", "-W", "1", innerB4)
	}
	if p := tp.pathMTU(tp.A, pmtuDevice); p != learnt {
		t.Fatalf("gretun did not learn the narrow hop: path_mtu %d, want %d", p, learnt)
	}
	if got := tp.routeMTU(tp.A, narrowB); got != narrowHop {
		t.Fatalf("no route exception toward B: ip route get reports mtu %d, want %d", got, narrowHop)
	}

	// An unrelated link appears: gretun re-reads the underlay (at once,
	// then at most every 200 ms), and must find the device's 1500.
	tp.Sh(tp.A, "ip", "link", "add", "unrel0", "type", "veth", "peer", "name", "unrel1")
	sleep(1000)
	if got := tp.linkMTU(tp.A, pmtuDevice); got != 1500-overhead {
		t.Errorf("after an unrelated link event the device MTU is %d, want %d (the underlay device's 1500 less %d), not the route exception's %d",
			got, 1500-overhead, overhead, narrowHop-overhead)
	}
	// The underlay device's MTU changes: the tunnel follows the device.
	tp.Sh(tp.A, "ip", "link", "set", "dev", "wan", "mtu", "1450")
	want := 1450 - overhead
	got := 0
	tp.waitFor(fmt.Sprintf("device MTU %d", want), func() bool { got = tp.linkMTU(tp.A, pmtuDevice); return got == want })
	if p := tp.pathMTU(tp.A, pmtuDevice); p != learnt {
		t.Errorf("path_mtu %d after the link events, want the learnt %d (soft state until it expires)", p, learnt)
	}
}
