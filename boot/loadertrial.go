package boot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"unicode/utf16"
)

// A new boot loader is tried the way a new kernel is. An upgrade whose bundle
// carries a loader that differs from the one the firmware starts puts it on
// the ESP under its own name (TrialLoaderPath), gives it its own Boot####
// entry (TrialDescription) and sets BootNext to it, so the firmware starts it
// once. The initramfs of the slot it boots then asks systemd-boot which image
// started it (LoaderImageIdentifier): the trial loader confirms the slot's
// loader; anything else means the firmware could not start it and fell back,
// so the slot is bad and the node goes back to the old slot. The "nodeinit"
// entry starts the new loader only once the slot is blessed (PromoteLoader).

// TrialDescription names the Boot#### entry of a loader on trial.
const TrialDescription = "nodeinit trial"

// TrialLoaderDir holds loaders by content, so a trial never overwrites the
// loader the firmware starts today.
const TrialLoaderDir = "EFI/nodeinit"

// systemdVendorGUID is systemd-boot's EFI variable namespace.
const systemdVendorGUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

// LoaderImageIdentifierVar is systemd-boot's record of the image the firmware
// started it from, named with its namespace for EFIVars.
const LoaderImageIdentifierVar = "LoaderImageIdentifier-" + systemdVendorGUID

// TrialLoaderPath is the ESP path of a loader with these contents.
func TrialLoaderPath(loader []byte) string {
	sum := sha256.Sum256(loader)
	return path.Join(TrialLoaderDir, "loader-"+hex.EncodeToString(sum[:6])+".efi")
}

// DefaultLoader is the ESP path the "nodeinit" Boot#### entry starts.
func (l *Ledger) DefaultLoader() string {
	if l.Loader != "" {
		return l.Loader
	}
	return FallbackLoaderPath
}

// StageTrialLoader puts the loader file on the ESP for a trial when it differs
// from the ledger's default loader, and returns its ESP path; "" means the
// loader is the one the firmware starts already, and nothing was written.
func StageTrialLoader(esp FS, l *Ledger, loaderEFI string) (string, error) {
	if err := checkPE(loaderEFI); err != nil {
		return "", fmt.Errorf("stage trial loader: %w", err)
	}
	data, err := os.ReadFile(loaderEFI)
	if err != nil {
		return "", fmt.Errorf("stage trial loader: %w", err)
	}
	if cur, err := esp.ReadFile(l.DefaultLoader()); err == nil && bytes.Equal(cur, data) {
		return "", nil
	}
	p := TrialLoaderPath(data)
	if err := copyInto(esp, loaderEFI, p); err != nil {
		return "", fmt.Errorf("stage trial loader %s: %w", p, err)
	}
	return p, nil
}

// SameLoaderPath reports whether two ESP paths name the same file (the
// firmware's FAT paths ignore case and use backslashes).
func SameLoaderPath(a, b string) bool {
	norm := func(s string) string {
		return strings.ToLower(strings.TrimPrefix(strings.ReplaceAll(s, `\`, "/"), "/"))
	}
	return norm(a) == norm(b)
}

// BootedLoader is the ESP path systemd-boot says the firmware started it
// from, or "" when the variable is absent (another loader, or none).
func BootedLoader(v EFIVars) (string, error) {
	_, data, err := v.Get(LoaderImageIdentifierVar)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read EFI LoaderImageIdentifier: %w", err)
	}
	u := make([]uint16, 0, len(data)/2)
	for i := 0; i+1 < len(data); i += 2 {
		c := binary.LittleEndian.Uint16(data[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u)), nil
}

// InstallTrialBootEntry makes one "nodeinit trial" Boot#### entry for the
// loader at path on the ESP at loc (replacing older trial entries) and sets
// BootNext to it; BootOrder is left as it is, so after the one trial boot the
// firmware starts the default loader again. It returns the entry's number.
func InstallTrialBootEntry(v EFIVars, loc ESPLocation, path string) (uint16, error) {
	if err := RemoveTrialBootEntries(v); err != nil {
		return 0, err
	}
	opt, err := LoadOption(TrialDescription, loc, path)
	if err != nil {
		return 0, err
	}
	_, used, err := bootEntries(v, BootDescription)
	if err != nil {
		return 0, err
	}
	num := uint16(0)
	for ; slices.Contains(used, num); num++ {
		if num == 0xffff {
			return 0, errors.New("create EFI trial boot entry: all Boot#### numbers are in use")
		}
	}
	if err := v.Set(bootVarName(num), bootVarAttributes, opt); err != nil {
		return 0, fmt.Errorf("create EFI %s: %w", bootVarName(num), err)
	}
	if err := SetBootNext(v, num); err != nil {
		return 0, fmt.Errorf("set BootNext to %s: %w", bootVarName(num), err)
	}
	return num, nil
}

// RemoveTrialBootEntries deletes every "nodeinit trial" Boot#### entry and
// clears BootNext when it points at one.
func RemoveTrialBootEntries(v EFIVars) error {
	trials, _, err := bootEntries(v, TrialDescription)
	if err != nil {
		return err
	}
	if len(trials) == 0 {
		return nil
	}
	if next, err := readUint16s(v, "BootNext"); err == nil && len(next) == 1 {
		if _, ok := trials[next[0]]; ok {
			if err := v.Remove("BootNext"); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("clear BootNext: %w", err)
			}
		}
	}
	for n := range trials {
		if err := v.Remove(bootVarName(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove EFI %s: %w", bootVarName(n), err)
		}
	}
	return nil
}

// PromoteLoader makes the "nodeinit" Boot#### entry start the loader at path
// and records it as the ledger's default; the trial entries go. The ESP's
// fallback path (FallbackLoaderPath) keeps the install's loader, which still
// boots every slot.
func PromoteLoader(v EFIVars, loc ESPLocation, l *Ledger, path string) (uint16, error) {
	n, err := InstallBootEntryFor(v, loc, path)
	if err != nil {
		return 0, err
	}
	if err := RemoveTrialBootEntries(v); err != nil {
		return 0, err
	}
	l.Loader = path
	return n, nil
}
