package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/internal/benchutil"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

// What the Debian 6.1 kernel prints around unpacking an initrd, and why the
// bench reads these lines.
//
// init/initramfs.c's populate_rootfs (a rootfs_initcall) hands the work to
// do_populate_rootfs through async_schedule_domain, which prints, both at
// KERN_INFO:
//
//	[    1.731745] Trying to unpack rootfs image as initramfs...
//	[    2.156751] Freeing initrd memory: 10572K
//
// the first right before unpack_to_rootfs of the initrd ("Unpacking
// initramfs..." in a kernel without CONFIG_BLK_DEV_RAM), the second from
// free_initrd_mem right after it. Between them the kernel decompresses the
// archive and creates every file in the rootfs: that span is the unpack time.
// A failure prints "Initramfs unpacking failed: <why>" (KERN_EMERG) before
// the free; the freed size, page-rounded, is the initrd the kernel was given.
//
// initramfs_async=0 makes populate_rootfs wait for the unpack, so with one
// vCPU (see guestSMP) nothing else runs in that span (by default it overlaps
// the device initcalls that follow). initcall_debug prints the same span as
// "initcall populate_rootfs+0x0/0x40 returned 0 after 1094300 usecs", but at
// KERN_DEBUG: it needs loglevel=8, which puts ~900 more lines on the serial
// console before populate_rootfs and makes each TCG boot slower; measured
// once, it was 7 ms longer than the two lines above (the built-in initramfs
// and the async hand-off). The async entry's own timing in kernel/async.c is
// pr_debug, printed only with dynamic debug switched on. So the bench uses the
// two KERN_INFO lines at loglevel=7.
//
// The boot ends as soon as the free is printed: the bench kills QEMU. Should
// it run on, rdinit names no file, there is no root=, so the kernel panics
// ("VFS: Unable to mount root fs") and panic=-1 with -no-reboot ends QEMU.
const kernelArgs = "console=ttyS0 printk.time=1 loglevel=7 initramfs_async=0 rdinit=/bin/nodeinit.notthere panic=-1"

var (
	unpackStartRE = regexp.MustCompile(`^\[\s*([0-9]+\.[0-9]+)\] (?:Trying to unpack rootfs image as initramfs|Unpacking initramfs)\.\.\.`)
	unpackFreeRE  = regexp.MustCompile(`^\[\s*([0-9]+\.[0-9]+)\] Freeing initrd memory: ([0-9]+)K`)
	unpackFailRE  = regexp.MustCompile(`Initramfs unpacking failed: (.*)`)
)

// unpack is what one boot's kernel log says about the initrd.
type unpack struct {
	start, end float64 // guest seconds: unpacking begins, the initrd is freed
	freedKiB   int64
}

func (u unpack) seconds() float64 { return u.end - u.start }

// unpackDone tells whether a console line ends what the bench needs from a boot.
func unpackDone(line string) bool {
	return unpackFreeRE.MatchString(line) || unpackFailRE.MatchString(line)
}

// parseUnpack reads the unpack lines from a kernel's console.
func parseUnpack(console string) (unpack, error) {
	var u unpack
	started := false
	for _, line := range strings.Split(console, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := unpackFailRE.FindStringSubmatch(line); m != nil {
			return u, fmt.Errorf("the kernel says: Initramfs unpacking failed: %s", m[1])
		}
		if m := unpackStartRE.FindStringSubmatch(line); m != nil {
			u.start, _ = strconv.ParseFloat(m[1], 64)
			started = true
			continue
		}
		if m := unpackFreeRE.FindStringSubmatch(line); m != nil && started {
			u.end, _ = strconv.ParseFloat(m[1], 64)
			u.freedKiB, _ = strconv.ParseInt(m[2], 10, 64)
			if u.end < u.start {
				return u, fmt.Errorf("the initrd was freed at %.6f s, before unpacking began at %.6f s", u.end, u.start)
			}
			return u, nil
		}
	}
	if !started {
		return u, errors.New(`no "Trying to unpack rootfs image as initramfs..." on the console: the kernel got no initrd`)
	}
	return u, errors.New(`no "Freeing initrd memory" after unpacking began: the unpack did not finish`)
}

// bootTimeout bounds one boot; a good one ends after a few seconds.
const bootTimeout = 60 * time.Second

// bootMemoryMiB is the guest's memory: enough for the initrd, xz -9's 64 MiB
// dictionary and the unpacked rootfs; less than the tests' 1 GiB, which the
// kernel spends time initialising.
const bootMemoryMiB = 512

