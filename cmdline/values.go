package cmdline

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
)

// handlers parse the value of each interpreted key (canonical spelling).
var handlers = map[string]func(*Params, arg) error{
	"storage_init":                  parseStorageInit,
	"storage_vol":                   parseStorageVol,
	"BOOTIF":                        parseBootIf,
	"ip":                            parseIP,
	"netmask":                       func(*Params, arg) error { return nil }, // folded into ip
	"gateway":                       func(*Params, arg) error { return nil }, // folded into ip
	"management_port":               func(*Params, arg) error { return nil }, // folded into management_server
	"ipv6":                          parseIPv6,
	"dns":                           func(p *Params, a arg) error { return parseServerList(a, &p.DNS, false) },
	"ntp":                           func(p *Params, a arg) error { return parseServerList(a, &p.NTP, true) },
	"hostname":                      parseHostname,
	"vlan":                          parseVLAN,
	"bond":                          parseBond,
	"adminpw":                       func(p *Params, a arg) error { return parsePassword(p, a, &p.AdminPW) },
	"rootpw":                        func(p *Params, a arg) error { return parsePassword(p, a, &p.RootPW) },
	"ssh_pwauth":                    parseSSHPwAuth,
	"management_server":             parseManagementServer,
	"management_server_fingerprint": parseFingerprint,
	"syslog":                        parseSyslog,
	"collectd":                      func(p *Params, a arg) error { return hostPortInto(a, &p.Collectd) },
	"netconsole":                    parseNetconsole,
	"local_boot_trigger":            parseLocalBootTrigger,
	"reboot_delay":                  parseRebootDelay,

	"nodeinit.image":         parseNodeImage,
	"nodeinit.image.sha256":  parseNodeSHA256,
	"nodeinit.dryrun":        nodeBool(func(n *NodeParams) *bool { return &n.DryRun }),
	"nodeinit.debug":         nodeBool(func(n *NodeParams) *bool { return &n.Debug }),
	"nodeinit.insecure":      nodeBool(func(n *NodeParams) *bool { return &n.Insecure }),
	"nodeinit.force":         nodeBool(func(n *NodeParams) *bool { return &n.Force }),
	"nodeinit.break":         parseNodeBreak,
	"nodeinit.onfail":        parseNodeOnFail,
	"nodeinit.status_url":    parseNodeStatusURL,
	"nodeinit.status_stages": nodeBool(func(n *NodeParams) *bool { return &n.StatusStages }),
	"nodeinit.events":        parseNodeEvents,
	"nodeinit.wipe":          parseNodeWipe,
	"nodeinit.keep":          parseNodeKeep,
	"nodeinit.slot":          parseNodeSlot,
	"nodeinit.tries":         parseNodeTries,
	"nodeinit.firmware":      parseNodeFirmware,
	"nodeinit.erase":         parseNodeErase,
	"nodeinit.erase.secure":  nodeBool(func(n *NodeParams) *bool { return &n.EraseSecure }),
	"nodeinit.adminpw":       parseNodeAdminPW,
	"nodeinit.tpm":           parseNodeTPM,
	"nodeinit.interactive":   parseNodeInteractive,
}

