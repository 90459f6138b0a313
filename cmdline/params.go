package cmdline

// Action is what the operator asked nodeinit to do on this boot.
type Action string

// The actions of DESIGN.md. ActionBoot is the default when no action flag is given.
const (
	ActionBoot      Action = "boot"
	ActionInstall   Action = "install"
	ActionUpgrade   Action = "upgrade"
	ActionReinstall Action = "reinstall"
	ActionUninstall Action = "uninstall"
	ActionStateless Action = "stateless"
	ActionRescue    Action = "rescue"
)

// Params is the typed form of one kernel command line.
type Params struct {
	// Action is the resolved action after combining flags (install + X = X).
	Action Action `json:"action"`
	// ActionTokens are the tokens that decided Action, for messages: the action flags that are on,
	// in command-line order, or, when none is on, the flags explicitly turned off (which also
	// suppress oVirt's implicit auto-install).
	ActionTokens []string `json:"action_tokens,omitempty"`
	// AutoInstall is oVirt's implicit install: no action flag, but storage_init and BOOTIF.
	// It installs only on a machine without an install.
	AutoInstall bool `json:"auto_install,omitempty"`

	StorageInit *StorageInit `json:"storage_init,omitempty"`
	StorageVol  *StorageVol  `json:"storage_vol,omitempty"`

	BootIf    *BootIf   `json:"bootif,omitempty"`
	IP        *IPConfig `json:"ip,omitempty"`
	IPv6      string    `json:"ipv6,omitempty"`
	DNS       []string  `json:"dns,omitempty"`
	NTP       []string  `json:"ntp,omitempty"`
	Hostname  string    `json:"hostname,omitempty"`
	VLAN      *VLAN     `json:"vlan,omitempty"`
	Bond      *Bond     `json:"bond,omitempty"`
	AdminPW   Secret    `json:"adminpw,omitempty"`
	RootPW    Secret    `json:"rootpw,omitempty"`
	SSHPwAuth *bool     `json:"ssh_pwauth,omitempty"`

	ManagementServer            *HostPort `json:"management_server,omitempty"`
	ManagementServerFingerprint string    `json:"management_server_fingerprint,omitempty"`
	Syslog                      *HostPort `json:"syslog,omitempty"`
	Netconsole                  *HostPort `json:"netconsole,omitempty"`
	Collectd                    *HostPort `json:"collectd,omitempty"`
	LocalBootTrigger            string    `json:"local_boot_trigger,omitempty"`
	// RebootDelay is seconds to wait before rebooting after an action; -1 when unset.
	// Always present in JSON so 0 (reboot at once) and unset (-1) stay distinct.
	RebootDelay int `json:"reboot_delay"`

	// Consoles are every console= value, in order (all of them get output).
	Consoles []string `json:"consoles,omitempty"`

	// Node holds the nodeinit.* keys.
	Node NodeParams `json:"node"`

	// Kept are tokens nodeinit does not interpret (console=, quiet, crashkernel=, …), in order;
	// they are copied into the installed boot entry. Secrets are never kept.
	Kept []string `json:"kept,omitempty"`
	// InitArgs are the tokens after "--", for the node OS init.
	InitArgs []string `json:"init_args,omitempty"`

	// PossiblyTruncated is set when the line is at the kernel's length limit;
	// destructive actions are refused then.
	PossiblyTruncated bool `json:"possibly_truncated,omitempty"`
	// Warnings are non-fatal remarks (weak DES hash, ignored oVirt-only keys, …).
	Warnings []string `json:"warnings,omitempty"`
}

