package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// gretun runs the command line in process and returns its exit status and
// output.
func gretun(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestHelp: `gretun help COMMAND` and `gretun COMMAND -h` print the same
// help, which lists that command's options.
func TestHelp(t *testing.T) {
	for cmd, want := range map[string][]string{
		"daemon":  {"usage: gretun", "daemon", "-c FILE", "SIGHUP", "-metrics ADDR"},
		"run":     {"run [-metrics ADDR] NAME mode gre|gretap|ipip|sit|ip6gre", "encaplimit", "netstack ADDR/PREFIX", "socks5", "-metrics ADDR", "keepalive [PERIOD [RETRIES]]", "underlay raw|packet", "clamp-mss"},
		"tunnel":  {"tunnel add NAME", "tunnel change NAME", "tunnel del NAME", "tunnel show", "ikey K okey K", "nokeepalive", "learn [N]"},
		"demo":    {"usage: gretun demo"},
		"neigh":   {"neigh add INNER lladdr OUTER dev NAME", "neigh replace", "neigh del INNER dev NAME", "neigh show [dev NAME]"},
		"capture": {"capture NAME", "-w FILE", "-c COUNT", "-inner", "pcapng", "drop reason"},
		"version": {"usage: gretun version", "VCS revision"},
		"help":    {"usage: gretun help"},
		"bench":   {"-duration", "-rounds", "-only"},
	} {
		code, help, stderr := gretun("help", cmd)
		if code != 0 || stderr != "" {
			t.Errorf("gretun help %s: exit %d, stderr %q", cmd, code, stderr)
		}
		for _, w := range want {
			if !strings.Contains(help, w) {
				t.Errorf("gretun help %s does not list %q:\n%s", cmd, w, help)
			}
		}
		if cmd == "bench" {
			continue // bench's own flags print its help (to stderr, exit 2)
		}
		for _, args := range [][]string{{cmd, "-h"}, {cmd, "--help"}} {
			if code, out, _ := gretun(args...); code != 0 || out != help {
				t.Errorf("gretun %s: exit %d, output differs from gretun help %s:\n%s", strings.Join(args, " "), code, cmd, out)
			}
		}
	}
	// Aliases and -h after the command's words.
	_, tunnelHelp, _ := gretun("help", "tunnel")
	for _, args := range [][]string{{"tun", "-h"}, {"tunnel", "add", "-h"}, {"tunnel", "add", "x", "mode", "gre", "-h"}, {"help", "tunnel", "add"}} {
		if code, out, _ := gretun(args...); code != 0 || out != tunnelHelp {
			t.Errorf("gretun %s: exit %d, not the tunnel help: %q", strings.Join(args, " "), code, out)
		}
	}
	if code, _, stderr := gretun("help", "nosuch"); code != 1 || !strings.Contains(stderr, `unknown command "nosuch"`) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("gretun help nosuch: exit %d, stderr %q", code, stderr)
	}
	if code, out, _ := gretun("help"); code != 0 || !strings.Contains(out, "gretun version") || !strings.Contains(out, "gretun help [COMMAND]") {
		t.Errorf("gretun help: exit %d, usage %q", code, out)
	}
}

// TestHelpListsEveryWord: every word the config parser takes for a
// tunnel (the cases of config's Tunnel.Apply and its netstack words) is
// in the options tunnel add, change and run list, but for the aliases
// iproute2 also takes.
func TestHelpListsEveryWord(t *testing.T) {
	aliases := map[string]bool{"hlim": true, "dsfield": true, "inherit-df": true}
	fset := token.NewFileSet()
	var words []string
	for _, f := range []string{"../../config/config.go", "../../config/stack.go"} {
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl: // Apply's own switch on the word, not its values'
				if n.Name.Name != "Apply" {
					return true
				}
				ast.Inspect(n.Body, func(m ast.Node) bool {
					sw, ok := m.(*ast.SwitchStmt)
					if !ok {
						return true
					}
					if id, ok := sw.Tag.(*ast.Ident); !ok || id.Name != "w" {
						return true
					}
					for _, st := range sw.Body.List {
						for _, e := range st.(*ast.CaseClause).List {
							if lit, ok := e.(*ast.BasicLit); ok {
								words = append(words, strings.Trim(lit.Value, `"`))
							}
						}
					}
					return false
				})
				return false
			case *ast.ValueSpec: // stackWords
				if n.Names[0].Name == "stackWords" {
					ast.Inspect(n, func(m ast.Node) bool {
						if kv, ok := m.(*ast.KeyValueExpr); ok {
							words = append(words, strings.Trim(kv.Key.(*ast.BasicLit).Value, `"`))
						}
						return true
					})
				}
			}
			return true
		})
	}
	if len(words) < 40 {
		t.Fatalf("found only %d words in config: %v", len(words), words)
	}
	_, help, _ := gretun("help", "tunnel")
	listed := map[string]bool{}
	for _, f := range strings.FieldsFunc(help, func(r rune) bool { return strings.ContainsRune(" \n|[]", r) }) {
		listed[f] = true
	}
	for _, w := range words {
		if !listed[w] && !aliases[w] {
			t.Errorf("gretun help tunnel does not list %q", w)
		}
	}
}

func TestVersionText(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	if got, want := versionText(bi), "gretun v1.2.3\nrevision 0123abcd+dirty 2026-12-01T10:00:00Z\ngo go1.99.1 linux/arm64\n"; got != want {
		t.Errorf("versionText:\n%s\nwant\n%s", got, want)
	}
	got := versionText(&debug.BuildInfo{GoVersion: "go1.99.1"})
	if !strings.HasPrefix(got, "gretun (devel)\nrevision unknown") {
		t.Errorf("versionText without VCS information: %q", got)
	}
}

// TestVersionFromBuild builds gretun from a git repository holding this
// source tree, with VCS stamping, and checks that `gretun version` names
// that commit and the Go that built it.
func TestVersionFromBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gretun")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, err := exec.Command("git", "-C", root, "ls-files", "-co", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	dir := t.TempDir()
	for _, f := range strings.Fields(string(files)) {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue // deleted in the work tree
		}
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "snapshot")
	head := git("rev-parse", "HEAD")
	bin := filepath.Join(t.TempDir(), "gretun")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/gretun")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	gover, _ := exec.Command("go", "env", "GOVERSION").Output()
	for _, want := range []string{"revision " + head + " ", "go " + strings.TrimSpace(string(gover)) + " "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("gretun version does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "+dirty") {
		t.Errorf("a build of a clean checkout says +dirty:\n%s", out)
	}
}
