package tunnel

import (
	"fmt"
	"sort"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/status"
)

// Neigh is a line of `neigh show`.
type Neigh = status.Neigh

// multipoint returns the named tunnel when it is multipoint; e.mu is held.
func (e *Engine) multipoint(name string) (*Tunnel, error) {
	t, ok := e.tunnels[name]
	switch {
	case !ok:
		return nil, fmt.Errorf("no tunnel named %q", name)
	case t.nb == nil:
		return nil, t.cfg.Load().CheckNeigh(config.Neigh{Dev: name})
	}
	return t, nil
}

// NeighAdd configures a neighbour of a multipoint tunnel, as `ip neigh
// add` (replace false: an entry for the destination must not exist) or
// `ip neigh replace`. On error nothing changed.
func (e *Engine) NeighAdd(n config.Neigh, replace bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.multipoint(n.Dev)
	if err != nil {
		return err
	}
	return t.addNeigh(n, replace)
}

// NeighDel removes a neighbour entry, configured or learnt.
func (e *Engine) NeighDel(n config.Neigh) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, err := e.multipoint(n.Dev)
	if err != nil {
		return err
	}
	return t.delNeigh(n)
}

// Neighs lists the neighbours of the named multipoint tunnel, or of all
// of them when dev is "".
func (e *Engine) Neighs(dev string) ([]Neigh, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if dev != "" {
		t, err := e.multipoint(dev)
		if err != nil {
			return nil, err
		}
		return t.neighList(), nil
	}
	var out []Neigh
	for _, t := range e.tunnels {
		if t.nb != nil {
			out = append(out, t.neighList()...)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Dev < out[j].Dev })
	return out, nil
}

// SetNeighs makes the configured neighbours of every multipoint tunnel
// exactly those in ns (learnt ones stay), as a reloaded config file says.
// Every neighbour is checked before any tunnel changes.
func (e *Engine) SetNeighs(ns []config.Neigh) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	byDev := map[string][]config.Neigh{}
	for _, n := range ns {
		t, err := e.multipoint(n.Dev)
		if err == nil {
			err = t.cfg.Load().CheckNeigh(n)
		}
		if err != nil {
			return fmt.Errorf("neigh %s: %v", n, err)
		}
		byDev[n.Dev] = append(byDev[n.Dev], n)
	}
	for name, t := range e.tunnels {
		if t.nb != nil {
			if err := t.setNeighs(byDev[name]); err != nil {
				return fmt.Errorf("neigh dev %s: %v", name, err)
			}
		}
	}
	return nil
}
