package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/control"
	"github.com/gretun/gretun/status"
	"github.com/gretun/gretun/tunnel"
)

// neighCmd is the client side of `gretun neigh …`, the neighbours of
// multipoint tunnels in `ip neigh` words.
func neighCmd(g globals, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		args = []string{"show"}
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "add", "a", "replace", "repl", "del", "delete", "d":
		op := map[string]string{"a": "add", "repl": "replace", "delete": "del", "d": "del"}[verb]
		if op == "" {
			op = verb
		}
		// Catch mistakes in the words before bothering the daemon.
		if _, err := config.ParseNeigh(rest, op == "del"); err != nil {
			return fmt.Errorf("neigh %s: %v", op, err)
		}
		_, err := control.Call(g.socket, control.Request{Op: "neigh-" + op, Words: rest})
		return err
	case "show", "list", "lst", "sh", "ls", "s":
		dev := ""
		switch {
		case len(rest) == 2 && rest[0] == "dev":
			dev = rest[1]
		case len(rest) != 0:
			return fmt.Errorf("neigh show: want nothing or dev NAME, not %q", rest)
		}
		resp, err := control.Call(g.socket, control.Request{Op: "neigh-show", Name: dev})
		if err != nil {
			return err
		}
		return printNeighs(stdout, g, resp.Neighs)
	default:
		return fmt.Errorf("neigh: unknown command %q (add, replace, del, show)", verb)
	}
}

// handleNeigh executes a neigh-* control request (daemon side).
func handleNeigh(e *tunnel.Engine, req control.Request) control.Response {
	var err error
	switch req.Op {
	case "neigh-show":
		ns, err := e.Neighs(req.Name)
		if err != nil {
			return control.Response{Error: "neigh show: " + err.Error()}
		}
		return control.Response{Neighs: ns}
	case "neigh-add", "neigh-replace":
		var n config.Neigh
		if n, err = config.ParseNeigh(req.Words, false); err == nil {
			err = e.NeighAdd(n, req.Op == "neigh-replace")
		}
	case "neigh-del":
		var n config.Neigh
		if n, err = config.ParseNeigh(req.Words, true); err == nil {
			err = e.NeighDel(n)
		}
	}
	if err != nil {
		return control.Response{Error: fmt.Sprintf("neigh %s: %v", req.Op[len("neigh-"):], err)}
	}
	return control.Response{}
}

// printNeighs prints neighbours like `ip neigh show`, with -j as JSON.
func printNeighs(w io.Writer, g globals, ns []status.Neigh) error {
	if g.json {
		if ns == nil {
			ns = []status.Neigh{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Neighs []status.Neigh `json:"neighs"`
		}{ns})
	}
	for _, n := range ns {
		fmt.Fprintln(w, n)
	}
	return nil
}

// printPeers prints a multipoint tunnel's neighbours with their counters
// (`-s tunnel show`).
func printPeers(w io.Writer, ps []status.Peer) {
	for _, p := range ps {
		learned := ""
		if p.Learned {
			learned = " learned"
		}
		fmt.Fprintf(w, "    neighbour %s%s: %v\n", p.LLAddr, learned, p.Dsts)
		s := p.Stats
		fmt.Fprintf(w, "      RX: packets %d bytes %d errors %d  TX: packets %d bytes %d\n", s.RxPackets, s.RxBytes, s.RxErrors, s.TxPackets, s.TxBytes)
	}
}
