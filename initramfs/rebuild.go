package initramfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/u-root/mkuimage/cpio"
)

// ModuleListArchivePath is the module list /init loads (early.ModuleListPath),
// as a path in the archive.
const ModuleListArchivePath = "etc/nodeinit/modules"

// KeysArchiveDir is where the trusted image keys are in the archive.
const KeysArchiveDir = "etc/nodeinit/keys"

// AddOptions say what AddTo puts into an existing nodeinit initramfs.
type AddOptions struct {
	Input  string // the initramfs to start from; it is only read
	Output string // the new initramfs; written through a temporary file beside it
	// ModulesDir is the lib/modules/<version> the modules come from, after
	// depmod (for an edited image: its root's). Its base name must be the
	// kernel release the input carries modules for, when it carries any.
	ModulesDir string
	// Modules are the names to add, with their dependencies, to the archive
	// and to the module list /init loads.
	Modules []string
	// Keys are minisign public key files to trust too, placed in
	// etc/nodeinit/keys/ unless the archive already has that key.
	Keys []string
}

// AddResult says what AddTo changed.
type AddResult struct {
	Compression   Compression
	KernelVersion string
	// Changed are the archive paths added or replaced, sorted.
	Changed []string
	// Listed are the module names added to the module list.
	Listed []string
	// KeysAdded are the key files added under etc/nodeinit/keys.
	KeysAdded []string
	Size      int64
	SHA256    string
}

// AddTo writes o.Output: the initramfs o.Input with the modules and keys of o
// added, and everything else kept as it was, record for record: /init and the
// nodeinit binary, the rescue commands, the keys, the host files and the
// modules it already had. modules.dep, modules.alias and the module list gain
// the lines of the new modules; a module file the input already has with the
// same content is not written again. The archive is compressed as the input
// was (zstd, gzip or none) with Build's fixed settings, every record made
// reproducible, so the same inputs give the same bytes.
//
// The input must be one nodeinit archive (it has bin/nodeinit), not a
// concatenation: an installer initrd with a bundle appended is refused.
// Nothing is written when a check fails.
func AddTo(ctx context.Context, o AddOptions) (AddResult, error) {
	var res AddResult
	data, err := os.ReadFile(o.Input)
	if err != nil {
		return res, fmt.Errorf("initramfs: read %s: %w", o.Input, err)
	}
	raw, comp, err := decompress(data)
	if err != nil {
		return res, fmt.Errorf("initramfs: %s: %w", o.Input, err)
	}
	res.Compression = comp
	recs, err := readArchive(raw)
	if err != nil {
		return res, fmt.Errorf("initramfs: %s: %w", o.Input, err)
	}
	a := newArchive(recs)
	if _, ok := a.byName[BinaryPath]; !ok {
		return res, fmt.Errorf("initramfs: %s has no %s: it is not a nodeinit initramfs (build one with nodeinit mkinitramfs)", o.Input, BinaryPath)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if len(o.Modules) > 0 {
		if err := a.addModules(o, &res); err != nil {
			return res, err
		}
	}
	for _, k := range o.Keys {
		added, err := a.addKey(k)
		if err != nil {
			return res, err
		}
		if added != "" {
			res.KeysAdded = append(res.KeysAdded, added)
		}
	}
	res.Changed = a.changedNames()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, a.write(o.Output, comp, &res)
}

// decompress detects the compression of an initramfs by its magic and
// returns the cpio bytes.
func decompress(data []byte) ([]byte, Compression, error) {
	switch {
	case bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		dec, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, "", err
		}
		defer dec.Close()
		raw, err := io.ReadAll(dec)
		if err != nil {
			return nil, "", fmt.Errorf("zstd: %w (an initrd with another archive appended is not supported)", err)
		}
		return raw, Zstd, nil
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, "", err
		}
		raw, err := io.ReadAll(gz)
		if err != nil {
			return nil, "", fmt.Errorf("gzip: %w (an initrd with another archive appended is not supported)", err)
		}
		return raw, Gzip, nil
	case bytes.HasPrefix(data, []byte("070701")):
		return data, None, nil
	}
	return nil, "", errors.New("neither zstd, gzip nor a newc cpio: not an initramfs nodeinit built")
}

