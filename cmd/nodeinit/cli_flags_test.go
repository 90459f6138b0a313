//go:build !initramfs

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/media"
	"github.com/nodeinit/nodeinit/operr"
)

// The tests below put flags after the positional arguments of every subcommand
// that takes some, and check that the flag took effect: the standard flag package
// would stop at the argument and leave the flags unparsed.

// cliBundle makes a key pair and an unsigned bundle from made-up inputs with the
// CLI, in temp dirs. It returns the private key, the key directory and the bundle.
func cliBundle(t *testing.T) (priv, keyDir, bundle string) {
	t.Helper()
	dir := t.TempDir()
	keyDir = filepath.Join(dir, "keys")
	if err := os.Mkdir(keyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	priv = filepath.Join(dir, "node.key")
	if out, err := runCLI(t, "image", "keygen", "--pub", filepath.Join(keyDir, "node.pub"), "--priv", priv); err != nil {
		t.Fatalf("image keygen: %v\n%s", err, out)
	}
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+strings.Repeat("x", 4096)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bundle = filepath.Join(dir, "bundle")
	out, err := runCLI(t, "image", "build", "--squashfs", file("root.sqfs", "hsqs"), "--kernel", file("vmlinuz", "MZ"),
		"--initrd", file("initrd", ""), "--loader", file("loader.efi", "MZ"), "--name", "node", "--version", "1.0",
		"--arch", "amd64", "--out", bundle)
	if err != nil {
		t.Fatalf("image build: %v\n%s", err, out)
	}
	return priv, keyDir, bundle
}

func TestImageFlagsAfterArguments(t *testing.T) {
	priv, keyDir, bundle := cliBundle(t)

	out, err := runCLI(t, "image", "sign", bundle, "--key", priv)
	if err != nil || !strings.Contains(out, "signed "+bundle+"/manifest.json") {
		t.Fatalf("image sign DIR --key K: %v\n%s", err, out)
	}

	// --keys after SOURCE picks the key directory (the default has no key for it), and the
	// boolean --manifest-only after it skips the file digests without eating an argument.
	out, err = runCLI(t, "image", "verify", bundle, "--keys", keyDir, "--manifest-only")
	if err != nil || !strings.Contains(out, "signed by key") || strings.Contains(out, "files match") {
		t.Fatalf("image verify SOURCE --keys DIR --manifest-only: %v\n%s", err, out)
	}
	out, err = runCLI(t, "image", "verify", "--keys", keyDir, bundle)
	if err != nil || !strings.Contains(out, "files match their size and SHA-256") {
		t.Fatalf("image verify --keys DIR SOURCE: %v\n%s", err, out)
	}
}

func TestImageDoubleDashEndsFlags(t *testing.T) {
	priv, keyDir, bundle := cliBundle(t)
	_, err := runCLI(t, "image", "sign", "--key", priv, "--", bundle, "--password-file", "pw")
	if err == nil || !strings.Contains(err.Error(), "need one bundle directory, got 3 arguments") {
		t.Fatalf("image sign --key K -- DIR --password-file pw: err = %v, want the three arguments refused", err)
	}
	if _, err := os.Stat(filepath.Join(bundle, "manifest.json.minisig")); err == nil {
		t.Fatal("the bundle was signed although the command was refused")
	}
	_, err = runCLI(t, "image", "verify", "--keys", keyDir, "--", "--insecure")
	if err == nil || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("image verify -- --insecure: err = %v, want the source --insecure not found", err)
	}
}

