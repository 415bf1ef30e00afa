// Package netstacktest wires userspace stacks back to back for tests, as
// the two ends of a tunnel with no tunnel in between.
package netstacktest

import "golang.zx2c4.com/wireguard/tun"

// Wire moves every packet a reads to b and every packet b reads to a
// until they are closed. seen, when not nil, is told each a→b packet's
// size.
func Wire(a, b tun.Device, seen func(size int)) {
	go pump(a, b, seen)
	go pump(b, a, nil)
}

func pump(from, to tun.Device, seen func(int)) {
	const offset = 4 // as the engine, which reads after some headroom
	bufs := make([][]byte, from.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, offset+65535)
	}
	sizes := make([]int, len(bufs))
	one := make([][]byte, 1)
	for {
		n, err := from.Read(bufs, sizes, offset)
		if err != nil {
			return
		}
		for i := range n {
			if seen != nil {
				seen(sizes[i])
			}
			one[0] = bufs[i][:offset+sizes[i]]
			if _, err := to.Write(one, offset); err != nil {
				return
			}
		}
	}
}
