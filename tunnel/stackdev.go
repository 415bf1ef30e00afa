package tunnel

import (
	"log/slog"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/stackdev"
)

// createStack starts a `netstack` tunnel's userspace stack and its
// services (stackdev) behind the Device seam.
func createStack(c *config.Tunnel, mtu int, log *slog.Logger) (Device, error) {
	d, err := stackdev.Open(c.Stack, mtu, log)
	if err != nil {
		return nil, err
	}
	return stackDevice{d}, nil
}

// stackDevice is a userspace stack as the engine's Device: IP packets
// with no headroom, no kernel link to bring up, and no carrier for the
// host's routes to follow (keepalives still count and report it).
type stackDevice struct{ *stackdev.Device }

func (stackDevice) Payload() Payload         { return PayloadIP }
func (stackDevice) Headroom() int            { return 0 }
func (d stackDevice) Up(mtu int) error       { return d.SetMTU(mtu) }
func (stackDevice) SetCarrier(up bool) error { return nil }