func TestMkmediaFlagsAfterOutput(t *testing.T) {
	_, _, bundle := cliBundle(t)
	dir := t.TempDir()
	noSyslinux := filepath.Join(dir, "no-syslinux")

	// iso and usb: --bundle after OUT is read (the bundle is complete), and so is
	// --syslinux-root (the refusal names it); nothing is written before the check.
	for _, kind := range []string{"iso", "usb"} {
		target := filepath.Join(dir, "node-"+kind+".img")
		_, err := runCLI(t, "mkmedia", kind, target, "--bundle", bundle, "--syslinux-root", noSyslinux)
		if err == nil || !strings.Contains(err.Error(), "syslinux file") || !strings.Contains(err.Error(), noSyslinux) {
			t.Errorf("mkmedia %s OUT --bundle B --syslinux-root R: err = %v, want the missing syslinux under %s", kind, err, noSyslinux)
		}
		if _, err := os.Stat(target); err == nil {
			t.Errorf("mkmedia %s wrote %s although it refused", kind, target)
		}
	}

	tftp := filepath.Join(dir, "tftp")
	const url = "http://srv.example/nodes/${mac}/bundle/"
	out, err := runCLI(t, "mkmedia", "pxe", tftp, "--bundle", bundle, "--image-url", url, "--default", "rescue")
	if err != nil {
		t.Fatalf("mkmedia pxe DIR --bundle B --image-url U: %v\n%s", err, out)
	}
	cfg, err := os.ReadFile(filepath.Join(tftp, media.PXELinuxCfg))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "srv.example/nodes") || !strings.Contains(string(cfg), "DEFAULT rescue") {
		t.Errorf("%s does not reflect --image-url and --default given after DIR:\n%s", media.PXELinuxCfg, cfg)
	}

	_, err = runCLI(t, "mkmedia", "pxe", "--bundle", bundle, "--", filepath.Join(dir, "t2"), "--image-url", url)
	if err == nil || !strings.Contains(err.Error(), "got 3 arguments") {
		t.Errorf("mkmedia pxe --bundle B -- DIR --image-url U: err = %v, want three arguments refused", err)
	}
}

