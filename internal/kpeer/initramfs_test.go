package kpeer

import (
	"bytes"
	"strconv"
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
