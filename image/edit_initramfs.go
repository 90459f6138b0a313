//go:build !initramfs

package image

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"aead.dev/minisign"

	"github.com/nodeinit/nodeinit/initramfs"
	"github.com/nodeinit/nodeinit/internal/lazyre"
)

// The bundle's initrd.img is the nodeinit initramfs the node boots with:
// /init, the rescue commands, the keys it trusts and the kernel modules
// /init loads before the root is mounted (storage, network, filesystems).
// An edit that puts modules into the root leaves them out of it unless
// --initramfs is given; then rebuildInitramfs adds them to a copy of the
// input's initramfs with initramfs.AddTo, which keeps every other record as
// it was, so the edit needs neither the nodeinit binary nor the kernel the
// initramfs was first built from.

// moduleFileRE matches a kernel module path in a package's file list.
var moduleFileRE = lazyre.New(`^/(?:usr/)?lib/modules/([^/]+)/.+\.ko(?:\.xz|\.zst|\.gz)?$`)

// debModules lists the kernel modules the installed packages put into the
// root: names for the image's kernel, and paths for other kernels.
func (p *editPlan) debModules(root string) (names, other []string) {
	for _, d := range p.debs {
		for _, list := range []string{d.pkg.Name + ".list", d.pkg.Name + ":" + d.pkg.Arch + ".list"} {
			host, err := inRoot(root, "/var/lib/dpkg/info/"+list, true)
			if err != nil {
				continue
			}
			f, err := os.Open(host)
			if err != nil {
				continue
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				m := moduleFileRE().FindStringSubmatch(sc.Text())
				switch {
				case m == nil:
				case m[1] == p.kver:
					names = append(names, kmodName(sc.Text()))
				default:
					other = append(other, sc.Text())
				}
			}
			f.Close()
		}
	}
	return names, other
}

// kmodName is the module name of a module file: its base name before .ko.
func kmodName(file string) string {
	return strings.SplitN(filepath.Base(file), ".ko", 2)[0]
}

// rebuildInitramfs writes the new initramfs beside the root, carrying the
// modules and trusting the signing key, and returns its edit; nil when the
// input's initramfs already has everything.
func (p *editPlan) rebuildInitramfs(ctx context.Context, root string, modules []string) (*Edit, error) {
	work := filepath.Dir(root)
	pub, err := p.signingPub(work)
	if err != nil {
		return nil, err
	}
	modDir, err := inRoot(root, "/lib/modules/"+p.kver, true)
	if err != nil {
		return nil, newError("image edit", "--initramfs", err, "check the image's /lib/modules")
	}
	out := filepath.Join(work, InitrdName)
	res, err := initramfs.AddTo(ctx, initramfs.AddOptions{Input: filepath.Join(p.o.Bundle, InitrdName), Output: out,
		ModulesDir: modDir, Modules: modules, Keys: []string{pub}})
	if err != nil {
		return nil, spaceHint(newError("image edit", "--initramfs", err,
			"--initramfs rebuilds a nodeinit initramfs for the image's kernel ("+p.kver+"); build the bundle's initrd with nodeinit mkinitramfs, or drop --initramfs"), p.o.Out)
	}
	if len(res.Changed) == 0 {
		os.Remove(out)
		fmt.Fprintf(p.o.Log, "image edit: --initramfs: %s already carries every module and key; kept as it was\n", InitrdName)
		return nil, nil
	}
	p.initrd = out
	old, _ := p.base.File(InitrdName)
	var why []string
	if len(res.Listed) > 0 {
		why = append(why, "loads "+strings.Join(res.Listed, ", "))
	}
	if len(res.KeysAdded) > 0 {
		why = append(why, "trusts the key "+keyID(p.key.ID()))
	}
	return &Edit{Op: EditInitramfs, Base: p.base.Version, Name: InitrdName, Version: p.kver, Source: InitrdName, SHA256: old.SHA256,
		Paths: res.Changed, Reason: strings.Join(why, "; ")}, nil
}

// signingPub is the public key file of the signing key, for the new
// initramfs to trust: --pub when given (its name is kept), else one written
// into work.
func (p *editPlan) signingPub(work string) (string, error) {
	if p.o.PublicKey != "" && strings.HasSuffix(p.o.PublicKey, ".pub") {
		return p.o.PublicKey, nil
	}
	pk, ok := p.key.Public().(minisign.PublicKey)
	if !ok {
		return "", newError("image edit", "--key", fmt.Errorf("not a minisign key"), "check the key")
	}
	text, err := pk.MarshalText()
	if err != nil {
		return "", newError("image edit", "--key", err, "check the key")
	}
	pub := filepath.Join(work, "image-edit-"+keyID(p.key.ID())+".pub")
	if err := os.WriteFile(pub, append(text, '\n'), 0o644); err != nil {
		return "", spaceHint(newError("image edit", pub, err, "check the filesystem"), p.o.Out)
	}
	return pub, nil
}

// initramfsStep rebuilds the initramfs, or warns that it lacks the modules
// the edit installed; modules are the names installed for the image's
// kernel, other the module files for other kernels.
func (p *editPlan) initramfsStep(ctx context.Context, root string, modules, other []string) ([]Edit, error) {
	sort.Strings(other)
	if len(other) > 0 {
		fmt.Fprintf(p.o.Warn, "warning: the packages installed modules for another kernel than the image's (%s): %s; no initramfs carries them\n",
			p.kver, strings.Join(other, " "))
	}
	if !p.o.Initramfs {
		if len(modules) > 0 {
			fmt.Fprintf(p.o.Warn, "warning: the edit installed kernel modules (%s) into the root, but the bundle's %s does not carry them: "+
				"/init cannot load them before the root is mounted (storage, network for the image); pass --initramfs to add them\n",
				strings.Join(modules, ", "), InitrdName)
		}
		return nil, nil
	}
	e, err := p.rebuildInitramfs(ctx, root, modules)
	if err != nil || e == nil {
		return nil, err
	}
	return []Edit{*e}, nil
}
