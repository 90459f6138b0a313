// Package nodeconfig owns the node-config partition: the configuration seeded
// from the kernel command line at install, the list of persisted files
// (oVirt Node's persist model), the bind mounts that lay them over the node's
// root at boot, snapshots taken before an upgrade, and declarative migrations
// shipped in an image manifest.
//
// Layout. The config directory (the mounted node-config partition) mirrors
// the node's root: /etc/hostname is stored as <config>/etc/hostname. The
// persisted list is <config>/.nodeinit/persisted, one absolute path a line;
// at boot every listed path is bind-mounted from the config directory over
// the new root. Snapshots live in <config>/.snapshots/<name>.
//
// Identity. Seed gives the node its machine ID, <config>/etc/machine-id (mode
// 0444, persisted like the hostname), once: a second Seed keeps it, Replace (a
// reinstall) makes a new one, migrations and boots never write it.
//
// Logs. node-logging is mounted over the node's /var/log and would hide the
// image's; SeedLogging copies the image's /var/log onto a new one at boot and
// makes /var/log/journal, so the journal persists.
//
// Passwords. Seed writes password hashes as shadow fragments,
// /etc/nodeinit/shadow.d/<user> (mode 0600), each one line in shadow(5) form
// with lastchg 0 so the user must change the password at first login.
// ApplyShadow merges them into the new root's /etc/passwd, /etc/group and
// /etc/shadow at boot; the image's own /etc/shadow is never replaced as a whole.
// Hashes are never logged nor put into an error message.
//
// One validation. The Config, its validation (Config.Validate) and the files it
// renders live in package nodeconfig/spec, which does no I/O so that the planner
// can import it; FromParams, Config and Interface here are that package's. Seed
// runs the same Validate before it writes anything, so a line the plan accepts is
// a line seed-config accepts (FuzzAcceptImpliesSeed). See package spec for the
// grammar each value is checked against.
package nodeconfig
