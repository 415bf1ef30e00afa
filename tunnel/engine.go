// Package tunnel is gretun's engine: the table of tunnels, the goroutines
// that move packets between TUN devices and the raw sockets, and the
// counters. Each tunnel owns a TUN device, an encapsulator and a receive
// policy; one raw socket per family and protocol serves all tunnels, and received
// packets are demultiplexed, as the kernel does, by (protocol, outer source,
// outer destination, GRE key).
//
// The engine does not parse command lines or talk to users: cmd/gretun and
// control do. Wire formats live in encap and decap.
package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/decap"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/status"
)

// demuxKey identifies the tunnel an outer packet belongs to.
type demuxKey struct {
	proto    uint8
	port     uint16     // the local UDP port of encap fou, 0 straight over IP
	src, dst netip.Addr // outer source = tunnel remote, destination = tunnel local
	key      uint32
	hasKey   bool
}

// keysOf are the demultiplexing keys of c's packets, one per outer
// protocol: mode any's come as 41 (IPv6 inside) and 4 (IPv4).
func keysOf(c *config.Tunnel) []demuxKey {
	k := demuxKey{port: c.LocalPort(), src: c.Remote, dst: c.Local}
	if c.HasIKey {
		k.key, k.hasKey = c.IKey, true
	}
	protos := c.Protos()
	ks := make([]demuxKey, len(protos), 2)
	for i, p := range protos {
		ks[i] = k
		ks[i].proto = p
	}
	return ks
}

// exclusiveKeys are the keys no other tunnel may have beside c: its own,
// and for ip6ip6 and ipip6 the other mode's too, as Linux allows one
// ip6tnl device per address pair whatever its mode (mode any has both
// keys of its own).
func exclusiveKeys(c *config.Tunnel) []demuxKey {
	ks := keysOf(c)
	switch c.Mode {
	case config.ModeIP6IP6, config.ModeIPIP6:
		other := ks[0]
		other.proto = header.ProtoIPv6 + header.ProtoIPIP - other.proto
		ks = append(ks, other)
	}
	return ks
}

// Engine runs many tunnels in one process.
type Engine struct {
	env Env
	log *slog.Logger

	mu      sync.Mutex // serialises Add, Del, Change, Close
	tunnels map[string]*Tunnel
	socks   map[UnderlayKey]*socket
	closed  bool

	demux table // every running tunnel by its key; read by the receive loops and the underlay watchers
	// asymmetric counts the tunnels whose output key differs from their
	// input key; while there are none, an ICMP error finds its tunnel in
	// demux instead of comparing itself with every tunnel.
	asymmetric atomic.Int64

	watchCancel context.CancelFunc
	watchers    sync.WaitGroup
	addrsDirty  chan struct{} // see watchAddrs

	namesMu sync.Mutex
	names   map[string]*Tunnel // devices we create: nil while being created

	unmatched counters // drops that belong to no tunnel
}

// New returns an engine that reaches the host through env.
func New(env Env, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.Default()
	}
	return &Engine{env: env, log: log, tunnels: map[string]*Tunnel{}, socks: map[UnderlayKey]*socket{}, names: map[string]*Tunnel{}}
}

// Add creates the tunnel's TUN device, brings it up and starts serving it.
// On error nothing is left behind.
func (e *Engine) Add(c config.Tunnel) error {
	if err := c.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkUnique(&c, nil); err != nil {
		return err
	}
	return e.add(c)
}

// add does Add's work once c is known to be valid and unique; e.mu is held.
func (e *Engine) add(c config.Tunnel) error {
	if e.closed {
		return errors.New("engine is shutting down")
	}
	if _, dup := e.tunnels[c.Name]; dup {
		return fmt.Errorf("tunnel %q already exists", c.Name)
	}
	sock, err := e.prepare(&c, true)
	if err != nil {
		return err
	}
	// The link watcher follows our kernel devices by name; a userspace
	// stack has none, and a host device of that name is not ours.
	named := c.Stack == nil
	if named {
		e.setName(c.Name, nil)
	}
	t, err := newTunnel(e, c, sock)
	if err != nil {
		e.dropName(c.Name)
		e.closeUnused(underlayOf(&c))
		return err
	}
	e.tunnels[c.Name] = t
	if named {
		e.setName(c.Name, t)
	}
	e.index(&c, t)
	t.start()
	e.startWatchers()
	e.log.Info("tunnel added", "tunnel", c.String(), "mtu", t.MTU())
	return nil
}

// Del stops the tunnel and removes its device.
func (e *Engine) Del(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.del(name)
}

