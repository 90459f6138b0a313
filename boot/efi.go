package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/google/uuid"
)

// BootDescription names the firmware boot entries nodeinit creates; uninstall
// removes exactly the entries with this description.
const BootDescription = "nodeinit"

// EFI variable attributes used for Boot####, BootOrder and BootNext.
const (
	attrNonVolatile    = 0x1
	attrBootservice    = 0x2
	attrRuntime        = 0x4
	bootVarAttributes  = attrNonVolatile | attrBootservice | attrRuntime
	loadOptionActive   = 0x1
	devicePathMedia    = 0x04
	mediaHardDrive     = 0x01
	mediaFilePath      = 0x04
	devicePathEnd      = 0x7f
	devicePathEndEntir = 0xff
	partFormatGPT      = 0x02
	signatureGUID      = 0x02
)

// EFIVars is the firmware variable store. A bare name is in the EFI global
// namespace (8be4df61-93ca-11d2-aa0d-00e098032b8c) where Boot#### live;
// "Name-<guid>" is in that vendor's (LoaderImageIdentifierVar). List gives
// the global names. OpenEFIVars gives the efivarfs implementation; tests use
// a map.
type EFIVars interface {
	Get(name string) (attrs uint32, data []byte, err error) // os.ErrNotExist when absent
	Set(name string, attrs uint32, data []byte) error
	Remove(name string) error
	List() ([]string, error) // variable names
}

// ESPLocation is where the ESP sits on its GPT disk, in the disk's logical
// blocks, as the firmware's HD() device path node wants it.
type ESPLocation struct {
	PartNumber uint32    // 1-based GPT partition number
	StartLBA   uint64    // first logical block
	SizeLBA    uint64    // size in logical blocks
	PartGUID   uuid.UUID // the partition's unique GUID (not the type GUID)
}

// HardDriveNode encodes a Media/Hard Drive device path node (type 4, sub-type 1,
// 42 bytes) for a GPT partition.
func HardDriveNode(loc ESPLocation) []byte {
	b := make([]byte, 42)
	b[0], b[1] = devicePathMedia, mediaHardDrive
	binary.LittleEndian.PutUint16(b[2:], 42)
	binary.LittleEndian.PutUint32(b[4:], loc.PartNumber)
	binary.LittleEndian.PutUint64(b[8:], loc.StartLBA)
	binary.LittleEndian.PutUint64(b[16:], loc.SizeLBA)
	copy(b[24:40], mixedEndianGUID(loc.PartGUID))
	b[40], b[41] = partFormatGPT, signatureGUID
	return b
}

