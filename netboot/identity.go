package netboot

import "github.com/nodeinit/nodeinit/cmdline"

// Identity is who this machine is, as the remote log and the result record
// name it. Empty strings are values not known: no network came up, or DMI
// holds a placeholder.
type Identity struct {
	Hostname string
	MAC      string
	IP       string
	Serial   string // DMI product serial
	UUID     string // DMI product UUID
}

// Identify gathers the identity from the command line, the interface that
// came up (nil when none did) and DMI below root ("/" on a machine). The
// values are those the URL templates expand to.
func Identify(p *cmdline.Params, link *Result, root string) Identity {
	serial, uuid := ReadDMI(root)
	id := Identity{Hostname: Hostname(p), Serial: serial, UUID: uuid}
	if link != nil {
		v := link.Vars(p, serial, uuid)
		id.Hostname, id.MAC, id.IP = v.Hostname, v.MAC, v.IP
	}
	return id
}