func (e *Engine) del(name string) error {
	t, ok := e.tunnels[name]
	if !ok {
		return fmt.Errorf("no tunnel named %q", name)
	}
	delete(e.tunnels, name)
	e.unindex(t.cfg.Load(), t)
	t.stop()
	e.dropName(name)
	e.closeUnused(underlayOf(t.cfg.Load()))
	e.log.Info("tunnel deleted", "tunnel", name)
	return nil
}

// Change reconfigures a running tunnel in place, keeping its device (and so
// the user's addresses and routes), as `ip tunnel change` does. Like the
// kernel, it does not change a tunnel's mode.
func (e *Engine) Change(c config.Tunnel) error {
	if err := c.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tunnels[c.Name]
	if !ok {
		return fmt.Errorf("no tunnel named %q", c.Name)
	}
	if old := t.cfg.Load().Mode; old != c.Mode {
		return fmt.Errorf("cannot change mode from %s to %s (delete the tunnel and add it again)", old, c.Mode)
	}
	if !t.cfg.Load().SameDevice(&c) {
		return errors.New("cannot change the netstack words of a running tunnel (delete the tunnel and add it again)")
	}
	if t.nb != nil != c.Multipoint() {
		return errors.New("cannot change between a remote and none (point-to-point and multipoint): delete the tunnel and add it again")
	}
	if err := e.checkUnique(&c, map[string]bool{c.Name: true}); err != nil {
		return err
	}
	return e.change(t, c)
}

// change reconfigures t, whose mode c keeps; e.mu is held.
func (e *Engine) change(t *Tunnel, c config.Tunnel) error {
	sock, err := e.prepare(&c, false)
	if err != nil {
		return err
	}
	old := t.cfg.Load()
	if err := t.reconfigure(c, sock); err != nil {
		e.closeUnused(underlayOf(&c))
		return err
	}
	e.unindex(old, t)
	e.index(&c, t)
	e.closeUnused(underlayOf(old))
	e.log.Info("tunnel changed", "tunnel", c.String(), "mtu", t.MTU())
	return nil
}

// Config returns the named tunnel's configuration.
func (e *Engine) Config(name string) (config.Tunnel, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tunnels[name]
	if !ok {
		return config.Tunnel{}, false
	}
	return *t.cfg.Load(), true
}

// Status is what `tunnel show` prints of one tunnel.
type Status = status.Tunnel

// Show returns the status of the named tunnel, or of all when name is "".
func (e *Engine) Show(name string) ([]Status, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Status
	for n, t := range e.tunnels {
		if name == "" || n == name {
			out = append(out, t.status())
		}
	}
	if name != "" && len(out) == 0 {
		return nil, fmt.Errorf("no tunnel named %q", name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Config.Name < out[j].Config.Name })
	return out, nil
}

// Unmatched returns the drops of packets that belong to no tunnel.
func (e *Engine) Unmatched() Stats { return e.unmatched.snapshot() }

