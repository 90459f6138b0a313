package netboot

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nodeinit/nodeinit/cmdline"
)

// Vars are the values URL templates expand to: one PXE config then serves a whole fleet,
// each machine fetching its own image or posting to its own status URL.
type Vars struct {
	MAC      string // the boot interface's MAC, aa:bb:cc:dd:ee:ff
	Serial   string // DMI product serial
	UUID     string // DMI product UUID
	Hostname string // hostname=, ip=…:HOSTNAME:…, or the DHCP host name option
	IP       string // the boot interface's address (static or from DHCP), without the prefix length
}

// TemplateNames are the ${name} forms Expand understands. @NAME@ (upper case, as oVirt's
// local_boot_trigger and Cobbler write @HOSTNAME@) is the same thing, and is the form the
// generated iPXE and GRUB configs use, because both expand ${…} themselves.
var TemplateNames = []string{"mac", "mac_hyphen", "serial", "uuid", "hostname", "ip"}

// ErrTemplate is wrapped by every templating error.
var ErrTemplate = errors.New("url template")

func (v Vars) lookup(name string) (value, source string, ok bool) {
	switch name {
	case "mac":
		return v.MAC, "the boot interface has no MAC (give BOOTIF=)", true
	case "mac_hyphen":
		return strings.ReplaceAll(v.MAC, ":", "-"), "the boot interface has no MAC (give BOOTIF=)", true
	case "serial":
		return v.Serial, "DMI has no product serial on this machine; use ${mac} or ${uuid}", true
	case "uuid":
		return v.UUID, "DMI has no product UUID on this machine; use ${mac}", true
	case "hostname":
		return v.Hostname, "no host name is known: add hostname=NAME, or have DHCP send one", true
	case "ip":
		return v.IP, "the boot interface has no address yet: use ${mac}", true
	}
	return "", "", false
}

// Expand replaces ${name} and @NAME@ in s with v's values, escaped for a URL path.
// An unknown name, an unclosed ${, or a name with no value on this machine is an error
// that says what to change: a URL with a hole in it would fetch another machine's image.
func Expand(s string, v Vars) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		name, n, err := templateAt(s[i:])
		if err != nil {
			return "", fmt.Errorf("%w %q: %w", ErrTemplate, s, err)
		}
		if n == 0 {
			b.WriteByte(s[i])
			i++
			continue
		}
		val, why, ok := v.lookup(name)
		if !ok {
			return "", fmt.Errorf("%w %q: unknown name ${%s}; the names are ${%s}", ErrTemplate, s, name, strings.Join(TemplateNames, "}, ${"))
		}
		if val == "" {
			return "", fmt.Errorf("%w %q: ${%s} is empty: %s", ErrTemplate, s, name, why)
		}
		if err := CheckValue(name, val); err != nil {
			return "", fmt.Errorf("%w %q: %w", ErrTemplate, s, err)
		}
		b.WriteString(url.PathEscape(val))
		i += n
	}
	return b.String(), nil
}

// CheckValue refuses a value that would change the shape of the URL path it
// is put into: "." and ".." (which URL resolution and JoinPath clean away, so
// .../nodes/${serial}/bundle/ would fetch another directory), a slash or a
// backslash (which servers may decode from %2F), and control characters. A
// hostname must also be a valid host name (RFC 1123): a DHCP server's
// host-name option is not trusted to be one.
func CheckValue(name, val string) error {
	if val == "." || val == ".." {
		return fmt.Errorf("${%s} is %q, which would change the URL's path: fix the machine's %s", name, val, name)
	}
	for _, r := range val {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("${%s} = %q holds %q, which would change the URL's path: fix the machine's %s", name, val, r, name)
		}
	}
	if name == "hostname" && !validHostname(val) {
		return fmt.Errorf("${hostname} = %q is not a host name (letters, digits and hyphens in dot-separated labels): give hostname=NAME", val)
	}
	return nil
}

// validHostname is RFC 1123: labels of 1 to 63 letters, digits and hyphens,
// not starting or ending with a hyphen, 253 characters in all.
func validHostname(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// templateAt recognises a template at the start of s and returns its lower-case name and
// length; n is 0 when s does not start with one. @WORD@ counts only for known names, so an
// address like user@host stays as it is.
func templateAt(s string) (name string, n int, err error) {
	switch {
	case strings.HasPrefix(s, "${"):
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "", 0, fmt.Errorf("${ is not closed by }")
		}
		return strings.ToLower(s[2:end]), end + 1, nil
	case strings.HasPrefix(s, "@"):
		end := strings.IndexByte(s[1:], '@')
		if end < 0 {
			return "", 0, nil
		}
		word := s[1 : end+1]
		if word != strings.ToUpper(word) {
			return "", 0, nil
		}
		for _, known := range TemplateNames {
			if strings.EqualFold(word, known) {
				return known, end + 2, nil
			}
		}
	}
	return "", 0, nil
}

// HasTemplate reports whether s holds a ${…} or @NAME@ template.
func HasTemplate(s string) bool {
	for i := range s {
		if _, n, err := templateAt(s[i:]); n > 0 || err != nil {
			return true
		}
	}
	return false
}

// ToAtForm rewrites the ${name} templates of s into the @NAME@ form, for boot loader
// configs (iPXE, GRUB) that would otherwise expand ${name} themselves, to an empty string.
func ToAtForm(s string) string {
	for _, name := range TemplateNames {
		s = strings.ReplaceAll(s, "${"+name+"}", "@"+strings.ToUpper(name)+"@")
	}
	return s
}

// ExpandParams expands the templates of the URLs on the command line: nodeinit.image,
// nodeinit.status_url and local_boot_trigger. It changes p only when all three expand.
func ExpandParams(p *cmdline.Params, v Vars) error {
	fields := []struct {
		key string
		val *string
	}{
		{"nodeinit.image", &p.Node.Image},
		{"nodeinit.status_url", &p.Node.StatusURL},
		{"local_boot_trigger", &p.LocalBootTrigger},
	}
	out := make([]string, len(fields))
	for i, f := range fields {
		s, err := Expand(*f.val, v)
		if err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
		out[i] = s
	}
	for i, f := range fields {
		*f.val = out[i]
	}
	return nil
}

// NeedsVars reports whether any URL on the command line holds a template.
func NeedsVars(p *cmdline.Params) bool {
	return HasTemplate(p.Node.Image) || HasTemplate(p.Node.StatusURL) || HasTemplate(p.LocalBootTrigger)
}

// ReadDMI reads the machine's serial and UUID from sysfs below root ("/" on a machine).
// Firmware placeholders ("To be filled by O.E.M.", "Not Specified", all zeros) count as
// empty, so a template never expands to a value many machines share.
func ReadDMI(root string) (serial, uuid string) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, "sys/class/dmi/id", name))
		if err != nil {
			return ""
		}
		v := strings.TrimSpace(string(b))
		if placeholder(v) {
			return ""
		}
		return v
	}
	return read("product_serial"), strings.ToLower(read("product_uuid"))
}

var placeholders = []string{"to be filled by o.e.m.", "not specified", "not applicable", "default string",
	"system serial number", "none", "0", "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"}

func placeholder(v string) bool {
	l := strings.ToLower(v)
	i := sort.SearchStrings(sortedPlaceholders, l)
	return l == "" || i < len(sortedPlaceholders) && sortedPlaceholders[i] == l
}

var sortedPlaceholders = func() []string {
	s := append([]string(nil), placeholders...)
	sort.Strings(s)
	return s
}()
