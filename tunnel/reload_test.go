package tunnel_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// TestEngineReloadAllOrNothing: a reload this host cannot run, whether a
// check finds it before anything is touched (a local address the host does
// not have, a device name another device has) or a device cannot be created
// half way, leaves every tunnel as it was: same configuration, same device.
func TestEngineReloadAllOrNothing(t *testing.T) {
	var mu sync.Mutex
	failTUN := map[string]bool{} // CreateTUN fails once for these names
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8, func(env *tunnel.Env) {
		create := env.CreateDevice
		env.CreateDevice = func(name string, mtu int) (tunnel.Device, error) {
			mu.Lock()
			fail := failTUN[name]
			delete(failTUN, name)
			mu.Unlock()
			if fail {
				return nil, errors.New("no more devices")
			}
			return create(name, mtu)
		}
	})
	parse := func(line string) config.Tunnel {
		t.Helper()
		f := strings.Fields(line)
		c, err := config.Parse(f[0], f[1:])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const end = " remote 192.0.2.2 local 192.0.2.1"
	running := []config.Tunnel{parse("t1 mode gre key 1" + end), parse("t2 mode gre key 2" + end), parse("t3 mode gre key 3 ttl 64" + end)}
	if err := a.e.Reload(running); err != nil {
		t.Fatal(err)
	}
	devs := map[string]tun.Device{}
	for _, c := range running {
		devs[c.Name] = a.dev(c.Name)
	}
	unchanged := func(what string, recreated ...string) {
		t.Helper()
		if got := a.e.Names(); strings.Join(got, " ") != "t1 t2 t3" {
			t.Errorf("%s: tunnels %v, want t1 t2 t3", what, got)
		}
		for _, c := range running {
			if got, _ := a.e.Config(c.Name); got != c {
				t.Errorf("%s: %s is %s, was %s", what, c.Name, got.String(), c.String())
			}
			if a.dev(c.Name) != devs[c.Name] && !strings.Contains(strings.Join(recreated, " "), c.Name) {
				t.Errorf("%s: the device of %s was recreated", what, c.Name)
			}
		}
	}

	for _, tc := range []struct {
		what      string
		want      []config.Tunnel
		setup     func()
		err       string
		recreated []string
	}{
		{what: "a local address not on the host",
			want: []config.Tunnel{parse("t1 mode gre key 1 remote 192.0.2.2 local 192.0.2.9"), parse("t3 mode gre key 3 ttl 32" + end), parse("t4 mode ipip" + end)},
			err:  "not configured"},
		{what: "a device name taken",
			want:  []config.Tunnel{parse("t1 mode gre key 1" + end), parse("t3 mode gre key 3 ttl 32" + end), parse("t4 mode ipip" + end)},
			setup: func() { a.host.Links = map[string]bool{"t4": true} },
			err:   `"t4" already exists`},
		{what: "a new device that cannot be created",
			want:  []config.Tunnel{parse("t1 mode gre key 1" + end), parse("t3 mode gre key 3 ttl 32" + end), parse("t5 mode gre key 5" + end), parse("t4 mode ipip" + end)},
			setup: func() { a.host.Links = nil; failTUN["t4"] = true },
			err:   "no more devices"},
		{what: "a device recreated for a new mode that cannot be created",
			want:      []config.Tunnel{parse("t1 mode ipip" + end), parse("t3 mode gre key 3 ttl 32" + end), parse("t4 mode gre key 4" + end)},
			setup:     func() { failTUN["t1"] = true },
			err:       "no more devices",
			recreated: []string{"t1"}},
	} {
		if tc.setup != nil {
			mu.Lock()
			tc.setup()
			mu.Unlock()
		}
		err := a.e.Reload(tc.want)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: reload returned %v, want an error with %q", tc.what, err, tc.err)
		}
		unchanged(tc.what, tc.recreated...)
		devs["t1"] = a.dev("t1")
	}
	// And a reload the host can run still runs.
	if err := a.e.Reload([]config.Tunnel{parse("t1 mode ipip" + end), parse("t3 mode gre key 3 ttl 32" + end)}); err != nil {
		t.Fatal(err)
	}
	if got := a.e.Names(); strings.Join(got, " ") != "t1 t3" {
		t.Errorf("after a good reload: %v", got)
	}
}
