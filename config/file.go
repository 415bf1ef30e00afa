package config

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// LoadFile reads a config file: one tunnel a line, in the words of
// `gretun tunnel add` after "tunnel add" —
//
//	# router A
//	netb mode gre remote 192.0.2.2 local 192.0.2.1 ttl 255 key 42
//
// A line may also start with "tunnel" or "tunnel add". Blank lines and
// comments (#) are skipped. An error names the file and line.
//
// Only a regular file is read: a FIFO or a device could block the reader
// (the daemon's signal handling with it) or never end. It is opened
// without blocking and refused by its type before anything is read.
func LoadFile(path string) ([]Tunnel, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, fileKind(fi.Mode()))
	}
	return Load(path, f)
}

// fileKind names the type of a file that is not regular.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "type " + m.Type().String()
}

// Load parses a config from r; name is used in error messages.
func Load(name string, r io.Reader) ([]Tunnel, error) {
	var tunnels []Tunnel
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	line := 1
	for ; sc.Scan(); line++ {
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		words := strings.Fields(text)
		if len(words) > 0 && words[0] == "tunnel" {
			words = words[1:]
			if len(words) > 0 && words[0] == "add" {
				words = words[1:]
			}
		}
		if len(words) == 0 {
			continue
		}
		t, err := Parse(words[0], words[1:])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %v", name, line, words[0], err)
		}
		if prev, dup := seen[t.Name]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate tunnel name %q (first on line %d)", name, line, t.Name, prev)
		}
		seen[t.Name] = line
		tunnels = append(tunnels, t)
	}
	if err := sc.Err(); err != nil {
		// The line the scanner stopped on, e.g. one over its 64 KiB limit.
		return nil, fmt.Errorf("%s:%d: %v", name, line, err)
	}
	return tunnels, nil
}
