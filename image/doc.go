// Package image handles node image bundles: it builds them, signs and
// verifies them with minisign keys, fetches them from every supported source
// and streams their files into slots with digest checks.
//
// A bundle is a directory (or the same layout behind a URL, on a medium, or
// inside an ISO 9660 image, which source_iso.go reads without mounting):
//
//	manifest.json          name, version, arch, creation time, files with size and SHA-256
//	                       (the rootfs also with BLAKE3 digests of its 4 MiB chunks),
//	                       the versions it may upgrade from and its config migrations
//	manifest.json.minisig  minisign signature of the exact manifest.json bytes
//	rootfs.squashfs        the node root, written raw into slot a or b
//	vmlinuz, initrd.img    kernel and initramfs, copied to the ESP
//	loader.efi             the UEFI boot loader (systemd-boot)
//	adminpw.hash           optional: the admin password hash for nodeinit.adminpw=bundle
//	                       (BuildOptions.AdminHashFile), so that a stateless node's
//	                       /proc/cmdline, which every process can read, does not carry it
//
// Trust. The manifest is the only thing signed; every other file is checked
// against the digest the manifest lists while it is streamed. The rootfs is
// checked chunk by chunk against its chunk digests, on every core, which
// proves the whole file as well as its SHA-256 would (the signature covers
// the list); BLAKE3 is used there because SHA-256 on one or two cores is
// slower than the disk (see bench/README.md), and SHA-256 chunks from older
// manifests are still accepted. Open refuses an
// unsigned or badly signed manifest unless VerifyOptions.Insecure is set
// (nodeinit.insecure), and over plain http it additionally requires
// VerifyOptions.PinnedSHA256 (nodeinit.image.sha256) when there is no valid
// signature. A pin that does not match is always refused. All of this happens
// before anything is written, so the plan stage can call Open and refuse early.
//
// Build uses mksquashfs (squashfs-tools) rather than go-diskfs' squashfs
// writer for a root directory: mksquashfs compresses with zstd on every core,
// keeps xattrs (security labels), device nodes and hard links, and is
// reproducible by default (we also pin -mkfs-time and -all-time from
// BuildOptions.Created / SOURCE_DATE_EPOCH). An existing squashfs is taken
// as it is.
//
// Edit. EditBundle (`nodeinit image edit`) unpacks a bundle's root, installs
// packages with the host's dpkg --root (dependencies resolved by package
// deb against a local directory), plugins, files, kernel modules, passwords
// and SSH keys, runs scripts in a chroot with no network (edit_linux.go's
// sandbox: its own mount and network namespaces), packs the root again
// reproducibly and signs a manifest that lists every change in Edits. Diff
// compares two bundles down to every path of their roots. Both run on a build
// host: the initramfs build (tag initramfs) leaves their files out, and with
// them the initramfs builder that /init never calls.
//
// Keys. GenerateKey writes a minisign key pair; the private key may be left
// unencrypted (empty password) for CI and tests, which is documented as unsafe
// for release keys. Keys from `minisign -G` work as they are: pass the
// .key file and its password to Sign and put the .pub file into the
// initramfs key directory read by LoadKeyring.
package image
