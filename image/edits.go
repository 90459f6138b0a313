package image

import "slices"

// Edit operations recorded in Manifest.Edits.
const (
	EditInstallPackage = "install-package" // a .deb installed with dpkg (Reason says when it was a dependency)
	EditRemovePackage  = "remove-package"  // a package purged with dpkg (a .deb plugin removed)
	EditInstallPlugin  = "install-plugin"  // a directory plugin's files (and script) installed
	EditRemovePlugin   = "remove-plugin"   // a directory plugin's files removed
	EditAdd            = "add"             // files or a directory copied in with --add
	EditInstallKmod    = "install-kmod"    // a kernel module placed under lib/modules/<version>/extra
	EditPasswd         = "passwd"          // a user's password hash set in /etc/shadow (the hash is not recorded)
	EditSSHKey         = "sshkey"          // public keys appended to a user's authorized_keys
	EditScript         = "script"          // a script run in a chroot of the root
	// EditInitramfs is the bundle's initrd.img rebuilt (--initramfs) to carry
	// the modules the edit installed and trust the signing key: Version is
	// the kernel, SHA256 the old initrd's, Paths the paths changed inside it.
	EditInitramfs = "initramfs"
)

var editOps = []string{EditInstallPackage, EditRemovePackage, EditInstallPlugin, EditRemovePlugin,
	EditAdd, EditInstallKmod, EditPasswd, EditSSHKey, EditScript, EditInitramfs}

func knownEditOp(op string) bool { return slices.Contains(editOps, op) }

// Origin names the bundle an edited image was made from.
type Origin struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	ManifestSHA256 string `json:"manifest_sha256"`
}

// Edit is one change `nodeinit image edit` made to the root of the image, so
// that the manifest says what an edited image holds beyond the build it
// started from. Edits of earlier runs are kept, in order, before those of the
// latest run; Base says which version each one was applied to.
type Edit struct {
	Op      string `json:"op"`
	Base    string `json:"base"`              // the version the edit was applied to
	Name    string `json:"name,omitempty"`    // package, plugin, module or user name
	Version string `json:"version,omitempty"` // package or plugin version, module's kernel version
	Arch    string `json:"arch,omitempty"`    // package architecture
	Source  string `json:"source,omitempty"`  // the input file's base name
	SHA256  string `json:"sha256,omitempty"`  // the input file's SHA-256
	// Paths are the paths in the image that the edit added, changed or removed.
	Paths []string `json:"paths,omitempty"`
	// Reason says why an edit was made when the operator did not ask for it
	// by name, e.g. "dependency of agent".
	Reason string `json:"reason,omitempty"`
	// Network is "none" for scripts: they run in a network namespace of their own.
	Network string `json:"network,omitempty"`
}
