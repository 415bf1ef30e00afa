package kpeer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// metaPackage is the Debian package whose dependency names the current
// kernel image; following it keeps the guest on Debian 12's supported kernel.
const metaPackage = "linux-image-amd64"

// DefaultModules are the modules the guest loads: the IPv4 GRE and IPIP
// tunnel drivers gretun is checked against, the virtio network driver the
// guest's NIC needs, then FOU (GRE in UDP), the IPv6 tunnels (ip6gre,
// ip6tnl, sit) and the bridge for gretap. Their dependencies are added
// from the modules' own "depends=" fields.
var DefaultModules = []string{
	"gre", "ip_gre", "ip_tunnel", "ipip", "tunnel4",
	"virtio_pci", "virtio_net", "failover", "net_failover",
	"udp_tunnel", "ip6_udp_tunnel", "tunnel6", "ip6_tunnel", "fou", "fou6",
	"ip6_gre", "sit", "llc", "stp", "bridge",
}

// kernelFiles is an unpacked kernel ready to boot.
type kernelFiles struct {
	release string   // uname -r of the guest kernel, e.g. 6.1.0-56-amd64
	pkg     string   // Debian package file the kernel came from
	vmlinuz string   // path of the kernel image
	modDir  string   // directory holding NAME.ko for every module in order
	order   []string // module names in load order (dependencies first)
}

// CacheDir is where kpeer keeps the kernel package, the unpacked modules
// and the initramfs: $GRETUN_CACHE/kpeer if set, else .cache/kpeer in the
// gretun repository (git-ignored), found from the working directory or from
// this source file.
func CacheDir() string {
	if d := os.Getenv("GRETUN_CACHE"); d != "" {
		return filepath.Join(d, "kpeer")
	}
	starts := []string{}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		if root := repoRoot(dir); root != "" {
			return filepath.Join(root, ".cache", "kpeer")
		}
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "gretun", "kpeer")
	}
	return filepath.Join(os.TempDir(), "gretun-cache", "kpeer")
}

