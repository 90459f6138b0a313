package qemutests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/initramfs"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

// TestNewOperatorFromTheBinaryAlone runs the README's path as a new operator does: the CLI and
// its initramfs build are built as `make build` builds them, copied into an empty directory
// outside the checkout, and run there with a PATH that has no Go toolchain. It makes a key pair,
// the initramfs (from the initramfs build beside the CLI: nothing is compiled), a signed bundle
// and an ISO; the ISO installs a blank disk
// under OVMF, and the installed node boots and runs `nodeinit status` from the CLI that its
// initramfs left under /run/nodeinit.
func TestNewOperatorFromTheBinaryAlone(t *testing.T) {
	f := fixtures(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	cli, initBuild := filepath.Join(work, "nodeinit"), filepath.Join(work, initramfs.InitramfsBinary)
	for out, flags := range map[string][]string{cli: {"-trimpath", "-ldflags=-s -w"}, initBuild: initramfs.GoBuildFlags} {
		built := filepath.Join(t.TempDir(), "nodeinit")
		gobuild := exec.Command("go", append(append([]string{"build"}, flags...), "-o", built, "./cmd/nodeinit")...)
		gobuild.Dir = root
		gobuild.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := gobuild.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/nodeinit: %v\n%s", err, msg)
		}
		if err := os.Rename(built, out); err != nil {
			t.Fatal(err)
		}
	}

	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, dir := range filepath.SplitList(path) {
		if _, err := os.Stat(filepath.Join(dir, "go")); err == nil {
			t.Fatalf("%s holds a Go toolchain; the test needs a PATH without one", dir)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(cli, args...)
		cmd.Dir = work
		cmd.Env = []string{"PATH=" + path, "HOME=" + work, "TMPDIR=" + work, "LANG=C.UTF-8"}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		t.Logf("nodeinit %s (%s):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
		if err != nil {
			t.Fatalf("nodeinit %s: %v", args[0], err)
		}
		return string(out)
	}

	run("image", "keygen", "--pub", "node.pub", "--priv", "node.key")
	start := time.Now()
	out := run("mkinitramfs", "-o", "initrd.img", "--modules-dir", f.Debian.ModulesDir, "--key", "node.pub")
	t.Logf("mkinitramfs from the binary alone: %s", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(out, "/init: "+initBuild) || strings.Contains(out, "warning:") || !strings.Contains(out, "zstd -19") {
		t.Errorf("mkinitramfs did not put the initramfs build beside it in as /init, compressed with zstd -19, or warned:\n%s", out)
	}
	run("image", "build", "--root", f.Rootfs("1.0"), "--kernel", f.Debian.Vmlinuz, "--initrd", "initrd.img",
		"--loader", f.Debian.SystemdBoot, "--name", "first-node", "--version", "1.0", "--out", "bundle")
	run("image", "sign", "bundle", "--key", "node.key")
	run("image", "verify", "bundle", "--key", "node.pub")
	run("mkmedia", "iso", "node.iso", "--bundle", "bundle", "--unattended", "serial:NEWUSER1", "--timeout", "1s",
		"--syslinux-root", filepath.Join(f.Debian.CacheDir, "root"),
		"--append", "console=ttyS0,115200n8", "--append", "panic=5", "--append", "nodeinit.events=ttyS1",
		"--append", "testos.action=run:/usr/sbin/nodeinit:status,poweroff")

	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "NEWUSER1"})
	v := vm.Start(t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true,
		MemoryMiB: 1536, ExtraArgs: cdrom(filepath.Join(work, "node.iso")), Events: n.eventsFile()})
	p := v.ExpectPlan(4 * time.Minute)
	if p.Image == nil || p.Image.Name != "first-node" || p.Image.Version != "1.0" || !p.Image.Signed {
		t.Errorf("the plan's image is not first-node 1.0, signed: %+v", p.Image)
	}
	if p.TargetPath() != "/dev/nvme0n1" {
		t.Errorf("the target is %q, not /dev/nvme0n1", p.TargetPath())
	}
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	checkInstalledDisk(t, n.disks[0].Path)

	v = n.powerOn()
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a`, 3*time.Minute)
	v.Expect(`booted slot: a`, time.Minute)
	v.Expect(`slot a: \S+\s+version 1\.0 `, time.Minute)
	v.Expect(`TESTOS-RUN /usr/sbin/nodeinit exit=0`, time.Minute)
	waitExit(t, v)
}
