package spec

import (
	"path"
	"strconv"
	"strings"
)

// File is one rendered configuration file: its path in the node's root, its content and
// its permission bits.
type File struct {
	Path    string
	Content string
	Mode    uint32 // permission bits, e.g. 0o600 for shadow fragments
}

// Files renders the configuration, in a fixed order. It assumes Validate accepted c: a
// value Validate refuses could break the format of the file it lands in.
func (c Config) Files() []File {
	var out []File
	add := func(p, content string, mode uint32) {
		out = append(out, File{Path: p, Content: content, Mode: mode})
	}
	if c.Hostname != "" {
		add(HostnamePath, c.Hostname+"\n", 0o644)
	}
	if c.MachineID != "" {
		// machine-id(5): one line; read-only, as systemd-machine-id-setup leaves it.
		add(MachineIDPath, c.MachineID+"\n", 0o444)
	}
	for _, ifc := range c.Interfaces {
		base := path.Join(NetworkDir, "10-nodeinit-"+ifc.label())
		if ifc.VLAN == 0 {
			add(base+".network", Header+ifc.matchSection()+"\n[Network]\n"+ifc.addressing(), 0o644)
			continue
		}
		v := ifc.vlanName()
		add(base+".network", Header+ifc.matchSection()+"\n[Network]\nVLAN="+v+"\nLinkLocalAddressing=no\n", 0o644)
		add(path.Join(NetworkDir, "10-nodeinit-"+v+".netdev"),
			Header+"[NetDev]\nName="+v+"\nKind=vlan\n\n[VLAN]\nId="+strconv.Itoa(ifc.VLAN)+"\n", 0o644)
		add(path.Join(NetworkDir, "10-nodeinit-"+v+".network"),
			Header+"[Match]\nName="+v+"\n\n[Network]\n"+ifc.addressing(), 0o644)
	}
	if len(c.DNS) > 0 {
		add(ResolvedPath, Header+"[Resolve]\nDNS="+strings.Join(c.DNS, " ")+"\n", 0o644)
	}
	if len(c.NTP) > 0 {
		add(TimesyncdPath, Header+"[Time]\nNTP="+strings.Join(c.NTP, " ")+"\n", 0o644)
	}
	var sshd string
	if c.SSHPasswordAuth != nil {
		v := "no"
		if *c.SSHPasswordAuth {
			v = "yes"
		}
		sshd += "PasswordAuthentication " + v + "\nKbdInteractiveAuthentication " + v + "\n"
	}
	if c.AdminSSHKey != "" {
		// sshd takes a keyword's first value, and Debian's sshd_config includes the
		// drop-ins first: the users' own files are still read.
		sshd += "AuthorizedKeysFile .ssh/authorized_keys " + AuthorizedKeysDir + "/%u\n"
	}
	if sshd != "" {
		add(SSHDPath, Header+sshd, 0o644)
	}
	if c.AdminSSHKey != "" {
		add(path.Join(AuthorizedKeysDir, AdminUser), strings.Join(strings.Fields(c.AdminSSHKey), " ")+"\n", 0o644)
	}
	if c.ManagementServer != "" {
		host, port, _ := splitHostPort(c.ManagementServer)
		s := Header + "MANAGEMENT_SERVER=" + host + "\n"
		if port != 0 {
			s += "MANAGEMENT_PORT=" + strconv.Itoa(port) + "\n"
		}
		if c.ManagementFingerprint != "" {
			s += "MANAGEMENT_FINGERPRINT=" + c.ManagementFingerprint + "\n"
		}
		add(ManagementPath, s, 0o644)
	}
	if c.Syslog != "" || c.Netconsole != "" || c.Collectd != "" {
		s := Header
		for _, kv := range [][2]string{{"SYSLOG", c.Syslog}, {"NETCONSOLE", c.Netconsole}, {"COLLECTD", c.Collectd}} {
			if kv[1] != "" {
				s += kv[0] + "=" + kv[1] + "\n"
			}
		}
		add(MonitoringPath, s, 0o644)
	}
	// lastchg 0: the user must change the password at first login.
	if c.AdminPasswordHash != "" {
		add(path.Join(ShadowDir, AdminUser), AdminUser+":"+c.AdminPasswordHash+":0:0:99999:7:::\n", 0o600)
	}
	if c.RootPasswordHash != "" {
		add(path.Join(ShadowDir, "root"), "root:"+c.RootPasswordHash+":0:0:99999:7:::\n", 0o600)
	}
	return out
}

// Paths lists the root paths Files renders for c, in order.
func (c Config) Paths() []string {
	files := c.Files()
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.Path
	}
	return out
}

// label names the interface in file names: its name, or its MAC without colons.
func (i Interface) label() string {
	if i.MAC != "" {
		if hw, ok := parseMAC(i.MAC); ok {
			return strings.ReplaceAll(hw, ":", "")
		}
		return i.MAC
	}
	return i.Name
}

func (i Interface) vlanName() string { return "vlan" + strconv.Itoa(i.VLAN) }

func (i Interface) matchSection() string {
	if i.MAC != "" {
		hw, _ := parseMAC(i.MAC)
		return "[Match]\nMACAddress=" + hw + "\n"
	}
	return "[Match]\nName=" + i.Name + "\n"
}

func (i Interface) addressing() string {
	var b strings.Builder
	if i.DHCP {
		b.WriteString("DHCP=yes\n")
	} else {
		b.WriteString("Address=" + i.Address + "\n")
	}
	if i.Gateway != "" {
		b.WriteString("Gateway=" + i.Gateway + "\n")
	}
	return b.String()
}