// Names lists the tunnels.
func (e *Engine) Names() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	names := make([]string, 0, len(e.tunnels))
	for n := range e.tunnels {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Reload makes the running tunnels match want: it adds the new ones,
// deletes the ones no longer wanted (also those added on the command line)
// and changes the ones whose configuration differs, leaving the others
// untouched; a tunnel whose mode or netstack words change is deleted and
// added again.
//
// It is all or nothing: a want that is invalid as a whole (two tunnels with
// one name or one demultiplexing key) or that this host cannot run (a local
// address it does not have, a device name taken by another device, a socket
// it cannot open) changes nothing. What is left to fail (creating a device,
// setting its MTU) is undone: changes are reverted, added tunnels removed,
// and tunnels deleted for a new mode added back. Unwanted tunnels are
// deleted last, once everything else succeeded.
func (e *Engine) Reload(want []config.Tunnel) error {
	names := map[string]bool{}
	keys := map[demuxKey]string{}
	for i := range want {
		c := &want[i]
		if err := c.Validate(); err != nil {
			return fmt.Errorf("tunnel %s: %v", c.Name, err)
		}
		if names[c.Name] {
			return fmt.Errorf("tunnel %s: defined twice", c.Name)
		}
		names[c.Name] = true
		for _, k := range exclusiveKeys(c) {
			if other, dup := keys[k]; dup {
				return fmt.Errorf("tunnels %s and %s have the same endpoints and key", other, c.Name)
			}
		}
		for _, k := range keysOf(c) {
			keys[k] = c.Name
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("engine is shutting down")
	}
	// Sockets checkHost opened for tunnels that did not come, and those
	// of tunnels moved or deleted, are closed whatever the outcome.
	defer func() {
		for k := range e.socks {
			e.closeUnused(k)
		}
	}()
	if err := e.checkHost(want); err != nil {
		return err
	}
	var undo []func() error
	fail := func(err error) error {
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil {
				e.log.Error("reload: cannot restore the running configuration", "err", uerr)
				err = errors.Join(err, uerr)
			}
		}
		return err
	}
	// The wanted set was checked as a whole, so changes may trade keys
	// between tunnels without tripping over each other half way.
	for _, c := range want {
		t, ok := e.tunnels[c.Name]
		if !ok || !sameKind(t.cfg.Load(), &c) || t.cfg.Load().Equal(&c) {
			continue
		}
		old := *t.cfg.Load()
		if err := e.change(t, c); err != nil {
			return fail(fmt.Errorf("tunnel %s: %v", c.Name, err))
		}
		undo = append(undo, func() error { return e.change(t, old) })
	}
	// New tunnels, then those recreated for a new mode: only these lose
	// their device if undone.
	for _, recreate := range []bool{false, true} {
		for _, c := range want {
			t, ok := e.tunnels[c.Name]
			if ok != recreate || ok && sameKind(t.cfg.Load(), &c) {
				continue
			}
			if ok {
				old := *t.cfg.Load()
				if err := e.del(c.Name); err != nil {
					return fail(err)
				}
				undo = append(undo, func() error { return e.add(old) })
			}
			if err := e.add(c); err != nil {
				return fail(fmt.Errorf("tunnel %s: %v", c.Name, err))
			}
			undo = append(undo, func() error { return e.del(c.Name) })
		}
	}
	for name := range e.tunnels {
		if !names[name] {
			e.del(name) // cannot fail: the name is there
		}
	}
	return nil
}

// sameKind reports whether a tunnel configured as a can become b in place:
// the same device (config.SameDevice), and a remote in both or in neither.
func sameKind(a, b *config.Tunnel) bool {
	return a.SameDevice(b) && a.Multipoint() == b.Multipoint()
}

// checkHost checks what the host must offer for want's new and changed
// tunnels before Reload touches anything: their local addresses, free
// device names for new tunnels and the sockets they need; e.mu is held.
func (e *Engine) checkHost(want []config.Tunnel) error {
	for _, c := range want {
		t, ok := e.tunnels[c.Name]
		if ok && t.cfg.Load().Equal(&c) {
			continue
		}
		if _, err := e.prepare(&c, !ok); err != nil {
			return fmt.Errorf("tunnel %s: %v", c.Name, err)
		}
	}
	return nil
}

// prepare checks what the host must offer tunnel c (a free device name
// when the tunnel is new, its local address) and returns the socket it
// sends on, opened if need be; e.mu is held. Add, change and Reload's
// checks before it changes anything all go through it.
func (e *Engine) prepare(c *config.Tunnel, isNew bool) (*socket, error) {
	if isNew && c.Stack == nil { // a userspace stack has no kernel name
		if exists, err := e.env.Host.LinkExists(c.Name); err != nil {
			return nil, err
		} else if exists {
			return nil, fmt.Errorf("a device named %q already exists", c.Name)
		}
	}
	if err := e.checkLocal(c.Local); err != nil {
		return nil, err
	}
	if old, ok := e.tunnels[c.Name]; c.Dev != "" && (isNew || !ok || old.cfg.Load().Dev != c.Dev) {
		// iproute2's "Cannot find device": the kernel binds the tunnel
		// to a device that exists when it is named; a change of other
		// words while the device is away goes on.
		if exists, err := e.env.Host.LinkExists(c.Dev); err != nil {
			return nil, err
		} else if !exists {
			return nil, fmt.Errorf("dev %s: no such device", c.Dev)
		}
	}
	if c.FwMark != 0 && e.env.CanMark != nil {
		if err := e.env.CanMark(); err != nil {
			return nil, fmt.Errorf("fwmark needs CAP_NET_ADMIN or CAP_NET_RAW (%v)", err)
		}
	}
	for _, p := range c.Protos()[1:] {
		// Mode any sends on Proto's socket, whose protocol the kernel
		// does not check against the header it is given, but IPv4
		// inside arrives on the raw socket of next header 4.
		k := underlayOf(c)
		k.Proto = p
		if _, err := e.socket(k); err != nil {
			return nil, err
		}
	}
	return e.socket(underlayOf(c))
}

// closeUnused closes underlay k if it is a UDP socket no tunnel uses any
// more (its last tunnel deleted or moved to another port, or the add,
// change or reload that opened it failed), so that its port is free
// again, as the kernel frees an `ip fou` port; e.mu is held. Raw sockets,
// one per protocol and family, stay open until Close.
func (e *Engine) closeUnused(k UnderlayKey) {
	s, ok := e.socks[k]
	if !ok || !k.UDP() {
		return
	}
	for _, t := range e.tunnels {
		if underlayOf(t.cfg.Load()) == k {
			return
		}
	}
	delete(e.socks, k)
	s.close()
}

// maxConcurrentRemovals bounds how many devices Close removes at once.
const maxConcurrentRemovals = 4000

// Close stops every tunnel, removes every device and closes the sockets.
func (e *Engine) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.closed = true
	e.stopWatchers() // the link events of our own removals are only work
	// Removing a network device waits for RCU grace periods in the kernel;
	// removing them all at once lets those waits overlap (and the kernel
	// batch them: 5,000 devices went in 1.5 s, against 3.4 s 256 at a time).
	// Each removal holds an OS thread while it waits in the kernel, so
	// they are bounded well below Go's limit of 10,000 threads, past which
	// the runtime aborts the process (runtime/debug.SetMaxThreads).
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxConcurrentRemovals)
	for name, t := range e.tunnels {
		delete(e.tunnels, name)
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			t.stop()
		})
	}
	wg.Wait()
	e.demux.clear()
	e.asymmetric.Store(0)
	for _, s := range e.socks {
		s.close()
	}
}

