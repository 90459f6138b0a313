#!/usr/bin/env bash
# Debian packages the build and the tests need. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  qemu-system-x86 qemu-utils gdisk dosfstools bmap-tools squashfs-tools xorriso \
  xfsprogs btrfs-progs cryptsetup-bin mdadm lvm2 cpio zstd mtools e2fsprogs util-linux \
  ovmf systemd-boot-efi isolinux syslinux-common ipxe-qemu swtpm busybox-static kmod \
  minisign time ca-certificates >/dev/null
