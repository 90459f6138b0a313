package cmdline

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// MaxLen is the kernel's command-line buffer size on x86 (COMMAND_LINE_SIZE), including the
// terminating NUL. A line of MaxLen-1 bytes or more may have been cut by the boot loader or kernel.
const MaxLen = 2048

// StageNames are the stage names nodeinit.break accepts, in the order they can run.
// They are plan.AllStages (a test in stages checks the two lists are equal).
var StageNames = []string{"network", "probe", "fetch-boot-files", "copy-to-ram", "wipe", "partition", "filesystems", "write-slot", "copy-boot-files",
	"seed-config", "migrate-config", "add-boot-entry", "boot-order", "report", "mount-root", "switch-root", "reboot"}

// arg is one key=value token.
type arg struct {
	key    string // canonical key
	tok    string // the token as written, secrets redacted
	val    string
	hasVal bool
	pos    int
}

// actionKeys maps every action flag ('-' written as '_', case kept) to its action.
var actionKeys = map[string]Action{
	"install":          ActionInstall,
	"firstboot":        ActionInstall,
	"ovirt_firstboot":  ActionInstall,
	"reinstall":        ActionReinstall,
	"ovirt_reinstall":  ActionReinstall,
	"upgrade":          ActionUpgrade,
	"ovirt_upgrade":    ActionUpgrade,
	"local_boot":       ActionUpgrade,
	"ovirt_local_boot": ActionUpgrade,
	"uninstall":        ActionUninstall,
	"ovirt_uninstall":  ActionUninstall,
	"stateless":        ActionStateless,
	"ovirt_stateless":  ActionStateless,
	"rescue":           ActionRescue,
}

// aliases maps alternative spellings to the canonical key; the last of them wins.
var aliases = map[string]string{
	"ovirt_init":              "storage_init",
	"ovirt_vol":               "storage_vol",
	"bootif":                  "BOOTIF",
	"bond_setup":              "bond",
	"ovirt_management_server": "management_server",
	"ovirt_managment_server":  "management_server", // vdsm's documented misspelling
	"managment_server":        "management_server",
	"ovirt_adminpw":           "adminpw",
	"ovirt_rootpw":            "rootpw",
}

// secretKeys are password arguments of oVirt Node that nodeinit does not use; they are dropped.
var secretKeys = map[string]bool{
	"rhevm_admin_password":  true,
	"engine_admin_password": true,
	"snmp_password":         true,
	"cim_passwd":            true,
	"rhn_password":          true,
}

// bootMediumKeys belong to the medium nodeinit booted from, not to the installed node: they are
// neither interpreted nor copied into the installed boot entry.
var bootMediumKeys = map[string]bool{
	"boot_image": true, "initrd": true, "root": true, "rootfstype": true, "rootflags": true,
	"ro": true, "rw": true, "liveimg": true, "check": true, "linux": true,
	"rd.live.image": true, "rd.live.check": true,
}

// isSecretKey reports whether a normalised key carries a password: adminpw, rootpw, the
// password arguments of oVirt Node, any key ending in password, passwd, passphrase or _pw,
// each also with oVirt's ovirt_ prefix and with a _hashed suffix (rootpw_hashed).
func isSecretKey(nk string) bool {
	k := strings.TrimPrefix(nk, "ovirt_")
	k = strings.TrimSuffix(k, "_hashed")
	return k == "adminpw" || k == "rootpw" || secretKeys[k] ||
		strings.HasSuffix(k, "password") || strings.HasSuffix(k, "passwd") ||
		strings.HasSuffix(k, "passphrase") || strings.HasSuffix(k, "_pw")
}

// IsSecretKey reports whether a kernel command line key (as written: any case,
// '-' or '_') carries a secret. It is the one rule every writer of logs, events,
// boot entries and media menus uses.
func IsSecretKey(key string) bool {
	return isSecretKey(strings.ReplaceAll(strings.ToLower(key), "-", "_"))
}

// RedactToken returns a "key=value" token with a secret value replaced by
// <redacted>; other tokens come back as they are.
func RedactToken(tok string) string {
	if k, _, ok := strings.Cut(tok, "="); ok && IsSecretKey(k) {
		return k + "=<redacted>"
	}
	return tok
}

// actionKey is the lookup form of a possible action flag: '-' is '_' as in every key, but
// case is kept, because the kernel and oVirt Node match action flags case-sensitively.
func actionKey(key string) string { return strings.ReplaceAll(key, "-", "_") }

// nearAction returns the action flag that a key not matching one exactly nearly spells
// (another case, or one letter added, dropped, changed or two swapped), or "". Such a key is
// refused: a destructive action must never come from a near miss, and a flag silently kept
// would leave the operator wondering why nothing happened.
func nearAction(nk string) string {
	if actionKeys[nk] != "" {
		return nk // the same flag in another case
	}
	if len(nk) < 5 {
		return ""
	}
	for _, k := range actionKeyNames() {
		if withinOneEdit(nk, k) {
			return k
		}
	}
	return ""
}