// repoRoot walks up from dir to the directory whose go.mod declares the
// gretun module.
func repoRoot(dir string) string {
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/gretun/gretun\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// lockCache takes an exclusive lock on the cache so that test binaries of
// different packages, run in parallel by `go test ./...`, do not download
// or unpack into the same place at once.
func lockCache(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("kpeer: cache: %v", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kpeer: cache lock: %v", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("kpeer: cache lock: %v", err)
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

// kernelPackage names the versioned kernel image package that the
// linux-image-amd64 meta package depends on, running apt-get update once
// if apt does not know the meta package yet (a fresh container).
func kernelPackage(ctx context.Context) (string, error) {
	name, err := kernelDependency(ctx)
	if err == nil {
		return name, nil
	}
	if out, uerr := exec.CommandContext(ctx, "apt-get", "update", "-qq").CombinedOutput(); uerr != nil {
		return "", fmt.Errorf("kpeer: apt-get update: %v: %s", uerr, lastLines(out, 5))
	}
	return kernelDependency(ctx)
}

func kernelDependency(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", metaPackage).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kpeer: apt-cache depends %s: %v: %s", metaPackage, err, lastLines(out, 3))
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("kpeer: apt-cache depends %s names no linux-image package", metaPackage)
}

// fetchKernel returns the kernel image and the modules (with their
// dependencies, in load order), downloading and unpacking the Debian
// package into cache when they are not there yet.
func fetchKernel(ctx context.Context, cache string, modules []string) (*kernelFiles, error) {
	unlock, err := lockCache(cache)
	if err != nil {
		return nil, err
	}
	defer unlock()

	deb, err := kernelDeb(ctx, cache)
	if err != nil {
		return nil, err
	}
	want := normalizeAll(modules)
	sum := sha256.Sum256([]byte(strings.Join(want, ",")))
	base := strings.TrimSuffix(filepath.Base(deb), ".deb")
	dir := filepath.Join(cache, "kernel", base+"-"+hex.EncodeToString(sum[:4]))
	if k, err := loadKernelDir(dir, deb); err == nil {
		return k, nil
	}
	return unpackKernel(deb, dir, want)
}

// kernelDeb finds the kernel package file in the cache or downloads it.
// A cached file for the package apt names is reused without asking the
// network, which keeps reruns fast and the kernel version stable.
func kernelDeb(ctx context.Context, cache string) (string, error) {
	debs := filepath.Join(cache, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return "", fmt.Errorf("kpeer: cache: %v", err)
	}
	pkg, err := kernelPackage(ctx)
	if err != nil {
		// Offline with a filled cache still works.
		if cached := newestMatch(filepath.Join(debs, "linux-image-*-amd64_*.deb")); cached != "" {
			return cached, nil
		}
		return "", err
	}
	if cached := newestMatch(filepath.Join(debs, pkg+"_*.deb")); cached != "" {
		return cached, nil
	}
	cmd := exec.CommandContext(ctx, "apt-get", "download", "-qq", pkg)
	cmd.Dir = debs
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kpeer: apt-get download %s (Debian's kernel for the guest): %v: %s", pkg, err, lastLines(out, 5))
	}
	if cached := newestMatch(filepath.Join(debs, pkg+"_*.deb")); cached != "" {
		return cached, nil
	}
	return "", fmt.Errorf("kpeer: apt-get download %s left no .deb in %s", pkg, debs)
}

func newestMatch(pattern string) string {
	matches, _ := filepath.Glob(pattern)
	best, bestTime := "", int64(0)
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() && st.ModTime().UnixNano() >= bestTime {
			best, bestTime = m, st.ModTime().UnixNano()
		}
	}
	return best
}

// loadKernelDir reads a kernel directory written by unpackKernel; the
// "complete" file is written last, so a half-written directory is ignored.
func loadKernelDir(dir, deb string) (*kernelFiles, error) {
	b, err := os.ReadFile(filepath.Join(dir, "complete"))
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 1 || lines[0] == "" {
		return nil, fmt.Errorf("kpeer: %s/complete is empty", dir)
	}
	k := &kernelFiles{
		release: lines[0],
		pkg:     filepath.Base(deb),
		vmlinuz: filepath.Join(dir, "vmlinuz"),
		modDir:  filepath.Join(dir, "modules"),
		order:   lines[1:],
	}
	for _, m := range k.order {
		if _, err := os.Stat(filepath.Join(k.modDir, m+".ko")); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// unpackKernel extracts the package into a scratch directory next to dir,
// copies out vmlinuz and the wanted modules (decompressed) and deletes the
// rest: the full tree is 400 MB, the guest needs a few.
func unpackKernel(deb, dir string, want []string) (*kernelFiles, error) {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("kpeer: cache: %v", err)
	}
	scratch, err := os.MkdirTemp(parent, "unpack-")
	if err != nil {
		return nil, fmt.Errorf("kpeer: cache: %v", err)
	}
	defer os.RemoveAll(scratch)
	if out, err := exec.Command("dpkg-deb", "-x", deb, scratch).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("kpeer: dpkg-deb -x %s: %v: %s", filepath.Base(deb), err, lastLines(out, 3))
	}
	vmlinuz := newestMatch(filepath.Join(scratch, "boot", "vmlinuz-*"))
	if vmlinuz == "" {
		return nil, fmt.Errorf("kpeer: %s has no boot/vmlinuz-*", filepath.Base(deb))
	}
	modRoots, _ := filepath.Glob(filepath.Join(scratch, "lib", "modules", "*"))
	if len(modRoots) != 1 {
		return nil, fmt.Errorf("kpeer: %s: want one lib/modules/RELEASE directory, found %d", filepath.Base(deb), len(modRoots))
	}
	release := filepath.Base(modRoots[0])

	index, err := indexModules(modRoots[0])
	if err != nil {
		return nil, err
	}
	order, images, err := resolveModules(index, want)
	if err != nil {
		return nil, err
	}

	os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "modules"), 0o755); err != nil {
		return nil, fmt.Errorf("kpeer: cache: %v", err)
	}
	if err := copyFile(vmlinuz, filepath.Join(dir, "vmlinuz")); err != nil {
		return nil, err
	}
	for _, m := range order {
		if err := os.WriteFile(filepath.Join(dir, "modules", m+".ko"), images[m], 0o644); err != nil {
			return nil, fmt.Errorf("kpeer: cache: %v", err)
		}
	}
	complete := release + "\n" + strings.Join(order, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "complete"), []byte(complete), 0o644); err != nil {
		return nil, fmt.Errorf("kpeer: cache: %v", err)
	}
	return loadKernelDir(dir, deb)
}