// nodeKeyNames lists the nodeinit.* keys, for hints.
func nodeKeyNames() []string {
	var names []string
	for k := range handlers {
		if strings.HasPrefix(k, "nodeinit.") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

func bad(a arg, hint, format string, args ...any) error {
	return &Error{Token: a.tok, Key: a.key, Problem: fmt.Sprintf(format, args...), Hint: hint}
}

// needValue fails for a bare key or an empty value.
func needValue(a arg, example string) error {
	if !a.hasVal || a.val == "" {
		return bad(a, "give a value, e.g. "+example, "%s needs a value", a.key)
	}
	return nil
}

// parseBool reads a bare flag or =1|yes|true|on as on and =0|no|false|off as off.
func parseBool(a arg, _ string) (bool, *Error) {
	if !a.hasVal {
		return true, nil
	}
	switch strings.ToLower(a.val) {
	case "1", "yes", "true", "on", "y":
		return true, nil
	case "0", "no", "false", "off", "n":
		return false, nil
	}
	return false, &Error{Token: a.tok, Key: a.key, Problem: fmt.Sprintf("%q is not a yes/no value", a.val),
		Hint: fmt.Sprintf("write %s (or %s=1) to turn it on, %s=0 to turn it off", a.key, a.key, a.key)}
}

func nodeBool(field func(*NodeParams) *bool) func(*Params, arg) error {
	return func(p *Params, a arg) error {
		v, err := parseBool(a, "")
		if err != nil {
			return err
		}
		*field(&p.Node) = v
		return nil
	}
}

// ---- storage ----

// diskBuses are the bus names storage_init accepts (udev ID_BUS, as oVirt Node matched them).
var diskBuses = map[string]bool{"ata": true, "scsi": true, "usb": true, "nvme": true, "virtio": true, "cciss": true}

const storageInitHint = "name the disk as /dev/sda, /dev/disk/by-id/NAME, serial:SERIAL, wwn:WWN, " +
	"by-path:NAME or BUS[:SERIAL|:ALL] with BUS one of ata, scsi, usb, nvme, virtio, cciss; " +
	"separate disks with ',' and put extra disks after ';'"

func parseStorageInit(p *Params, a arg) error {
	if !a.hasVal {
		p.StorageInit = &StorageInit{Bare: true}
		return nil
	}
	groups := strings.Split(a.val, ";")
	if len(groups) > 2 {
		return bad(a, storageInitHint, "more than one ';': only the install disks and one group of extra disks can be given")
	}
	if strings.TrimSpace(groups[0]) == "" {
		return bad(a, storageInitHint, "names no install disk")
	}
	si := &StorageInit{}
	for gi, g := range groups {
		if gi == 1 && g == "" {
			break
		}
		for _, item := range strings.Split(g, ",") {
			spec, err := parseDiskSpec(a, item)
			if err != nil {
				return err
			}
			if gi == 0 {
				si.Disks = append(si.Disks, spec)
			} else {
				si.Extra = append(si.Extra, spec)
			}
		}
	}
	p.StorageInit = si
	return nil
}

func parseDiskSpec(a arg, item string) (DiskSpec, error) {
	d := DiskSpec{Raw: item}
	if item == "" {
		return d, bad(a, storageInitHint, "has an empty disk entry")
	}
	prefix, rest, hasColon := strings.Cut(item, ":")
	switch {
	case strings.HasPrefix(item, "/dev/disk/by-id/"):
		d.Kind, d.Value = SpecByID, strings.TrimPrefix(item, "/dev/disk/by-id/")
	case strings.HasPrefix(item, "/dev/disk/by-path/"):
		d.Kind, d.Value = SpecByPath, strings.TrimPrefix(item, "/dev/disk/by-path/")
	case strings.HasPrefix(item, "/dev/"):
		d.Kind, d.Value = SpecPath, item
		if _, err := path.Match(item, "/dev/x"); err != nil {
			return d, bad(a, "fix the pattern; * ? and [..] are allowed", "disk pattern %q is malformed", item)
		}
		if path.Clean(item) != item || item == "/dev/" {
			return d, bad(a, storageInitHint, "disk path %q is not a clean device path", item)
		}
		return d, nil
	case hasColon && strings.EqualFold(prefix, "serial"):
		d.Kind, d.Value = SpecSerial, rest
	case hasColon && strings.EqualFold(prefix, "wwn"):
		d.Kind, d.Value = SpecWWN, strings.ToLower(rest)
	case hasColon && strings.EqualFold(prefix, "by-id"):
		d.Kind, d.Value = SpecByID, rest
	case hasColon && strings.EqualFold(prefix, "by-path"):
		d.Kind, d.Value = SpecByPath, rest
	case diskBuses[strings.ToLower(prefix)]:
		d.Kind, d.Bus = SpecBus, strings.ToLower(prefix)
		if !hasColon {
			return d, nil
		}
		if strings.EqualFold(rest, "all") {
			d.All = true
			return d, nil
		}
		d.Value = rest
	default:
		return d, bad(a, storageInitHint, "%q is not a disk name nodeinit understands", item)
	}
	if d.Value == "" || strings.Contains(d.Value, "/") {
		return d, bad(a, storageInitHint, "%q names no disk", item)
	}
	return d, nil
}

// volPositions is oVirt Node's positional order for storage_vol fields.
var volPositions = []string{VolBoot, VolSwap, VolRoot, VolConfig, VolLogging, VolData, VolSwap2, VolData2}

// volNames maps oVirt's volume names (matched case-insensitively) to ours.
var volNames = map[string]string{
	"efi": VolEFI, "boot": VolBoot, "swap": VolSwap, "root": VolRoot, "config": VolConfig,
	"logging": VolLogging, "data": VolData, "swap2": VolSwap2, "data2": VolData2,
}

const storageVolHint = "sizes are whole MiB: storage_vol=:SWAP::CONFIG:LOGGING:DATA or SIZE,Name fields " +
	"(Name one of EFI, Boot, Swap, Root, Config, Logging, Data, Swap2, Data2), -1 for the rest of the disk, 0 for none"

func parseStorageVol(p *Params, a arg) error {
	fields := strings.Split(a.val, ":")
	if len(fields) > 9 {
		return bad(a, storageVolHint, "has %d fields; at most 9 are allowed", len(fields))
	}
	sv := &StorageVol{SizesMiB: map[string]int64{}}
	for i, f := range fields {
		if f == "" {
			continue
		}
		sizeText, name, named := strings.Cut(f, ",")
		var vol string
		if named {
			vol = volNames[strings.ToLower(name)]
			if vol == "" {
				return bad(a, storageVolHint, "unknown volume name %q", name)
			}
		} else {
			if i >= len(volPositions) {
				return bad(a, storageVolHint, "field %d has no name and there is no volume at that position", i+1)
			}
			vol = volPositions[i]
		}
		size, err := strconv.ParseInt(sizeText, 10, 64)
		if err != nil || size < -1 || size > 1<<40 {
			return bad(a, storageVolHint, "size %q of %s is not a whole number of MiB (or -1, or 0)", sizeText, vol)
		}
		sv.SizesMiB[vol] = size
	}
	// -1 (the rest) may be used once on the install disk and once on the extra disks.
	for _, group := range [][]string{{VolEFI, VolBoot, VolSwap, VolRoot, VolConfig, VolLogging, VolData}, {VolSwap2, VolData2}} {
		var rest []string
		for _, v := range group {
			if sv.SizesMiB[v] == -1 {
				rest = append(rest, v)
			}
		}
		if len(rest) > 1 {
			return bad(a, storageVolHint, "both %s and %s ask for the rest of the disk (-1)", rest[0], rest[1])
		}
	}
	p.StorageVol = sv
	return nil
}

// ---- network ----

const bootifHint = "write BOOTIF=link, BOOTIF=<interface> (e.g. eth0) or the MAC: BOOTIF=01-52-54-00-12-34-56 or BOOTIF=52:54:00:12:34:56"

func parseBootIf(p *Params, a arg) error {
	if err := needValue(a, "BOOTIF=link"); err != nil {
		return bad(a, bootifHint, "BOOTIF needs a value")
	}
	v := a.val
	if strings.EqualFold(v, "link") {
		p.BootIf = &BootIf{Link: true}
		return nil
	}
	mac := v
	if rest, ok := strings.CutPrefix(v, "01-"); ok {
		// pxelinux writes 01-52-54-00-12-34-56; GRUB's BOOTIF=01-${net_default_mac} expands
		// to 01-52:54:00:12:34:56. Either way exactly six bytes follow, or another MAC is read.
		if n := len(strings.FieldsFunc(rest, isMACSep)); n != 6 {
			return bad(a, bootifHint, "pxelinux's BOOTIF=01-… is the ARP type 01 and six MAC bytes separated by '-' or ':'; %q has %d bytes after it", v, n)
		}
		mac = rest
	}
	if mac, ok := bootifMAC(mac); ok {
		if b, _ := strconv.ParseUint(mac[:2], 16, 8); b&1 != 0 {
			return bad(a, bootifHint, "%q is a multicast address, not a network card's MAC (a pxelinux value missing a byte?)", v)
		}
		p.BootIf = &BootIf{MAC: mac}
		return nil
	}
	if looksLikeMAC(mac) {
		return bad(a, bootifHint, "%q is not a valid MAC address", v)
	}
	if !validIfName(v) {
		return bad(a, bootifHint, "%q is neither link, a MAC address nor an interface name", v)
	}
	p.BootIf = &BootIf{Name: v}
	return nil
}

// bootifMAC reads pxelinux's 01-aa-bb-cc-dd-ee-ff (ARP type 01 = Ethernet) and bare MACs.
func bootifMAC(v string) (string, bool) {
	parts := strings.FieldsFunc(v, func(r rune) bool { return r == '-' || r == ':' })
	if strings.Count(v, "-")+strings.Count(v, ":") != len(parts)-1 {
		return "", false
	}
	if len(parts) == 7 && parts[0] == "01" {
		parts = parts[1:]
	}
	return joinMAC(parts)
}

func isMACSep(r rune) bool { return r == '-' || r == ':' }

func joinMAC(parts []string) (string, bool) {
	if len(parts) != 6 {
		return "", false
	}
	for _, h := range parts {
		if len(h) != 2 || !isHex(h) {
			return "", false
		}
	}
	return strings.ToLower(strings.Join(parts, ":")), true
}

func looksLikeMAC(v string) bool {
	return strings.Count(v, "-") >= 5 || strings.Count(v, ":") >= 5
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return s != ""
}

// validIfName accepts interface names of letters, digits, '-', '_' and '.', at most 15 bytes
// (the kernel's IFNAMSIZ), and not "." or "..". The kernel allows more, but the names are
// written into systemd-networkd's Name=, which splits on whitespace and reads * ? [ as
// patterns, so one odd name must not match other interfaces.
func validIfName(n string) bool {
	if n == "" || len(n) > 15 || n == "." || n == ".." {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// parseAddr reads an IP address. A zone (fe80::1%eth0) is allowed only where zoneOK, and
// only as an interface name: netip.ParseAddr takes any bytes after '%', which would let a
// value carry spaces or newlines into a generated file.
func parseAddr(v string, zoneOK bool) (netip.Addr, error) {
	addr, err := netip.ParseAddr(v)
	if err != nil {
		return addr, fmt.Errorf("%q is not an IP address", v)
	}
	if z := addr.Zone(); z != "" {
		if !zoneOK {
			return addr, fmt.Errorf("%q has a zone (%%%s); an address here cannot have one", v, z)
		}
		if !validIfName(z) {
			return addr, fmt.Errorf("the zone of %q is not an interface name", v)
		}
	}
	return addr, nil
}

var ipMethods = map[string]bool{"dhcp": true, "on": true, "any": true, "dhcp6": true, "auto6": true, "ibft": true, "none": true, "off": true}

const ipHint = "write ip=dhcp, ip=ADDR:SERVER:GATEWAY:NETMASK (pxelinux), ip=ADDR with netmask= and gateway=, " +
	"or dracut's ip=ADDR:[PEER]:GATEWAY:NETMASK:HOSTNAME:IFACE:{none|off|dhcp|on|any|dhcp6|auto6|ibft}[:MTU[:MAC]]"

func parseIP(p *Params, a arg) error {
	if err := needValue(a, "ip=dhcp"); err != nil {
		return bad(a, ipHint, "ip needs a value")
	}
	fields, err := splitBracketed(a.val)
	if err != nil {
		return bad(a, ipHint, "%v", err)
	}
	c := &IPConfig{}
	switch {
	case len(fields) == 1 && ipMethods[strings.ToLower(fields[0])]:
		c.Method = strings.ToLower(fields[0])
	case len(fields) >= 2 && len(fields) <= 4 && ipMethods[strings.ToLower(fields[1])] && validIfName(fields[0]):
		// dracut: ip=<interface>:{dhcp|on|any|dhcp6|auto6}[:[<mtu>][:<macaddr>]] (MAC with '-' only here)
		c.Interface, c.Method = fields[0], strings.ToLower(fields[1])
		if err := ipTail(c, fields[2:], false); err != nil {
			return bad(a, ipHint, "%v", err)
		}
	default:
		if len(fields) > 9 && len(fields) != 14 {
			return bad(a, ipHint, "has %d ':'-separated fields", len(fields))
		}
		get := func(i int) string {
			if i < len(fields) {
				return fields[i]
			}
			return ""
		}
		c.Address, c.Server, c.Gateway, c.Netmask, c.Hostname, c.Interface = get(0), get(1), get(2), get(3), get(4), get(5)
		c.Method = strings.ToLower(get(6))
		if c.Method != "" && !ipMethods[c.Method] {
			return bad(a, ipHint, "autoconf method %q is unknown", get(6))
		}
		if addr, prefix, ok := strings.Cut(c.Address, "/"); ok {
			// ADDR/PREFIX: the prefix length is the netmask.
			if _, err := strconv.Atoi(prefix); err != nil {
				return bad(a, ipHint, "prefix length %q of %q is not a number", prefix, c.Address)
			}
			if c.Netmask != "" && !sameMask(c.Netmask, prefix) {
				return bad(a, ipHint, "the prefix /%s and the netmask %s disagree", prefix, c.Netmask)
			}
			c.Address, c.Netmask = addr, prefix
		}
		if err := checkAddr("address", c.Address, true); err != nil {
			return bad(a, ipHint, "%v", err)
		}
		if err := checkAddr("server", c.Server, false); err != nil {
			return bad(a, ipHint, "%v", err)
		}
		if err := checkAddr("gateway", c.Gateway, false); err != nil {
			return bad(a, ipHint, "%v", err)
		}
		if err := checkNetmask(c.Netmask); err != nil {
			return bad(a, ipHint, "%v", err)
		}
		if c.Hostname != "" && !validHostname(c.Hostname) {
			return bad(a, ipHint, "hostname %q is not a valid host name", c.Hostname)
		}
		if c.Interface != "" && !validIfName(c.Interface) {
			return bad(a, ipHint, "interface %q is not a valid interface name", c.Interface)
		}
		if len(fields) > 7 {
			if err := ipTail(c, fields[7:], true); err != nil {
				return bad(a, ipHint, "%v", err)
			}
		}
	}
	c.DHCP = c.Method == "dhcp" || c.Method == "on" || c.Method == "any"
	p.IP = c
	return nil
}

// ipTail reads dracut's [:<mtu>[:<macaddr>]] or [:<dns1>[:<dns2>]] after the autoconf method;
// the MAC may be written with ':' (taking six fields) or with '-'.
func ipTail(c *IPConfig, tail []string, dnsAllowed bool) error {
	if len(tail) == 0 {
		return nil
	}
	if _, err := netip.ParseAddr(tail[0]); err == nil && len(tail) <= 2 && dnsAllowed {
		for _, d := range tail {
			if err := checkAddr("DNS server", d, false); err != nil {
				return err
			}
			if d != "" {
				c.DNS = append(c.DNS, d)
			}
		}
		return nil
	}
	if tail[0] != "" {
		mtu, err := strconv.Atoi(tail[0])
		if err != nil || mtu < 68 || mtu > 65535 {
			return fmt.Errorf("MTU %q is not a number between 68 and 65535", tail[0])
		}
		c.MTU = mtu
	}
	rest := tail[1:]
	switch len(rest) {
	case 0:
		return nil
	case 1:
		mac, ok := joinMAC(strings.Split(rest[0], "-"))
		if !ok {
			return fmt.Errorf("MAC %q is not a MAC address", rest[0])
		}
		c.MAC = mac
	case 6:
		mac, ok := joinMAC(rest)
		if !ok {
			return fmt.Errorf("MAC %q is not a MAC address", strings.Join(rest, ":"))
		}
		c.MAC = mac
	default:
		return fmt.Errorf("fields after the MTU are not a MAC address")
	}
	return nil
}

// splitBracketed splits on ':' except inside [IPv6] brackets, which are removed.
func splitBracketed(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '[' && !in && cur.Len() == 0:
			in = true
		case c == ']' && in:
			in = false
			if i+1 < len(s) && s[i+1] != ':' {
				return nil, fmt.Errorf("']' must end a field")
			}
		case c == ':' && !in:
			out = append(out, cur.String())
			cur.Reset()
		case c == '[' || c == ']':
			return nil, fmt.Errorf("misplaced %q", c)
		default:
			cur.WriteByte(c)
		}
	}
	if in {
		return nil, fmt.Errorf("'[' is not closed")
	}
	return append(out, cur.String()), nil
}

func checkAddr(what, v string, required bool) error {
	if v == "" {
		if required {
			return fmt.Errorf("the %s is missing", what)
		}
		return nil
	}
	if _, err := parseAddr(v, false); err != nil {
		return fmt.Errorf("%s %w", what, err)
	}
	return nil
}

func checkNetmask(m string) error {
	if m == "" {
		return nil
	}
	if n, err := strconv.Atoi(m); err == nil {
		if n < 0 || n > 128 {
			return fmt.Errorf("prefix length %q is out of range", m)
		}
		return nil
	}
	addr, err := netip.ParseAddr(m)
	if err != nil || !addr.Is4() {
		return fmt.Errorf("netmask %q is neither a dotted mask nor a prefix length", m)
	}
	b := addr.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if v != 0 && (^v+1)&^v != 0 {
		return fmt.Errorf("netmask %q has holes", m)
	}
	return nil
}

// maskBits returns the prefix length of a valid netmask: a prefix length or a dotted IPv4 mask.
func maskBits(m string) int {
	if n, err := strconv.Atoi(m); err == nil {
		return n
	}
	addr, err := netip.ParseAddr(m)
	if err != nil || !addr.Is4() {
		return -1
	}
	b := addr.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for v&(1<<31) != 0 {
		n, v = n+1, v<<1
	}
	return n
}

// sameMask reports whether two valid netmasks are the same (24 and 255.255.255.0 are).
func sameMask(a, b string) bool { return maskBits(a) == maskBits(b) }

// checkMaskFamily checks a valid netmask against its address: an IPv4 address takes a
// dotted mask or a prefix length from 1 to 32, an IPv6 address a prefix length from 1 to 128.
func checkMaskFamily(address, mask string) error {
	addr, err := netip.ParseAddr(address)
	if err != nil {
		return nil // reported for the address
	}
	n := maskBits(mask)
	_, numeric := strconv.Atoi(mask)
	switch {
	case addr.Is6() && numeric != nil:
		return fmt.Errorf("netmask %s is an IPv4 mask, but %s is an IPv6 address: give a prefix length such as 64", mask, address)
	case n < 1 || n > addr.BitLen():
		return fmt.Errorf("prefix length %s does not fit the %d-bit address %s", mask, addr.BitLen(), address)
	}
	return nil
}

func parseIPv6(p *Params, a arg) error {
	hint := "write ipv6=dhcp, ipv6=auto or ipv6=ADDRESS[/PREFIX]"
	if err := needValue(a, "ipv6=auto"); err != nil {
		return bad(a, hint, "ipv6 needs a value")
	}
	switch v := strings.ToLower(a.val); v {
	case "dhcp", "auto", "none", "off":
		p.IPv6 = v
		return nil
	}
	if pfx, err := netip.ParsePrefix(a.val); err == nil && pfx.Addr().Is6() {
		p.IPv6 = a.val
		return nil
	}
	if addr, err := parseAddr(a.val, false); err == nil && addr.Is6() {
		p.IPv6 = a.val
		return nil
	}
	return bad(a, hint, "%q is not dhcp, auto or an IPv6 address", a.val)
}

// parseServerList reads dns= and ntp=: comma separated (oVirt Node), or colon separated when
// the value is not itself one IPv6 address. Host names are allowed only where names is set
// (ntp=): the resolver cannot look up its own servers. A zone is an interface name.
func parseServerList(a arg, dst *[]string, names bool) error {
	hint := fmt.Sprintf("write %s=SERVER[,SERVER...] with IP addresses or host names", a.key)
	if !names {
		hint = fmt.Sprintf("write %s=SERVER[,SERVER...] with IP addresses, e.g. %s=192.0.2.53,2001:db8::53", a.key, a.key)
	}
	if err := needValue(a, a.key+"=192.0.2.53"); err != nil {
		return bad(a, hint, "%s needs a value", a.key)
	}
	var items []string
	if strings.Contains(a.val, ",") {
		items = strings.Split(a.val, ",")
	} else if addr, err := netip.ParseAddr(a.val); err == nil && addr.Is6() {
		items = []string{a.val}
	} else {
		items = strings.Split(a.val, ":")
	}
	var out []string
	for _, it := range items {
		if it == "" {
			return bad(a, hint, "has an empty entry")
		}
		_, err := parseAddr(it, true)
		switch {
		case err == nil:
		case strings.Contains(it, "%"):
			return bad(a, hint, "%v", err)
		case !validHostname(it):
			return bad(a, hint, "%q is neither an IP address nor a host name", it)
		case !names:
			return bad(a, hint, "%q is a host name; %s takes IP addresses, since a name could only be looked up through these servers", it, a.key)
		}
		out = append(out, it)
	}
	*dst = out
	return nil
}

// validHostname checks RFC 1123 host names.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func parseHostname(p *Params, a arg) error {
	hint := "write hostname=NAME with letters, digits, '-' and '.' (e.g. hostname=node1.example.com)"
	if err := needValue(a, "hostname=node1.example.com"); err != nil {
		return bad(a, hint, "hostname needs a value")
	}
	if !validHostname(a.val) {
		return bad(a, hint, "%q is not a valid host name", a.val)
	}
	p.Hostname = a.val
	return nil
}

func parseVLAN(p *Params, a arg) error {
	hint := "write vlan=ID (1-4094), vlan=ID:PARENT (e.g. vlan=100:eth0) or dracut's vlan=NAME:PARENT (e.g. vlan=eth0.100:eth0)"
	if err := needValue(a, "vlan=100:eth0"); err != nil {
		return bad(a, hint, "vlan needs a value")
	}
	first, parent, hasParent := strings.Cut(a.val, ":")
	if hasParent && !validIfName(parent) {
		return bad(a, hint, "parent %q is not an interface name", parent)
	}
	v := &VLAN{Parent: parent}
	if id, err := strconv.Atoi(first); err == nil {
		v.ID = id
	} else {
		if !validIfName(first) || !hasParent {
			return bad(a, hint, "%q is neither a VLAN ID nor NAME:PARENT", a.val)
		}
		digits := len(first)
		for digits > 0 && first[digits-1] >= '0' && first[digits-1] <= '9' {
			digits--
		}
		id, err := strconv.Atoi(first[digits:])
		if err != nil {
			return bad(a, hint, "VLAN name %q does not end in its ID", first)
		}
		v.ID, v.Name = id, first
	}
	if v.ID < 1 || v.ID > 4094 {
		return bad(a, hint, "VLAN ID %d is outside 1-4094", v.ID)
	}
	p.VLAN = v
	return nil
}

func parseBond(p *Params, a arg) error {
	hint := "write bond=NAME:SLAVE,SLAVE[:OPTION,OPTION[:MTU]], e.g. bond=bond0:eth0,eth1:mode=802.3ad,miimon=100"
	if err := needValue(a, "bond=bond0:eth0,eth1"); err != nil {
		return bad(a, hint, "bond needs a value")
	}
	f := strings.Split(a.val, ":")
	if len(f) > 4 {
		return bad(a, hint, "has %d ':'-separated fields; at most 4", len(f))
	}
	b := &Bond{Name: f[0]}
	if !validIfName(b.Name) {
		return bad(a, hint, "bond name %q is not an interface name", b.Name)
	}
	if len(f) > 1 && f[1] != "" {
		for _, s := range strings.Split(f[1], ",") {
			if !validIfName(s) {
				return bad(a, hint, "slave %q is not an interface name", s)
			}
			b.Slaves = append(b.Slaves, s)
		}
	}
	if len(f) > 2 {
		b.Options = f[2]
		for _, o := range strings.Split(b.Options, ",") {
			if o == "" && b.Options != "" || o != "" && !strings.Contains(o, "=") {
				return bad(a, hint, "option %q is not NAME=VALUE", o)
			}
		}
	}
	if len(f) > 3 && f[3] != "" {
		mtu, err := strconv.Atoi(f[3])
		if err != nil || mtu < 68 || mtu > 65535 {
			return bad(a, hint, "MTU %q is not a number between 68 and 65535", f[3])
		}
		b.MTU = mtu
	}
	p.Bond = b
	return nil
}

// ---- secrets ----

const passwordHint = "pass a crypt(3) hash, never the password: generate one with `openssl passwd -6` " +
	"or `mkpasswd -m sha-512` and put the $6$... result on the line"

// cryptIDs are the crypt(3) method prefixes accepted in $id$ form.
var cryptIDs = map[string]bool{"1": true, "2a": true, "2b": true, "2x": true, "2y": true, "5": true, "6": true,
	"7": true, "y": true, "gy": true, "sha1": true, "md5": true}

func isCryptChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '/'
}

