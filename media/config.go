package media

import (
	"fmt"
	"strings"
)

// MenuTitle is the title line of the media menus.
const MenuTitle = "nodeinit installer"

// ExitEFIPath is where the UEFI menus keep ExitEFI, the program behind "Boot from local drive".
const ExitEFIPath = "/EFI/nodeinit/exit.efi"

// IsolinuxConfig is the isolinux.cfg (syslinux menu.c32) of the entries: the menu shows on
// the screen and on the first serial port, and boots the default entry after the timeout.
// kernel and initrd are paths on the ISO. "Boot from local drive" is LOCALBOOT -1, which
// hands back to the BIOS to try the next boot device.
func IsolinuxConfig(entries []Entry, o MenuOptions, kernel, initrd string) string {
	head := fmt.Sprintf("SERIAL 0 115200\nUI menu.c32\nPROMPT 0\nMENU TITLE %s\n", MenuTitle)
	return syslinuxMenu(head, entries, o, "-1", func(e Entry) string {
		return fmt.Sprintf("  KERNEL %s\n  INITRD %s\n  APPEND %s\n", kernel, initrd, e.Cmdline(nil))
	})
}

// syslinuxMenu is a menu.c32 configuration in the format isolinux and pxelinux share: head,
// the timeout and default, then a LABEL per entry. "Boot from local drive" is LOCALBOOT
// local; boot gives the lines that boot any other entry.
func syslinuxMenu(head string, entries []Entry, o MenuOptions, local string, boot func(Entry) string) string {
	var b strings.Builder
	b.WriteString(head)
	fmt.Fprintf(&b, "TIMEOUT %d\nDEFAULT %s\n", o.TimeoutSeconds()*10, DefaultEntry(entries).ID)
	for _, e := range entries {
		fmt.Fprintf(&b, "\nLABEL %s\n  MENU LABEL %s\n", e.ID, e.Title)
		if e.Default {
			b.WriteString("  MENU DEFAULT\n")
		}
		if e.Local {
			fmt.Fprintf(&b, "  LOCALBOOT %s\n", local)
			continue
		}
		b.WriteString(boot(e))
	}
	return b.String()
}

// SystemdBootConfig is the systemd-boot configuration of the entries, as file names under
// /loader (loader.conf and entries/<id>.conf) mapped to their contents. kernel and initrd
// are paths on the FAT image. sort-key keeps the menu order; "Boot from local drive"
// starts ExitEFI, which returns an error so systemd-boot exits and the firmware boots its
// next boot option.
func SystemdBootConfig(entries []Entry, o MenuOptions, kernel, initrd string) map[string]string {
	def := DefaultEntry(entries)
	files := map[string]string{
		"loader.conf": fmt.Sprintf("default %s.conf\ntimeout %d\neditor yes\nauto-entries no\nauto-firmware no\n",
			def.ID, o.TimeoutSeconds()),
	}
	for i, e := range entries {
		var b strings.Builder
		fmt.Fprintf(&b, "title %s\nsort-key %02d\n", e.Title, i+1)
		if e.Local {
			fmt.Fprintf(&b, "efi %s\n", ExitEFIPath)
		} else {
			fmt.Fprintf(&b, "linux %s\ninitrd %s\noptions %s\n", kernel, initrd, e.Cmdline(nil))
		}
		files["entries/"+e.ID+".conf"] = b.String()
	}
	return files
}
