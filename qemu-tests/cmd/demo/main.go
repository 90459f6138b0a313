// Command demo is `make demo`: it builds the nodeinit initramfs and a signed demo node
// image, boots a VM (OVMF, TCG) from the installer initrd with
// `install storage_init=… BOOTIF=link adminpw=…`, shows the install with its progress on
// the serial console, then boots the installed node from its own NVMe disk through
// systemd-boot and shows the node OS coming up.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/nodeinit/nodeinit/qemu-tests/fixture"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

// demoHash is the SHA-512 crypt hash of "nodeinit" (openssl passwd -6 -salt demo nodeinit).
const demoHash = "$6$demo$VkuVXfxR29AghwdAr6JFDpWSLMAVxBt.X0WLj/CSLdvjjL6cCqsq/lD1WmxjIY8w98mCIZcQ7nl0tonW/bTKp1"

func main() {
	out := flag.String("out", "build/demo", "build directory")
	diskGiB := flag.Int64("disk-gib", 16, "size of the blank NVMe disk")
	flag.Parse()
	if err := run(*out, *diskGiB); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(out string, diskGiB int64) error {
	ctx := context.Background()
	say("building the initramfs and the signed demo image (first run: about a minute)")
	a, err := fixture.Build(ctx, fixture.Options{CacheDir: vm.DefaultCacheDir(), OutDir: out,
		Versions: []fixture.Version{{Version: "1.0"}}, Log: os.Stdout})
	if err != nil {
		return err
	}
	installer, err := a.Installer("1.0")
	if err != nil {
		return err
	}
	diskPath := filepath.Join(out, "nvme.img")
	if err := vm.CreateDisk(diskPath, diskGiB<<30); err != nil {
		return err
	}
	vars := filepath.Join(out, "OVMF_VARS.fd")
	if err := vm.CopyVars(a.Debian.OVMFVars, vars); err != nil {
		return err
	}
	cfg := vm.Config{OVMFCode: a.Debian.OVMFCode, OVMFVars: vars, NoReboot: true, MemoryMiB: 1536, Net: true,
		Disks: []vm.Disk{{Path: diskPath, Interface: vm.NVMe, Serial: "DEMO0001"}}}

	line := "console=ttyS0 panic=5 install storage_init=serial:DEMO0001 BOOTIF=link adminpw=" + demoHash +
		" hostname=demo-node1.example.com testos.action=poweroff"
	say("boot 1: the installer, from the kernel and installer initrd, onto a blank %d GiB NVMe disk\n   kernel command line: %s", diskGiB, line)
	if err := qemu(cfg, []string{"-kernel", a.Debian.Vmlinuz, "-initrd", installer, "-append", line}); err != nil {
		return err
	}
	say("boot 2: the installed node, from the NVMe disk: OVMF → systemd-boot → nodeinit → demo node OS")
	return qemu(cfg, nil)
}

// qemu runs one VM with the serial console on our stdout, until the guest powers off or reboots.
func qemu(cfg vm.Config, extra []string) error {
	args, err := cfg.Args()
	if err != nil {
		return err
	}
	args = append(args, "-display", "none")
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

func say(format string, args ...any) {
	fmt.Printf("\n=== demo: %s\n\n", fmt.Sprintf(format, args...))
}
