// Command xfer moves a file over TCP and prints its SHA-256, for the
// end-to-end tests: `xfer -listen ADDR` receives one connection and prints
// the digest of what arrived; `xfer -connect ADDR -size N` sends N
// pseudo-random bytes and prints the digest of what it sent.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "", "address to receive on")
	connect := flag.String("connect", "", "address to send to")
	size := flag.Int64("size", 1<<20, "bytes to send")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after")
	flag.Parse()
	if err := run(*listen, *connect, *size, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "xfer:", err)
		os.Exit(1)
	}
}

func run(listen, connect string, size int64, timeout time.Duration) error {
	h := sha256.New()
	switch {
	case listen != "":
		l, err := net.Listen("tcp", listen)
		if err != nil {
			return err
		}
		fmt.Println("listening")
		l.(*net.TCPListener).SetDeadline(time.Now().Add(timeout))
		c, err := l.Accept()
		if err != nil {
			return err
		}
		c.SetDeadline(time.Now().Add(timeout))
		n, err := io.Copy(h, c)
		if err != nil {
			return err
		}
		fmt.Printf("%d %s\n", n, hex.EncodeToString(h.Sum(nil)))
	case connect != "":
		c, err := net.DialTimeout("tcp", connect, timeout)
		if err != nil {
			return err
		}
		c.SetDeadline(time.Now().Add(timeout))
		src := io.LimitReader(rand.NewChaCha8([32]byte{byte(size)}), size)
		n, err := io.Copy(io.MultiWriter(c, h), src)
		if err != nil {
			return err
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			return err
		}
		io.Copy(io.Discard, c)
		fmt.Printf("%d %s\n", n, hex.EncodeToString(h.Sum(nil)))
	default:
		return fmt.Errorf("want -listen or -connect")
	}
	return nil
}
