package kpeer

import (
	"bytes"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// readCpio parses a newc archive back into its files.
func readCpio(t *testing.T, b []byte) []cpioFile {
	t.Helper()
	var files []cpioFile
	for off := 0; ; {
		if len(b) < off+110 || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad newc header at %d", off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("bad header field %d at %d", i, off)
			}
			return uint32(v)
		}
		mode, size, rmaj, rmin, namesize := field(1), int(field(6)), field(9), field(10), int(field(11))
		name := string(b[off+110 : off+110+namesize-1])
		off += 110 + namesize
		off += pad4(off)
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return files
		}
		files = append(files, cpioFile{name: name, mode: mode, rdevMajor: rmaj, rdevMinor: rmin, data: b[off : off+size]})
		off += size
		off += pad4(off)
	}
}

func TestWriteCpio(t *testing.T) {
	in := []cpioFile{
		{name: "init", mode: modeFile | 0o755, data: []byte("#!/bin/sh\n")},
		{name: "dev", mode: modeDir | 0o755},
		{name: "dev/console", mode: modeChar | 0o600, rdevMajor: 5, rdevMinor: 1},
		{name: "odd", mode: modeFile | 0o644, data: []byte("abc")},
		{name: "empty", mode: modeFile | 0o644},
	}
	var buf bytes.Buffer
	if err := writeCpio(&buf, in); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Fatalf("archive length %d is not a multiple of 4", buf.Len())
	}
	out := readCpio(t, buf.Bytes())
	want := map[string]cpioFile{}
	for _, f := range in {
		want[f.name] = f
	}
	if len(out) != len(in) {
		t.Fatalf("read back %d files, wrote %d", len(out), len(in))
	}
	for i, f := range out {
		w, ok := want[f.name]
		if !ok || w.mode != f.mode || w.rdevMajor != f.rdevMajor || w.rdevMinor != f.rdevMinor || !bytes.Equal(w.data, f.data) {
			t.Errorf("file %q read back as %+v, wrote %+v", f.name, f, w)
		}
		// Parents come before their children.
		if i > 0 && out[i-1].name > f.name {
			t.Errorf("%q after %q", f.name, out[i-1].name)
		}
	}
}

func TestModuleName(t *testing.T) {
	for file, want := range map[string]string{
		"ip_gre.ko": "ip_gre", "virtio-net.ko.xz": "virtio_net", "x.ko.zst": "x", "y.ko.gz": "y",
	} {
		if got, ok := moduleName(file); !ok || got != want {
			t.Errorf("moduleName(%q) = %q, %v; want %q", file, got, ok, want)
		}
	}
	for _, file := range []string{"modules.dep", "ip_gre.ko.bak", ""} {
		if _, ok := moduleName(file); ok {
			t.Errorf("moduleName(%q) accepted a non-module", file)
		}
	}
}

func TestResolveModulesErrors(t *testing.T) {
	if _, _, err := resolveModules(map[string]string{}, []string{"ip_gre"}); err == nil {
		t.Error("resolving a module missing from the index succeeded")
	}
	if _, err := moduleDepends([]byte("not an ELF file")); err == nil {
		t.Error("moduleDepends of garbage succeeded")
	}
}

func TestParseLdd(t *testing.T) {
	out := "\tlinux-vdso.so.1 (0x00007ffd)\n" +
		"\tlibmnl.so.0 => /lib/x86_64-linux-gnu/libmnl.so.0 (0x00007f05)\n" +
		"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f04)\n" +
		"\t/lib64/ld-linux-x86-64.so.2 (0x00007f06)\n"
	got, err := parseLdd(out)
	want := []string{"/lib/x86_64-linux-gnu/libmnl.so.0", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
	if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("parseLdd = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"", "\tnot a dynamic executable\n", "\tlibx.so.1 => not found\n\t/lib64/ld-linux-x86-64.so.2 (0x1)\n"} {
		if got, err := parseLdd(bad); err == nil {
			t.Errorf("parseLdd(%q) = %q, want an error", bad, got)
		}
	}
}

func TestWithParents(t *testing.T) {
	files := withParents([]cpioFile{
		{name: "lib", mode: modeDir | 0o755},
		{name: "lib/x86_64-linux-gnu/libc.so.6", mode: modeFile | 0o755},
		{name: "usr/sbin/ip", mode: modeFile | 0o755},
	})
	var dirs []string
	for _, f := range files {
		if f.mode&modeDir != 0 {
			dirs = append(dirs, f.name)
		}
	}
	sort.Strings(dirs)
	if got := strings.Join(dirs, " "); got != "lib lib/x86_64-linux-gnu usr usr/sbin" {
		t.Fatalf("directories %q", got)
	}
}

// The cached archive's name changes with any file's contents, so a new
// host ip (or library) is never booted from a stale archive.
func TestInitramfsName(t *testing.T) {
	files := []cpioFile{{name: "usr/sbin/ip", mode: modeFile | 0o755, data: []byte("ip v1")}}
	a := initramfsName(files)
	files[0].data = []byte("ip v2")
	if b := initramfsName(files); a == b {
		t.Fatalf("initramfsName unchanged (%s) after the contents changed", a)
	}
}

// The archive holds the host's ip and the libraries it needs, at the paths
// ldd names.
func TestHostIP(t *testing.T) {
	files, err := hostIP()
	if err != nil {
		t.Skip(err)
	}
	names := map[string]bool{}
	for _, f := range files {
		names[f.name] = true
		if len(f.data) == 0 {
			t.Errorf("%s is empty", f.name)
		}
	}
	if !names[strings.TrimPrefix(GuestIP, "/")] {
		t.Errorf("no %s in %v", GuestIP, names)
	}
	loader := false
	for n := range names {
		loader = loader || strings.Contains(n, "ld-linux")
	}
	if !loader {
		t.Errorf("no dynamic loader in %v", names)
	}
}

// Options.Programs: each program at its own path with its libraries, a
// library two programs share only once.
func TestHostPrograms(t *testing.T) {
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip(err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip(err)
	}
	progs := []string{ip, sh}
	files, err := hostPrograms(progs)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, f := range files {
		count[f.name]++
	}
	for _, p := range progs {
		if count[strings.TrimPrefix(p, "/")] != 1 {
			t.Errorf("%s: %d copies in %v", p, count[strings.TrimPrefix(p, "/")], count)
		}
	}
	libc := 0
	for name, n := range count {
		if n != 1 {
			t.Errorf("%s is in the archive %d times", name, n)
		}
		if strings.Contains(name, "libc.so") {
			libc++
		}
	}
	if libc != 1 {
		t.Errorf("want libc once, got %d names with libc.so in %v", libc, count)
	}
}