// NodeParams are the nodeinit.* keys.
type NodeParams struct {
	Image       string   `json:"image,omitempty"`        // nodeinit.image: dir, label:NAME, initramfs:/path, http(s) URL
	ImageSHA256 string   `json:"image_sha256,omitempty"` // nodeinit.image.sha256: pins manifest.json
	DryRun      bool     `json:"dryrun,omitempty"`
	Break       []string `json:"break,omitempty"`  // stage names, comma separated on the line
	OnFail      string   `json:"onfail,omitempty"` // shell|reboot|poweroff|halt
	StatusURL   string   `json:"status_url,omitempty"`
	// StatusStages (nodeinit.status_stages) posts every stage transition to
	// StatusURL as well as the final result record.
	StatusStages bool `json:"status_stages,omitempty"`
	// Events names a serial console (ttyS1) that receives the event stream as JSON
	// lines (nodeinit.events): what test harnesses and serial concentrators read.
	Events string   `json:"events,omitempty"`
	Wipe   []string `json:"wipe,omitempty"` // serials or WWNs the operator consents to erase
	Keep   []string `json:"keep,omitempty"` // e.g. "data"
	Slot   string   `json:"slot,omitempty"` // a|b: the slot this boot entry is for
	Tries  int      `json:"tries,omitempty"`
	// Firmware is nodeinit.firmware: FirmwareBIOS or FirmwareUEFI installs the
	// disk for that firmware whatever the installer runs under; empty follows it.
	Firmware string `json:"firmware,omitempty"`
	Debug    bool   `json:"debug,omitempty"`
	Insecure bool   `json:"insecure,omitempty"`
	Force    bool   `json:"force,omitempty"`
	// Erase is how a disk is erased before it is partitioned or when it is uninstalled
	// (nodeinit.erase); empty means EraseSignatures. Read it with EraseMode.
	Erase EraseMode `json:"erase,omitempty"`
	// EraseSecure asks for the device's secure form of Erase (nodeinit.erase.secure): a secure
	// discard, or the device's own secure erase, for EraseDiscard and EraseZero.
	EraseSecure bool `json:"erase_secure,omitempty"`
	// AdminPWFrom is where the admin password hash comes from instead of adminpw=
	// (nodeinit.adminpw): AdminPWBundle reads it from the image bundle's signed
	// adminpw.hash, so that the hash is never on the command line, which every process
	// of a stateless node can read in /proc/cmdline. Empty means adminpw=, if given.
	AdminPWFrom string `json:"adminpw_from,omitempty"`
	// TPM is how the boot treats the TPM (nodeinit.tpm): TPMAuto (empty) measures
	// when a TPM 2.0 is present and boots on when it fails; TPMRequired stops the
	// boot when there is none or it fails; TPMOff measures nothing.
	TPM string `json:"tpm,omitempty"`
	// Interactive is nodeinit.interactive: nil (unset) lets the installer screen
	// (package tui) run only when the line leaves a choice open and a console is
	// interactive; true always runs it; false never does, so an unattended line
	// fails with its refusal instead of waiting at a screen.
	Interactive *bool `json:"interactive,omitempty"`
}

// Values of nodeinit.firmware.
const (
	FirmwareBIOS = "bios"
	FirmwareUEFI = "uefi"
)

// Values of nodeinit.tpm.
const (
	TPMAuto     = "auto"
	TPMRequired = "required"
	TPMOff      = "off"
)

// AdminPWBundle is the value of nodeinit.adminpw that reads the admin password hash
// from the image bundle (the file image.AdminHashName, listed in the signed manifest).
const AdminPWBundle = "bundle"

// EraseMode is a value of nodeinit.erase.
type EraseMode string

// The erase modes, from the quickest to the most thorough.
const (
	// EraseSignatures removes every partition table, filesystem, RAID, LVM and LUKS signature
	// (the default): the old data stays on the disk but nothing recognises it.
	EraseSignatures EraseMode = "signatures"
	// EraseDiscard removes the signatures, then discards (TRIMs) the whole disk.
	EraseDiscard EraseMode = "discard"
	// EraseZero removes the signatures, then writes zeros over the whole disk.
	EraseZero EraseMode = "zero"
)

// EraseModes lists the values nodeinit.erase accepts.
var EraseModes = []EraseMode{EraseSignatures, EraseDiscard, EraseZero}

// EraseMode returns the erase mode asked for, EraseSignatures when none was.
func (n NodeParams) EraseMode() EraseMode {
	if n.Erase == "" {
		return EraseSignatures
	}
	return n.Erase
}

// StorageInit is the parsed storage_init= value.
type StorageInit struct {
	// Disks are the specs before ';' (the install disk(s)); Extra are after ';'.
	Disks []DiskSpec `json:"disks,omitempty"`
	Extra []DiskSpec `json:"extra,omitempty"`
	// Bare is true for a bare "storage_init" flag: the one eligible disk, if exactly one.
	Bare bool `json:"bare,omitempty"`
}

// DiskSpecKind says how a DiskSpec matches a disk.
type DiskSpecKind string

