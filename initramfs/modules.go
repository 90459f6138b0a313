package initramfs

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultModules are the kernel modules an install or boot may need: storage, filesystems,
// network, the TPM, and device-mapper/md for later. Names missing from a kernel (not built for it)
// are reported, not fatal; built-in ones need nothing.
var DefaultModules = []string{
	// storage
	"nvme", "virtio_pci", "virtio_blk", "virtio_scsi", "ahci", "ata_piix", "sd_mod", "sr_mod",
	"usb_storage", "uas", "xhci_pci", "xhci_hcd", "ehci_pci", "ehci_hcd", "loop",
	// filesystems
	"squashfs", "overlay", "vfat", "ext4", "isofs", "nls_cp437", "nls_iso8859_1", "nls_ascii",
	"nls_utf8", "efivarfs",
	// network
	"virtio_net", "e1000", "e1000e", "igb", "ixgbe", "ixgbevf", "r8169", "tg3", "bnxt_en",
	"i40e", "ice", "mlx5_core", "vmxnet3", "ena", "gve", "hv_netvsc", "af_packet", "8021q",
	// Hyper-V's bus: its devices (hv_netvsc's NIC) exist only once it is loaded, and /init
	// loads a driver only for a device that exists, so the bus driver is listed by name
	"hv_vmbus",
	// measured boot (package measure): the TPM 2.0 drivers, built in on most kernels
	"tpm_tis", "tpm_crb",
	// later: device-mapper and md
	"dm_mod", "dm_crypt", "dm_verity", "md_mod", "raid1",
}

// Modules is the outcome of resolving module names against a kernel's modules directory.
type Modules struct {
	Version  string   // the kernel release, the base name of the directory
	Files    []string // module files relative to the directory, dependencies included, sorted
	Names    []string // names found (as modules or built in), in the order asked
	Builtin  []string // names built into the kernel
	Missing  []string // names neither built in nor shipped
	DepLines []string // modules.dep restricted to Files
}

// ResolveModules finds each name in dir/modules.dep (a kernel's lib/modules/<version>, after
// depmod) and adds everything it depends on. Names match with '-' and '_' as the same.
func ResolveModules(dir string, names []string) (Modules, error) {
	deps, order, err := readModulesDep(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return Modules{}, err
	}
	builtin, err := readBuiltin(filepath.Join(dir, "modules.builtin"))
	if err != nil {
		return Modules{}, err
	}
	byName := map[string]string{}
	for _, rel := range order {
		byName[moduleName(rel)] = rel
	}
	m := Modules{Version: filepath.Base(dir)}
	include := map[string]bool{}
	var add func(rel string)
	add = func(rel string) {
		if include[rel] {
			return
		}
		include[rel] = true
		for _, d := range deps[rel] {
			add(d)
		}
	}
	for _, n := range names {
		key := normName(n)
		switch rel, ok := byName[key]; {
		case ok:
			add(rel)
			m.Names = append(m.Names, key)
		case builtin[key]:
			m.Builtin = append(m.Builtin, n)
			m.Names = append(m.Names, n)
		default:
			m.Missing = append(m.Missing, n)
		}
	}
	for rel := range include {
		m.Files = append(m.Files, rel)
	}
	sort.Strings(m.Files)
	for _, rel := range order {
		if include[rel] {
			d := make([]string, len(deps[rel]))
			for i, dep := range deps[rel] {
				d[i] = ArchivePath(dep)
			}
			m.DepLines = append(m.DepLines, ArchivePath(rel)+":"+joinDeps(d))
		}
	}
	return m, nil
}

// ArchivePath is where a module file goes in the initramfs, relative to lib/modules/<version>:
// its own path with '-' turned into '_' in the file name. u-root's kmodule looks a name up
// only as all-'-' or all-'_', so a file like nls_iso8859-1.ko could not be loaded by any
// name; the kernel takes the module name from the file's contents, so renaming is safe.
func ArchivePath(rel string) string {
	return path.Join(path.Dir(rel), normName(path.Base(rel)))
}

func joinDeps(d []string) string {
	if len(d) == 0 {
		return ""
	}
	return " " + strings.Join(d, " ")
}

// readModulesDep parses modules.dep: "kernel/x/a.ko: kernel/y/b.ko kernel/z/c.ko".
func readModulesDep(file string) (map[string][]string, []string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, fmt.Errorf("read modules.dep: %w (run depmod for this kernel)", err)
	}
	defer f.Close()
	deps := map[string][]string{}
	var order []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		mod = strings.TrimSpace(mod)
		deps[mod] = strings.Fields(rest)
		order = append(order, mod)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", file, err)
	}
	return deps, order, nil
}

// readBuiltin returns the names listed in modules.builtin; a missing file means none.
func readBuiltin(file string) (map[string]bool, error) {
	data, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read modules.builtin: %w", err)
	}
	b := map[string]bool{}
	for _, l := range strings.Fields(string(data)) {
		b[moduleName(l)] = true
	}
	return b, nil
}

// moduleName turns "kernel/fs/fat/vfat.ko.xz" into "vfat".
func moduleName(rel string) string {
	base := path.Base(rel)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return normName(base)
}

func normName(n string) string { return strings.ReplaceAll(n, "-", "_") }

// filterAlias keeps the lines of modules.alias whose module is one of names, so that the
// initramfs can match devices to the drivers it carries.
func filterAlias(data []byte, names map[string]bool) []byte {
	var b strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "alias" && names[normName(f[2])] {
			b.WriteString(line + "\n")
		}
	}
	return []byte(b.String())
}
