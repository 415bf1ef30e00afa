package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/gretun/gretun/capture"
	"github.com/gretun/gretun/control"
	"github.com/gretun/gretun/tunnel"
)

// captureCmd is `gretun capture NAME [-w FILE] [-c COUNT] [-inner]`: it
// asks the daemon for the tunnel's packets and writes them to FILE as
// pcapng, or prints one line per packet. The file is opened here, with the
// permissions of whoever runs the command, never by the daemon. Ctrl-C
// (or SIGTERM) asks the daemon to stop; the summary goes to stderr.
func captureCmd(g globals, args []string, stdout, stderr io.Writer) error {
	var (
		name, file string
		count      int
		inner      bool
	)
	for len(args) > 0 {
		a := args[0]
		switch {
		case a == "-w" || a == "-c":
			if len(args) < 2 {
				return fmt.Errorf("capture: missing value after %s", a)
			}
			if a == "-w" {
				file = args[1]
			} else {
				n, err := strconv.Atoi(args[1])
				if err != nil || n < 1 {
					return fmt.Errorf("capture: -c %q: want a count of packets, 1 or more", args[1])
				}
				count = n
			}
			args = args[2:]
			continue
		case a == "-inner" || a == "--inner":
			inner = true
		case len(a) > 0 && a[0] == '-':
			return fmt.Errorf("capture: unknown option %q", a)
		case name != "":
			return fmt.Errorf("capture: unexpected %q", a)
		default:
			name = a
		}
		args = args[1:]
	}
	if name == "" {
		return errors.New("capture: missing tunnel name")
	}
	var out *bufio.Writer
	if file != "" {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("capture: %v", err)
		}
		defer f.Close()
		out = bufio.NewWriter(f)
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	st, err := control.Open(g.socket, control.Request{Op: "capture", Name: name, Inner: inner, Count: count})
	if err != nil {
		if file != "" {
			os.Remove(file) // nothing was captured into it
		}
		return err
	}
	defer st.Close()
	what := "outer packets"
	if inner {
		what = "inner packets"
	}
	// As tcpdump's "listening on": the capture runs from here on.
	fmt.Fprintf(stderr, "capturing tunnel %s, %s\n", name, what)
	go func() {
		<-sig
		st.Stop() // the daemon ends the stream with its statistics
		<-sig
		st.Close()
	}()
	var tee io.Writer
	if out != nil {
		tee = out
	}
	r, err := capture.NewReader(st, tee)
	if err != nil {
		return fmt.Errorf("capture %s: %v", name, err)
	}
	n := 0
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if out != nil {
				out.Flush()
			}
			return fmt.Errorf("capture %s: %v", name, err)
		}
		n++
		if out == nil {
			fmt.Fprintln(stdout, capture.Line(p))
		}
	}
	if out != nil {
		if err := out.Flush(); err != nil {
			return fmt.Errorf("capture: %s: %v", file, err)
		}
	}
	fmt.Fprintf(stderr, "%d packets captured, %d lost (the reader was behind)\n", n, r.Lost)
	return nil
}

// captureWriteTimeout is how long the daemon waits for a capture's reader
// to take more of the stream before it gives up on it.
const captureWriteTimeout = 30 * time.Second

// serveCapture answers a capture request (daemon side): the response,
// then the tunnel's packets as pcapng until the count is reached, the
// client stops, or the tunnel is deleted, then the statistics. The
// tunnel's data path only ever hands packets to a bounded queue; a client
// that reads slowly loses packets, counted in the statistics.
func serveCapture(e *tunnel.Engine, req control.Request) control.Response {
	c, err := e.Capture(req.Name, req.Inner)
	if err != nil {
		return control.Response{Error: fmt.Sprintf("capture %s: %v", req.Name, err)}
	}
	what := "outer packets"
	if req.Inner {
		what = "inner packets"
	}
	// A gretap tunnel's inner packets are Ethernet frames: say so in the
	// file, or Wireshark reads them as IP.
	cfg, _ := e.Config(req.Name)
	ethernet := cfg.Ethernet()
	return control.Response{Stream: func(ctx context.Context, w io.Writer) error {
		defer c.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		conn, _ := w.(interface{ SetWriteDeadline(time.Time) error })
		deadline := func() {
			if conn != nil {
				conn.SetWriteDeadline(time.Now().Add(captureWriteTimeout))
			}
		}
		deadline()
		pw, err := capture.NewWriter(w, req.Name, "gretun tunnel "+req.Name+", "+what, req.Inner && ethernet)
		if err != nil {
			return err
		}
		var n uint64
		for req.Count == 0 || n < uint64(req.Count) {
			var p tunnel.CapturedPacket
			select {
			case <-ctx.Done():
			case <-c.Done():
			case p = <-c.Packets():
			}
			if p.Data == nil {
				break
			}
			err := pw.WritePacket(&capture.Packet{Time: p.Time, Out: p.Out, Len: p.Len, Data: p.Data, Drop: p.Drop})
			c.Release(p)
			n++
			if err == nil && len(c.Packets()) == 0 {
				deadline()
				err = pw.Flush()
			}
			if err != nil {
				return err
			}
		}
		deadline()
		return pw.WriteStats(n, c.Lost(), time.Now())
	}}
}
