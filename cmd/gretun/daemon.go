package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/control"
	"github.com/gretun/gretun/metrics"
	"github.com/gretun/gretun/privs"
	"github.com/gretun/gretun/tunnel"
)

// daemonCmd runs the engine and the control socket until SIGTERM or SIGINT;
// SIGHUP reloads the config file.
func daemonCmd(g globals, args []string, stderr io.Writer) error {
	var file, metricsAddr string
	for len(args) > 0 {
		switch args[0] {
		case "-c", "--config":
			if len(args) < 2 {
				return errors.New("daemon: missing file after -c")
			}
			file, args = args[1], args[2:]
		case "-metrics", "--metrics":
			if len(args) < 2 {
				return errors.New("daemon: missing address after -metrics")
			}
			metricsAddr, args = args[1], args[2:]
		default:
			return fmt.Errorf("daemon: unknown option %q", args[0])
		}
	}
	var conf config.File
	if file != "" {
		var err error
		if conf, err = config.ReadFile(file); err != nil {
			return err
		}
	}
	tunnels := conf.Tunnels
	if err := checkCapabilities(tunnels...); err != nil {
		return err
	}
	// Catch the signals before creating anything: a SIGTERM that arrives
	// while the tunnels are being set up must still remove them.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sig)
	l, err := control.Listen(g.socket)
	if err != nil {
		return err
	}
	defer startCPUProfile()() // until the devices are removed
	log := newLogger(stderr)
	e := tunnel.New(tunnel.SystemEnv(), log)
	defer e.Close()
	defer writeHeapProfile() // while the tunnels still exist
	if metricsAddr != "" {
		m, err := metrics.Listen(metricsAddr, e, log)
		if err != nil {
			l.Close()
			return fmt.Errorf("daemon: %v", err)
		}
		defer m.Close()
	}
	for _, c := range tunnels {
		if err := e.Add(c); err != nil {
			e.Close()
			l.Close()
			return fmt.Errorf("%s: tunnel %s: %v", file, c.Name, err)
		}
	}
	if err := e.SetNeighs(conf.Neighs); err != nil {
		e.Close()
		l.Close()
		return fmt.Errorf("%s: %v", file, err)
	}
	go control.Serve(l, func(r control.Request) control.Response { return handle(e, r) }, log)
	defer l.Close()
	if err := dropCapabilities(log); err != nil {
		return err
	}
	log.Info("gretun daemon running", "socket", l.Addr().String(), "config", file, "tunnels", len(tunnels), "metrics", metricsAddr)

	// Reloads run on their own goroutine: the signal loop never waits for
	// a file or for the engine, so SIGTERM is always acted on. A SIGHUP
	// during a reload queues one more, which reads the file as it is then.
	reload := make(chan struct{}, 1)
	defer close(reload)
	go func() {
		for range reload {
			reloadFile(e, file, log)
		}
	}()
	for s := range sig {
		if s != syscall.SIGHUP {
			log.Info("stopping: removing every device", "signal", s.String())
			return nil
		}
		if file == "" {
			log.Warn("SIGHUP: no config file to reload (start with -c FILE)")
			continue
		}
		select {
		case reload <- struct{}{}:
		default: // one is queued already
		}
	}
	return nil
}

// reloadFile makes the engine run what file says, or, when the file or
// the host refuses it, keeps the running configuration as it is.
func reloadFile(e *tunnel.Engine, file string, log *slog.Logger) {
	f, err := config.ReadFile(file)
	want := f.Tunnels
	if err == nil && len(want) > 0 {
		err = checkCapabilities(want...)
	}
	if err == nil {
		err = e.Reload(want)
	}
	if err == nil {
		// The file's neighbours belong to its tunnels (ReadFile checked
		// that), which now run: this cannot be refused.
		err = e.SetNeighs(f.Neighs)
	}
	if err != nil {
		log.Error("reload refused, keeping the running configuration", "err", err.Error())
		return
	}
	log.Info("configuration reloaded", "config", file, "tunnels", len(want))
}

