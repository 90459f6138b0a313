// Package cmdline turns a kernel command line into typed Params. It does no I/O.
//
// # Grammar
//
// The line is split the way the kernel splits it: whitespace separates tokens, double quotes
// group (hostname="a b") and are removed, an unterminated quote runs to the end of the line, and
// every token after the first "--" belongs to the node OS's init (Params.InitArgs). A token is
// KEY or KEY=VALUE; the value is everything after the first '='. In keys, '-' and '_' are the
// same and ASCII case does not matter (BOOTIF and bootif are one key), except in action flags
// (below). When a key appears more than once, the last value wins; aliases of one key
// (storage_init and ovirt_init, or firstboot and ovirt_firstboot) count as one key. console= is
// the exception: every value is collected, in order, into Params.Consoles.
//
// Flags are on when bare or =1|yes|true|on|y and off when =0|no|false|off|n; any other value
// is an error.
//
// # Actions
//
//	install    aliases firstboot, ovirt_firstboot
//	reinstall  alias ovirt_reinstall
//	upgrade    aliases ovirt_upgrade, local_boot, ovirt_local_boot
//	uninstall  alias ovirt_uninstall
//	stateless  alias ovirt_stateless
//	rescue
//
// A stateless node runs with the command line it booted with: /proc/cmdline is the same
// line, and every process on the node, not only root, can read it. An adminpw= hash on a
// stateless line is therefore readable by every user and service of the node (the installed
// boot entry of an install never carries it, so an installed node does not have this
// problem). Give a stateless line nodeinit.adminpw=bundle instead: see the nodeinit keys.
//
// The aliases of one action are one key, so the last of them wins: firstboot ovirt_firstboot=0
// is off, and so is install firstboot=0. Action flags are matched case-sensitively, as the
// kernel and oVirt Node match them ('-' and '_' still the same): Reinstall, INSTALL, or a flag
// one letter away from one (reinstal, localboot) is an error naming the right spelling, never
// an action and never silently kept. oVirt's ISO and PXE menus put
// install on every line, so install plus exactly one other action is that other action
// (install reinstall is reinstall). Any other pair is an error that names both tokens. With no
// action flag, a line carrying both storage_init and BOOTIF is oVirt's implicit auto-install:
// Params.AutoInstall is set and Action stays boot; the planner installs only on a machine
// without an install. An action flag explicitly turned off (install=0) suppresses that.
//
// # oVirt Node 3 arguments
//
//	storage_init (ovirt_init)  bare = the one eligible disk; else DISK[,DISK...][;EXTRA[,EXTRA...]]
//	                           where DISK is /dev/PATH (globs allowed, /dev/mapper/… too),
//	                           /dev/disk/by-id/NAME, /dev/disk/by-path/NAME, serial:S, wwn:W,
//	                           by-id:NAME, by-path:NAME, or BUS, BUS:SERIAL, BUS:ALL with BUS one of
//	                           ata, scsi, usb, nvme, virtio, cciss (the serial may contain ':').
//	                           A bare BUS is the one disk on that bus (several are refused, listed);
//	                           SERIAL may be udev's ID_SERIAL with its -0:0 suffix;
//	                           /dev/mapper/WWID is the disk with that multipath WWID
//	                           (3<naa>, SATA_<model>_<serial>, eui.…).
//	                           Each DISK and EXTRA must name exactly one disk (one matching none or
//	                           several is refused, naming it and listing the candidates), and no disk
//	                           may be listed twice. The first DISK is the install disk and gets the
//	                           whole node layout. Every other listed disk, further DISKs (oVirt's
//	                           HostVG list) and EXTRAs (oVirt's AppVG) alike, becomes app-data disk N,
//	                           N = 1, 2, … in the order listed: a GPT holding node-swap2 (swap labelled
//	                           node-swap2, storage_vol Swap2) and node-app<N> (ext4 labelled
//	                           node-app<N>, storage_vol Data2), which the node mounts on /data/app<N>.
//	                           Each is checked as the install disk is: never the boot medium, nothing
//	                           mounted, no holders, large enough (the refusal states the minimum), and
//	                           foreign content only with nodeinit.wipe=<its serial>; a nodeinit
//	                           app-data disk is replaced by reinstall, not by install. The install's
//	                           ledger records them by PARTUUID, and a boot mounts only those: a
//	                           missing one is reported (an info event) and the boot goes on. A
//	                           reinstall in place leaves them untouched when storage_init lists the
//	                           install's own (or is absent), a reinstall that wipes keeps node-app<N>
//	                           with nodeinit.keep=data, and uninstall wipes every disk carrying
//	                           node-app<N> partitions, listed or not.
//	storage_vol (ovirt_vol)    oVirt's positional BOOT:SWAP:ROOT:CONFIG:LOGGING:DATA:SWAP2:DATA2
//	                           fields, or SIZE,Name fields (Name matched case-insensitively: EFI,
//	                           Boot, Swap, Root, Config, Logging, Data, Swap2, Data2). MiB; -1 is
//	                           the rest of the disk (once for the install disk, once for the extra disks);
//	                           0 is none; empty = default. Any size is parsed; the layout
//	                           (disk.PlanLayout) rounds a volume up to what nodeinit needs, with a
//	                           notice, rather than refusing oVirt's everyday values (Config 5,
//	                           Boot or EFI 256). EFI and Boot both size the one ESP (the larger wins).
//	                           Swap2 and Data2 size every app-data disk (see storage_init) and not
//	                           the install disk: Swap2 is node-swap2 (default 0: none; at least 16),
//	                           Data2 is node-app<N> (default -1: the rest; at least 1024). A Data2
//	                           that does not fill the disk leaves the rest unpartitioned; Data2=0 is
//	                           refused. storage_vol=:::::::2048 (the eighth field) is Data2=2048,
//	                           storage_vol=::::::512:-1 is Swap2=512 with Data2 the rest, and the
//	                           named form is storage_vol=512,Swap2:2048,Data2. Given without an
//	                           app-data disk, they are unused and the plan warns.
//	BOOTIF                     link, an interface name, pxelinux's 01-aa-bb-cc-dd-ee-ff (also
//	                           01-aa:bb:cc:dd:ee:ff, what GRUB's BOOTIF=01-${net_default_mac}
//	                           expands to), or a bare MAC with '-' or ':'. A 01-… value with more
//	                           or fewer than six bytes,
//	                           and a multicast MAC (what a pxelinux value missing a byte reads as),
//	                           are refused.
//	ip                         dhcp|on|any|dhcp6|auto6|ibft|none|off; IFACE:METHOD[:MTU[:MAC]];
//	                           pxelinux ADDR:SERVER:GATEWAY:NETMASK; anaconda ADDR with netmask=
//	                           and gateway=; dracut ADDR:[PEER]:GW:MASK:HOSTNAME:IFACE:METHOD
//	                           [:MTU[:MAC]] or [:DNS1[:DNS2]]. IPv6 addresses in [brackets].
//	                           ADDR may be ADDR/PREFIX. Values inside ip= win over netmask= and
//	                           gateway= (with a warning when they differ).
//	netmask                    a dotted IPv4 mask or a prefix length: netmask=24 and
//	                           netmask=255.255.255.0 are the same, and a prefix length is the only
//	                           form for IPv6 (1-128; 1-32 for IPv4). The NETMASK field of ip= takes
//	                           the same forms. A static address without a netmask is refused: the
//	                           node would get no usable route.
//	ipv6                       dhcp, auto, none, off or ADDRESS[/PREFIX].
//	dns, ntp                   comma separated (colon separated also read, unless the value is
//	                           one IPv6 address). dns= takes IP addresses only (the resolver cannot
//	                           look up its own servers); ntp= takes IP addresses or host names.
//	hostname                   an RFC 1123 host name.
//	                           Interface names (BOOTIF, ip=, vlan=, bond=, IPv6 zones) are letters,
//	                           digits, '-', '_' and '.', at most 15: they are written into
//	                           systemd-networkd files, where * ? [ are patterns. An IPv6 zone
//	                           (fe80::1%eth0) is accepted only in dns= and ntp=.
//	vlan                       ID, ID:PARENT, or dracut's NAME:PARENT (eth0.100:eth0).
//	bond (bond_setup)          NAME[:SLAVE,SLAVE[:OPT=V,OPT=V[:MTU]]].
//	adminpw, rootpw            crypt(3) hashes only (see below); also ovirt_adminpw, ovirt_rootpw.
//	                           With stateless they stay in /proc/cmdline, readable by every
//	                           process of the node: use nodeinit.adminpw=bundle there.
//	ssh_pwauth                 a flag.
//	management_server          HOST[:PORT]; http:// or https:// and a trailing '/' are stripped.
//	                           Aliases ovirt_management_server and vdsm's misspelt
//	                           managment_server; management_port=PORT completes it.
//	management_server_fingerprint  hex pairs with ':' (16, 20 or 32 bytes).
//	syslog, netconsole, collectd   HOST[:PORT], an IPv6 address in brackets when a port follows
//	                           ([2001:db8::1]:514). A netconsole value with '@' is the kernel's own
//	                           netconsole module syntax: it is not interpreted, only kept.
//	                           syslog also takes udp://HOST[:PORT] and tcp://HOST[:PORT]
//	                           (RFC 6587 octet counting); bare HOST[:PORT] is UDP.
//	local_boot_trigger         an http(s) URL, or oVirt's scheme-less HOST[:PORT]/PATH;
//	                           @HOSTNAME@ placeholders are kept as written.
//	reboot_delay               seconds, 0 to 86400.
//
// # nodeinit keys
//
//	nodeinit.image=SRC           /path, /dev/NAME[/path], label:NAME[/path], initramfs:/path,
//	                             http(s)://…, or several http(s) mirrors joined by commas
//	                             (http://a/b/,http://c/b/, see SplitMirrors). label:NAME finds physical media only (a disk on a
//	                             bus, or a partition of one), never a dm, loop, nbd, md, zram or
//	                             ram device, which on a running host may be a guest's volume
//	                             carrying any label; /dev/NAME mounts that device read-only,
//	                             whatever it is, because the operator named it.
//	nodeinit.image.sha256=HEX    64 hex digits, pins manifest.json
//	nodeinit.dryrun, nodeinit.debug, nodeinit.insecure, nodeinit.force   flags
//	nodeinit.break=STAGE[,…]     names from StageNames
//	nodeinit.onfail=shell|reboot|poweroff|halt
//	nodeinit.status_url=http(s)://…   posts the final result record (stages.Result)
//	nodeinit.status_stages       flag: post every stage transition there too
//	nodeinit.events=ttyS1        the event stream as JSON lines on that serial console
//	nodeinit.wipe=SERIAL|WWN[,…] consent to erase exactly those disks
//	nodeinit.keep=data           a reinstall keeps node-data and each app-data disk's node-app<N>
//	                             (listed in the install's order) with their files
//	nodeinit.slot=a|b
//	nodeinit.tries=1..9
//	nodeinit.firmware=bios|uefi  the firmware the installed disk boots under: bios puts GRUB in the
//	                             MBR and a BIOS boot partition, with its boot counters in grubenv;
//	                             uefi puts systemd-boot on the ESP. Default: the firmware the
//	                             installer runs under (bios only when the initramfs carries GRUB)
//	nodeinit.erase=signatures|discard|zero   how disks are erased (default signatures: every
//	                             partition table, filesystem, RAID, LVM and LUKS signature; discard
//	                             and zero also TRIM or zero the whole disk). An install's ledger
//	                             records the mode; an uninstall, whose wipe takes the ledger with
//	                             it, records it in the EFI variable NodeinitUninstall-537fb13e-…,
//	                             which `nodeinit status` shows.
//	nodeinit.erase.secure        a flag: the device's secure form of discard or zero; refused with
//	                             signatures, which only removes signatures
//	nodeinit.adminpw=bundle      the admin password hash comes from the image bundle's adminpw.hash
//	                             (`nodeinit image build --admin-hash-file FILE`), which the signed
//	                             manifest lists with its SHA-256 and which is checked like every
//	                             bundle file; install, reinstall and stateless refuse a bundle
//	                             without it or whose copy does not match. The hash is never on the
//	                             command line, so a stateless node's /proc/cmdline does not show
//	                             it; anyone who can fetch the bundle can read it, as anyone who can
//	                             fetch a PXE config can read adminpw=. Refused together with adminpw=.
//	nodeinit.tpm=auto|required|off  measured boot (package measure): auto (the default) measures
//	                             when a TPM 2.0 is present and boots on when it fails; required
//	                             stops the boot without a working TPM; off measures nothing.
//	                             Copied into the installed boot entry like nodeinit.events.
//	nodeinit.interactive=1|0     the installer screen (package tui): 1 always shows it on an
//	                             interactive console, 0 never does (an unattended line that
//	                             leaves a choice open is then refused, as without a console).
//	                             Absent, it shows only when the line leaves a choice open: an
//	                             install with no storage_init (the media's "Install or Upgrade"
//	                             entry), or a bare storage_init, bare BUS or glob that matches
//	                             several eligible disks, on a line without BOOTIF= (a PXE
//	                             line is unattended). A complete line never waits at a
//	                             screen. /init offers it on every console= console; the first
//	                             to answer Enter within 5 minutes gets it. Not copied into the
//	                             installed boot entry.
//
// An unknown nodeinit.* key is an error (a misspelt nodeinit.dryrun must not run for real).
//
// # Kept tokens and the installed boot entry
//
// Tokens nodeinit does not interpret (console=, quiet, crashkernel=, oVirt-only keys such as
// runtime_mode) are kept in order in Params.Kept and copied, with the init arguments, into the
// installed boot entry (BootEntryArgs). Tokens that belong to the boot medium (BOOT_IMAGE=,
// initrd=, root=, rootfstype=, rootflags=, ro, rw, liveimg, check, linux, rd.live.*) are dropped.
//
// # Secrets
//
// adminpw and rootpw take crypt(3) hashes: $id$… forms (1, 2a/2b/2x/2y, 5, 6, 7, y, gy, sha1,
// md5) are accepted; the 13-character DES form is accepted with a warning that it is weak (every
// oVirt example uses it); anything else is taken for a plaintext password and refused, with a
// hint to run `openssl passwd -6`. A 13-character plaintext made only of [./0-9A-Za-z] cannot be
// told from a DES hash. Secrets are the Secret type: String, Canonical(false), JSON, errors,
// warnings and Redacted (the params of `nodeinit plan --json`, which also hides URL
// credentials) show "<redacted>". Other password arguments of oVirt Node (rhevm_admin_password,
// engine_admin_password, snmp_password, cim_passwd, rhn_password and any key ending in
// password, passwd, passphrase or _pw, each also with the ovirt_ prefix or a _hashed suffix,
// also after "--") are dropped with a warning that does not show the value.
//
// The command line itself is not secret on a running stateless node: /proc/cmdline is
// readable by every process, so an adminpw= or rootpw= hash there is readable by every
// user and service. nodeinit.adminpw=bundle takes the admin hash from the signed bundle
// instead; rootpw has no such form yet and should be left off stateless lines.
//
// # Length
//
// A line of MaxLen-1 (2047) bytes or more may have been cut by the boot loader or the kernel;
// Params.PossiblyTruncated is set and the planner refuses destructive actions (Destructive).
//
// # Differences from oVirt Node
//
//   - uninstall=0 (and every action flag =0|no|false|off) is off. oVirt Node matched uninstall*
//     and acted on uninstall=0.
//   - Plaintext passwords are refused instead of being written to /etc/shadow.
//   - Conflicting actions (upgrade uninstall) are an error instead of whichever script ran first.
//   - storage_init never falls back to "the first disk": a bare storage_init means the one eligible
//     disk and is refused when there are several.
//   - Malformed values are errors naming the token, not silently ignored.
//   - Keys other than action flags are case-insensitive and '-' equals '_'; oVirt compared
//     them literally. Action flags keep oVirt's case-sensitive match, and a near miss is an error.
//   - dns= host names are refused (oVirt wrote them into resolv.conf, where they never worked).
//   - rootpw does not also set adminpw; they are separate Params fields.
//   - storage_vol accepts -1 for any one volume per disk group (oVirt documented it for Data only).
//   - Several disks in storage_init are not one volume group: the initramfs has no LVM or md, and
//     the crash-safety argument rests on plain GPT and ext4. oVirt spread HostVG over every disk
//     before ';' and made AppVG (the Swap2 and Data2 volumes) on those after it; nodeinit installs
//     onto the first disk alone and makes each further disk, before or after ';', an app-data disk
//     of its own (node-swap2, node-app<N> on /data/app<N>). No data spans disks: a failed disk
//     takes only its /data/app<N> with it, and the node boots without it. An item of the list
//     that matches no disk, or several, is refused rather than skipped.
//   - Unknown nodeinit.* keys are errors.
package cmdline