func parsePassword(p *Params, a arg, dst *Secret) error {
	if !a.hasVal || a.val == "" {
		return bad(a, passwordHint, "%s needs a password hash", a.key)
	}
	switch ok, weak := CheckPasswordHash(a.val); {
	case ok && weak:
		p.warn("%s is a traditional DES crypt hash, which is weak; prefer a $6$ (SHA-512) hash from `openssl passwd -6`", a.key)
	case !ok && strings.HasPrefix(a.val, "$"):
		return bad(a, passwordHint, "the value is not a valid $id$salt$hash crypt(3) hash (value not shown)")
	case !ok:
		return bad(a, passwordHint, "the value looks like a plaintext password and is refused (value not shown)")
	}
	*dst = Secret(a.val)
	return nil
}

// CheckPasswordHash reports whether h is a password hash that adminpw= and rootpw= accept:
// a $id$salt$hash crypt(3) form with a known id, or the 13-character DES form, which is
// weak. Anything else (ok false) is taken for a plaintext password. It is the one rule for
// every place a hash comes from: the command line, and the bundle file that
// nodeinit.adminpw=bundle reads.
func CheckPasswordHash(h string) (ok, weak bool) {
	if strings.HasPrefix(h, "$") {
		parts := strings.Split(h[1:], "$")
		ok := len(parts) >= 3 && cryptIDs[parts[0]] && parts[len(parts)-1] != ""
		for i := 1; ok && i < len(parts); i++ {
			for j := 0; j < len(parts[i]); j++ {
				if c := parts[i][j]; !isCryptChar(c) && c != '=' && c != ',' {
					ok = false
				}
			}
		}
		return ok, false
	}
	if len(h) != 13 {
		return false, false
	}
	for i := 0; i < len(h); i++ {
		if !isCryptChar(h[i]) {
			return false, false
		}
	}
	return true, true
}