// FilePathNode encodes a Media/File Path node: a NUL-terminated UTF-16LE path
// with backslashes, e.g. \EFI\BOOT\BOOTX64.EFI.
func FilePathNode(path string) []byte {
	path = strings.ReplaceAll(path, "/", `\`)
	if !strings.HasPrefix(path, `\`) {
		path = `\` + path
	}
	s := utf16le(path)
	b := make([]byte, 4, 4+len(s))
	b[0], b[1] = devicePathMedia, mediaFilePath
	binary.LittleEndian.PutUint16(b[2:], uint16(4+len(s)))
	return append(b, s...)
}

// EndNode is the End Entire Device Path node.
func EndNode() []byte { return []byte{devicePathEnd, devicePathEndEntir, 4, 0} }

// LoadOption encodes an active EFI_LOAD_OPTION (UEFI 2.10 §3.1.3):
// Attributes, FilePathListLength, Description (UTF-16LE, NUL), FilePathList
// = HD(loc) / File(path) / End, and no optional data.
func LoadOption(description string, loc ESPLocation, path string) ([]byte, error) {
	if loc.PartNumber == 0 || loc.SizeLBA == 0 || loc.PartGUID == uuid.Nil {
		return nil, fmt.Errorf("EFI load option %q: ESP location %+v is incomplete (partition number, size and GUID are needed)", description, loc)
	}
	var fp bytes.Buffer
	fp.Write(HardDriveNode(loc))
	fp.Write(FilePathNode(path))
	fp.Write(EndNode())
	if fp.Len() > 0xffff {
		return nil, fmt.Errorf("EFI load option %q: file path %q too long", description, path)
	}
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint32(loadOptionActive))
	binary.Write(&b, binary.LittleEndian, uint16(fp.Len()))
	b.Write(utf16le(description))
	b.Write(fp.Bytes())
	return b.Bytes(), nil
}

// loadOptionDescription decodes the description of an EFI_LOAD_OPTION.
func loadOptionDescription(data []byte) (string, bool) {
	if len(data) < 8 {
		return "", false
	}
	var u []uint16
	for i := 6; i+1 < len(data); i += 2 {
		c := binary.LittleEndian.Uint16(data[i:])
		if c == 0 {
			return string(utf16.Decode(u)), true
		}
		u = append(u, c)
	}
	return "", false
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(u)+2)
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return append(b, 0, 0)
}

// mixedEndianGUID is the on-disk/EFI byte order of a GUID: the first three
// fields little-endian, the rest as is.
func mixedEndianGUID(u uuid.UUID) []byte {
	return []byte{u[3], u[2], u[1], u[0], u[5], u[4], u[7], u[6],
		u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]}
}

func bootVarName(n uint16) string { return fmt.Sprintf("Boot%04X", n) }

func parseBootVarName(name string) (uint16, bool) {
	if len(name) != 8 || !strings.HasPrefix(name, "Boot") {
		return 0, false
	}
	for _, c := range name[4:] {
		if !strings.ContainsRune("0123456789ABCDEF", c) {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(name[4:], 16, 16)
	return uint16(n), err == nil
}

// ReadBootOrder returns BootOrder (empty when unset).
func ReadBootOrder(v EFIVars) ([]uint16, error) {
	return readUint16s(v, "BootOrder")
}

func readUint16s(v EFIVars, name string) ([]uint16, error) {
	_, data, err := v.Get(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read EFI %s: %w", name, err)
	}
	out := make([]uint16, len(data)/2)
	for i := range out {
		out[i] = binary.LittleEndian.Uint16(data[2*i:])
	}
	return out, nil
}

func writeUint16s(v EFIVars, name string, vals []uint16) error {
	b := make([]byte, 0, 2*len(vals))
	for _, x := range vals {
		b = binary.LittleEndian.AppendUint16(b, x)
	}
	if err := v.Set(name, bootVarAttributes, b); err != nil {
		return fmt.Errorf("write EFI %s: %w", name, err)
	}
	return nil
}

// ourBootEntries lists Boot#### numbers whose description is BootDescription,
// with their raw load options, and every Boot#### number in use.
func ourBootEntries(v EFIVars) (map[uint16][]byte, []uint16, error) {
	return bootEntries(v, BootDescription)
}

// bootEntries lists Boot#### numbers whose description is desc, with their
// raw load options, and every Boot#### number in use.
func bootEntries(v EFIVars, desc string) (map[uint16][]byte, []uint16, error) {
	names, err := v.List()
	if err != nil {
		return nil, nil, fmt.Errorf("list EFI variables: %w", err)
	}
	ours := map[uint16][]byte{}
	var used []uint16
	for _, name := range names {
		n, ok := parseBootVarName(name)
		if !ok {
			continue
		}
		used = append(used, n)
		_, data, err := v.Get(name)
		if err != nil {
			return nil, nil, fmt.Errorf("read EFI %s: %w", name, err)
		}
		if d, ok := loadOptionDescription(data); ok && d == desc {
			ours[n] = data
		}
	}
	return ours, used, nil
}

// InstallBootEntry makes sure one Boot#### entry "nodeinit" points at
// \EFI\BOOT\BOOTX64.EFI on the ESP at loc, and puts it first in BootOrder so
// the disk boots before the network. An identical existing entry is reused;
// other "nodeinit" entries (an older ESP) are removed. It returns the number.
func InstallBootEntry(v EFIVars, loc ESPLocation) (uint16, error) {
	return InstallBootEntryFor(v, loc, FallbackLoaderPath)
}

// InstallBootEntryFor is InstallBootEntry for the loader at path on the ESP
// (the ledger's default loader, see PromoteLoader).
func InstallBootEntryFor(v EFIVars, loc ESPLocation, path string) (uint16, error) {
	opt, err := LoadOption(BootDescription, loc, path)
	if err != nil {
		return 0, err
	}
	ours, used, err := ourBootEntries(v)
	if err != nil {
		return 0, err
	}
	num, found := uint16(0), false
	for n, data := range ours {
		if bytes.Equal(data, opt) && (!found || n < num) {
			num, found = n, true
		}
	}
	if !found {
		for num = 0; slices.Contains(used, num); num++ {
			if num == 0xffff {
				return 0, errors.New("create EFI boot entry: all Boot#### numbers are in use")
			}
		}
		if err := v.Set(bootVarName(num), bootVarAttributes, opt); err != nil {
			return 0, fmt.Errorf("create EFI %s: %w", bootVarName(num), err)
		}
	}
	var stale []uint16
	for n := range ours {
		if n != num {
			stale = append(stale, n)
		}
	}
	order, err := ReadBootOrder(v)
	if err != nil {
		return 0, err
	}
	newOrder := []uint16{num}
	for _, n := range order {
		if n != num && !slices.Contains(stale, n) {
			newOrder = append(newOrder, n)
		}
	}
	if !slices.Equal(order, newOrder) {
		if err := writeUint16s(v, "BootOrder", newOrder); err != nil {
			return 0, err
		}
	}
	for _, n := range stale {
		if err := v.Remove(bootVarName(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("remove stale EFI %s: %w", bootVarName(n), err)
		}
	}
	return num, nil
}

// SetBootNext makes the firmware boot entry num once on the next boot.
func SetBootNext(v EFIVars, num uint16) error {
	return writeUint16s(v, "BootNext", []uint16{num})
}

// RemoveBootEntries deletes every "nodeinit" Boot#### entry, drops them from
// BootOrder and clears BootNext if it points at one. It returns what it removed.
func RemoveBootEntries(v EFIVars) ([]uint16, error) {
	if err := RemoveTrialBootEntries(v); err != nil {
		return nil, err
	}
	ours, _, err := ourBootEntries(v)
	if err != nil {
		return nil, err
	}
	if len(ours) == 0 {
		return nil, nil
	}
	removed := make([]uint16, 0, len(ours))
	for n := range ours {
		removed = append(removed, n)
	}
	slices.Sort(removed)
	order, err := ReadBootOrder(v)
	if err != nil {
		return nil, err
	}
	kept := slices.DeleteFunc(slices.Clone(order), func(n uint16) bool { return slices.Contains(removed, n) })
	if len(kept) != len(order) {
		if err := writeUint16s(v, "BootOrder", kept); err != nil {
			return nil, err
		}
	}
	if next, err := readUint16s(v, "BootNext"); err == nil && len(next) == 1 && slices.Contains(removed, next[0]) {
		if err := v.Remove("BootNext"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("clear EFI BootNext: %w", err)
		}
	}
	for _, n := range removed {
		if err := v.Remove(bootVarName(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove EFI %s: %w", bootVarName(n), err)
		}
	}
	return removed, nil
}
