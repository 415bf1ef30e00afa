package config

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// File is what a config file configures.
type File struct {
	Tunnels []Tunnel
	Neighs  []Neigh // of the file's multipoint tunnels
}

// ReadFile reads a config file: one tunnel a line, in the words of
// `gretun tunnel add` after "tunnel add" —
//
//	# router A
//	netb mode gre remote 192.0.2.2 local 192.0.2.1 ttl 255 key 42
//	# a hub, and a neighbour of it
//	mg0 mode gre local 192.0.2.1 key 7
//	neigh add 198.51.100.2 lladdr 192.0.2.2 dev mg0
//
// A line may also start with "tunnel" or "tunnel add"; one that starts with
// "neigh" or "neigh add" is a neighbour of a multipoint tunnel defined in
// the file, in the words of `gretun neigh add`. Blank lines and comments
// (#) are skipped. An error names the file and line.
//
// Only a regular file is read: a FIFO or a device could block the reader
// (the daemon's signal handling with it) or never end. It is opened
// without blocking and refused by its type before anything is read.
func ReadFile(path string) (File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return File{}, err
	}
	if !fi.Mode().IsRegular() {
		return File{}, fmt.Errorf("%s: not a regular file (%s)", path, fileKind(fi.Mode()))
	}
	return LoadAll(path, f)
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

// LoadFile reads a config file (ReadFile) and returns its tunnels.
func LoadFile(path string) ([]Tunnel, error) {
	f, err := ReadFile(path)
	return f.Tunnels, err
}

// Load parses a config from r and returns its tunnels; name is used in
// error messages.
func Load(name string, r io.Reader) ([]Tunnel, error) {
	f, err := LoadAll(name, r)
	return f.Tunnels, err
}

// LoadAll parses a config from r: its tunnels and neighbours.
func LoadAll(name string, r io.Reader) (File, error) {
	var f File
	seen := map[string]int{}
	neighs := map[Neigh]int{} // by device and destination
	var neighLines []int
	sc := bufio.NewScanner(r)
	line := 1
	for ; sc.Scan(); line++ {
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		words := strings.Fields(text)
		if len(words) > 0 && words[0] == "neigh" {
			words = words[1:]
			if len(words) > 0 && words[0] == "add" {
				words = words[1:]
			}
			n, err := ParseNeigh(words, false)
			if err != nil {
				return File{}, fmt.Errorf("%s:%d: neigh: %v", name, line, err)
			}
			k := Neigh{Dev: n.Dev, Dst: n.Dst}
			if prev, dup := neighs[k]; dup {
				return File{}, fmt.Errorf("%s:%d: neigh %s dev %s: defined twice (first on line %d)", name, line, n.DstString(), n.Dev, prev)
			}
			neighs[k] = line
			f.Neighs = append(f.Neighs, n)
			neighLines = append(neighLines, line)
			continue
		}
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
			return File{}, fmt.Errorf("%s:%d: %s: %v", name, line, words[0], err)
		}
		if prev, dup := seen[t.Name]; dup {
			return File{}, fmt.Errorf("%s:%d: duplicate tunnel name %q (first on line %d)", name, line, t.Name, prev)
		}
		seen[t.Name] = line
		f.Tunnels = append(f.Tunnels, t)
	}
	if err := sc.Err(); err != nil {
		// The line the scanner stopped on, e.g. one over its 64 KiB limit.
		return File{}, fmt.Errorf("%s:%d: %v", name, line, err)
	}
	for i, n := range f.Neighs {
		if err := CheckNeigh(f.Tunnels, n); err != nil {
			return File{}, fmt.Errorf("%s:%d: neigh %s: %v", name, neighLines[i], n.DstString(), err)
		}
	}
	return f, nil
}

// CheckNeigh checks that n belongs to a multipoint tunnel among tunnels
// and has an lladdr of its underlay's family.
func CheckNeigh(tunnels []Tunnel, n Neigh) error {
	for i := range tunnels {
		if t := &tunnels[i]; t.Name == n.Dev {
			return t.CheckNeigh(n)
		}
	}
	return fmt.Errorf("no tunnel named %q", n.Dev)
}

// CheckNeigh checks that n may be a neighbour of t.
func (t *Tunnel) CheckNeigh(n Neigh) error {
	switch {
	case !t.Multipoint():
		return fmt.Errorf("%s is a point-to-point tunnel (remote %s): neighbours need a tunnel without remote", t.Name, t.Remote)
	case n.LLAddr.IsValid() && n.LLAddr.Is4() != t.Local.Is4():
		return fmt.Errorf("lladdr %s is not of the family of local %s", n.LLAddr, t.Local)
	case n.LLAddr == t.Local:
		return fmt.Errorf("lladdr %s is the tunnel's own local address", n.LLAddr)
	}
	return nil
}
