package debroot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/initramfs"
)

// Where a node finds what nodeinit's boot leaves it (see stages and initproc).
const (
	NodeCLI = "/run/nodeinit/bin/nodeinit"
	NodeESP = "/run/nodeinit/esp"
)

// BlessUnitName is the systemd unit NodeFiles ships and enables.
const BlessUnitName = "nodeinit-bless.service"

// BlessUnit is nodeinit-bless.service. It follows systemd-bless-boot.service's
// ordering (after boot-complete.target, which pulls in the image's health
// checks: units with Before=boot-complete.target and RequiredBy= it), and also
// waits for multi-user.target, so that a node whose services did not come up
// is not blessed. `nodeinit bless` drops the counter from the booted slot's
// loader entry (node-b+2-1.conf becomes node-b.conf) and records the slot as
// good in the install ledger. It runs only on a boot from disk, where nodeinit
// put nodeinit.slot= on the command line and mounted the ESP.
const BlessUnit = `# Shipped by nodeinit: marks this boot good for systemd-boot's boot counting
# and in nodeinit's install ledger, once boot-complete.target and
# multi-user.target are reached.
[Unit]
Description=Mark this nodeinit slot good
Documentation=https://systemd.io/AUTOMATIC_BOOT_ASSESSMENT/
DefaultDependencies=no
Requires=boot-complete.target
After=local-fs.target boot-complete.target multi-user.target
Conflicts=shutdown.target
Before=shutdown.target
ConditionKernelCommandLine=nodeinit.slot
ConditionPathIsMountPoint=` + NodeESP + `

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=` + NodeCLI + ` bless

[Install]
WantedBy=multi-user.target
`

// NodeFiles writes into root what nodeinit's boot expects of a node image
// besides Debian's packages: /etc/node-release (NAME and VERSION), the
// mount point /data, /usr/sbin/nodeinit as a symlink to NodeCLI, BlessUnit
// enabled for multi-user.target, and the public keys (minisign .pub files)
// in /etc/nodeinit/keys, which `nodeinit upgrade` on the node trusts.
func NodeFiles(root, name, version string, keys []string) error {
	for _, d := range []string{"data", "etc/nodeinit/keys", "etc/systemd/system/multi-user.target.wants", "usr/sbin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return fmt.Errorf("node files: %w", err)
		}
	}
	release := fmt.Sprintf("NAME=%s\nVERSION=%s\n", strconv.Quote(name), strconv.Quote(version))
	files := map[string]string{
		"etc/node-release":                    release,
		"etc/systemd/system/" + BlessUnitName: BlessUnit,
	}
	for _, k := range keys {
		b, err := os.ReadFile(k)
		if err != nil {
			return fmt.Errorf("node files: public key: %w", err)
		}
		files["etc/nodeinit/keys/"+filepath.Base(k)] = string(b)
	}
	for p, content := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(content), 0o644); err != nil {
			return fmt.Errorf("node files: %w", err)
		}
	}
	links := map[string]string{
		"usr/sbin/nodeinit": NodeCLI,
		"etc/systemd/system/multi-user.target.wants/" + BlessUnitName: "/etc/systemd/system/" + BlessUnitName,
	}
	for p, target := range links {
		full := filepath.Join(root, p)
		os.Remove(full)
		if err := os.Symlink(target, full); err != nil {
			return fmt.Errorf("node files: %w", err)
		}
	}
	return nil
}

// BundleOptions say how to pack a Root into a bundle.
type BundleOptions struct {
	Root *Root
	// Image names the bundle and says where it goes (Name, Version, Out, Loader,
	// UpgradeFrom, Migrations, AdminHashFile, Created, ChunkHash); Bundle fills in
	// Squashfs, Kernel and Initrd.
	Image image.BuildOptions
	// Work is a scratch directory (new or empty); the root's copy in it is
	// removed once packed.
	Work string
	// Binary is the nodeinit binary the initramfs boots ("" is the running
	// executable, as `nodeinit mkinitramfs` does).
	Binary string
	// Keys are minisign public key files: the initramfs trusts them, and the
	// image carries them for `nodeinit upgrade`.
	Keys []string
	// CompressionLevel is mksquashfs' zstd level; 0 means 6.
	CompressionLevel int
	// SignKey, when set, is the minisign private key Bundle signs the manifest
	// with (SignPassword its password; empty for an unencrypted key).
	SignKey, SignPassword string
	Log                   io.Writer
}

