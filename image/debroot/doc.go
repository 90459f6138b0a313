// Package debroot makes node images from Debian's archive: a root built with
// mmdebstrap (variant minbase, plus systemd-sysv, udev, kmod, iproute2 and a
// kernel package), cached on the build machine by the versions of the packages
// it holds, and packed with nodeinit's initramfs into a bundle that `nodeinit
// image build --from-debian` writes and the QEMU tests install.
//
// The root. Ensure asks the host's apt which packages mmdebstrap would install
// and at which versions (Resolve: the Essential and Priority: required set that
// minbase means, apt, and Recipe's packages, resolved by `apt-get --simulate`
// against an empty dpkg status, the way mmdebstrap's own apt will resolve them),
// and names the cache entry by a SHA-256 of that list and the recipe (Key). A
// cache hit costs those two apt queries (a few seconds); a miss runs mmdebstrap
// (about a minute) into a temporary directory that becomes the entry when
// complete, so an interrupted build never leaves an entry behind. A new kernel
// ABI, a systemd security update or any other new version in the archive is a
// new key, hence a new root. The host's apt lists must be current (`apt-get
// update`): they are what the key is computed from.
//
// The kernel package's maintainer scripts run with INITRD=No, so initramfs-tools
// makes no initrd: the node boots nodeinit's initramfs, built by Bundle from the
// root's own /lib/modules, so the kernel, its modules in the initramfs and the
// modules the running node loads are always the same build.
//
// What Bundle adds. A copy of the cached root gets what nodeinit's boot needs
// (NodeFiles): /etc/node-release, the mount point /data, the symlink
// /usr/sbin/nodeinit to the CLI the initramfs leaves at /run/nodeinit/bin, the
// trusted public keys for `nodeinit upgrade`, and nodeinit-bless.service,
// enabled. That unit is the image's side of boot counting: it runs `nodeinit
// bless` once boot-complete.target (and multi-user.target) is reached, which
// drops the loader entry's boot counter and records the slot as good in the
// install ledger. Debian's systemd-bless-boot.service is in package
// systemd-boot, which a minbase root lacks, and it only renames the entry; the
// ledger would learn of it on the next boot. The machine ID and the persistent
// journal need nothing in the image: nodeinit seeds /etc/machine-id on the
// config partition at install (and copies it into the root on every boot, a
// plain read-only file: not a mount point, so systemd-machine-id-commit.service
// has no transient ID to commit) and makes /var/log/journal on node-logging.
//
// The squashfs is packed with zstd at level 6 (Bundle's CompressionLevel), not
// mksquashfs' default 15: on two cores a 290 MiB Debian root takes 2 s instead
// of 50 s, for a squashfs 8% larger (87 instead of 81 MB).
package debroot