// readArchive reads the records of one newc archive and refuses anything
// but padding after its trailer.
func readArchive(raw []byte) ([]cpio.Record, error) {
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		return nil, fmt.Errorf("not a newc cpio: %w", err)
	}
	end := int64(0)
	if len(recs) > 0 {
		last := recs[len(recs)-1]
		end = (last.FilePos + int64(last.FileSize) + 3) &^ 3
	}
	rest := raw[min(end, int64(len(raw))):]
	i := bytes.Index(rest, []byte(cpio.Trailer+"\x00"))
	if i < 0 {
		return nil, errors.New("the cpio archive has no trailer (truncated)")
	}
	if bytes.ContainsFunc(rest[i+len(cpio.Trailer)+1:], func(r rune) bool { return r != 0 }) {
		return nil, errors.New("more than one archive is concatenated in it (an installer initrd with a bundle?): give the bundle's own initrd.img")
	}
	return recs, nil
}

// archive is the records of an initramfs being changed, in their order.
type archive struct {
	recs    []cpio.Record
	byName  map[string]int
	changed map[string]bool
}

func newArchive(recs []cpio.Record) *archive {
	a := &archive{recs: recs, byName: map[string]int{}, changed: map[string]bool{}}
	for i, r := range recs {
		a.byName[r.Name] = i
	}
	return a
}

// content returns a record's bytes, or nil when the archive lacks it.
func (a *archive) content(name string) ([]byte, bool) {
	i, ok := a.byName[name]
	if !ok {
		return nil, false
	}
	r := a.recs[i]
	b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
	return b, err == nil
}

// put replaces name's record or appends it (after any parent directories the
// archive lacks), unless the archive already has the same bytes there.
func (a *archive) put(name string, data []byte, perm uint64) {
	if old, ok := a.content(name); ok && bytes.Equal(old, data) && a.recs[a.byName[name]].Mode&cpio.S_IFMT == cpio.S_IFREG {
		return
	}
	rec := cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | perm})
	a.changed[name] = true
	if i, ok := a.byName[name]; ok {
		a.recs[i] = rec
		return
	}
	var parents []string
	for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := a.byName[d]; !ok {
			parents = append([]string{d}, parents...)
		}
	}
	for _, d := range parents {
		a.byName[d] = len(a.recs)
		a.recs = append(a.recs, cpio.Directory(d, 0o755))
	}
	a.byName[name] = len(a.recs)
	a.recs = append(a.recs, rec)
}

func (a *archive) changedNames() []string {
	var out []string
	for n := range a.changed {
		out = append(out, "/"+n)
	}
	sort.Strings(out)
	return out
}