// actionKeyNames lists the action flags in a fixed order.
func actionKeyNames() []string {
	names := make([]string, 0, len(actionKeys))
	for k := range actionKeys {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// withinOneEdit reports whether a and b differ by at most one insertion, deletion,
// substitution or transposition of adjacent bytes.
func withinOneEdit(a, b string) bool {
	if a == b {
		return true
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > 1 {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if len(a) == len(b) {
		if a[i+1:] == b[i+1:] {
			return true // substitution
		}
		return i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:] // transposition
	}
	return a[i:] == b[i+1:] // insertion
}

// Parse turns a kernel command line into Params. Every malformed argument is reported
// (joined with errors.Join, each an *Error); on error the Params are nil.
func Parse(line string) (*Params, error) {
	line = strings.TrimSuffix(line, "\n")
	p := &Params{Action: ActionBoot, RebootDelay: -1}
	if len(line) >= MaxLen-1 {
		p.PossiblyTruncated = true
		p.warn("the command line is %d bytes, at the kernel's limit of %d: it may have been cut, so destructive actions are refused", len(line), MaxLen-1)
	}
	tokens, initArgs, unterminated := Split(line)
	if unterminated {
		p.warn("a double quote is not closed; the rest of the line was read as one argument")
	}

	last := map[string]arg{}    // canonical key → winning token
	actions := map[Action]arg{} // action → the winning token among its flags
	var errs []error
	for i, tok := range tokens {
		key, val, hasVal := strings.Cut(tok, "=")
		nk := normKey(key)
		a := arg{key: nk, tok: tok, val: val, hasVal: hasVal, pos: i}
		switch {
		case nk == "console":
			p.Consoles = append(p.Consoles, val)
			p.Kept = append(p.Kept, tok)
		case bootMediumKeys[nk]:
			// not ours and not the installed node's
		case actionKeys[actionKey(key)] != "":
			// Aliases of one action are one key: the last of them wins.
			a.key = actionKey(key)
			actions[actionKeys[a.key]] = a
		case handlers[canonical(nk)] != nil:
			a.key = canonical(nk)
			if isSecretKey(nk) {
				a.tok = key + "=" + Redacted
			}
			last[a.key] = a
		case isSecretKey(nk):
			p.warn("%s is a password argument nodeinit does not use; it was dropped (value not shown)", key)
		case nearAction(nk) != "":
			right := nearAction(nk)
			errs = append(errs, &Error{Token: tok, Key: "action",
				Problem: fmt.Sprintf("%q is not an action flag: action flags are matched exactly, in lower case, as the kernel and oVirt Node match them", key),
				Hint:    fmt.Sprintf("write %s if you mean that action, or remove %s", right, key)})
		case strings.HasPrefix(nk, "nodeinit."):
			errs = append(errs, &Error{Token: tok, Key: nk, Problem: "unknown nodeinit key",
				Hint: "use one of " + strings.Join(nodeKeyNames(), ", ")})
		default:
			p.Kept = append(p.Kept, tok)
		}
	}
	for _, tok := range initArgs {
		key, _, _ := strings.Cut(tok, "=")
		if isSecretKey(normKey(key)) {
			p.warn("%s after \"--\" carries a password; it was dropped (value not shown)", key)
			continue
		}
		p.InitArgs = append(p.InitArgs, tok)
	}

	// Handlers run in a fixed order so results never depend on map order.
	keys := make([]string, 0, len(last))
	for k := range last {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := handlers[k](p, last[k]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := p.resolveAction(actions); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, p.foldNetwork(last)...)
	if err := p.checkErase(last); err != nil {
		errs = append(errs, err)
	}
	if err := p.checkAdminPW(last); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if p.Action == ActionBoot && len(p.ActionTokens) == 0 && p.StorageInit != nil && p.BootIf != nil {
		p.AutoInstall = true
	}
	return p, nil
}

// canonical maps a normalised key to its canonical spelling.
func canonical(nk string) string {
	if c, ok := aliases[nk]; ok {
		return c
	}
	return nk
}

func (p *Params) warn(format string, args ...any) {
	p.Warnings = append(p.Warnings, fmt.Sprintf(format, args...))
}

// resolveAction applies the combination rules: install plus exactly one other action is that
// other action; any other pair is an error.
func (p *Params) resolveAction(flags map[Action]arg) error {
	all := make([]arg, 0, len(flags))
	for _, a := range flags {
		all = append(all, a)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].pos < all[j].pos })
	var on, off []arg
	for _, a := range all {
		v, err := parseBool(a, "")
		if err != nil {
			if a.hasVal {
				err.Hint = fmt.Sprintf("write %s alone to turn it on or %s=0 to turn it off; the disk is chosen with storage_init=", a.key, a.key)
			}
			return err
		}
		if v {
			on = append(on, a)
		} else {
			off = append(off, a)
		}
	}
	if len(on) == 0 {
		for _, a := range off {
			p.ActionTokens = append(p.ActionTokens, a.tok)
		}
		return nil
	}
	var others []arg
	seen := map[Action]bool{}
	for _, a := range on {
		p.ActionTokens = append(p.ActionTokens, a.tok)
		act := actionKeys[a.key]
		if act != ActionInstall && !seen[act] {
			seen[act] = true
			others = append(others, a)
		}
	}
	switch len(others) {
	case 0:
		p.Action = ActionInstall
	case 1:
		p.Action = actionKeys[others[0].key]
	default:
		names := make([]string, len(others))
		for i, a := range others {
			names[i] = a.tok
		}
		return &Error{Token: strings.Join(names, " "), Key: "action",
			Problem: fmt.Sprintf("conflicting actions %s and %s", actionKeys[others[0].key], actionKeys[others[1].key]),
			Hint:    "keep only one of " + strings.Join(names, ", ") + "; install may accompany exactly one other action"}
	}
	return nil
}

// Destructive reports whether the action writes to a disk (install, reinstall, upgrade,
// uninstall, or oVirt's implicit auto-install).
func (p *Params) Destructive() bool {
	switch p.Action {
	case ActionInstall, ActionReinstall, ActionUpgrade, ActionUninstall:
		return true
	}
	return p.AutoInstall
}
