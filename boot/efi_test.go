package boot

import (
	"bytes"
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/u-root/u-root/pkg/uefivars"
	uboot "github.com/u-root/u-root/pkg/uefivars/boot"
)

var testLoc = ESPLocation{
	PartNumber: 1, StartLBA: 2048, SizeLBA: 1048576,
	PartGUID: uuid.MustParse("12345678-9abc-def0-1122-334455667788"),
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHardDriveNodeBytes(t *testing.T) {
	want := unhex(t, `04 01 2a 00  01 00 00 00  00 08 00 00 00 00 00 00  00 00 10 00 00 00 00 00
		78 56 34 12 bc 9a f0 de 11 22 33 44 55 66 77 88  02 02`)
	if got := HardDriveNode(testLoc); !bytes.Equal(got, want) {
		t.Errorf("HD node\n got %x\nwant %x", got, want)
	}
}

func TestLoadOptionBytes(t *testing.T) {
	got, err := LoadOption("nodeinit", testLoc, FallbackLoaderPath)
	if err != nil {
		t.Fatal(err)
	}
	// Attributes=1, FilePathListLength = 42 + 48 + 4 = 94 (0x5e).
	want := unhex(t, `01 00 00 00 5e 00
		6e 00 6f 00 64 00 65 00 69 00 6e 00 69 00 74 00 00 00`)
	want = append(want, HardDriveNode(testLoc)...)
	want = append(want, unhex(t, `04 04 30 00
		5c 00 45 00 46 00 49 00 5c 00 42 00 4f 00 4f 00 54 00 5c 00
		42 00 4f 00 4f 00 54 00 58 00 36 00 34 00 2e 00 45 00 46 00 49 00 00 00
		7f ff 04 00`)...)
	if !bytes.Equal(got, want) {
		t.Fatalf("load option\n got %x\nwant %x", got, want)
	}
	// An independent decoder (u-root's uefivars) reads it back.
	bv, err := uboot.BootVar(uefivars.EfiVar{Name: "Boot0007", Data: got})
	if err != nil {
		t.Fatal(err)
	}
	if bv.Number != 7 || bv.Description != "nodeinit" || bv.Attributes != 1 || len(bv.OptionalData) != 0 {
		t.Errorf("u-root decoded %+v", bv)
	}
	s := bv.FilePathList.String()
	for _, part := range []string{"HD(1,GPT,12345678-9abc-def0-1122-334455667788,0x800,0x100000)", "File(/EFI/BOOT/BOOTX64.EFI)"} {
		if !strings.Contains(s, part) {
			t.Errorf("u-root path %q lacks %q", s, part)
		}
	}
	if _, err := LoadOption("nodeinit", ESPLocation{PartNumber: 1}, FallbackLoaderPath); err == nil {
		t.Error("incomplete ESP location accepted")
	}
}

// fakeVars is an in-memory EFI global variable namespace.
type fakeVars map[string][]byte

func (f fakeVars) Get(name string) (uint32, []byte, error) {
	d, ok := f[name]
	if !ok {
		return 0, nil, os.ErrNotExist
	}
	return 7, d, nil
}
func (f fakeVars) Set(name string, _ uint32, data []byte) error {
	f[name] = slices.Clone(data)
	return nil
}
func (f fakeVars) Remove(name string) error {
	if _, ok := f[name]; !ok {
		return os.ErrNotExist
	}
	delete(f, name)
	return nil
}
func (f fakeVars) List() ([]string, error) {
	var n []string
	for k := range f {
		n = append(n, k)
	}
	slices.Sort(n)
	return n, nil
}

func order(t *testing.T, v EFIVars) []uint16 {
	t.Helper()
	o, err := ReadBootOrder(v)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestInstallAndRemoveBootEntries(t *testing.T) {
	pxe, _ := LoadOption("UEFI PXEv4", testLoc, `\pxe`) // any foreign entry
	v := fakeVars{"Boot0000": pxe, "Boot0001": pxe, "BootOrder": {0, 0, 1, 0}, "Timeout": {3, 0}}
	n, err := InstallBootEntry(v, testLoc)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("new entry number %d, want 2 (first free)", n)
	}
	if got := order(t, v); !slices.Equal(got, []uint16{2, 0, 1}) {
		t.Errorf("BootOrder = %v, want [2 0 1]", got)
	}
	// Idempotent: same entry, same order.
	if n2, err := InstallBootEntry(v, testLoc); err != nil || n2 != 2 || len(v) != 5 {
		t.Errorf("second install = %d, %v, vars %v", n2, err, len(v))
	}
	// The firmware (or an operator) moved PXE first: install puts disk first again.
	v["BootOrder"] = []byte{0, 0, 2, 0, 1, 0}
	if _, err := InstallBootEntry(v, testLoc); err != nil {
		t.Fatal(err)
	}
	if got := order(t, v); !slices.Equal(got, []uint16{2, 0, 1}) {
		t.Errorf("BootOrder = %v, want [2 0 1]", got)
	}
	// A new ESP (reinstall) replaces the stale entry.
	loc2 := testLoc
	loc2.PartGUID = uuid.MustParse("aaaaaaaa-9abc-def0-1122-334455667788")
	n3, err := InstallBootEntry(v, loc2)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v["Boot0002"]; ok || n3 != 3 {
		t.Errorf("stale entry kept or wrong number %d: %v", n3, v)
	}
	if got := order(t, v); !slices.Equal(got, []uint16{3, 0, 1}) {
		t.Errorf("BootOrder = %v", got)
	}
	if err := SetBootNext(v, 3); err != nil {
		t.Fatal(err)
	}
	removed, err := RemoveBootEntries(v)
	if err != nil || !slices.Equal(removed, []uint16{3}) {
		t.Fatalf("RemoveBootEntries = %v, %v", removed, err)
	}
	if got := order(t, v); !slices.Equal(got, []uint16{0, 1}) {
		t.Errorf("BootOrder after uninstall = %v", got)
	}
	if _, ok := v["BootNext"]; ok {
		t.Error("BootNext still points at a removed entry")
	}
	if _, ok := v["Boot0000"]; !ok {
		t.Error("foreign entry removed")
	}
	if removed, err := RemoveBootEntries(v); err != nil || removed != nil {
		t.Errorf("second uninstall = %v, %v", removed, err)
	}
}