// indexModules maps every module's name (dashes as underscores, as the
// kernel spells it) to its file.
func indexModules(root string) (map[string]string, error) {
	index := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if name, ok := moduleName(d.Name()); ok {
			index[name] = path
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kpeer: listing modules: %v", err)
	}
	return index, nil
}

// moduleName strips the .ko (and compression) suffix of a module file.
func moduleName(file string) (string, bool) {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(file, ext) {
			return normalize(strings.TrimSuffix(file, ext)), true
		}
	}
	return "", false
}

func normalize(name string) string { return strings.ReplaceAll(name, "-", "_") }

func normalizeAll(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		n = normalize(n)
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// resolveModules returns want plus everything it depends on, dependencies
// first, with each module's decompressed image. Dependencies come from
// the modules' .modinfo "depends=" field, the same data depmod writes to
// modules.dep (which Debian generates at install time, not in the package).
func resolveModules(index map[string]string, want []string) ([]string, map[string][]byte, error) {
	images := map[string][]byte{}
	state := map[string]int{} // 1 visiting, 2 done
	var order []string
	var visit func(name, from string) error
	visit = func(name, from string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("kpeer: module dependency cycle through %s", name)
		case 2:
			return nil
		}
		path, ok := index[name]
		if !ok {
			if from == "" {
				return fmt.Errorf("kpeer: kernel package has no module %s", name)
			}
			return fmt.Errorf("kpeer: module %s (needed by %s) is not in the kernel package", name, from)
		}
		state[name] = 1
		img, err := readModule(path)
		if err != nil {
			return err
		}
		deps, err := moduleDepends(img)
		if err != nil {
			return fmt.Errorf("kpeer: %s: %v", filepath.Base(path), err)
		}
		for _, d := range deps {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		state[name] = 2
		images[name] = img
		order = append(order, name)
		return nil
	}
	for _, m := range want {
		if err := visit(m, ""); err != nil {
			return nil, nil, err
		}
	}
	return order, images, nil
}

// readModule returns the module's ELF image, decompressing it because
// busybox insmod cannot load compressed modules.
func readModule(path string) ([]byte, error) {
	var tool []string
	switch {
	case strings.HasSuffix(path, ".ko"):
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("kpeer: %v", err)
		}
		return b, nil
	case strings.HasSuffix(path, ".gz"):
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("kpeer: %v", err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("kpeer: %s: %v", filepath.Base(path), err)
		}
		return io.ReadAll(zr)
	case strings.HasSuffix(path, ".xz"):
		tool = []string{"xz", "-dc", path}
	case strings.HasSuffix(path, ".zst"):
		tool = []string{"zstd", "-dcq", path}
	}
	if tool == nil {
		return nil, fmt.Errorf("kpeer: %s: unknown module compression", filepath.Base(path))
	}
	if _, err := exec.LookPath(tool[0]); err != nil {
		pkg := map[string]string{"xz": "xz-utils", "zstd": "zstd"}[tool[0]]
		return nil, fmt.Errorf("kpeer: %s is compressed; install %s (apt-get install -y %s)", filepath.Base(path), tool[0], pkg)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(tool[0], tool[1:]...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("kpeer: %s: %v: %s", strings.Join(tool, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// moduleDepends reads the comma-separated "depends=" entry of a module's
// .modinfo section.
func moduleDepends(img []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		return nil, err
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for _, d := range strings.Split(string(v), ",") {
				if d = strings.TrimSpace(d); d != "" {
					deps = append(deps, normalize(d))
				}
			}
			return deps, nil
		}
	}
	return nil, nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("kpeer: %v", err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return fmt.Errorf("kpeer: %v", err)
	}
	return nil
}

// lastLines keeps error messages to one readable line.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
