// Command efiguest is a test-only /init for boot's OVMF test of firmware boot
// entries. On a boot whose BootCurrent entry is not "nodeinit", it creates the
// entry for the ESP named by efiguest.esp=PART:START:SIZE:GUID with
// boot.InstallBootEntry and reboots; on a boot through that entry it prints
// EFIGUEST-BOOTED-OURS and powers off.
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/nodeinit/nodeinit/boot"
	"golang.org/x/sys/unix"
)

func main() {
	// Debian's cloud kernel builds efivarfs as a module; the test packs it as /efivarfs.ko.
	if f, err := os.Open("/efivarfs.ko"); err == nil {
		if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil {
			fmt.Printf("EFIGUEST-ERROR load efivarfs.ko: %v\n", err)
		}
		f.Close()
	}
	for _, m := range [][3]string{{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"},
		{"efivarfs", "/sys/firmware/efi/efivars", "efivarfs"}} {
		os.MkdirAll(m[1], 0o755)
		if err := unix.Mount(m[0], m[1], m[2], 0, ""); err != nil {
			fmt.Printf("EFIGUEST-ERROR mount %s: %v\n", m[1], err)
		}
	}
	if err := run(); err != nil {
		fmt.Printf("EFIGUEST-ERROR %v\n", err)
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

func run() error {
	v, err := boot.OpenEFIVars()
	if err != nil {
		return err
	}
	_, cur, err := v.Get("BootCurrent")
	if err != nil || len(cur) != 2 {
		return fmt.Errorf("BootCurrent: %v", err)
	}
	current := binary.LittleEndian.Uint16(cur)
	order, _ := boot.ReadBootOrder(v)
	_, opt, _ := v.Get(fmt.Sprintf("Boot%04X", current))
	if desc := describe(opt); desc == boot.BootDescription {
		fmt.Printf("EFIGUEST-BOOTED-OURS Boot%04X order=%04X\n", current, order)
		return nil
	} else {
		fmt.Printf("EFIGUEST-BOOTED-OTHER Boot%04X %q order=%04X\n", current, desc, order)
	}
	loc, err := parseESP()
	if err != nil {
		return err
	}
	n, err := boot.InstallBootEntry(v, loc)
	if err != nil {
		return err
	}
	order, _ = boot.ReadBootOrder(v)
	fmt.Printf("EFIGUEST-INSTALLED Boot%04X order=%04X\n", n, order)
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
}

func describe(opt []byte) string {
	var u []rune
	for i := 6; i+1 < len(opt); i += 2 {
		c := binary.LittleEndian.Uint16(opt[i:])
		if c == 0 {
			break
		}
		u = append(u, rune(c))
	}
	return string(u)
}

func parseESP() (boot.ESPLocation, error) {
	cl, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return boot.ESPLocation{}, err
	}
	for _, tok := range strings.Fields(string(cl)) {
		v, ok := strings.CutPrefix(tok, "efiguest.esp=")
		if !ok {
			continue
		}
		f := strings.Split(v, ":")
		if len(f) != 4 {
			break
		}
		part, _ := strconv.ParseUint(f[0], 10, 32)
		start, _ := strconv.ParseUint(f[1], 10, 64)
		size, _ := strconv.ParseUint(f[2], 10, 64)
		g, err := uuid.Parse(f[3])
		if err != nil {
			return boot.ESPLocation{}, err
		}
		return boot.ESPLocation{PartNumber: uint32(part), StartLBA: start, SizeLBA: size, PartGUID: g}, nil
	}
	return boot.ESPLocation{}, fmt.Errorf("no efiguest.esp=PART:START:SIZE:GUID on the command line")
}
