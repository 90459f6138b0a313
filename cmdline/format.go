package cmdline

import (
	"strconv"
	"strings"
)

// String is the canonical command line for these Params with every secret shown as
// "adminpw=<redacted>". Safe for logs, events and status reports.
func (p *Params) String() string { return p.Canonical(false) }

// Canonical renders Params as a command line that Parse reads back to the same Params
// (Warnings and PossiblyTruncated aside). Secrets are written only when revealSecrets is true;
// otherwise they read "<redacted>", which Parse refuses, so a redacted line cannot install.
func (p *Params) Canonical(revealSecrets bool) string {
	t := quoteAll(p.ActionTokens)
	for _, a := range p.interpreted(revealSecrets) {
		tok := a.key
		if !a.flag {
			tok += "=" + a.val
		}
		t = append(t, quoteToken(tok))
	}
	t = append(t, quoteAll(p.Kept)...)
	if len(p.InitArgs) > 0 {
		t = append(t, "--")
		t = append(t, quoteAll(p.InitArgs)...)
	}
	return strings.Join(t, " ")
}

// kv is one interpreted argument in canonical form: key=val, or the bare key when flag.
type kv struct {
	key, val string
	flag     bool
}

// interpreted lists the arguments nodeinit interprets, other than the action flags, in
// canonical form and order, each once. Secrets read "<redacted>" unless revealSecrets.
func (p *Params) interpreted(revealSecrets bool) []kv {
	var t []kv
	add := func(key, val string) { t = append(t, kv{key: key, val: val}) }
	flag := func(key string) { t = append(t, kv{key: key, flag: true}) }
	if si := p.StorageInit; si != nil {
		if si.Bare {
			flag("storage_init")
		} else {
			v := joinSpecs(si.Disks)
			if len(si.Extra) > 0 {
				v += ";" + joinSpecs(si.Extra)
			}
			add("storage_init", v)
		}
	}
	if sv := p.StorageVol; sv != nil {
		var f []string
		for _, name := range append([]string{VolEFI}, volPositions...) {
			if size, ok := sv.SizesMiB[name]; ok {
				f = append(f, strconv.FormatInt(size, 10)+","+name)
			}
		}
		add("storage_vol", strings.Join(f, ":"))
	}
	if b := p.BootIf; b != nil {
		switch {
		case b.Link:
			add("BOOTIF", "link")
		case b.MAC != "":
			add("BOOTIF", b.MAC)
		default:
			add("BOOTIF", b.Name)
		}
	}
	if p.IP != nil {
		add("ip", formatIP(p.IP))
	}
	addStr := func(key, v string) {
		if v != "" {
			add(key, v)
		}
	}
	addStr("ipv6", p.IPv6)
	addStr("dns", strings.Join(p.DNS, ","))
	addStr("ntp", strings.Join(p.NTP, ","))
	addStr("hostname", p.Hostname)
	if v := p.VLAN; v != nil {
		first := strconv.Itoa(v.ID)
		if v.Name != "" {
			first = v.Name
		}
		if v.Parent != "" {
			first += ":" + v.Parent
		}
		add("vlan", first)
	}
	if b := p.Bond; b != nil {
		f := []string{b.Name, strings.Join(b.Slaves, ","), b.Options}
		if b.MTU != 0 {
			f = append(f, strconv.Itoa(b.MTU))
		}
		for len(f) > 1 && f[len(f)-1] == "" {
			f = f[:len(f)-1]
		}
		add("bond", strings.Join(f, ":"))
	}
	for _, s := range []struct {
		key string
		v   Secret
	}{{"adminpw", p.AdminPW}, {"rootpw", p.RootPW}} {
		if s.v != "" {
			if revealSecrets {
				add(s.key, s.v.Reveal())
			} else {
				add(s.key, Redacted)
			}
		}
	}
	if p.SSHPwAuth != nil {
		add("ssh_pwauth", map[bool]string{true: "1", false: "0"}[*p.SSHPwAuth])
	}
	for _, hp := range []struct {
		key string
		v   *HostPort
	}{{"management_server", p.ManagementServer}, {"syslog", p.Syslog}, {"netconsole", p.Netconsole}, {"collectd", p.Collectd}} {
		if hp.v != nil {
			add(hp.key, formatHostPort(hp.v))
		}
	}
	addStr("management_server_fingerprint", p.ManagementServerFingerprint)
	addStr("local_boot_trigger", p.LocalBootTrigger)
	if p.RebootDelay >= 0 {
		add("reboot_delay", strconv.Itoa(p.RebootDelay))
	}
	n := p.Node
	addStr("nodeinit.image", n.Image)
	addStr("nodeinit.image.sha256", n.ImageSHA256)
	addStr("nodeinit.break", strings.Join(n.Break, ","))
	addStr("nodeinit.onfail", n.OnFail)
	addStr("nodeinit.status_url", n.StatusURL)
	addStr("nodeinit.events", n.Events)
	addStr("nodeinit.wipe", strings.Join(n.Wipe, ","))
	addStr("nodeinit.keep", strings.Join(n.Keep, ","))
	addStr("nodeinit.slot", n.Slot)
	if n.Tries != 0 {
		add("nodeinit.tries", strconv.Itoa(n.Tries))
	}
	addStr("nodeinit.firmware", n.Firmware)
	addStr("nodeinit.erase", string(n.Erase))
	addStr("nodeinit.adminpw", n.AdminPWFrom)
	addStr("nodeinit.tpm", n.TPM)
	if n.Interactive != nil {
		add("nodeinit.interactive", map[bool]string{true: "1", false: "0"}[*n.Interactive])
	}
	for _, f := range []struct {
		key string
		on  bool
	}{{"nodeinit.dryrun", n.DryRun}, {"nodeinit.debug", n.Debug}, {"nodeinit.insecure", n.Insecure}, {"nodeinit.force", n.Force},
		{"nodeinit.erase.secure", n.EraseSecure}, {"nodeinit.status_stages", n.StatusStages}} {
		if f.on {
			flag(f.key)
		}
	}
	return t
}