func parseSSHPwAuth(p *Params, a arg) error {
	v, err := parseBool(a, "")
	if err != nil {
		return err
	}
	p.SSHPwAuth = &v
	return nil
}

// ---- services ----

func parseHostPort(a arg, s, example string) (*HostPort, error) {
	hint := fmt.Sprintf("write %s=HOST[:PORT], e.g. %s", a.key, example)
	if s == "" {
		return nil, bad(a, hint, "%s needs a host", a.key)
	}
	host, portText, hasPort := s, "", false
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return nil, bad(a, hint, "'[' is not closed")
		}
		host, portText = s[1:end], s[end+1:]
		if portText != "" {
			if !strings.HasPrefix(portText, ":") {
				return nil, bad(a, hint, "text after ']' must be :PORT")
			}
			portText, hasPort = portText[1:], true
		}
		if addr, err := parseAddr(host, false); err != nil || !addr.Is6() {
			return nil, bad(a, hint, "%q is not an IPv6 address without a zone", host)
		}
	case strings.Count(s, ":") > 1:
		if addr, err := parseAddr(s, false); err != nil || !addr.Is6() {
			return nil, bad(a, hint, "%q is not an IPv6 address without a zone; write [ADDRESS]:PORT", s)
		}
	default:
		host, portText, hasPort = strings.Cut(s, ":")
		if _, err := parseAddr(host, false); err != nil && !validHostname(host) {
			return nil, bad(a, hint, "%q is neither an IP address nor a host name", host)
		}
	}
	hp := &HostPort{Host: host}
	if hasPort {
		port, err := strconv.Atoi(portText)
		if err != nil || port < 1 || port > 65535 {
			return nil, bad(a, hint, "port %q is not a number between 1 and 65535", portText)
		}
		hp.Port = port
	}
	return hp, nil
}

