package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/control"
	"github.com/gretun/gretun/tunnel"
)

// tunnelCmd is the client side of `gretun tunnel …`.
func tunnelCmd(g globals, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		args = []string{"show"}
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "add", "a":
		if len(rest) == 0 {
			return fmt.Errorf("tunnel add: missing tunnel name")
		}
		// Catch mistakes in the words before bothering the daemon.
		if _, err := config.Parse(rest[0], rest[1:]); err != nil {
			return fmt.Errorf("tunnel add %s: %v", rest[0], err)
		}
		_, err := control.Call(g.socket, control.Request{Op: "add", Name: rest[0], Words: rest[1:]})
		return err
	case "change", "chg", "c":
		if len(rest) == 0 {
			return fmt.Errorf("tunnel change: missing tunnel name")
		}
		var probe config.Tunnel
		if err := probe.Apply(rest[1:]); err != nil {
			return fmt.Errorf("tunnel change %s: %v", rest[0], err)
		}
		_, err := control.Call(g.socket, control.Request{Op: "change", Name: rest[0], Words: rest[1:]})
		return err
	case "del", "delete", "d":
		if len(rest) != 1 {
			return fmt.Errorf("tunnel del: want exactly one tunnel name")
		}
		_, err := control.Call(g.socket, control.Request{Op: "del", Name: rest[0]})
		return err
	case "show", "list", "lst", "sh", "ls", "s":
		name := ""
		if len(rest) > 1 {
			return fmt.Errorf("tunnel show: unexpected %q", rest[1])
		}
		if len(rest) == 1 {
			name = rest[0]
		}
		resp, err := control.Call(g.socket, control.Request{Op: "show", Name: name})
		if err != nil {
			return err
		}
		return printShow(stdout, g, resp)
	default:
		return fmt.Errorf("tunnel: unknown command %q (add, change, del, show)", verb)
	}
}

// handle executes a control request against the engine (daemon side).
func handle(e *tunnel.Engine, req control.Request) control.Response {
	var err error
	switch req.Op {
	case "add":
		var c config.Tunnel
		if c, err = config.Parse(req.Name, req.Words); err == nil {
			if err = checkCapabilities(c); err == nil {
				err = e.Add(c)
			}
		}
	case "change":
		c, ok := e.Config(req.Name)
		if !ok {
			err = fmt.Errorf("no tunnel named %q", req.Name)
		} else if err = c.Apply(req.Words); err == nil {
			if err = checkCapabilities(c); err == nil {
				err = e.Change(c)
			}
		}
	case "del":
		err = e.Del(req.Name)
	case "capture":
		return serveCapture(e, req)
	case "neigh-add", "neigh-replace", "neigh-del", "neigh-show":
		return handleNeigh(e, req)
	case "show":
		st, err := e.Show(req.Name)
		if err != nil {
			return control.Response{Error: err.Error()}
		}
		u := e.Unmatched()
		return control.Response{Tunnels: st, Unmatched: &u}
	default:
		err = fmt.Errorf("unknown operation %q", req.Op)
	}
	if err != nil {
		prefix := req.Op
		if req.Name != "" {
			prefix += " " + req.Name
		}
		return control.Response{Error: fmt.Sprintf("tunnel %s: %v", prefix, err)}
	}
	return control.Response{}
}

// printShow prints tunnels like `ip tunnel show`, with -s like
// `ip -s tunnel show`, with -j as JSON.
func printShow(w io.Writer, g globals, resp control.Response) error {
	if g.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if resp.Tunnels == nil {
			resp.Tunnels = []tunnel.Status{} // [] rather than null for scripts
		}
		if !g.stats {
			for i := range resp.Tunnels {
				resp.Tunnels[i].Stats = tunnel.Stats{}
			}
			resp.Unmatched = nil
		}
		return enc.Encode(struct {
			Tunnels   []tunnel.Status `json:"tunnels"`
			Unmatched *tunnel.Stats   `json:"unmatched,omitempty"`
		}{resp.Tunnels, resp.Unmatched})
	}
	for _, t := range resp.Tunnels {
		fmt.Fprintln(w, t.Line)
		if ka := t.Keepalive; ka != nil {
			fmt.Fprintf(w, "    keepalive %s\n", ka)
		}
		if g.stats {
			printStats(w, t.Stats)
			printPeers(w, t.Neighbours)
		}
	}
	if g.stats && resp.Unmatched != nil && drops(resp.Unmatched.Drops) != "" {
		fmt.Fprintf(w, "unmatched: %s\n", drops(resp.Unmatched.Drops))
	}
	return nil
}

func printStats(w io.Writer, s tunnel.Stats) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "RX:\tPackets\tBytes\tErrors\tCsumErrs\tOutOfSeq\tDevice\n")
	fmt.Fprintf(tw, "\t%d\t%d\t%d\t%d\t%d\t%d\n", s.RxPackets, s.RxBytes, s.RxErrors, s.RxCsumErrors, s.RxOutOfSeq, s.RxDevice)
	fmt.Fprintf(tw, "TX:\tPackets\tBytes\tErrors\tDeadLoop\tNoRoute\tNoBufs\n")
	fmt.Fprintf(tw, "\t%d\t%d\t%d\t%d\t%d\t%d\n", s.TxPackets, s.TxBytes, s.TxErrors, s.TxDeadLoop, s.TxNoRoute, s.TxNoBufs)
	fmt.Fprintf(tw, "TX:\tTooBig\tFragments\tBadInner\tICMP\tICMPLimited\tMSSClamped\n")
	fmt.Fprintf(tw, "\t%d\t%d\t%d\t%d\t%d\t%d\n", s.TxTooBig, s.TxFragmented, s.TxBadInner, s.TxICMP, s.TxICMPLimited, s.TxMSSClamped)
	tw.Flush()
	if s.Reflected != 0 {
		fmt.Fprintf(w, "Keepalives reflected: %d\n", s.Reflected)
	}
	if s.TxPacketSocket != 0 {
		fmt.Fprintf(w, "TX on AF_PACKET: %d\n", s.TxPacketSocket)
	}
	if s.TxUnreachable != 0 {
		fmt.Fprintf(w, "TX port unreachable: %d\n", s.TxUnreachable)
	}
	if s.TxEncapLimit != 0 {
		fmt.Fprintf(w, "TX encapsulation limit 0: %d\n", s.TxEncapLimit)
	}
	if s.TxNoNeighbour != 0 {
		fmt.Fprintf(w, "TX to no neighbour: %d\n", s.TxNoNeighbour)
	}
	if d := drops(s.Drops); d != "" {
		fmt.Fprintf(w, "RX drops: %s\n", d)
	}
}

// drops lists the reasons that dropped anything, by name; the JSON has
// them all.
func drops(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k, n := range m {
		if n != 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