// boot runs the Debian kernel on initrd until it has unpacked it and returns
// the unpack span, checked: the unpack must not fail, and the kernel must
// free as many pages as the initrd file has (so it was given all of it).
func boot(ctx context.Context, kernel, initrd string, log io.Writer) (unpack, error) {
	st, err := os.Stat(initrd)
	if err != nil {
		return unpack{}, fmt.Errorf("initrd: %w", err)
	}
	c := vm.Config{Kernel: kernel, Initramfs: initrd, Append: kernelArgs, NoReboot: true, MemoryMiB: bootMemoryMiB}
	if fw := firmware(); fw != "" {
		c.ExtraArgs = []string{"-bios", fw}
	}
	args, err := c.Args()
	if err != nil {
		return unpack{}, fmt.Errorf("qemu arguments: %w", err)
	}
	if args, err = guestSMP(args); err != nil {
		return unpack{}, err
	}
	args = append(args, "-nographic", "-kernel", c.Kernel, "-initrd", c.Initramfs, "-append", c.Append)
	console, err := runQEMU(ctx, args, log)
	if err != nil {
		return unpack{}, fmt.Errorf("%w\n%s", err, benchutil.Tail(console, 20))
	}
	u, err := parseUnpack(console)
	if err != nil {
		return u, fmt.Errorf("%w\n%s", err, benchutil.Tail(console, 20))
	}
	if want := (st.Size() + 4095) / 4096 * 4; u.freedKiB != want {
		return u, fmt.Errorf("the kernel freed %d KiB of initrd, the file is %d bytes (%d KiB in pages): it did not get the whole file",
			u.freedKiB, st.Size(), want)
	}
	return u, nil
}

// qboot is QEMU's minimal firmware (Debian's qemu-system-data). All the
// firmware does here is load the kernel and initrd from fw_cfg and start it
// with QEMU's ACPI tables; qboot does that with about 0.3 s less host CPU per
// boot than the default SeaBIOS (15 boots of this bench under TCG). The
// unpack span itself is the kernel's and does not depend on it.
const qboot = "/usr/share/qemu/qboot.rom"

// firmware is qboot when installed, else "" (QEMU's default, SeaBIOS).
func firmware() string {
	if _, err := os.Stat(qboot); err != nil {
		return ""
	}
	return qboot
}

// guestSMP adjusts vm.Config's -smp 2 for the unpack: one vCPU. The kernel
// unpacks on one thread, one vCPU is one host thread (the other core stays the
// host's), and the boot skips bringing up a second CPU. vm.Config's -cpu is
// already without ERMS and FSRM (see qemu-tests/vm): with them the kernel's
// memcpy and clear_page are rep movsb/stosb, which TCG emulates a byte at a
// time, while on hardware they are the fast path; the unpack of nodeinit's zstd
// initrd took 0.70-0.91 s with -cpu max and 0.44-0.55 s without them.
func guestSMP(args []string) ([]string, error) {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-smp" {
			args[i+1] = "1"
			return args, nil
		}
	}
	return nil, fmt.Errorf("vm.Config.Args gave no -smp to adjust: %q", args)
}

// runQEMU runs QEMU until the console shows unpackDone (then kills it), QEMU
// exits, or bootTimeout passes, and returns the console.
func runQEMU(ctx context.Context, args []string, log io.Writer) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	r, w, err := os.Pipe()
	if err != nil {
		return "", fmt.Errorf("qemu console pipe: %w", err)
	}
	defer r.Close()
	cmd.Stdout, cmd.Stderr = w, w
	// A pipe that stays open: QEMU's stdio monitor must not see end of file.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		w.Close()
		return "", fmt.Errorf("qemu stdin: %w", err)
	}
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		w.Close()
		return "", fmt.Errorf("start qemu: %w", err)
	}
	w.Close()
	undo := benchutil.AtInterrupt(func() { cmd.Process.Kill() })
	defer undo()
	var console strings.Builder
	killed := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		console.WriteString(line + "\n")
		fmt.Fprintln(log, line)
		if !killed && unpackDone(line) {
			cmd.Process.Kill()
			killed = true
		}
	}
	err = cmd.Wait()
	switch {
	case killed:
		return console.String(), nil
	case ctx.Err() != nil:
		return console.String(), fmt.Errorf("qemu still running after %s", bootTimeout)
	case err != nil:
		return console.String(), fmt.Errorf("qemu: %w", err)
	}
	return console.String(), errors.New("qemu exited before the kernel had unpacked the initrd")
}