// runCmd serves one tunnel in the foreground until SIGTERM or SIGINT, or
// until it is deleted through the control socket.
func runCmd(g globals, args []string, stderr io.Writer) error {
	var metricsAddr string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-metrics", "--metrics":
			if len(args) < 2 {
				return errors.New("run: missing address after -metrics")
			}
			metricsAddr, args = args[1], args[2:]
		default:
			return fmt.Errorf("run: unknown option %q", args[0])
		}
	}
	if len(args) == 0 {
		return errors.New("run: missing tunnel name")
	}
	c, err := config.Parse(args[0], args[1:])
	if err != nil {
		return fmt.Errorf("run %s: %v", args[0], err)
	}
	if err := checkCapabilities(c); err != nil {
		return err
	}
	// As in the daemon: catch the signals before the device exists.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	log := newLogger(stderr)
	e := tunnel.New(tunnel.SystemEnv(), log)
	defer e.Close()
	if metricsAddr != "" {
		m, err := metrics.Listen(metricsAddr, e, log)
		if err != nil {
			return fmt.Errorf("run %s: %v", c.Name, err)
		}
		defer m.Close()
	}
	// Serve the control socket too, when free, so `gretun -s tunnel show`
	// works against a foreground tunnel; a daemon already there wins. It
	// listens before the device exists, so whoever sees the device can ask
	// about it: a request during Add waits for it under the engine's lock.
	// `tunnel del` of the last tunnel ends the process, as its device is gone.
	deleted := make(chan struct{}, 1)
	served := make(chan struct{})
	var l net.Listener
	if l, err = control.Listen(g.socket); err == nil {
		defer l.Close()
		go func() {
			defer close(served)
			control.Serve(l, func(r control.Request) control.Response {
				resp := handle(e, r)
				if r.Op == "del" && resp.Error == "" && len(e.Names()) == 0 {
					select {
					case deleted <- struct{}{}:
					default:
					}
				}
				return resp
			}, log)
		}()
	} else {
		log.Debug("control socket not served", "err", err)
	}
	if err := e.Add(c); err != nil {
		return fmt.Errorf("run %s: %v", c.Name, err)
	}
	defer startProfile()()
	if err := dropCapabilities(log); err != nil {
		return fmt.Errorf("run %s: %v", c.Name, err)
	}
	select {
	case <-sig:
		log.Info("stopping: removing the device", "tunnel", c.Name)
	case <-deleted:
		log.Info("tunnel deleted: stopping", "tunnel", c.Name)
		l.Close()
		<-served // the answer to `tunnel del` is sent
	}
	return nil
}

// checkCapabilities names what is missing for tunnels before anything is
// created (none given: nothing, so a daemon started without tunnels runs
// with no capability at all and serves netstack tunnels inside UDP):
// CAP_NET_ADMIN for TUN devices, which netstack tunnels do without, and
// CAP_NET_RAW for the raw
// sockets of GRE and IPIP straight over IP (encap fou needs none, but for
// the encapsulation limit over IPv6: config.NeedsNetRaw). The daemon
// checks again for every tunnel added, changed or reloaded: a UDP socket
// would open without CAP_NET_RAW and then fail every send.
func checkCapabilities(tunnels ...config.Tunnel) error {
	needAdmin, raw := false, false
	for _, c := range tunnels {
		needAdmin = needAdmin || c.Stack == nil
		raw = raw || c.NeedsNetRaw()
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %v", err)
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	var missing []string
	if needAdmin && !has(unix.CAP_NET_ADMIN) {
		missing = append(missing, "CAP_NET_ADMIN")
	}
	if raw && !has(unix.CAP_NET_RAW) {
		missing = append(missing, "CAP_NET_RAW")
	}
	hint := "run as root"
	if raw {
		hint += ", or use encap fou, which needs no CAP_NET_RAW (over IPv6 with encaplimit none)"
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("missing capability %s (%s)", missing[0], hint)
	}
	return fmt.Errorf("missing capabilities %s and %s (%s)", missing[0], missing[1], hint)
}

// dropCapabilities keeps only CAP_NET_ADMIN and CAP_NET_RAW once the
// process is set up (package privs): what adding tunnels, reloads,
// keepalives, metrics and capture need. A binary built with cgo cannot
// drop them from all its threads: it says so and goes on.
func dropCapabilities(log *slog.Logger) error {
	err := privs.Drop()
	if errors.Is(err, privs.ErrCgo) {
		log.Warn(err.Error())
		return nil
	}
	if err != nil {
		return fmt.Errorf("dropping capabilities: %v", err)
	}
	log.Debug("capabilities dropped: CAP_NET_ADMIN and CAP_NET_RAW kept")
	return nil
}

func newLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("GRETUN_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