// addModules adds the modules of o with their dependencies.
func (a *archive) addModules(o AddOptions, res *AddResult) error {
	kver := filepath.Base(o.ModulesDir)
	for name := range a.byName {
		if v, ok := strings.CutPrefix(name, "lib/modules/"); ok {
			if v, rest, _ := strings.Cut(v, "/"); rest == "modules.dep" && v != kver {
				return fmt.Errorf("initramfs: %s carries modules for kernel %s, the modules to add are for %s: build the initramfs for the image's kernel", o.Input, v, kver)
			}
		}
	}
	mods, err := ResolveModules(o.ModulesDir, o.Modules)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if len(mods.Missing) > 0 {
		return fmt.Errorf("initramfs: modules %s are not in %s/modules.dep (run depmod for %s)", strings.Join(mods.Missing, ", "), o.ModulesDir, kver)
	}
	res.KernelVersion = kver
	dest := path.Join("lib/modules", kver)
	added := map[string]bool{}
	for _, rel := range mods.Files {
		data, err := os.ReadFile(filepath.Join(o.ModulesDir, rel))
		if err != nil {
			return fmt.Errorf("initramfs: module %s: %w", rel, err)
		}
		a.put(path.Join(dest, ArchivePath(rel)), data, 0o644)
		added[moduleName(rel)] = true
	}

	// modules.dep: the input's lines, a new module's line replacing or following them.
	depName := path.Join(dest, "modules.dep")
	old, _ := a.content(depName)
	lines := nonEmptyLines(old)
	at := map[string]int{}
	for i, l := range lines {
		mod, _, _ := strings.Cut(l, ":")
		at[strings.TrimSpace(mod)] = i
	}
	for _, l := range mods.DepLines {
		mod, _, _ := strings.Cut(l, ":")
		if i, ok := at[mod]; ok {
			lines[i] = l
			continue
		}
		at[mod] = len(lines)
		lines = append(lines, l)
	}
	a.put(depName, []byte(strings.Join(lines, "\n")+"\n"), 0o644)

	// modules.alias: the new modules' aliases after the input's.
	if data, err := os.ReadFile(filepath.Join(o.ModulesDir, "modules.alias")); err == nil {
		aliasName := path.Join(dest, "modules.alias")
		old, _ := a.content(aliasName)
		lines := nonEmptyLines(old)
		for _, l := range nonEmptyLines(filterAlias(data, added)) {
			if !slices.Contains(lines, l) {
				lines = append(lines, l)
			}
		}
		if len(lines) > 0 {
			a.put(aliasName, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
		}
	}
	if _, ok := a.byName[path.Join(dest, "modules.builtin")]; !ok {
		if data, err := os.ReadFile(filepath.Join(o.ModulesDir, "modules.builtin")); err == nil {
			a.put(path.Join(dest, "modules.builtin"), data, 0o644)
		}
	}

	// The list /init loads: the input's, then the new names.
	list, ok := a.content(ModuleListArchivePath)
	if !ok {
		list = []byte("# kernel modules /init loads, with their dependencies, at boot\n")
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(list), "\n") {
		l, _, _ = strings.Cut(l, "#")
		if l = strings.TrimSpace(l); l != "" {
			have[normName(l)] = true
		}
	}
	text := string(list)
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	for _, n := range mods.Names {
		if !have[normName(n)] {
			have[normName(n)] = true
			text += n + "\n"
			res.Listed = append(res.Listed, n)
		}
	}
	a.put(ModuleListArchivePath, []byte(text), 0o644)
	return nil
}

// addKey adds a minisign public key file under etc/nodeinit/keys unless
// the archive already trusts that key (by its key line), and returns the
// path it added, or "".
func (a *archive) addKey(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("initramfs: key %s: %w", file, err)
	}
	if !strings.HasSuffix(file, ".pub") {
		return "", fmt.Errorf("initramfs: key %s: want a minisign public key file ending in .pub", file)
	}
	key := keyLine(data)
	if key == "" {
		return "", fmt.Errorf("initramfs: key %s: no key in the file", file)
	}
	for name := range a.byName {
		if path.Dir(name) != KeysArchiveDir {
			continue
		}
		if b, ok := a.content(name); ok && keyLine(b) == key {
			return "", nil
		}
	}
	name := path.Join(KeysArchiveDir, filepath.Base(file))
	if _, ok := a.byName[name]; ok {
		return "", fmt.Errorf("initramfs: key %s: the initramfs has another key named %s: rename the .pub file", file, path.Base(name))
	}
	a.put(name, data, 0o644)
	return "/" + name, nil
}

// keyLine is the key of a minisign public key file: its last line that is
// not a comment.
func keyLine(b []byte) string {
	key := ""
	for _, l := range nonEmptyLines(b) {
		if !strings.HasPrefix(l, "untrusted comment:") {
			key = l
		}
	}
	return key
}

func nonEmptyLines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// write compresses the archive to o.Output through a temporary file.
func (a *archive) write(output string, comp Compression, res *AddResult) error {
	f, err := os.CreateTemp(filepath.Dir(output), ".initramfs-*")
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	c := &compressedCPIO{file: f, compression: comp}
	w, err := c.OpenWriter()
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	for _, r := range a.recs {
		if err := w.WriteRecord(r); err != nil {
			return fmt.Errorf("initramfs: write %s: %w", output, err)
		}
	}
	if err := w.Finish(); err != nil {
		return fmt.Errorf("initramfs: write %s: %w", output, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if err := os.Rename(f.Name(), output); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	res.Size = st.Size()
	res.SHA256 = fmt.Sprintf("%x", c.sum.Sum(nil))
	return nil
}
