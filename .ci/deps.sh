#!/usr/bin/env bash
# Debian packages the build and the tests need. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  qemu-system-x86 qemu-utils gdisk dosfstools bmap-tools squashfs-tools xorriso \
  xfsprogs btrfs-progs cryptsetup-bin mdadm lvm2 cpio zstd lz4 xz-utils mtools e2fsprogs util-linux \
  ovmf systemd-boot-efi isolinux syslinux-common ipxe-qemu swtpm swtpm-tools busybox-static kmod \
  grub-common grub-pc-bin minisign time ca-certificates gpg gpgv iproute2 dnsmasq-base mmdebstrap >/dev/null
# The fleet test runs dnsmasq, nginx and rsyslog itself, in a network namespace of its own
# (dnsmasq-base above has no service): the packaged services of nginx and rsyslog must not
# start (policy-rc.d says no while they install).
guard=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
fi
apt-get install -y -qq --no-install-recommends nginx-light rsyslog >/dev/null
if [ -n "$guard" ]; then rm -f /usr/sbin/policy-rc.d; fi
# make bench compares our initramfs with Debian's own stock initrd, which it builds inside a
# Debian root of its own (mmdebstrap, above; internal/benchutil/debian.go), not on this machine.
