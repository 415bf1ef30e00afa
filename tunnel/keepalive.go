package tunnel

// KeepaliveStatus is what `tunnel show` prints about keepalives.
type KeepaliveStatus struct {
	State string `json:"state"`
}

// keepaliveReply handles a returned keepalive (GRE protocol type 0).
func (t *Tunnel) keepaliveReply(payload []byte) {
	t.counters.drop(0)
}
