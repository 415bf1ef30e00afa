package kpeer

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Busybox is the static busybox the guest runs as its whole userland.
const Busybox = "/bin/busybox"

// Markers the guest prints; the host waits for them.
const (
	readyMarker  = "KPEER-READY"
	beginMarker  = "<<<KPEER-BEGIN"
	endMarker    = "<<<KPEER-END"
	insmodFailed = "KPEER-INSMOD-FAILED"
)

// initScript is the guest's /init: it mounts the usual file systems,
// loads the modules and starts loopScript on the command port. The kernel
// console (ttyS0) only carries boot messages.
//
// The loop does not run as PID 1: orphans (background jobs of commands)
// are re-parented to PID 1, and their SIGCHLD would interrupt the loop's
// `read`, which then drops the half-read command line. PID 1 only reaps.
const initScript = `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root
for m in $(cat /lib/modules/order); do
	insmod /lib/modules/$m.ko || echo "` + insmodFailed + ` $m"
done
sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
ip link set lo up
dmesg -n 4
stty -F /dev/ttyS1 raw -echo
sh /loop </dev/ttyS1 >/dev/ttyS1 2>&1 &
while true; do wait; sleep 1; done
`

// loopScript serves the command port (ttyS1): commands arrive one per line
// as "ID BASE64", and their output goes back framed by begin and end
// markers carrying the ID and the exit status, so that kernel messages and
// the late output of timed-out commands are never taken for a command's
// output.
//
// Each command starts with a shell function ip that runs the full iproute2
// (GuestIP): Debian's busybox runs its own applets before searching PATH,
// but a function comes first.
const loopScript = `echo ` + readyMarker + ` $(uname -r)
while read -r id b64; do
	case "$id" in ''|*[!0-9]*) continue;; esac
	{ echo 'ip() { ` + GuestIP + ` "$@"; }'; echo "$b64" | base64 -d; } > /tmp/kpeer-cmd.$id
	sh /tmp/kpeer-cmd.$id </dev/null >/tmp/kpeer-out.$id 2>&1
	rc=$?
	echo "` + beginMarker + ` $id>>>"
	cat /tmp/kpeer-out.$id
	printf '\n` + endMarker + ` %s %d>>>\n' "$id" "$rc"
	rm -f /tmp/kpeer-cmd.$id /tmp/kpeer-out.$id
done
echo "kpeer: command loop ended" >/dev/console
`

// checkStatic reports whether path is a statically linked ELF program, the
// only kind that runs in an initramfs holding nothing but busybox.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", path)
		}
	}
	return nil
}

// GuestIP is where the guest finds the host's iproute2 ip, which it runs
// instead of busybox's: only the full one has fou, ip6gre, ip6tnl, gretap
// and bridges.
const GuestIP = "/usr/sbin/ip"

// hostIP returns the host's ip program as GuestIP plus every shared
// library ldd lists for it (the dynamic loader included) at the paths ldd
// gives, with the directories that hold them. iproute2 runs without its
// /etc/iproute2 tables, falling back to built-in names.
func hostIP() ([]cpioFile, error) {
	ip, err := exec.LookPath("ip")
	if err != nil {
		return nil, fmt.Errorf("kpeer: the guest runs the host's ip, which is missing (%v); install with: apt-get install -y iproute2", err)
	}
	return hostProgram(ip, GuestIP)
}

// hostProgram returns the host program at src as the guest's file at
// dst, plus every shared library ldd lists for it at the paths ldd gives.
func hostProgram(src, dst string) ([]cpioFile, error) {
	out, err := exec.Command("ldd", src).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("kpeer: ldd %s: %v: %s (ldd is in libc-bin)", src, err, strings.TrimSpace(string(out)))
	}
	libs, err := parseLdd(string(out))
	if err != nil {
		return nil, fmt.Errorf("kpeer: ldd %s: %v", src, err)
	}
	var files []cpioFile
	for _, p := range append([]string{dst}, libs...) {
		from := p
		if p == dst {
			from = src
		}
		// ReadFile follows symbolic links: the guest gets plain files.
		data, err := os.ReadFile(from)
		if err != nil {
			return nil, fmt.Errorf("kpeer: %v", err)
		}
		files = append(files, cpioFile{name: strings.TrimPrefix(p, "/"), mode: modeFile | 0o755, data: data})
	}
	return files, nil
}

// hostPrograms returns each of the host's programs at its own path with
// its libraries, each file once.
func hostPrograms(paths []string) ([]cpioFile, error) {
	var files []cpioFile
	seen := map[string]bool{}
	for _, p := range paths {
		fs, err := hostProgram(p, p)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			if !seen[f.name] {
				seen[f.name] = true
				files = append(files, f)
			}
		}
	}
	return files, nil
}

// parseLdd returns the absolute paths in ldd's output: "name => /path
// (addr)" lines and the loader's "/path (addr)" line. The vDSO has no file;
// a library ldd cannot find is an error.
func parseLdd(out string) ([]string, error) {
	var paths []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if strings.Contains(line, "not found") {
			return nil, fmt.Errorf("missing library: %s", line)
		}
		if _, after, ok := strings.Cut(line, "=> "); ok {
			line = after
		}
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "/") {
			paths = append(paths, filepath.Clean(f[0]))
		}
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no libraries in %q", out)
	}
	return paths, nil
}

