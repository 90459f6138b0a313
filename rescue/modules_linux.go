package rescue

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/nodeinit/nodeinit/kmod"
	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

func init() {
	register("lsmod", "", lsmod)
	register("insmod", "FILE [PARAM=VALUE...]", insmod)
	register("rmmod", "[-f] NAME...", rmmod)
	register("modprobe", "[-q] [--] NAME|ALIAS...", modprobe)
}

// modprobe loads modules by name or by alias (fs-xfs, crypto-sha512,
// block-major-9-*, a device modalias) with their dependencies, from
// /lib/modules/<running kernel>. It is also the kernel's usermode helper in the
// initramfs (/proc/sys/kernel/modprobe), which asks "modprobe -q -- fs-xfs" when a
// mount needs a filesystem no loaded module provides: /init loads only what boots
// the machine, and the rest of the modules carried load when they are asked for.
func modprobe(c *call, args []string) error {
	fs := c.flags()
	quiet := fs.Bool("q", false, "say nothing when a name matches no module")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("missing NAME")
	}
	loader, err := kmod.Open("/")
	if err != nil {
		return err
	}
	if loader.NoAlias != nil && !*quiet {
		fmt.Fprintf(c.stderr, "modprobe: %v: names only, no aliases\n", loader.NoAlias)
	}
	var failed []string
	for _, name := range fs.Args() {
		for _, m := range kmod.Resolve(loader.Table, name) {
			if err := loader.Prober.Probe(m, ""); err != nil {
				if !*quiet {
					fmt.Fprintf(c.stderr, "modprobe: %s: %v\n", m, err)
				}
				failed = append(failed, m)
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d module(s) not loaded: %s", len(failed), strings.Join(failed, " "))
	}
	return nil
}

// lsmod prints /proc/modules as a table.
func lsmod(c *call, args []string) error {
	if _, err := c.operands(args); err != nil {
		return err
	}
	f, err := os.Open("/proc/modules")
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(c.stdout, "%-24s %8s  %s\n", "Module", "Size", "Used by")
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// name size refcount users state address
		m := strings.Fields(sc.Text())
		if len(m) < 4 {
			continue
		}
		users := strings.TrimSuffix(strings.TrimPrefix(m[3], "-"), ",")
		fmt.Fprintf(c.stdout, "%-24s %8s  %s %s\n", m[0], m[1], m[2], users)
	}
	return sc.Err()
}

// insmod loads one module file (.ko, .ko.xz, .ko.gz) with its parameters, not its
// dependencies (early loads the initramfs' modules with theirs at boot).
func insmod(c *call, args []string) error {
	operands, err := c.operands(args)
	if err != nil {
		return err
	}
	if len(operands) == 0 {
		return usagef("missing FILE")
	}
	f, err := os.Open(operands[0])
	if err != nil {
		return err
	}
	defer f.Close()
	if err := kmodule.FileInit(f, strings.Join(operands[1:], " "), 0); err != nil {
		return fmt.Errorf("%s: %w", operands[0], err)
	}
	return nil
}

func rmmod(c *call, args []string) error {
	fs := c.flags()
	force := fs.Bool("f", false, "force, even when in use")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("missing NAME")
	}
	flags := uintptr(unix.O_NONBLOCK)
	if *force {
		flags |= unix.O_TRUNC
	}
	for _, name := range fs.Args() {
		name = strings.TrimSuffix(name, ".ko")
		if err := kmodule.Delete(name, flags); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}