func hostPortInto(a arg, dst **HostPort) error {
	hp, err := parseHostPort(a, a.val, a.key+"=192.0.2.10:514")
	if err != nil {
		return err
	}
	*dst = hp
	return nil
}

// parseSyslog reads oVirt's syslog=HOST[:PORT] (UDP), and the forms
// udp://HOST[:PORT] and tcp://HOST[:PORT] that choose the transport.
func parseSyslog(p *Params, a arg) error {
	proto, rest := "", a.val
	for _, scheme := range []string{"udp", "tcp"} {
		if r, ok := strings.CutPrefix(strings.ToLower(a.val), scheme+"://"); ok {
			proto, rest = scheme, a.val[len(a.val)-len(r):]
			break
		}
	}
	if strings.Contains(rest, "://") {
		return bad(a, "write syslog=HOST[:PORT] (UDP), udp://HOST[:PORT] or tcp://HOST[:PORT]", "%q is not a syslog transport", a.val)
	}
	hp, err := parseHostPort(a, strings.TrimSuffix(rest, "/"), "syslog=192.0.2.10:514")
	if err != nil {
		return err
	}
	hp.Proto = proto
	p.Syslog = hp
	return nil
}

// parseNetconsole reads oVirt's netconsole=HOST[:PORT]. The kernel's own netconsole module
// syntax (it contains '@') is not ours: it is kept for the installed boot entry.
func parseNetconsole(p *Params, a arg) error {
	if strings.Contains(a.val, "@") {
		p.Kept = append(p.Kept, a.tok)
		return nil
	}
	return hostPortInto(a, &p.Netconsole)
}