func TestPersistFlagsAfterPaths(t *testing.T) {
	root, config := t.TempDir(), t.TempDir()
	const p = "/etc/app/app.conf"
	if err := os.MkdirAll(filepath.Join(root, "etc/app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, p), []byte("kept\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := runCLI(t, "persist", p, "--config", config, "--root", root)
	if err != nil || !strings.Contains(out, "persisted "+p) {
		t.Fatalf("persist PATH --config C --root R: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(config, p)); err != nil || string(b) != "kept\n" {
		t.Fatalf("the copy in the config directory: %q, %v", b, err)
	}

	// The boolean --list after a path lists instead of persisting.
	out, err = runCLI(t, "persist", p, "--list", "--config", config)
	if err != nil || strings.TrimSpace(out) != p {
		t.Fatalf("persist PATH --list --config C: %v\n%s", err, out)
	}

	_, err = runCLI(t, "unpersist", "--config", config, "--", "--list")
	if err == nil || !strings.Contains(err.Error(), `"--list": path must be absolute`) {
		t.Fatalf("unpersist -- --list: err = %v, want the path --list refused", err)
	}
	out, err = runCLI(t, "unpersist", p, "--config", config)
	if err != nil || !strings.Contains(out, "unpersisted "+p) {
		t.Fatalf("unpersist PATH --config C: %v\n%s", err, out)
	}
}

// TestHelpAfterArguments: -h anywhere prints the usage and is no error.
func TestHelpAfterArguments(t *testing.T) {
	for _, args := range [][]string{
		{"image", "sign", "DIR", "-h"},
		{"image", "verify", "SOURCE", "--keys", "K", "-h"},
		{"mkmedia", "pxe", "DIR", "-h"},
		{"persist", "/etc/hosts", "-h"},
		{"plan", "--json", "-h"},
		{"image", "-h"},
		{"mkmedia", "-h"},
	} {
		var out, errOut bytes.Buffer
		if err := run(args, &out, &errOut); err != nil {
			t.Errorf("%q: %v", args, err)
		}
		if !strings.Contains(strings.ToLower(errOut.String()), "usage") {
			t.Errorf("%q printed no usage:\n%s", args, errOut.String())
		}
	}
}

// TestUsageErrorsCarryAFix: every way of writing a command wrong is refused with
// what is wrong and, on a line of its own, what to write instead.
func TestUsageErrorsCarryAFix(t *testing.T) {
	tmp := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"--json", "plan"}, "flag --json before the command"},
		{[]string{"image"}, "no subcommand given"},
		{[]string{"image", "frob"}, `unknown subcommand "frob"`},
		{[]string{"image", "--key", "K", "sign", "DIR"}, "flag --key before the subcommand"},
		{[]string{"image", "build", "extra"}, `unexpected argument "extra"`},
		{[]string{"image", "sign", "DIR"}, "need --key"},
		{[]string{"image", "sign", "--key", "K"}, "need one bundle directory, got 0"},
		{[]string{"image", "verify"}, "need one SOURCE, got 0"},
		{[]string{"image", "keygen", "extra", "--pub", "p", "--priv", "q"}, `unexpected argument "extra"`},
		{[]string{"image", "keygen", "--pub", "p"}, "need --pub P and --priv Q"},
		{[]string{"mkinitramfs", "-o", tmp + "/i.img", "--modules", "most"}, "--modules most needs the kernel's modules"},
		{[]string{"mkinitramfs", "-o", tmp + "/i.img", "--modules", "all"}, `--modules "all" is not a module set`},
		{[]string{"mkmedia"}, "no subcommand given"},
		{[]string{"mkmedia", "dvd"}, `unknown subcommand "dvd"`},
		{[]string{"mkmedia", "iso", "--bundle", "B"}, "give exactly one output, got 0"},
		{[]string{"mkmedia", "usb", "a", "b"}, "give exactly one output, got 2"},
		{[]string{"mkmedia", "pxe"}, "give exactly one output directory, got 0"},
		{[]string{"plan", "--facts", "../../testdata/facts/one-nvme.json", "--cmdline", "install", "storage_init=nvme"}, `unexpected argument "storage_init=nvme"`},
		{[]string{"status", "--esp", tmp, "--config", tmp, "extra"}, `unexpected argument "extra"`},
		{[]string{"apply", "install", "storage_init=/dev/sdb"}, `unexpected argument "install"`},
		{[]string{"apply"}, "no command line"},
		{[]string{"bless", "--esp", tmp, "a"}, `unexpected argument "a"`},
		{[]string{"upgrade", "/srv/bundle"}, `unexpected argument "/srv/bundle"`},
		{[]string{"upgrade"}, "no image"},
		{[]string{"unpersist", "--config", tmp}, "no path given"},
		{[]string{"mkinitramfs", "initrd.img"}, `unexpected argument "initrd.img"`},
	}
	// A flag no command knows, after an argument, for every command and subcommand.
	for name := range commands {
		if name == imageGroup.name || name == mkmediaGroup.name || name == tpmGroup.name {
			continue // their subcommands follow
		}
		cases = append(cases, struct {
			args []string
			want string
		}{[]string{name, "x", "--no-such-flag"}, "flag provided but not defined: -no-such-flag"})
	}
	for _, g := range []group{imageGroup, mkmediaGroup, tpmGroup} {
		for sub := range g.subs {
			cases = append(cases, struct {
				args []string
				want string
			}{[]string{g.name, sub, "x", "--no-such-flag"}, g.name + " " + sub + ": flag provided but not defined"})
		}
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		err := run(tc.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.args, err, tc.want)
			continue
		}
		fix := operr.Describe(err).Fix
		if fix == "" || strings.Contains(err.Error(), fix) {
			t.Errorf("%q: %v: no fix of its own (fix %q)", tc.args, err, fix)
			continue
		}
		var screen bytes.Buffer
		printError(&screen, err)
		if !strings.Contains(screen.String(), "\nfix: "+fix+"\n") {
			t.Errorf("%q: the fix is not on a line of its own:\n%s", tc.args, screen.String())
		}
	}
}