// setName records name as one of our devices, with its tunnel once it
// runs (nil while it is being created).
func (e *Engine) setName(name string, t *Tunnel) {
	e.namesMu.Lock()
	defer e.namesMu.Unlock()
	e.names[name] = t
}

func (e *Engine) dropName(name string) {
	e.namesMu.Lock()
	defer e.namesMu.Unlock()
	delete(e.names, name)
}

// packetKey is the demultiplexing key of a received outer packet, the
// counterpart of keysOf.
func packetKey(p *decap.Packet) demuxKey {
	k := demuxKey{proto: p.Proto, port: p.Port, src: p.Src, dst: p.Dst}
	if p.HasKey() {
		k.key, k.hasKey = p.Key, true
	}
	return k
}

// index makes t receive the packets of c's keys; e.mu is held.
func (e *Engine) index(c *config.Tunnel, t *Tunnel) {
	for _, k := range keysOf(c) {
		e.demux.set(k, t)
	}
	if asymmetricKeys(c) {
		e.asymmetric.Add(1)
	}
}

// unindex undoes index(c, t); e.mu is held.
func (e *Engine) unindex(c *config.Tunnel, t *Tunnel) {
	for _, k := range keysOf(c) {
		e.demux.remove(k, t)
	}
	if asymmetricKeys(c) {
		e.asymmetric.Add(-1)
	}
}

// asymmetricKeys reports whether c sends another key than it receives:
// an ICMP error quoting its packets then carries a key the demux table
// does not file it under (see readICMP).
func asymmetricKeys(c *config.Tunnel) bool {
	return c.HasIKey != c.HasOKey || (c.HasIKey && c.IKey != c.OKey)
}

// lookup returns the tunnel whose packets have key k, or nil: the
// point-to-point tunnel with k's source as remote, else the multipoint
// tunnel (no remote) with k's destination and key, as the kernel's
// ip_tunnel_lookup prefers the exact match.
func (e *Engine) lookup(k demuxKey) *Tunnel {
	if t := e.demux.get(k); t != nil {
		return t
	}
	k.src = netip.Addr{}
	return e.demux.get(k)
}

// checkUnique refuses a second tunnel with the same demultiplexing key:
// the kernel could not tell their packets apart either. Tunnels named in
// except are not compared.
func (e *Engine) checkUnique(c *config.Tunnel, except map[string]bool) error {
	for _, k := range exclusiveKeys(c) {
		t := e.demux.get(k)
		if t == nil || except[t.name] {
			continue
		}
		if m := t.cfg.Load().Mode; m != c.Mode {
			return fmt.Errorf("tunnel %q already uses %s remote %s local %s: like Linux, one ip6ip6, ipip6 or any tunnel per address pair", t.name, m, c.RemoteString(), c.Local)
		}
		return fmt.Errorf("tunnel %q already uses %s remote %s local %s with the same key", t.name, c.Mode, c.RemoteString(), c.Local)
	}
	return nil
}

func (e *Engine) checkLocal(a netip.Addr) error {
	ok, err := e.env.Host.HasLocalAddr(a)
	if err != nil {
		return fmt.Errorf("checking local address %s: %v", a, err)
	}
	if !ok {
		return fmt.Errorf("local address %s is not configured on this host", a)
	}
	return nil
}