func parseManagementServer(p *Params, a arg) error {
	v := a.val
	lower := strings.ToLower(v)
	for _, scheme := range []string{"https://", "http://"} {
		if strings.HasPrefix(lower, scheme) {
			v = v[len(scheme):]
			break
		}
	}
	v = strings.TrimSuffix(v, "/")
	if strings.Contains(v, "/") {
		return bad(a, "write management_server=HOST[:PORT] without a path, e.g. management_server=engine.example.com:443",
			"%q has a path; only the engine's host and port are used", a.val)
	}
	hp, err := parseHostPort(a, v, "management_server=engine.example.com:443")
	if err != nil {
		return err
	}
	p.ManagementServer = hp
	return nil
}

func parseFingerprint(p *Params, a arg) error {
	hint := "write the engine CA fingerprint as hex pairs separated by ':', e.g. 33:2B:79:...:8A"
	if err := needValue(a, "management_server_fingerprint=33:2B:79:D0"); err != nil {
		return bad(a, hint, "%s needs a value", a.key)
	}
	parts := strings.Split(a.val, ":")
	for _, h := range parts {
		if len(h) != 2 || !isHex(h) {
			return bad(a, hint, "%q is not a fingerprint", a.val)
		}
	}
	if len(parts) != 16 && len(parts) != 20 && len(parts) != 32 {
		return bad(a, hint, "has %d bytes; an MD5, SHA-1 or SHA-256 fingerprint has 16, 20 or 32", len(parts))
	}
	p.ManagementServerFingerprint = a.val
	return nil
}

