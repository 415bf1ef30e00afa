package config

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// LoadFile reads a config file: one tunnel a line, in the words of
// `gretun tunnel add` after "tunnel add" —
//
//	# router A
//	netb mode gre remote 192.0.2.2 local 192.0.2.1 ttl 255 key 42
//
// A line may also start with "tunnel" or "tunnel add". Blank lines and
// comments (#) are skipped. An error names the file and line.
func LoadFile(path string) ([]Tunnel, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Load(path, f)
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