// withParents adds a directory entry for every missing parent of files:
// the kernel's initramfs unpacker creates no directories of its own.
func withParents(files []cpioFile) []cpioFile {
	have := map[string]bool{}
	for _, f := range files {
		have[f.name] = true
	}
	for _, f := range files {
		for d := filepath.Dir(f.name); d != "." && !have[d]; d = filepath.Dir(d) {
			have[d] = true
			files = append(files, cpioFile{name: d, mode: modeDir | 0o755})
		}
	}
	return files
}

// buildInitramfs writes (or reuses from the cache) an uncompressed newc
// cpio archive holding busybox, the host's ip with its libraries, the init
// script and the modules. Its name is a hash of all of them, so a changed
// host ip (or library) makes a new archive.
func buildInitramfs(cache string, k *kernelFiles, programs []string) (string, error) {
	bb, err := os.ReadFile(Busybox)
	if err != nil {
		return "", fmt.Errorf("kpeer: %v", err)
	}
	ip, err := hostIP()
	if err != nil {
		return "", err
	}
	progs, err := hostPrograms(programs)
	if err != nil {
		return "", err
	}
	for _, f := range progs {
		if f.name != strings.TrimPrefix(GuestIP, "/") && !hasFile(ip, f.name) {
			ip = append(ip, f)
		}
	}
	files := []cpioFile{
		{name: "bin", mode: modeDir | 0o755},
		{name: "dev", mode: modeDir | 0o755},
		{name: "dev/console", mode: modeChar | 0o600, rdevMajor: 5, rdevMinor: 1},
		{name: "dev/null", mode: modeChar | 0o666, rdevMajor: 1, rdevMinor: 3},
		{name: "proc", mode: modeDir | 0o755},
		{name: "sys", mode: modeDir | 0o755},
		{name: "tmp", mode: modeDir | 0o1777},
		{name: "root", mode: modeDir | 0o700},
		{name: "lib", mode: modeDir | 0o755},
		{name: "lib/modules", mode: modeDir | 0o755},
		{name: "bin/busybox", mode: modeFile | 0o755, data: bb},
		{name: "init", mode: modeFile | 0o755, data: []byte(initScript)},
		{name: "loop", mode: modeFile | 0o644, data: []byte(loopScript)},
		{name: "lib/modules/order", mode: modeFile | 0o644, data: []byte(strings.Join(k.order, "\n") + "\n")},
	}
	for _, m := range k.order {
		img, err := os.ReadFile(filepath.Join(k.modDir, m+".ko"))
		if err != nil {
			return "", fmt.Errorf("kpeer: %v", err)
		}
		files = append(files, cpioFile{name: "lib/modules/" + m + ".ko", mode: modeFile | 0o644, data: img})
	}
	files = withParents(append(files, ip...))

	path := filepath.Join(cache, initramfsName(files))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	var buf bytes.Buffer
	if err := writeCpio(&buf, files); err != nil {
		return "", err
	}
	// Another test binary may build the same archive at the same time:
	// write privately, then rename into place.
	tmp, err := os.CreateTemp(cache, "initramfs-*.tmp")
	if err != nil {
		return "", fmt.Errorf("kpeer: %v", err)
	}
	defer os.Remove(tmp.Name())
	tmp.Chmod(0o644)
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return "", fmt.Errorf("kpeer: writing initramfs: %v", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("kpeer: writing initramfs: %v", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("kpeer: %v", err)
	}
	return path, nil
}

func hasFile(files []cpioFile, name string) bool {
	for _, f := range files {
		if f.name == name {
			return true
		}
	}
	return false
}

// initramfsName names the archive of files by a hash of every file's
// name, mode and contents.
func initramfsName(files []cpioFile) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s %o %d %d %d\n", f.name, f.mode, f.rdevMajor, f.rdevMinor, len(f.data))
		h.Write(f.data)
	}
	return "initramfs-" + hex.EncodeToString(h.Sum(nil)[:8]) + ".cpio"
}

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChar = 0o020000
)

type cpioFile struct {
	name                 string
	mode                 uint32
	rdevMajor, rdevMinor uint32
	data                 []byte
}

// writeCpio writes files as a "newc" (SVR4, no CRC) archive, the format
// the kernel unpacks into its initial root file system. Written here, not
// with cpio(1), so that /dev/console can be a device node without mknod.
func writeCpio(w io.Writer, files []cpioFile) error {
	files = append([]cpioFile(nil), files...)
	sort.SliceStable(files, func(i, j int) bool { return files[i].name < files[j].name })
	files = append(files, cpioFile{name: "TRAILER!!!"})
	for i, f := range files {
		nlink := 1
		if f.mode&modeDir != 0 {
			nlink = 2
		}
		hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			i+1, f.mode, 0, 0, nlink, 0, len(f.data), 0, 0, f.rdevMajor, f.rdevMinor, len(f.name)+1, 0)
		if f.name == "TRAILER!!!" {
			hdr = fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
				0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, len(f.name)+1, 0)
		}
		rec := []byte(hdr + f.name + "\x00")
		rec = append(rec, make([]byte, pad4(len(rec)))...)
		rec = append(rec, f.data...)
		rec = append(rec, make([]byte, pad4(len(f.data)))...)
		if _, err := w.Write(rec); err != nil {
			return fmt.Errorf("kpeer: writing initramfs: %v", err)
		}
	}
	return nil
}

func pad4(n int) int { return (4 - n%4) % 4 }