// Bundle packs o.Root: it copies the root into o.Work, adds NodeFiles, builds
// nodeinit's initramfs from the root's kernel modules, packs the squashfs and
// writes the bundle with image.Build (and signs it when o.SignKey is set).
func Bundle(ctx context.Context, o BundleOptions) (*image.Manifest, error) {
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	if o.Root == nil {
		return nil, fmt.Errorf("debian bundle: no root")
	}
	if o.Work == "" {
		return nil, fmt.Errorf("debian bundle: no work directory")
	}
	if o.Image.Created.IsZero() {
		o.Image.Created = time.Now()
	}
	o.Image.Created = o.Image.Created.UTC().Truncate(time.Second)
	level := o.CompressionLevel
	if level == 0 {
		level = 6
	}
	if err := os.MkdirAll(o.Work, 0o755); err != nil {
		return nil, fmt.Errorf("debian bundle: %w", err)
	}
	rootfs := filepath.Join(o.Work, "rootfs")
	if err := removeUnmounted(rootfs); err != nil {
		return nil, err
	}
	start := time.Now()
	if out, err := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", o.Root.Dir, rootfs).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("debian bundle: copy %s: %w: %s", o.Root.Dir, err, bytes.TrimSpace(out))
	}
	defer os.RemoveAll(rootfs)
	if err := NodeFiles(rootfs, o.Image.Name, o.Image.Version, o.Keys); err != nil {
		return nil, err
	}
	initrd := filepath.Join(o.Work, "initrd.img")
	if _, err := initramfs.Build(ctx, initramfs.Options{Output: initrd, Binary: o.Binary, ModulesDir: o.Root.ModulesDir, Keys: o.Keys,
		FirmwareDir: filepath.Join(o.Root.Dir, "lib", "firmware")}); err != nil {
		return nil, fmt.Errorf("debian bundle: initramfs for %s: %w", o.Root.KernelVersion, err)
	}
	sqfs := filepath.Join(o.Work, "rootfs.squashfs")
	if err := mksquashfs(ctx, rootfs, sqfs, level, o.Image.Created); err != nil {
		return nil, err
	}
	defer os.Remove(sqfs)
	fmt.Fprintf(logw, "debroot: %s %s: root copied, initramfs and squashfs made in %s\n", o.Image.Name, o.Image.Version, time.Since(start).Round(time.Millisecond))
	opts := o.Image
	opts.Root, opts.Squashfs, opts.Kernel, opts.Initrd = "", sqfs, o.Root.Vmlinuz, initrd
	m, err := image.Build(opts)
	if err != nil {
		return nil, err
	}
	if o.SignKey != "" {
		if err := image.Sign(opts.Out, o.SignKey, o.SignPassword); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// mksquashfs packs root into out with zstd at level, every timestamp set to
// created (reproducible, as image.Build packs a root).
func mksquashfs(ctx context.Context, root, out string, level int, created time.Time) error {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		return fmt.Errorf("debian bundle: %w (install squashfs-tools)", err)
	}
	ts := strconv.FormatInt(created.Unix(), 10)
	cmd := exec.CommandContext(ctx, "mksquashfs", root, out, "-noappend", "-comp", "zstd", "-Xcompression-level", strconv.Itoa(level),
		"-mkfs-time", ts, "-all-time", ts, "-no-progress", "-quiet")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("debian bundle: mksquashfs %s: %w: %s", root, err, tailLines(stderr.String(), 5))
	}
	return nil
}