// BootEntryArgs are the arguments to copy into the installed node's boot entry: the tokens
// nodeinit does not interpret (console=, quiet, crashkernel=, …) and then "--" with the init
// arguments. Never a secret, an action flag or a nodeinit.* key other than nodeinit.events and
// nodeinit.tpm, which every boot of the node honours. Each element is ready to be
// joined with spaces (quoted where it holds whitespace).
func (p *Params) BootEntryArgs() []string {
	out := quoteAll(p.Kept)
	if p.Node.Events != "" {
		// The installed node's boots stream their events where the install did.
		out = append(out, "nodeinit.events="+p.Node.Events)
	}
	if p.Node.TPM != "" {
		// The installed node's boots are measured as the install asked.
		out = append(out, "nodeinit.tpm="+p.Node.TPM)
	}
	if len(p.InitArgs) > 0 {
		out = append(out, "--")
		out = append(out, quoteAll(p.InitArgs)...)
	}
	return out
}

func quoteAll(toks []string) []string {
	var out []string
	for _, t := range toks {
		out = append(out, quoteToken(t))
	}
	return out
}

func joinSpecs(specs []DiskSpec) string {
	raw := make([]string, len(specs))
	for i, s := range specs {
		raw[i] = s.Raw
	}
	return strings.Join(raw, ",")
}

func bracket(addr string) string {
	if strings.Contains(addr, ":") {
		return "[" + addr + "]"
	}
	return addr
}

func formatHostPort(hp *HostPort) string {
	prefix := ""
	if hp.Proto != "" {
		prefix = hp.Proto + "://"
	}
	if hp.Port == 0 {
		return prefix + hp.Host
	}
	return prefix + bracket(hp.Host) + ":" + strconv.Itoa(hp.Port)
}

func formatIP(c *IPConfig) string {
	if c.Address == "" {
		f := []string{c.Method}
		if c.Interface != "" {
			f = []string{c.Interface, c.Method}
			if c.MTU != 0 || c.MAC != "" {
				f = append(f, mtuText(c.MTU))
			}
			if c.MAC != "" {
				f = append(f, strings.ReplaceAll(c.MAC, ":", "-"))
			}
		}
		return strings.Join(f, ":")
	}
	f := []string{bracket(c.Address), bracket(c.Server), bracket(c.Gateway), c.Netmask, c.Hostname, c.Interface, c.Method}
	switch {
	case len(c.DNS) > 0:
		for _, d := range c.DNS {
			f = append(f, bracket(d))
		}
	case c.MTU != 0 || c.MAC != "":
		f = append(f, mtuText(c.MTU))
		if c.MAC != "" {
			f = append(f, strings.ReplaceAll(c.MAC, ":", "-"))
		}
	}
	for len(f) > 1 && f[len(f)-1] == "" {
		f = f[:len(f)-1]
	}
	return strings.Join(f, ":")
}

func mtuText(mtu int) string {
	if mtu == 0 {
		return ""
	}
	return strconv.Itoa(mtu)
}
