package kpeer_test

import (
	"os"
	"strings"
	"testing"
)

func TestScratch(t *testing.T) {
	n, ns, g := bootGuest(t)
	for _, c := range strings.Split(os.Getenv("KCMDS"), ";;") {
		if strings.HasPrefix(c, "H:") {
			out, err := n.Exec(ns, "sh", "-c", c[2:])
			t.Logf("HOST %s\n%s(err=%v)", c[2:], out, err)
			continue
		}
		out, err := g.Run(c)
		t.Logf("GUEST %s\n%s(err=%v)", c, out, err)
	}
}
