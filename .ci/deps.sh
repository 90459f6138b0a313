#!/usr/bin/env bash
# Debian packages the build and the tests need. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  qemu-system-x86 qemu-utils gdisk dosfstools bmap-tools squashfs-tools xorriso \
  xfsprogs btrfs-progs cryptsetup-bin mdadm lvm2 cpio zstd mtools e2fsprogs util-linux \
  ovmf systemd-boot-efi isolinux syslinux-common ipxe-qemu swtpm swtpm-tools busybox-static kmod \
  minisign time ca-certificates >/dev/null
# make bench compares our initramfs with Debian's own: initramfs-tools builds it when the
# cloud kernel package is installed (files in /boot and /lib/modules only).
apt-get install -y -qq --no-install-recommends initramfs-tools linux-image-cloud-amd64 >/dev/null
