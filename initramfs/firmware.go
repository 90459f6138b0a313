package initramfs

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/u-root/mkuimage/cpio"
)

// firmwareSuffixes are the forms of a firmware file the kernel's loader takes: as is,
// and compressed (CONFIG_FW_LOADER_COMPRESS_XZ and _ZSTD in Debian's kernels).
var firmwareSuffixes = []string{"", ".xz", ".zst"}

// DeclaredFirmware returns the firmware files the kernel module data (an ELF .ko)
// declares in its .modinfo section (MODULE_FIRMWARE), each once, in order.
func DeclaredFirmware(data []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not an ELF module: %w", err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, nil
	}
	info, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf(".modinfo: %w", err)
	}
	var out []string
	for _, kv := range bytes.Split(info, []byte{0}) {
		if name, ok := strings.CutPrefix(string(kv), "firmware="); ok && name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// addFirmware puts into the archive, under lib/firmware, every firmware file that the
// modules declare (declared: module file → names) and that dir (a firmware tree such
// as /lib/firmware) has, as is or compressed; a symlink in dir is stored as the file it
// names. It records the files added and the names dir lacks in res. A name that
// escapes dir (an absolute path, "..") is refused.
func addFirmware(base *cpio.Archive, dir string, declared map[string][]string, res *Result) error {
	var names []string
	for _, list := range declared {
		for _, n := range list {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	for _, name := range names {
		clean := path.Clean(name)
		if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("initramfs: a module declares firmware %q outside the firmware directory", name)
		}
		found := false
		for _, suffix := range firmwareSuffixes {
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(clean)+suffix))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("initramfs: firmware %s: %w", name, err)
			}
			base.WriteRecord(cpio.StaticRecord(data, cpio.Info{Name: path.Join("lib/firmware", clean+suffix), Mode: cpio.S_IFREG | 0o644}))
			res.Firmware = append(res.Firmware, clean+suffix)
			found = true
			break
		}
		if !found {
			res.MissingFirmware = append(res.MissingFirmware, clean)
		}
	}
	return nil
}