// The ways storage_init can name a disk.
const (
	SpecPath   DiskSpecKind = "path"    // /dev/sda, /dev/mapper/… (may be a glob)
	SpecBus    DiskSpecKind = "bus"     // ata|scsi|usb|nvme|virtio|cciss, alone, with a serial or with ALL
	SpecSerial DiskSpecKind = "serial"  // serial:XYZ
	SpecWWN    DiskSpecKind = "wwn"     // wwn:0x…
	SpecByID   DiskSpecKind = "by-id"   // by-id:NAME or /dev/disk/by-id/NAME
	SpecByPath DiskSpecKind = "by-path" // by-path:NAME or /dev/disk/by-path/NAME
)

// DiskSpec is one disk selector from storage_init.
type DiskSpec struct {
	Kind  DiskSpecKind `json:"kind"`
	Value string       `json:"value,omitempty"` // path/glob, serial, wwn, by-id or by-path name; for SpecBus the serial
	Bus   string       `json:"bus,omitempty"`   // for SpecBus
	All   bool         `json:"all,omitempty"`   // bus:ALL
	Raw   string       `json:"raw"`             // the text as given
}

// Volume names for storage_vol, in oVirt Node's positional order.
const (
	VolBoot    = "boot"
	VolSwap    = "swap"
	VolRoot    = "root"
	VolConfig  = "config"
	VolLogging = "logging"
	VolData    = "data"
	// VolSwap2 and VolData2 are oVirt's AppVG volumes on the extra disks (after ';' in storage_init).
	VolSwap2 = "swap2"
	VolData2 = "data2"
	// VolEFI is oVirt Node 3's EFI system partition size (named form only: size,EFI).
	VolEFI = "efi"
)

// StorageVol holds sizes in MiB by volume name; -1 means the rest of the disk, 0 means none.
// Absent names use the layout defaults.
type StorageVol struct {
	SizesMiB map[string]int64 `json:"sizes_mib"`
}

// BootIf is the parsed BOOTIF= value.
type BootIf struct {
	Name string `json:"name,omitempty"` // interface name, e.g. eth0
	MAC  string `json:"mac,omitempty"`  // lower-case aa:bb:cc:dd:ee:ff
	Link bool   `json:"link,omitempty"` // first NIC with carrier
}

// IPConfig is the parsed ip= value (with netmask= and gateway= folded in).
type IPConfig struct {
	DHCP      bool   `json:"dhcp,omitempty"`
	Address   string `json:"address,omitempty"`
	Netmask   string `json:"netmask,omitempty"`
	Gateway   string `json:"gateway,omitempty"`
	Server    string `json:"server,omitempty"`
	Hostname  string `json:"hostname,omitempty"`
	Interface string `json:"interface,omitempty"`
	// Method is the autoconf method as written: dhcp, on, any, dhcp6, auto6, ibft, none or off;
	// empty for a static address given in the pxelinux or anaconda form.
	Method string `json:"method,omitempty"`
	MTU    int    `json:"mtu,omitempty"`
	MAC    string `json:"mac,omitempty"` // lower-case aa:bb:cc:dd:ee:ff
	// DNS are dracut's <dns1>:<dns2> fields of the long form (dns= is separate, in Params.DNS).
	DNS []string `json:"dns,omitempty"`
}

// VLAN is the parsed vlan= value.
type VLAN struct {
	ID     int    `json:"id"`
	Parent string `json:"parent,omitempty"`
	Name   string `json:"name,omitempty"`
}

// Bond is the parsed bond= value.
type Bond struct {
	Name    string   `json:"name"`
	Slaves  []string `json:"slaves,omitempty"`
	Options string   `json:"options,omitempty"` // comma separated, e.g. mode=802.3ad,miimon=100
	MTU     int      `json:"mtu,omitempty"`
}

// HostPort is a host with an optional port (0 when absent).
type HostPort struct {
	Host string `json:"host"`
	Port int    `json:"port,omitempty"`
	// Proto is the transport a syslog= value names (udp or tcp), "" when it
	// names none.
	Proto string `json:"proto,omitempty"`
}

// Secret is a password hash; every printed form of it is redacted.
type Secret string

// Redacted is what every printed form of a secret shows.
const Redacted = "<redacted>"

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// MarshalJSON redacts the secret.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte(`""`), nil
	}
	return []byte(`"` + Redacted + `"`), nil
}

// Reveal returns the hash itself, for the one place that writes it to the node's config.
func (s Secret) Reveal() string { return string(s) }
