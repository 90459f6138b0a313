// Package kmod loads kernel modules in this process, by name or by alias, when
// something at run time first needs one: a filesystem before its first mount,
// loop before a loop device, 8021q before a VLAN. At boot /init loads only the
// drivers of the devices present (package early); the other modules the
// initramfs carries wait here until they are used, instead of costing every
// boot their load time. The kernel's own requests for a module (a mount made by
// the rescue shell, a crypto algorithm) go to /bbin/modprobe, which loads
// through this package too.
package kmod

import (
	"bufio"
	"bytes"
	"path"
	"strings"

	"github.com/nodeinit/nodeinit/modalias"
)

// FilesystemAlias is the alias the kernel asks for (request_module) when a
// mount names a filesystem type it has no driver for: "fs-" and the type.
func FilesystemAlias(fstype string) string { return "fs-" + fstype }

// UsesCodepages are the filesystem types whose mount loads NLS codepages by
// name (FAT's codepage= and iocharset=, ISO 9660's Joliet iocharset), each a
// request the kernel would otherwise make of /bbin/modprobe in turn.
var UsesCodepages = map[string]bool{"vfat": true, "msdos": true, "iso9660": true, "udf": true, "exfat": true}

// Codepages returns the NLS modules (kernel/fs/nls/) that modulesDep, the
// contents of a modules.dep, lists.
func Codepages(modulesDep []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(modulesDep))
	for sc.Scan() {
		file, _, _ := strings.Cut(sc.Text(), ":")
		if dir, base := path.Split(file); strings.HasSuffix(dir, "/fs/nls/") {
			out = append(out, modalias.Normalize(strings.Split(base, ".")[0]))
		}
	}
	return out
}

// Registered reports whether fstype is in procFilesystems, the contents of
// /proc/filesystems ("nodev\ttmpfs", "\text4": the type is the last field).
func Registered(procFilesystems []byte, fstype string) bool {
	sc := bufio.NewScanner(bytes.NewReader(procFilesystems))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 && f[len(f)-1] == fstype {
			return true
		}
	}
	return false
}

// Resolve returns the modules that provide name: those whose modules.alias
// patterns match it (fs-iso9660 → isofs, net-pf-17 → af_packet), else name
// itself, normalised, taken as a module name. A nil table knows no aliases.
func Resolve(table *modalias.Table, name string) []string {
	if table != nil {
		if m := table.Match(name); len(m) > 0 {
			return m
		}
	}
	return []string{modalias.Normalize(name)}
}
