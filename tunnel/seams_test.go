package tunnel_test

import (
	"strings"
	"testing"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// ethernetDevice is a fake device carrying Ethernet frames (a TAP), which
// the engine does not carry yet.
type ethernetDevice struct{ *tunneltest.Device }

func (ethernetDevice) Payload() tunnel.Payload { return tunnel.PayloadEthernet }

// TestEngineRefusesEthernetDevice: a device whose packets are not IP is
// refused with a one-line error and closed, and no tunnel is left.
func TestEngineRefusesEthernetDevice(t *testing.T) {
	var dev *tunneltest.Device
	a := newSide(t, tunneltest.NewWire(), addrA, 8, func(env *tunnel.Env) {
		create := env.CreateDevice
		env.CreateDevice = func(name string, mtu int) (tunnel.Device, error) {
			d, err := create(name, mtu)
			dev = d.(*tunneltest.Device)
			return ethernetDevice{dev}, err
		}
	})
	c, err := config.Parse("t0", strings.Fields("mode gre remote 192.0.2.2 local 192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.e.Add(c); err == nil || !strings.Contains(err.Error(), "carries IP packets") {
		t.Fatalf("Add over an Ethernet device: %v", err)
	}
	if names := a.e.Names(); len(names) != 0 {
		t.Errorf("tunnels left: %v", names)
	}
	if _, err := dev.Write([][]byte{make([]byte, 20)}, 0); err == nil {
		t.Error("the refused device was left open")
	}
}
