// Package gostack lets tests wait until a goroutine is really blocked in
// I/O, so a test of "Close unblocks a waiting Read" cannot pass merely
// because Close came before the Read started.
package gostack

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// WaitBlocked waits up to timeout for a goroutine whose stack contains fn
// (a function name as runtime.Stack prints it, e.g. "rawsock.(*Conn).ReadBatch")
// to be parked waiting for I/O or in a system call.
func WaitBlocked(fn string, timeout time.Duration) error {
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(timeout); ; time.Sleep(time.Millisecond) {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			head, _, _ := strings.Cut(g, "\n")
			if (strings.Contains(head, "[IO wait") || strings.Contains(head, "[syscall")) && strings.Contains(g, fn) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no goroutine blocked in %s after %v", fn, timeout)
		}
	}
}
