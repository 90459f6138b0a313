package media

import (
	"fmt"
	"strings"
	"time"
)

// Entry IDs of the boot menu, in menu order. They are the values MenuOptions.Default accepts.
const (
	EntryInstall       = "install"
	EntryInstallSerial = "install-serial"
	EntryReinstall     = "reinstall"
	EntryUpgrade       = "upgrade"
	EntryUninstall     = "uninstall"
	EntryStateless     = "stateless"
	EntryRescue        = "rescue"
	EntryLocal         = "local"
)

// SerialConsole is the console argument of the "Install with serial console" entry.
const SerialConsole = "console=ttyS0,115200n8"

// DefaultTimeout is how long a menu waits when MenuOptions.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Entry is one boot menu entry, shared by the ISO/USB menus (isolinux, systemd-boot) and the
// network boot configs (pxelinux, iPXE, GRUB).
type Entry struct {
	// ID names the entry in configs and options (EntryInstall, …).
	ID string
	// Title is the text the menu shows.
	Title string
	// Args are the kernel arguments of the entry, MenuOptions.ExtraArgs included.
	// They are empty for the local-drive entry, which loads no kernel.
	Args []string
	// Default is set on the one entry the menu boots when the timeout runs out.
	Default bool
	// Local is set on "Boot from local drive": the menu chainloads the next boot device
	// (BIOS) or exits to the firmware (UEFI) instead of loading a kernel.
	Local bool
}

// Cmdline is the entry's kernel command line with extra appended; tokens holding spaces
// are double-quoted, the way the kernel groups them.
func (e Entry) Cmdline(extra []string) string {
	var toks []string
	for _, a := range append(append([]string(nil), e.Args...), extra...) {
		if a == "" {
			continue
		}
		toks = append(toks, quoteArg(a))
	}
	return strings.Join(toks, " ")
}

// quoteArg double-quotes the value of key=value (or the whole token) when it holds a space.
func quoteArg(a string) string {
	if !strings.ContainsAny(a, " \t") || strings.Contains(a, `"`) {
		return a
	}
	if k, v, ok := strings.Cut(a, "="); ok {
		return k + `="` + v + `"`
	}
	return `"` + a + `"`
}

// MenuOptions shape the menu of a medium or network boot config.
type MenuOptions struct {
	// Default is the ID of the entry booted when the timeout runs out; empty means EntryInstall.
	Default string
	// Timeout is how long the menu waits before booting Default; zero means DefaultTimeout.
	// Menus count in whole seconds (isolinux in tenths), so it is rounded up to a second.
	Timeout time.Duration
	// ExtraArgs are kernel arguments added to every entry that loads a kernel
	// (console=, nodeinit.image=, ip=, …).
	ExtraArgs []string
	// Unattended is a storage_init value. When set, the default entry carries
	// "storage_init=<value>" so it runs without a keyboard: with the default entry that is
	// "install storage_init=<value>", an unattended install.
	Unattended string
}

// entryIDs are the entries in menu order.
var entryIDs = []string{
	EntryInstall, EntryInstallSerial, EntryReinstall, EntryUpgrade,
	EntryUninstall, EntryStateless, EntryRescue, EntryLocal,
}

// EntryIDs lists the IDs of the menu entries, in menu order.
func EntryIDs() []string { return append([]string(nil), entryIDs...) }

// Validate checks the options, naming the bad one and how to fix it.
func (o MenuOptions) Validate() error {
	if o.Default != "" && !isEntryID(o.Default) {
		return fmt.Errorf("menu default %q: no such entry (hint: use one of %s)", o.Default, strings.Join(entryIDs, ", "))
	}
	if o.Timeout < 0 {
		return fmt.Errorf("menu timeout %s: must not be negative (hint: 0 means %s)", o.Timeout, DefaultTimeout)
	}
	if o.Unattended != "" {
		if strings.ContainsAny(o.Unattended, " \t\"") {
			return fmt.Errorf("unattended storage_init %q: must not contain spaces or quotes (hint: name the disk as serial:XYZ, wwn:0x…, nvme or /dev/…)", o.Unattended)
		}
		if d := o.defaultID(); d == EntryLocal || d == EntryRescue || d == EntryStateless {
			return fmt.Errorf("unattended storage_init with default entry %q: that entry writes no disk (hint: use default install, reinstall, upgrade or uninstall)", d)
		}
	}
	for _, a := range o.ExtraArgs {
		if strings.Contains(a, `"`) || strings.ContainsAny(a, "\n\r") {
			return fmt.Errorf("extra kernel argument %q: must not contain quotes or newlines (hint: pass key=value with spaces as one argument; quoting is added)", a)
		}
	}
	return nil
}

// TimeoutSeconds is the menu timeout in whole seconds, at least 1.
func (o MenuOptions) TimeoutSeconds() int {
	t := o.Timeout
	if t == 0 {
		t = DefaultTimeout
	}
	s := int((t + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

func (o MenuOptions) defaultID() string {
	if o.Default == "" || !isEntryID(o.Default) {
		return EntryInstall
	}
	return o.Default
}

func isEntryID(id string) bool {
	for _, e := range entryIDs {
		if e == id {
			return true
		}
	}
	return false
}

// Entries are the eight menu entries of the install media, in menu order, with their
// kernel arguments. The action arguments follow oVirt Node's menus: every installer entry
// carries "install", and "install X" means action X. An unknown Default falls back to
// EntryInstall; call Validate to refuse it instead.
func Entries(o MenuOptions) []Entry {
	def := o.defaultID()
	out := []Entry{
		{ID: EntryInstall, Title: "Install or Upgrade", Args: []string{"install"}},
		{ID: EntryInstallSerial, Title: "Install with serial console", Args: []string{"install", SerialConsole}},
		{ID: EntryReinstall, Title: "Reinstall", Args: []string{"install", "reinstall"}},
		{ID: EntryUpgrade, Title: "Upgrade", Args: []string{"upgrade"}},
		{ID: EntryUninstall, Title: "Uninstall", Args: []string{"install", "uninstall"}},
		{ID: EntryStateless, Title: "Run stateless from RAM", Args: []string{"stateless"}},
		{ID: EntryRescue, Title: "Rescue shell", Args: []string{"rescue"}},
		{ID: EntryLocal, Title: "Boot from local drive", Local: true},
	}
	for i := range out {
		e := &out[i]
		e.Default = e.ID == def
		if e.Local {
			continue
		}
		if e.Default && o.Unattended != "" {
			e.Args = append(e.Args, "storage_init="+o.Unattended)
		}
		for _, a := range o.ExtraArgs {
			if !contains(e.Args, a) { // the serial entry's console= given again
				e.Args = append(e.Args, a)
			}
		}
	}
	return out
}

// DefaultEntry is the entry of entries marked Default (the first one if none is).
func DefaultEntry(entries []Entry) Entry {
	for _, e := range entries {
		if e.Default {
			return e
		}
	}
	return entries[0]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
