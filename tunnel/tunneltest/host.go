package tunneltest

import (
	"net/netip"
	"sync"

	"github.com/gretun/gretun/tunnel"
)

// Host is a fake of tunnel.Host: a set of local addresses and a fixed
// underlay MTU; it records the carrier changes of its Devices.
type Host struct {
	mu       sync.Mutex
	Local    []netip.Addr
	Underlay int
	DevMTU   map[string]int // the underlay MTU out of a device (`dev`), where it differs
	Links    map[string]bool
	Carrier  map[string]bool
}

func (h *Host) HasLocalAddr(a netip.Addr) (bool, error) {
	for _, l := range h.Local {
		if l == a {
			return true, nil
		}
	}
	return false, nil
}

func (h *Host) LinkExists(name string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.Links[name], nil
}

// RouteMTU is the fixed underlay MTU, or DevMTU's for a device the
// tunnel names.
func (h *Host) RouteMTU(_ netip.Addr, out tunnel.Egress) (int, error) {
	if mtu, ok := h.DevMTU[out.Dev]; ok && out.Dev != "" {
		return mtu, nil
	}
	return h.Underlay, nil
}

func (h *Host) setCarrier(name string, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Carrier == nil {
		h.Carrier = map[string]bool{}
	}
	h.Carrier[name] = up
}

// CarrierOf returns the last carrier state set on a device, and whether one was.
func (h *Host) CarrierOf(name string) (up, set bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	up, set = h.Carrier[name]
	return up, set
}
