package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// versionCmd prints what the binary was built from: the module version,
// the VCS revision (with "+dirty" for uncommitted changes, as the go
// command spells them) and its time, and the Go version, all from the
// build information the go command embeds (`go version -m` shows the same).
func versionCmd(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("version: unexpected %q", args[0])
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{GoVersion: runtime.Version()}
	}
	fmt.Fprint(stdout, versionText(bi))
	return nil
}

// versionText formats bi as `gretun version` prints it.
func versionText(bi *debug.BuildInfo) string {
	set := map[string]string{}
	for _, s := range bi.Settings {
		set[s.Key] = s.Value
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	rev := set["vcs.revision"]
	switch {
	case rev == "":
		rev = "unknown (built without VCS information: go build -buildvcs=true in a git checkout)"
	case set["vcs.modified"] == "true":
		rev += "+dirty"
	}
	if t := set["vcs.time"]; t != "" {
		rev += " " + t
	}
	goos, goarch := set["GOOS"], set["GOARCH"]
	if goos == "" {
		goos, goarch = runtime.GOOS, runtime.GOARCH
	}
	return fmt.Sprintf("gretun %s\nrevision %s\ngo %s %s/%s\n", v, rev, bi.GoVersion, goos, goarch)
}