// parseLocalBootTrigger accepts an http(s) URL, or oVirt's scheme-less HOST[:PORT]/PATH form.
// @HOSTNAME@ placeholders are kept as written.
func parseLocalBootTrigger(p *Params, a arg) error {
	hint := "write local_boot_trigger=http://HOST[:PORT]/PATH (the URL is fetched once the install is done)"
	if err := needValue(a, "local_boot_trigger=http://cobbler.example.com/cblr/svc/op/nopxe/system/@HOSTNAME@"); err != nil {
		return bad(a, hint, "%s needs a URL", a.key)
	}
	raw := a.val
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad(a, hint, "%q is not an http(s) URL", a.val)
	}
	p.LocalBootTrigger = a.val
	return nil
}

func parseRebootDelay(p *Params, a arg) error {
	hint := "write reboot_delay=SECONDS, a whole number from 0 to 86400"
	n, err := strconv.Atoi(a.val)
	if !a.hasVal || err != nil || n < 0 || n > 86400 {
		return bad(a, hint, "%q is not a number of seconds", a.val)
	}
	p.RebootDelay = n
	return nil
}

// ---- nodeinit.* ----

func parseNodeImage(p *Params, a arg) error {
	hint := "write nodeinit.image=/path/to/bundle, label:NAME, initramfs:/path or an http(s):// URL"
	if err := needValue(a, "nodeinit.image=label:NODEIMG"); err != nil {
		return bad(a, hint, "%s needs a value", a.key)
	}
	v := a.val
	switch {
	case strings.HasPrefix(v, "/"):
	case strings.HasPrefix(v, "label:") && len(v) > len("label:"):
	case strings.HasPrefix(v, "initramfs:/"):
	case strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://"):
		if !validMirrors(v) {
			return bad(a, hint+"; join mirrors with commas: http://a/bundle/,http://b/bundle/", "%q is not a valid URL or list of URLs", v)
		}
	default:
		return bad(a, hint, "%q is not an image source nodeinit understands", v)
	}
	p.Node.Image = v
	return nil
}

func parseNodeSHA256(p *Params, a arg) error {
	hint := "write the SHA-256 of manifest.json as 64 hex digits (sha256sum manifest.json)"
	if len(a.val) != 64 || !isHex(a.val) {
		return bad(a, hint, "%q is not 64 hex digits", a.val)
	}
	p.Node.ImageSHA256 = strings.ToLower(a.val)
	return nil
}

func parseNodeBreak(p *Params, a arg) error {
	hint := "write nodeinit.break=STAGE[,STAGE...] with stages from: " + strings.Join(StageNames, ", ")
	if err := needValue(a, "nodeinit.break=partition"); err != nil {
		return bad(a, hint, "%s needs a stage name", a.key)
	}
	var out []string
	for _, s := range strings.Split(a.val, ",") {
		if !contains(StageNames, s) {
			return bad(a, hint, "%q is not a stage", s)
		}
		out = append(out, s)
	}
	p.Node.Break = out
	return nil
}

func parseNodeOnFail(p *Params, a arg) error {
	switch a.val {
	case "shell", "reboot", "poweroff", "halt":
		p.Node.OnFail = a.val
		return nil
	}
	return bad(a, "write nodeinit.onfail=shell, reboot, poweroff or halt", "%q is not a failure policy", a.val)
}

func parseNodeTPM(p *Params, a arg) error {
	switch a.val {
	case TPMAuto, TPMRequired, TPMOff:
		p.Node.TPM = a.val
		if a.val == TPMAuto {
			p.Node.TPM = ""
		}
		return nil
	}
	return bad(a, "write nodeinit.tpm=required (stop the boot without a working TPM), auto (measure when there is one) or off", "%q is not a TPM policy", a.val)
}

func parseNodeStatusURL(p *Params, a arg) error {
	hint := "write nodeinit.status_url=http(s)://HOST[:PORT]/PATH"
	u, err := url.Parse(a.val)
	if !a.hasVal || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad(a, hint, "%q is not an http(s) URL", a.val)
	}
	p.Node.StatusURL = a.val
	return nil
}

func parseNodeEvents(p *Params, a arg) error {
	hint := "name a serial console for the JSON event stream: nodeinit.events=ttyS1"
	v := strings.TrimPrefix(a.val, "/dev/")
	if !a.hasVal || !strings.HasPrefix(v, "tty") || len(v) > 16 || strings.ContainsAny(v, "/. ,") {
		return bad(a, hint, "%q is not a serial console name", a.val)
	}
	p.Node.Events = v
	return nil
}

func parseNodeWipe(p *Params, a arg) error {
	hint := "name each disk you consent to erase by its serial or WWN, comma separated: nodeinit.wipe=SERIAL[,WWN...]"
	if err := needValue(a, "nodeinit.wipe=S3Z9NB0K123456"); err != nil {
		return bad(a, hint, "%s needs the serial or WWN of the disk to erase", a.key)
	}
	var out []string
	for _, s := range strings.Split(a.val, ",") {
		if s == "" {
			return bad(a, hint, "has an empty entry")
		}
		out = append(out, s)
	}
	p.Node.Wipe = out
	return nil
}

// KeepNames are the things nodeinit.keep can preserve across a reinstall.
var KeepNames = []string{"data"}

func parseNodeKeep(p *Params, a arg) error {
	hint := "write nodeinit.keep=" + strings.Join(KeepNames, ",")
	if err := needValue(a, "nodeinit.keep=data"); err != nil {
		return bad(a, hint, "%s needs a value", a.key)
	}
	var out []string
	for _, s := range strings.Split(a.val, ",") {
		if !contains(KeepNames, s) {
			return bad(a, hint, "%q cannot be kept", s)
		}
		out = append(out, s)
	}
	p.Node.Keep = out
	return nil
}

// parseNodeInteractive reads nodeinit.interactive, a flag with a third state:
// absent (nil) is neither on nor off.
func parseNodeInteractive(p *Params, a arg) error {
	v, err := parseBool(a, "")
	if err != nil {
		return err
	}
	p.Node.Interactive = &v
	return nil
}

func parseNodeSlot(p *Params, a arg) error {
	if a.val != "a" && a.val != "b" {
		return bad(a, "write nodeinit.slot=a or nodeinit.slot=b", "%q is not a slot", a.val)
	}
	p.Node.Slot = a.val
	return nil
}

func parseNodeTries(p *Params, a arg) error {
	n, err := strconv.Atoi(a.val)
	if err != nil || n < 1 || n > 9 {
		return bad(a, "write nodeinit.tries=N with N from 1 to 9", "%q is not a number of boot tries from 1 to 9", a.val)
	}
	p.Node.Tries = n
	return nil
}

// parseNodeFirmware reads nodeinit.firmware: the firmware an install boots
// the disk with, when it is not the firmware the installer runs under.
func parseNodeFirmware(p *Params, a arg) error {
	if a.val != FirmwareBIOS && a.val != FirmwareUEFI {
		return bad(a, "write nodeinit.firmware=bios (GRUB in the MBR) or nodeinit.firmware=uefi (systemd-boot)", "%q is not a firmware", a.val)
	}
	p.Node.Firmware = a.val
	return nil
}

const eraseHint = "write nodeinit.erase=signatures, discard or zero (signatures is the default)"

func parseNodeErase(p *Params, a arg) error {
	for _, m := range EraseModes {
		if a.val == string(m) {
			p.Node.Erase = m
			return nil
		}
	}
	return bad(a, eraseHint, "%q is not an erase mode", a.val)
}

const adminPWHint = "write nodeinit.adminpw=bundle to take the admin password hash from the image bundle " +
	"(built with `nodeinit image build --admin-hash-file FILE`), or drop it and pass adminpw=HASH"

// parseNodeAdminPW reads nodeinit.adminpw. The value is never shown: a hash given here by
// mistake must not reach an error, a log or the failure screen.
func parseNodeAdminPW(p *Params, a arg) error {
	if !a.hasVal || a.val == "" {
		return bad(a, adminPWHint, "%s needs a value", a.key)
	}
	if a.val != AdminPWBundle {
		return &Error{Token: a.key + "=" + Redacted, Key: a.key, Hint: adminPWHint,
			Problem: "the value is not bundle, the one place nodeinit.adminpw can name (value not shown)"}
	}
	p.Node.AdminPWFrom = a.val
	return nil
}

// checkAdminPW refuses nodeinit.adminpw=bundle together with adminpw=: two sources for one
// password leave the operator guessing which one the node got, and the hash on the line is
// what nodeinit.adminpw=bundle keeps out of /proc/cmdline.
func (p *Params) checkAdminPW(last map[string]arg) error {
	if a, ok := last["nodeinit.adminpw"]; ok && p.Node.AdminPWFrom != "" && p.AdminPW != "" {
		return bad(a, "drop adminpw= (or ovirt_adminpw=) from the line: with nodeinit.adminpw=bundle the hash comes from the bundle",
			"adminpw= and nodeinit.adminpw=bundle both set the admin password")
	}
	return nil
}

// checkErase refuses nodeinit.erase.secure without a mode it applies to: signatures only
// removes signatures, so "secure" there would promise what it does not do.
func (p *Params) checkErase(last map[string]arg) error {
	if a, ok := last["nodeinit.erase.secure"]; ok && p.Node.EraseSecure && p.Node.EraseMode() == EraseSignatures {
		return bad(a, "add nodeinit.erase=discard or nodeinit.erase=zero, or drop nodeinit.erase.secure",
			"a secure erase needs an erase mode that touches the whole disk, not only its signatures")
	}
	return nil
}

// foldNetwork folds netmask=, gateway= and management_port= into the values they complete.
func (p *Params) foldNetwork(last map[string]arg) []error {
	var errs []error
	maskFromKey := false // the netmask came from netmask=, not from ip=
	for _, k := range []string{"netmask", "gateway"} {
		a, ok := last[k]
		if !ok {
			continue
		}
		if p.IP == nil || p.IP.Address == "" {
			p.warn("%s is ignored without a static address in ip=", k)
			continue
		}
		if k == "netmask" {
			switch err := checkNetmask(a.val); {
			case err != nil || a.val == "":
				errs = append(errs, bad(a, "write netmask=255.255.255.0 or netmask=24", "%q is not a netmask", a.val))
			case p.IP.Netmask == "":
				p.IP.Netmask, maskFromKey = a.val, true
			case !sameMask(p.IP.Netmask, a.val):
				p.warn("%s is ignored: the netmask %s in ip= wins", a.tok, p.IP.Netmask)
			}
			continue
		}
		switch err := checkAddr("gateway", a.val, true); {
		case err != nil:
			errs = append(errs, bad(a, "write gateway=ADDRESS, e.g. gateway=192.0.2.1", "%v", err))
		case p.IP.Gateway == "":
			p.IP.Gateway = a.val
		case p.IP.Gateway != a.val:
			p.warn("%s is ignored: the gateway %s in ip= wins", a.tok, p.IP.Gateway)
		}
	}
	if a, ok := last["ip"]; ok && p.IP != nil && p.IP.Address != "" {
		switch {
		case p.IP.Netmask == "" && !p.IP.DHCP:
			errs = append(errs, bad(a, "add netmask=255.255.255.0 (or a prefix length: netmask=24), or write ip=ADDR/24",
				"the static address %s has no netmask", p.IP.Address))
		case p.IP.Netmask != "":
			if err := checkMaskFamily(p.IP.Address, p.IP.Netmask); err != nil {
				if maskFromKey {
					errs = append(errs, bad(last["netmask"], "write netmask=255.255.255.0 or a prefix length (netmask=24; netmask=64 for IPv6)", "%v", err))
				} else {
					errs = append(errs, bad(a, ipHint, "%v", err))
				}
			}
		}
	}
	if a, ok := last["management_port"]; ok {
		port, err := strconv.Atoi(a.val)
		switch {
		case err != nil || port < 1 || port > 65535:
			errs = append(errs, bad(a, "write management_port=PORT, e.g. 443", "%q is not a port", a.val))
		case p.ManagementServer == nil:
			errs = append(errs, bad(a, "add management_server=HOST (or write management_server=HOST:PORT)", "management_port needs management_server"))
		case p.ManagementServer.Port == 0:
			p.ManagementServer.Port = port
		}
	}
	return errs
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
